//! The EZSP coordinator driver: the sans-IO [`crate::ash::Link`] and [`crate::ezsp::Session`]
//! run over a serial port by one tokio task (STYLE.md rules 9 and 11; UG100 for EZSP, UG101 for
//! ASH).
//!
//! Start-up, after every (re)connection and every NCP reset: ASH RST/RSTACK, EZSP version
//! negotiation, configuration values and policies, `addEndpoint` for our endpoint with the OTA
//! Upgrade cluster 0x0019 as an input (server) cluster (endpoints vanish on every NCP reset, and
//! must be registered before `networkInit`), then `networkInit` to resume the network the NCP
//! holds; when it holds none (`NOT_JOINED`) the network from [`super::network::NetworkSettings`]
//! is formed (`setInitialSecurityState`, `formNetwork`). The driver then waits for
//! `stackStatusHandler(NETWORK_UP)` and reads the network parameters, the NCP's EUI-64 and its
//! maximum APS payload.
//!
//! Up, it turns [`EzspCoordinator`] calls into `sendUnicast`/`sendBroadcast`/`permitJoining` and
//! callbacks into [`CoordinatorEvent`]s: `incomingMessageHandler` → `Incoming` (and a device
//! announce → `DeviceJoined`), `messageSentHandler` → one `DeliveryReport` per send,
//! `trustCenterJoinHandler`/`childJoinHandler` → the device table. Before v14 the incoming
//! callback carries no EUI-64; for a sender the table does not know, the driver asks the NCP
//! (`lookupEui64ByNodeId`) and holds that sender's messages, in order, until it answers.
//!
//! Recovery: an unsolicited RSTACK, an ASH ERROR or a failed link restarts start-up on the same
//! port; a read of `Ok(0)` or an I/O error means the port is gone, and it is reopened. Both
//! wait for the capped exponential [`Backoff`] first, so a dead stick never causes a busy loop.
//! Sends still in flight get `DeliveryReport { outcome: LinkLost }`.
//!
//! ```no_run
//! # async fn demo() {
//! use zigbee_otad::coordinator::{Coordinator, CoordinatorConfig, FlowControl, SerialConfig};
//! use zigbee_otad::coordinator::ezsp::EzspCoordinator;
//! let (coordinator, mut events) = EzspCoordinator::start(CoordinatorConfig {
//!     serial: SerialConfig { path: "/dev/ttyUSB0".into(), baudrate: 115_200, flow_control: FlowControl::Software },
//!     state_dir: "/var/lib/zigbee-otad".into(),
//!     network: Default::default(),
//!     endpoint: 1,
//! });
//! while let Some(event) = events.recv().await {
//!     println!("{event:?} (state {:?})", coordinator.state());
//! }
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::device_store::{DeviceTableSaver, SAVE_DEBOUNCE, load_device_table};
use super::device_table::JoinWitness;
use super::latency::{AnswerLatency, AnswerLatencyHistograms};
use super::network::{NetworkFileError, NetworkSettings};
use super::serial::{self, Backoff};
use super::{
    AnswerTiming, BroadcastMessage, Coordinator, CoordinatorConfig, CoordinatorEvent,
    CoordinatorState, DeliveryOutcome, DeviceTable, Ieee, IncomingMessage, MessageTag, NetworkInfo,
    Nwk, SendError, UnicastMessage,
};
use crate::ash::{Link, LinkConfig, LinkEvent, Role};
use crate::ezsp::command::{
    AddEndpoint, Callback, Command, FormNetwork, IncomingMessageHandler, LookupEui64ByNodeId,
    MessageSentHandler, NetworkInit, PermitJoining, Response, SendBroadcast, SendUnicast,
    SetConfigurationValue, SetInitialSecurityState, SetPolicy,
};
use crate::ezsp::status::{SlStatus, Status};
use crate::ezsp::types::{
    ApsFrame, ApsOptions, ConfigId, DecisionId, DeviceUpdate, Eui64, IncomingMessageType,
    InitialSecurityBitmask, InitialSecurityState, JoinMethod, KeyData, NetworkInitBitmask,
    NetworkParameters, NodeId, NodeType, OutgoingMessageType, PolicyId,
};
use crate::ezsp::{self as ezsp_core, EzspVersion, Session, SessionConfig};

/// The file in the state directory that keeps the device table.
pub const DEVICE_TABLE_FILE: &str = "devices.txt";

/// The Zigbee 3.0 well-known trust-center link key, "ZigBeeAlliance09".
const WELL_KNOWN_LINK_KEY: [u8; 16] = *b"ZigBeeAlliance09";

/// Configuration values set before `networkInit` (bellows' defaults, PROTOCOLS.md §2), with
/// PACKET_BUFFER_COUNT last because it takes the RAM the others leave.
const CONFIGURATION: &[(ConfigId, u16)] = &[
    (ConfigId::STACK_PROFILE, 2),
    (ConfigId::SECURITY_LEVEL, 5),
    (ConfigId::SUPPORTED_NETWORKS, 1),
    // The stack answers ZDO requests (Match_Desc from our endpoint table) and passes the
    // supported ones (device announces) up to us.
    (ConfigId::APPLICATION_ZDO_FLAGS, 0x01),
    (ConfigId::INDIRECT_TRANSMISSION_TIMEOUT, 7680),
    (ConfigId::MAX_HOPS, 30),
    (ConfigId::MAX_END_DEVICE_CHILDREN, 32),
    (ConfigId::ADDRESS_TABLE_SIZE, 16),
    (ConfigId::SOURCE_ROUTE_TABLE_SIZE, 200),
    (ConfigId::KEY_TABLE_SIZE, 4),
    (ConfigId::TRUST_CENTER_ADDRESS_CACHE_SIZE, 2),
    (ConfigId::MULTICAST_TABLE_SIZE, 16),
    (ConfigId::PACKET_BUFFER_COUNT, 255),
];

/// Sends awaiting their `messageSentHandler` at most (below the 255 tags of EZSP v13); the
/// command queue waits beyond that.
const MAX_IN_FLIGHT: usize = 64;
/// With every in-flight slot taken, a send still without its `messageSentHandler` after this
/// long is reported timed out early (a real NCP reports within a few seconds, indirect
/// transmissions to sleepy devices included: INDIRECT_TX_TIMEOUT is 7.68 s at most, but those
/// are few; a lost report must not stall every transfer for the full delivery timeout).
const IN_FLIGHT_PRESSURE_AGE: Duration = Duration::from_secs(8);

/// Trust-center policy bitmask: allow joins and unsecured rejoins (bellows' choice).
const TRUST_CENTER_ALLOW_JOINS_AND_REJOINS: u8 = 0x03;

/// Tuning knobs of the driver; [`EzspTuning::default`] suits real sticks.
#[derive(Debug, Clone)]
pub struct EzspTuning {
    /// ASH link parameters (window, timers).
    pub link: LinkConfig,
    /// EZSP session parameters (version asked for first, command timeout, pending limit).
    pub session: SessionConfig,
    /// How long to wait for `NETWORK_UP` after `networkInit` or `formNetwork`.
    pub network_up_timeout: Duration,
    /// After this long without a frame from the NCP, a `nop` checks that it is still there and
    /// still negotiated (an NCP whose unsolicited RSTACK was lost answers `invalidCommand`).
    pub keepalive_interval: Duration,
    /// How long a send may wait for its `messageSentHandler` before it is reported timed out.
    pub delivery_timeout: Duration,
    /// Delay before reopening a vanished port or restarting a reset NCP.
    pub backoff: Backoff,
    /// Capacity of the command queue between the handle and the driver task.
    pub command_queue: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
}

impl Default for EzspTuning {
    fn default() -> Self {
        EzspTuning {
            link: LinkConfig::default(),
            session: SessionConfig::default(),
            network_up_timeout: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            command_queue: 64,
            event_queue: 1024,
        }
    }
}

/// What the handle asks the driver task to do.
#[derive(Debug)]
enum DriverCommand {
    Unicast {
        tag: MessageTag,
        message: UnicastMessage,
        /// When the request this unicast answers was read, and the answer ready.
        timing: Option<AnswerTiming>,
    },
    Broadcast {
        tag: MessageTag,
        message: BroadcastMessage,
    },
    PermitJoining {
        seconds: u8,
    },
}

impl DriverCommand {
    fn tag(&self) -> Option<MessageTag> {
        match self {
            DriverCommand::Unicast { tag, .. } | DriverCommand::Broadcast { tag, .. } => Some(*tag),
            DriverCommand::PermitJoining { .. } => None,
        }
    }
}

/// What the handle and the task share.
#[derive(Debug)]
struct SharedState {
    state: CoordinatorState,
    max_payload: Option<usize>,
    network: Option<NetworkInfo>,
    devices: DeviceTable,
    latency: AnswerLatencyHistograms,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<SharedState>,
    next_tag: AtomicU32,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle of a running EZSP driver; implements [`Coordinator`].
#[derive(Debug)]
pub struct EzspCoordinator {
    shared: Arc<Shared>,
    commands: mpsc::Sender<DriverCommand>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl EzspCoordinator {
    /// Starts the driver task on the current tokio runtime (call it from within one) with
    /// default tuning. Events arrive on the returned receiver; the first is
    /// `StateChanged(Starting)`. Dropping the handle stops the driver.
    pub fn start(config: CoordinatorConfig) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        Self::start_with(config, EzspTuning::default())
    }

    /// Like [`EzspCoordinator::start`] with explicit tuning.
    pub fn start_with(
        config: CoordinatorConfig,
        tuning: EzspTuning,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        let table_path = config.state_dir.join(DEVICE_TABLE_FILE);
        let devices = load_device_table(&table_path);
        let shared = Arc::new(Shared {
            inner: Mutex::new(SharedState {
                state: CoordinatorState::Starting,
                max_payload: None,
                network: None,
                devices,
                latency: AnswerLatencyHistograms::default(),
            }),
            next_tag: AtomicU32::new(1),
        });
        let (command_tx, command_rx) = mpsc::channel(tuning.command_queue.max(1));
        let (event_tx, event_rx) = mpsc::channel(tuning.event_queue.max(1));
        let cancel = CancellationToken::new();
        let span = tracing::info_span!(
            "ncp",
            port = %config.serial.path,
            ezsp_version = tracing::field::Empty
        );
        let saver = DeviceTableSaver::spawn(table_path, SAVE_DEBOUNCE, {
            let shared = Arc::clone(&shared);
            Arc::new(move || shared.lock().devices.to_text())
        });
        let driver = Driver {
            config,
            tuning,
            saver,
            witness: JoinWitness::default(),
            shared: Arc::clone(&shared),
            events: event_tx,
            commands: command_rx,
            cancel: cancel.clone(),
            reported_state: None,
        };
        let task = tokio::spawn(driver.run().instrument(span));
        (
            EzspCoordinator {
                shared,
                commands: command_tx,
                cancel,
                task: Mutex::new(Some(task)),
            },
            event_rx,
        )
    }

    /// Stops the driver and waits for its task to end (the port is closed).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            warn!("coordinator task ended abnormally: {e}");
        }
    }

    fn queue(&self, command: DriverCommand) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    fn check_up_and_size(&self, len: usize) -> Result<(), SendError> {
        let shared = self.shared.lock();
        if shared.state != CoordinatorState::Up {
            return Err(SendError::NotUp(shared.state));
        }
        if let Some(max) = shared.max_payload
            && len > max
        {
            return Err(SendError::PayloadTooLarge { len, max });
        }
        Ok(())
    }

    fn next_tag(&self) -> MessageTag {
        MessageTag(self.shared.next_tag.fetch_add(1, Ordering::Relaxed))
    }

    fn unicast(
        &self,
        message: UnicastMessage,
        timing: Option<AnswerTiming>,
    ) -> Result<MessageTag, SendError> {
        if message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.check_up_and_size(message.payload.len())?;
        let tag = self.next_tag();
        self.queue(DriverCommand::Unicast {
            tag,
            message,
            timing,
        })?;
        Ok(tag)
    }
}

impl Drop for EzspCoordinator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Coordinator for EzspCoordinator {
    fn send_unicast(&self, message: UnicastMessage) -> Result<MessageTag, SendError> {
        self.unicast(message, None)
    }

    fn send_answer(
        &self,
        message: UnicastMessage,
        timing: AnswerTiming,
    ) -> Result<MessageTag, SendError> {
        self.unicast(message, Some(timing))
    }

    fn send_broadcast(&self, message: BroadcastMessage) -> Result<MessageTag, SendError> {
        if !message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.check_up_and_size(message.payload.len())?;
        let tag = self.next_tag();
        self.queue(DriverCommand::Broadcast { tag, message })?;
        Ok(tag)
    }

    fn max_aps_payload(&self) -> Option<usize> {
        self.shared.lock().max_payload
    }

    fn permit_joining(&self, seconds: u8) -> Result<(), SendError> {
        if seconds > super::MAX_PERMIT_JOIN_SECONDS {
            return Err(SendError::PermitJoinTooLong(seconds));
        }
        self.check_up_and_size(0)?;
        self.queue(DriverCommand::PermitJoining { seconds })
    }

    fn device_table(&self) -> DeviceTable {
        self.shared.lock().devices.clone()
    }

    fn state(&self) -> CoordinatorState {
        self.shared.lock().state
    }

    fn network_info(&self) -> Option<NetworkInfo> {
        self.shared.lock().network
    }

    fn answer_latency(&self) -> Option<AnswerLatency> {
        Some(self.shared.lock().latency.summary())
    }
}

/// Why the driver left the port or restarted the NCP.
#[derive(Debug, thiserror::Error)]
enum Trouble {
    #[error("serial port gone: {0}")]
    PortGone(String),
    #[error("NCP reset by itself (reset code {0})")]
    NcpReset(String),
    #[error("NCP reported ASH error {0}")]
    NcpError(String),
    #[error("ASH link failed: {0}")]
    LinkFailed(String),
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("cancelled")]
    Cancelled,
}

/// A send waiting for its `messageSentHandler`.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    tag: MessageTag,
    deadline: Instant,
}

/// An answer on its way to the port, for the serial-in -> serial-out latency.
#[derive(Debug, Clone, Copy)]
struct AnswerStamp {
    /// The EZSP sequence of its `sendUnicast`.
    sequence: u8,
    /// When its request was read from the port.
    request_read_at: Instant,
    /// Its place among the payloads the link accepted ([`Port::link_accepted`]), once it has one.
    link_ordinal: Option<u64>,
}

/// Answers waiting for their first write at most; older stamps are dropped unrecorded.
const MAX_ANSWER_STAMPS: usize = 64;

/// One open port: the link, the session and what is in flight on them.
#[derive(Debug)]
struct Port<P> {
    io: P,
    link: Link,
    session: Session,
    /// Session frames waiting for room in the link's send queue.
    link_backlog: VecDeque<Vec<u8>>,
    session_events: VecDeque<ezsp_core::Event>,
    link_connected: bool,
    version: Option<EzspVersion>,
    network_up: bool,
    /// EZSP message tag → the send it belongs to.
    in_flight: HashMap<u16, InFlight>,
    /// EZSP sequence of a `sendUnicast`/`sendBroadcast` → its EZSP message tag.
    send_sequences: HashMap<u8, u16>,
    next_ezsp_tag: u16,
    next_aps_sequence: u8,
    /// When the NCP last sent a frame.
    last_heard: Instant,
    /// The sequence of an outstanding keepalive `nop`.
    keepalive: Option<u8>,
    /// Trouble found while handling events, acted on by the up loop.
    trouble: Option<Trouble>,
    /// Sequence of a `lookupEui64ByNodeId` → the sender it is for.
    lookups: HashMap<u8, Nwk>,
    /// Messages held until their sender's address lookup answers.
    held: HashMap<Nwk, Vec<IncomingMessage>>,
    /// When the last bytes were read from the port.
    last_read_at: Instant,
    /// Payloads the link has accepted since the port opened.
    link_accepted: u64,
    /// Answers whose `sendUnicast` has not been written yet.
    answer_stamps: VecDeque<AnswerStamp>,
    /// An incoming message went to the listener since the last write: its answer may follow.
    incoming_emitted: bool,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn status_code(status: Status) -> u32 {
    match status.to_sl() {
        Some(sl) => sl.0,
        None => match status {
            Status::Ember(s) => u32::from(s.0),
            Status::Ezsp(s) => u32::from(s.0),
            Status::Sl(s) => s.0,
        },
    }
}

struct Driver {
    config: CoordinatorConfig,
    tuning: EzspTuning,
    /// Writes the device table off this task, debounced.
    saver: DeviceTableSaver,
    /// Joins the trust centre reported, which may move a device in the table.
    witness: JoinWitness,
    shared: Arc<Shared>,
    events: mpsc::Sender<CoordinatorEvent>,
    commands: mpsc::Receiver<DriverCommand>,
    cancel: CancellationToken,
    reported_state: Option<CoordinatorState>,
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = self.tuning.backoff.clone();
        self.set_state(CoordinatorState::Starting).await;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let trouble = match serial::open(&self.config.serial) {
                Ok(io) => self.serve(io, &mut backoff).await,
                Err(e) => Trouble::PortGone(e.to_string()),
            };
            if matches!(trouble, Trouble::Cancelled) {
                break;
            }
            warn!("{trouble}; reopening the port");
            self.fail_queued_commands().await;
            self.set_state(CoordinatorState::Disconnected).await;
            if !self.pause(backoff.next_delay()).await {
                break;
            }
            self.set_state(CoordinatorState::Starting).await;
        }
        self.shared.lock().max_payload = None;
        self.saver.flush().await;
        self.set_state(CoordinatorState::Stopped).await;
    }

    /// Runs start-up and the up state on one open port until the port goes or the driver is
    /// cancelled; NCP resets restart start-up here, after a backoff delay.
    async fn serve<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: P,
        backoff: &mut Backoff,
    ) -> Trouble {
        let mut port = match Link::new(Role::Host, self.tuning.link.clone()) {
            Ok(link) => Port {
                io,
                link,
                session: Session::new(self.tuning.session),
                link_backlog: VecDeque::new(),
                session_events: VecDeque::new(),
                link_connected: false,
                version: None,
                network_up: false,
                in_flight: HashMap::new(),
                send_sequences: HashMap::new(),
                next_ezsp_tag: 1,
                next_aps_sequence: 0,
                last_heard: now(),
                keepalive: None,
                trouble: None,
                lookups: HashMap::new(),
                held: HashMap::new(),
                last_read_at: now(),
                link_accepted: 0,
                answer_stamps: VecDeque::new(),
                incoming_emitted: false,
            },
            Err(e) => return Trouble::Startup(format!("ASH link configuration: {e}")),
        };
        loop {
            let trouble = match self.start_up(&mut port).await {
                Ok(()) => {
                    backoff.reset();
                    self.run_up(&mut port).await
                }
                Err(trouble) => trouble,
            };
            self.shared.lock().max_payload = None;
            self.fail_in_flight(&mut port).await;
            match trouble {
                Trouble::PortGone(_) | Trouble::Cancelled => return trouble,
                other => {
                    warn!("{other}; restarting the NCP");
                    self.set_state(CoordinatorState::Resetting).await;
                    self.fail_queued_commands().await;
                    if !self.pause(backoff.next_delay()).await {
                        return Trouble::Cancelled;
                    }
                }
            }
        }
    }

    /// Sleeps for `delay` unless cancelled first; false when cancelled.
    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    async fn set_state(&mut self, state: CoordinatorState) {
        self.shared.lock().state = state;
        if self.reported_state != Some(state) {
            self.reported_state = Some(state);
            info!("coordinator {state:?}");
            self.emit(CoordinatorEvent::StateChanged(state)).await;
        }
    }

    async fn emit(&self, event: CoordinatorEvent) {
        // A full channel holds the driver back (the NCP's ASH retransmissions wait meanwhile);
        // cancellation wins, so a stalled listener cannot block shutdown. A dropped receiver
        // means nobody listens any more; the driver keeps the NCP running.
        tokio::select! {
            _ = self.events.send(event) => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Reports every send of the port as lost.
    async fn fail_in_flight<P>(&mut self, port: &mut Port<P>) {
        // Held messages were received: deliver them without the IEEE address.
        port.lookups.clear();
        let mut held: Vec<Nwk> = port.held.keys().copied().collect();
        held.sort();
        for source in held {
            self.release_held(port, source, None).await;
        }
        port.send_sequences.clear();
        let mut lost: Vec<InFlight> = port.in_flight.drain().map(|(_, f)| f).collect();
        lost.sort_by_key(|f| f.tag);
        for flight in lost {
            self.emit(CoordinatorEvent::DeliveryReport {
                tag: flight.tag,
                outcome: DeliveryOutcome::LinkLost,
            })
            .await;
        }
    }

    /// Reports every queued, not yet sent command as lost.
    async fn fail_queued_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            if let Some(tag) = command.tag() {
                self.emit(CoordinatorEvent::DeliveryReport {
                    tag,
                    outcome: DeliveryOutcome::LinkLost,
                })
                .await;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // I/O pump

    /// Writes what the cores want written, then waits for input, a timer, a command (when
    /// `accept_commands`) or cancellation, and feeds what came to the cores.
    async fn pump<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: &mut Port<P>,
        accept_commands: bool,
        wake_at: Option<Instant>,
    ) -> Result<Option<DriverCommand>, Trouble> {
        self.flush(port).await?;
        let deadline = [
            port.link.poll_timeout(),
            port.session.poll_timeout(),
            port.in_flight.values().map(|f| f.deadline).min(),
            wake_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let mut buffer = [0u8; 512];
        let mut received = None;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(Trouble::Cancelled),
            read = port.io.read(&mut buffer) => match read {
                Ok(0) => return Err(Trouble::PortGone("end of file".into())),
                Ok(n) => {
                    let read_at = now();
                    port.last_read_at = read_at;
                    port.link.handle_input(buffer.get(..n).unwrap_or_default(), read_at);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Trouble::PortGone(e.to_string())),
            },
            _ = sleep => {
                let at = now();
                port.link.handle_timeout(at);
                port.session.handle_timeout(at);
            }
            command = self.commands.recv(), if accept_commands => received = command,
        }
        self.drain_link(port)?;
        Ok(received)
    }

    /// Moves session frames into the link and link bytes onto the port.
    async fn flush<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: &mut Port<P>,
    ) -> Result<(), Trouble> {
        while let Some(frame) = port.session.poll_transmit() {
            port.link_backlog.push_back(frame);
        }
        while let Some(frame) = port.link_backlog.pop_front() {
            let sequence = frame.first().copied();
            if let Err(e) = port.link.send(frame.clone()) {
                debug!("ASH send queue: {e}");
                port.link_backlog.push_front(frame);
                break;
            }
            let ordinal = port.link_accepted;
            port.link_accepted += 1;
            if let Some(stamp) = port
                .answer_stamps
                .iter_mut()
                .find(|s| s.link_ordinal.is_none() && Some(s.sequence) == sequence)
            {
                stamp.link_ordinal = Some(ordinal);
            }
        }
        // Everything due goes out in one write. No `flush()`: the port has no user-space
        // buffer, and on a serial port tokio-serial's flush is tcdrain(3), which would block the
        // runtime's thread until the UART has shifted every byte out (~6 ms per frame at 115200).
        let mut outgoing = Vec::new();
        while let Some(bytes) = port.link.poll_transmit(now()) {
            outgoing.extend_from_slice(&bytes);
        }
        if outgoing.is_empty() {
            return Ok(());
        }
        port.io
            .write_all(&outgoing)
            .await
            .map_err(|e| Trouble::PortGone(e.to_string()))?;
        self.record_written_answers(port);
        Ok(())
    }

    /// Records serial-in -> serial-out for every answer whose `sendUnicast` frame has now been
    /// written once (the link sends the payloads it accepted in order).
    fn record_written_answers<P>(&self, port: &mut Port<P>) {
        let written_below = port.link_accepted - port.link.queued() as u64;
        let first_written = port
            .answer_stamps
            .front()
            .and_then(|s| s.link_ordinal)
            .is_some_and(|ordinal| ordinal < written_below);
        if !first_written {
            return;
        }
        let at = now();
        let mut shared = self.shared.lock();
        while let Some(stamp) = port.answer_stamps.front() {
            match stamp.link_ordinal {
                Some(ordinal) if ordinal < written_below => {
                    shared
                        .latency
                        .serial_in_to_out
                        .record(at.saturating_duration_since(stamp.request_read_at));
                    port.answer_stamps.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Hands link events to the session; link trouble ends the current start-up or up state.
    fn drain_link<P>(&mut self, port: &mut Port<P>) -> Result<(), Trouble> {
        let at = now();
        while let Some(event) = port.link.poll_event() {
            match event {
                LinkEvent::Connected { reset_code } => {
                    debug!("ASH connected, NCP reset code {reset_code:?}");
                    port.link_connected = true;
                }
                LinkEvent::Received(frame) => {
                    port.last_heard = at;
                    if let Err(e) = port.session.handle_input(&frame, at) {
                        debug!("EZSP frame ignored: {e}");
                    }
                }
                LinkEvent::Reset { reset_code, .. } => {
                    return Err(Trouble::NcpReset(format!("{reset_code:?}")));
                }
                LinkEvent::NcpError { code } => return Err(Trouble::NcpError(format!("{code:?}"))),
                LinkEvent::Failed { reason } => {
                    return Err(Trouble::LinkFailed(format!("{reason:?}")));
                }
            }
        }
        while let Some(event) = port.session.poll_event() {
            port.session_events.push_back(event);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Start-up

    async fn start_up<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: &mut Port<P>,
    ) -> Result<(), Trouble> {
        self.set_state(CoordinatorState::Starting).await;
        port.network_up = false;
        port.version = None;
        port.session_events.clear();
        port.link_backlog.clear();
        port.answer_stamps.clear();

        // ASH reset.
        port.link_connected = false;
        port.link.reset(now());
        while !port.link_connected {
            match self.pump(port, false, None).await {
                Ok(_) => {}
                // An RSTACK racing our RST is still the answer we wait for.
                Err(Trouble::NcpReset(_)) => port.link_connected = true,
                Err(other) => return Err(other),
            }
        }

        // EZSP version negotiation.
        port.session.start(now());
        let version = loop {
            self.pump(port, false, None).await?;
            let mut outcome = None;
            while let Some(event) = port.session_events.pop_front() {
                match event {
                    ezsp_core::Event::Negotiated {
                        version,
                        stack_version,
                        ..
                    } => {
                        info!("EZSP {version} negotiated, stack version {stack_version:#06X}");
                        outcome = Some(Ok(version));
                    }
                    ezsp_core::Event::NegotiationFailed(e) => {
                        outcome = Some(Err(Trouble::Startup(format!("EZSP negotiation: {e}"))));
                    }
                    other => debug!("ignored during negotiation: {other:?}"),
                }
            }
            if let Some(outcome) = outcome {
                break outcome?;
            }
        };
        port.version = Some(version);
        tracing::Span::current().record("ezsp_version", version.get());

        // Configuration and policies: a value the firmware refuses is logged, not fatal.
        for (config_id, value) in CONFIGURATION {
            let response = self
                .request(
                    port,
                    Command::SetConfigurationValue(SetConfigurationValue {
                        config_id: *config_id,
                        value: *value,
                    }),
                )
                .await?;
            if let Some(status) = response.status().filter(|s| !s.is_success()) {
                debug!("setConfigurationValue({config_id:?}, {value}) refused: {status:?}");
            }
        }
        for (policy_id, decision_id) in [
            (
                PolicyId::TRUST_CENTER_POLICY,
                DecisionId(TRUST_CENTER_ALLOW_JOINS_AND_REJOINS),
            ),
            (
                PolicyId::MESSAGE_CONTENTS_IN_CALLBACK_POLICY,
                DecisionId::MESSAGE_TAG_ONLY_IN_CALLBACK,
            ),
            (
                PolicyId::TC_KEY_REQUEST_POLICY,
                DecisionId::ALLOW_TC_KEY_REQUESTS_AND_SEND_CURRENT_KEY,
            ),
            (
                PolicyId::APP_KEY_REQUEST_POLICY,
                DecisionId::DENY_APP_KEY_REQUESTS,
            ),
        ] {
            let response = self
                .request(
                    port,
                    Command::SetPolicy(SetPolicy {
                        policy_id,
                        decision_id,
                    }),
                )
                .await?;
            if let Some(status) = response.status().filter(|s| !s.is_success()) {
                debug!("setPolicy({policy_id:?}) refused: {status:?}");
            }
        }

        // Our endpoint, with the OTA Upgrade cluster as a server cluster, before networkInit.
        let endpoint = self.config.endpoint;
        let response = self
            .request(
                port,
                Command::AddEndpoint(AddEndpoint {
                    endpoint,
                    profile_id: super::PROFILE_HOME_AUTOMATION,
                    device_id: 0x0005,
                    device_version: 0,
                    input_clusters: vec![0x0000, super::CLUSTER_OTA_UPGRADE],
                    output_clusters: vec![],
                }),
            )
            .await?;
        expect_success("addEndpoint", &response)?;
        info!("endpoint {endpoint} registered with the OTA Upgrade cluster");

        // Resume the network the NCP holds, or form one.
        let response = self
            .request(
                port,
                Command::NetworkInit(NetworkInit {
                    bitmask: NetworkInitBitmask::NO_OPTIONS,
                }),
            )
            .await?;
        match response.status() {
            Some(status) if status.is_success() => info!("resuming the NCP's network"),
            Some(status) if status.means(SlStatus::NOT_JOINED) => {
                self.form_network(port).await?;
            }
            _ => return Err(unexpected("networkInit", &response)),
        }
        let deadline = now() + self.tuning.network_up_timeout;
        while !port.network_up {
            if now() >= deadline {
                return Err(Trouble::Startup("no NETWORK_UP in time".into()));
            }
            self.pump(port, false, Some(deadline)).await?;
            self.handle_session_events(port).await;
        }

        // What the network is.
        let Response::GetNetworkParameters(parameters) =
            self.request(port, Command::GetNetworkParameters).await?
        else {
            return Err(Trouble::Startup(
                "getNetworkParameters: wrong response".into(),
            ));
        };
        let Response::GetEui64 { eui64 } = self.request(port, Command::GetEui64).await? else {
            return Err(Trouble::Startup("getEui64: wrong response".into()));
        };
        let Response::GetNodeId { node_id } = self.request(port, Command::GetNodeId).await? else {
            return Err(Trouble::Startup("getNodeId: wrong response".into()));
        };
        let Response::MaximumPayloadLength { aps_length } =
            self.request(port, Command::MaximumPayloadLength).await?
        else {
            return Err(Trouble::Startup(
                "maximumPayloadLength: wrong response".into(),
            ));
        };
        if parameters.node_type != NodeType::COORDINATOR {
            warn!(
                "the NCP's network role is {:?}, not coordinator",
                parameters.node_type
            );
        }
        let info = NetworkInfo {
            ieee: Ieee(eui64.to_u64()),
            nwk: Nwk(node_id.0),
            channel: parameters.parameters.radio_channel,
            pan_id: parameters.parameters.pan_id,
            extended_pan_id: parameters.parameters.extended_pan_id.to_u64(),
            protocol_version: version.get(),
        };
        info!(
            "network up: channel {}, PAN 0x{:04X}, extended PAN {:016X}, coordinator {}, max APS payload {aps_length}",
            info.channel, info.pan_id, info.extended_pan_id, info.ieee
        );
        {
            let mut shared = self.shared.lock();
            shared.network = Some(info);
            shared.max_payload = Some(usize::from(aps_length));
        }
        self.set_state(CoordinatorState::Up).await;
        Ok(())
    }

    async fn form_network<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: &mut Port<P>,
    ) -> Result<(), Trouble> {
        let settings =
            NetworkSettings::load_or_create(&self.config.state_dir, &self.config.network).map_err(
                |e: NetworkFileError| Trouble::Startup(format!("network settings: {e}")),
            )?;
        info!("the NCP holds no network; forming {settings:?}");
        let security = InitialSecurityState {
            bitmask: InitialSecurityBitmask::TRUST_CENTER_GLOBAL_LINK_KEY
                | InitialSecurityBitmask::HAVE_PRECONFIGURED_KEY
                | InitialSecurityBitmask::HAVE_NETWORK_KEY
                | InitialSecurityBitmask::REQUIRE_ENCRYPTED_KEY,
            preconfigured_key: KeyData(WELL_KNOWN_LINK_KEY),
            network_key: KeyData(settings.network_key),
            network_key_sequence_number: 0,
            preconfigured_trust_center_eui64: Eui64::default(),
        };
        let response = self
            .request(
                port,
                Command::SetInitialSecurityState(SetInitialSecurityState { state: security }),
            )
            .await?;
        expect_success("setInitialSecurityState", &response)?;
        let parameters = NetworkParameters {
            extended_pan_id: Eui64::from_u64(settings.extended_pan_id),
            pan_id: settings.pan_id,
            radio_tx_power: 8,
            radio_channel: settings.channel,
            join_method: JoinMethod::USE_MAC_ASSOCIATION,
            nwk_manager_id: NodeId::COORDINATOR,
            nwk_update_id: 0,
            channels: 1u32.checked_shl(u32::from(settings.channel)).unwrap_or(0),
        };
        let response = self
            .request(port, Command::FormNetwork(FormNetwork { parameters }))
            .await?;
        expect_success("formNetwork", &response)
    }

    /// Sends one command and pumps until its response; callbacks meanwhile are handled.
    async fn request<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: &mut Port<P>,
        command: Command,
    ) -> Result<Response, Trouble> {
        let name = crate::ezsp::command::command_name(command.frame_id());
        let sequence = port
            .session
            .send(&command, now())
            .map_err(|e| Trouble::Startup(format!("{name}: {e}")))?;
        loop {
            self.pump(port, false, None).await?;
            while let Some(event) = port.session_events.pop_front() {
                match event {
                    ezsp_core::Event::Response {
                        sequence: s,
                        response,
                    } if s == sequence => {
                        // Let the rest be handled by whoever pumps next.
                        self.handle_session_events(port).await;
                        return Ok(response);
                    }
                    ezsp_core::Event::TimedOut { sequence: s, .. } if s == sequence => {
                        return Err(Trouble::Startup(format!("{name}: no response")));
                    }
                    ezsp_core::Event::Aborted { sequence: s, .. } if s == sequence => {
                        return Err(Trouble::Startup(format!("{name}: aborted")));
                    }
                    other => self.handle_session_event(port, other).await,
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Up

    async fn run_up<P: AsyncRead + AsyncWrite + Unpin>(&mut self, port: &mut Port<P>) -> Trouble {
        port.keepalive = None;
        port.trouble = None;
        port.last_heard = now();
        loop {
            let accept = self.accepts_commands(port);
            let keepalive_at = port
                .keepalive
                .is_none()
                .then(|| port.last_heard + self.tuning.keepalive_interval);
            // With every slot taken, a send whose report is overdue by the pressure age stops
            // holding back every other device (a lost messageSentHandler would otherwise stall
            // all traffic for the whole delivery timeout).
            let pressure_at = (port.in_flight.len() >= MAX_IN_FLIGHT)
                .then(|| {
                    self.oldest_sent(port)
                        .map(|sent| sent + IN_FLIGHT_PRESSURE_AGE)
                })
                .flatten();
            let wake_at = [keepalive_at, pressure_at].into_iter().flatten().min();
            let command = match self.pump(port, accept, wake_at).await {
                Ok(command) => command,
                Err(trouble) => return trouble,
            };
            if let Some(command) = command {
                self.dispatch(port, command).await;
            }
            self.handle_session_events(port).await;
            if std::mem::take(&mut port.incoming_emitted) {
                // Let the listener answer what just arrived before anything is written: the
                // answer's DATA frame then carries the ASH acknowledgement of the request, and
                // one write serves both (on the daemon's single-threaded runtime the listener
                // runs during this yield).
                tokio::task::yield_now().await;
            }
            self.take_ready_commands(port).await;
            self.expire_deliveries(port).await;
            if port.in_flight.len() >= MAX_IN_FLIGHT {
                self.expire_overdue_under_pressure(port).await;
            }
            if let Some(trouble) = port.trouble.take() {
                return trouble;
            }
            if keepalive_at.is_some_and(|at| at <= now()) {
                match port.session.send(&Command::Nop, now()) {
                    Ok(sequence) => port.keepalive = Some(sequence),
                    Err(e) => debug!("keepalive not sent: {e}"),
                }
            }
        }
    }

    /// Dispatches the commands already queued, as far as the EZSP and in-flight limits allow,
    /// so that they go out in the next write together.
    async fn take_ready_commands<P>(&mut self, port: &mut Port<P>) {
        while self.accepts_commands(port) {
            let Ok(command) = self.commands.try_recv() else {
                break;
            };
            self.dispatch(port, command).await;
        }
    }

    /// True while the EZSP pending limit and the in-flight limit leave room for a command.
    fn accepts_commands<P>(&self, port: &Port<P>) -> bool {
        port.session.pending_count() < self.tuning.session.max_pending.max(1)
            && port.in_flight.len() < MAX_IN_FLIGHT
    }

    async fn dispatch<P>(&mut self, port: &mut Port<P>, command: DriverCommand) {
        let Some(version) = port.version else {
            return;
        };
        let at = now();
        match command {
            DriverCommand::PermitJoining { seconds } => {
                let command = Command::PermitJoining(PermitJoining { duration: seconds });
                if let Err(e) = port.session.send(&command, at) {
                    warn!("permitJoining({seconds}) not sent: {e}");
                }
            }
            DriverCommand::Unicast {
                tag,
                message,
                timing,
            } => {
                let ezsp_tag = allocate_ezsp_tag(port, version);
                let options = if message.aps_ack {
                    ApsOptions(ApsOptions::RETRY.0 | ApsOptions::ENABLE_ROUTE_DISCOVERY.0)
                } else {
                    ApsOptions::ENABLE_ROUTE_DISCOVERY
                };
                let aps_frame = ApsFrame {
                    profile_id: message.profile,
                    cluster_id: message.cluster,
                    source_endpoint: message.src_endpoint,
                    destination_endpoint: message.dst_endpoint,
                    options,
                    group_id: 0,
                    sequence: take_aps_sequence(port),
                };
                let command = Command::SendUnicast(SendUnicast {
                    message_type: OutgoingMessageType::DIRECT,
                    index_or_destination: NodeId(message.destination.0),
                    aps_frame,
                    message_tag: ezsp_tag,
                    message_contents: message.payload,
                });
                let sequence = self.send_tracked(port, tag, ezsp_tag, &command, at).await;
                if let (Some(sequence), Some(timing)) = (sequence, timing) {
                    self.shared.lock().latency.host.record(
                        timing
                            .answer_ready_at
                            .saturating_duration_since(timing.request_read_at),
                    );
                    if port.answer_stamps.len() >= MAX_ANSWER_STAMPS {
                        port.answer_stamps.pop_front();
                    }
                    port.answer_stamps.push_back(AnswerStamp {
                        sequence,
                        request_read_at: timing.request_read_at,
                        link_ordinal: None,
                    });
                }
            }
            DriverCommand::Broadcast { tag, message } => {
                let ezsp_tag = allocate_ezsp_tag(port, version);
                let aps_frame = ApsFrame {
                    profile_id: message.profile,
                    cluster_id: message.cluster,
                    source_endpoint: message.src_endpoint,
                    destination_endpoint: message.dst_endpoint,
                    options: ApsOptions::NONE,
                    group_id: 0,
                    sequence: take_aps_sequence(port),
                };
                let command = Command::SendBroadcast(SendBroadcast {
                    alias: NodeId::NULL,
                    destination: NodeId(message.destination.0),
                    nwk_sequence: 0,
                    aps_frame,
                    radius: message.radius,
                    message_tag: ezsp_tag,
                    message_contents: message.payload,
                });
                self.send_tracked(port, tag, ezsp_tag, &command, at).await;
            }
        }
    }

    async fn send_tracked<P>(
        &mut self,
        port: &mut Port<P>,
        tag: MessageTag,
        ezsp_tag: u16,
        command: &Command,
        at: Instant,
    ) -> Option<u8> {
        match port.session.send(command, at) {
            Ok(sequence) => {
                port.send_sequences.insert(sequence, ezsp_tag);
                port.in_flight.insert(
                    ezsp_tag,
                    InFlight {
                        tag,
                        deadline: at + self.tuning.delivery_timeout,
                    },
                );
                Some(sequence)
            }
            Err(e) => {
                warn!("send {tag:?} not queued: {e}");
                self.emit(CoordinatorEvent::DeliveryReport {
                    tag,
                    outcome: DeliveryOutcome::Refused {
                        ncp_status: SlStatus::NO_MORE_RESOURCE.0,
                    },
                })
                .await;
                None
            }
        }
    }

    /// When the oldest send went out (its deadline minus the delivery timeout).
    fn oldest_sent<P>(&self, port: &Port<P>) -> Option<Instant> {
        port.in_flight
            .values()
            .map(|f| f.deadline)
            .min()
            .and_then(|deadline| deadline.checked_sub(self.tuning.delivery_timeout))
    }

    /// With every in-flight slot taken: reports sends older than [`IN_FLIGHT_PRESSURE_AGE`] as
    /// timed out, freeing their slots.
    async fn expire_overdue_under_pressure<P>(&mut self, port: &mut Port<P>) {
        let grace = self
            .tuning
            .delivery_timeout
            .saturating_sub(IN_FLIGHT_PRESSURE_AGE);
        let cutoff = now() + grace;
        self.expire_before(port, cutoff).await;
    }

    async fn expire_deliveries<P>(&mut self, port: &mut Port<P>) {
        self.expire_before(port, now()).await;
    }

    /// Reports every send whose deadline is at or before `at` as timed out.
    async fn expire_before<P>(&mut self, port: &mut Port<P>, at: Instant) {
        let mut expired: Vec<(u16, InFlight)> = port
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= at)
            .map(|(t, f)| (*t, *f))
            .collect();
        expired.sort_by_key(|(_, f)| f.tag);
        for (ezsp_tag, flight) in expired {
            port.in_flight.remove(&ezsp_tag);
            port.send_sequences.retain(|_, t| *t != ezsp_tag);
            self.emit(CoordinatorEvent::DeliveryReport {
                tag: flight.tag,
                outcome: DeliveryOutcome::TimedOut,
            })
            .await;
        }
    }

    async fn handle_session_events<P>(&mut self, port: &mut Port<P>) {
        while let Some(event) = port.session_events.pop_front() {
            self.handle_session_event(port, event).await;
        }
    }

    async fn handle_session_event<P>(&mut self, port: &mut Port<P>, event: ezsp_core::Event) {
        match event {
            ezsp_core::Event::Callback(callback) => self.handle_callback(port, callback).await,
            ezsp_core::Event::Response { sequence, response } => {
                self.handle_late_response(port, sequence, response).await;
            }
            ezsp_core::Event::TimedOut { sequence, frame_id }
            | ezsp_core::Event::Aborted { sequence, frame_id } => {
                debug!("EZSP command {frame_id:?} (sequence {sequence}) got no response");
                if let Some(source) = port.lookups.remove(&sequence) {
                    self.release_held(port, source, None).await;
                }
                if port.keepalive == Some(sequence) {
                    port.keepalive = None;
                    port.trouble = Some(Trouble::LinkFailed("keepalive nop unanswered".into()));
                }
                if let Some(ezsp_tag) = port.send_sequences.remove(&sequence)
                    && let Some(flight) = port.in_flight.remove(&ezsp_tag)
                {
                    self.emit(CoordinatorEvent::DeliveryReport {
                        tag: flight.tag,
                        outcome: DeliveryOutcome::TimedOut,
                    })
                    .await;
                }
            }
            other => debug!("EZSP event ignored: {other:?}"),
        }
    }

    /// Responses of commands sent while up (sends, permitJoining).
    async fn handle_late_response<P>(
        &mut self,
        port: &mut Port<P>,
        sequence: u8,
        response: Response,
    ) {
        if let Some(source) = port.lookups.remove(&sequence) {
            let ieee = match response {
                Response::LookupEui64ByNodeId(found) if found.status.is_success() => {
                    Some(Ieee(found.eui64.to_u64()))
                }
                _ => None,
            };
            self.release_held(port, source, ieee).await;
            return;
        }
        if port.keepalive == Some(sequence) {
            port.keepalive = None;
            if let Response::InvalidCommand { status } = response {
                // Typically VERSION_NOT_SET: the NCP rebooted and we missed its RSTACK.
                port.trouble = Some(Trouble::NcpReset(format!(
                    "keepalive nop answered with invalidCommand {status:?}"
                )));
            }
            return;
        }
        let Some(ezsp_tag) = port.send_sequences.remove(&sequence) else {
            if let Some(status) = response.status().filter(|s| !s.is_success()) {
                warn!("{:?} failed: {status:?}", response.frame_id());
            }
            return;
        };
        let status = match &response {
            Response::SendUnicast(r) | Response::SendBroadcast(r) => r.status,
            Response::InvalidCommand { status } => *status,
            other => {
                debug!("unexpected response to a send: {other:?}");
                return;
            }
        };
        if status.is_success() {
            return; // messageSentHandler will tell how it went.
        }
        if let Some(flight) = port.in_flight.remove(&ezsp_tag) {
            self.emit(CoordinatorEvent::DeliveryReport {
                tag: flight.tag,
                outcome: DeliveryOutcome::Refused {
                    ncp_status: status_code(status),
                },
            })
            .await;
        }
    }

    async fn handle_callback<P>(&mut self, port: &mut Port<P>, callback: Callback) {
        match callback {
            Callback::StackStatusHandler { status } => {
                if status.means(SlStatus::ZIGBEE_NETWORK_UP) {
                    port.network_up = true;
                    if self.reported_state == Some(CoordinatorState::NetworkDown) {
                        self.set_state(CoordinatorState::Up).await;
                    }
                } else if status.means(SlStatus::ZIGBEE_NETWORK_DOWN) {
                    port.network_up = false;
                    if self.reported_state == Some(CoordinatorState::Up) {
                        self.set_state(CoordinatorState::NetworkDown).await;
                    }
                } else {
                    debug!("stack status {status:?}");
                }
            }
            Callback::MessageSentHandler(sent) => self.handle_message_sent(port, sent).await,
            Callback::IncomingMessageHandler(incoming) => {
                self.handle_incoming(port, incoming).await;
            }
            Callback::TrustCenterJoinHandler(join) => {
                let ieee = Ieee(join.new_node_eui64.to_u64());
                if join.status == DeviceUpdate::DEVICE_LEFT {
                    let forgotten = self.shared.lock().devices.forget(ieee);
                    if forgotten.is_some() {
                        self.saver.changed();
                    }
                } else {
                    self.device_joined(Nwk(join.new_node_id.0), ieee).await;
                }
            }
            Callback::ChildJoinHandler(child) => {
                if child.joining {
                    self.device_joined(Nwk(child.child_id.0), Ieee(child.child_eui64.to_u64()))
                        .await;
                }
            }
            other => debug!("callback ignored: {:?}", other.frame_id()),
        }
    }

    async fn handle_message_sent<P>(&mut self, port: &mut Port<P>, sent: MessageSentHandler) {
        let Some(flight) = port.in_flight.remove(&sent.message_tag) else {
            debug!("messageSentHandler for unknown tag {}", sent.message_tag);
            return;
        };
        port.send_sequences.retain(|_, t| *t != sent.message_tag);
        let outcome = if sent.status.is_success() {
            DeliveryOutcome::Delivered
        } else {
            DeliveryOutcome::Failed {
                ncp_status: status_code(sent.status),
            }
        };
        self.emit(CoordinatorEvent::DeliveryReport {
            tag: flight.tag,
            outcome,
        })
        .await;
    }

    async fn handle_incoming<P>(&mut self, port: &mut Port<P>, incoming: IncomingMessageHandler) {
        let source = Nwk(incoming.sender.0);
        let sender_ieee = incoming
            .sender_eui64
            .filter(|eui64| *eui64 != Eui64::default())
            .map(|eui64| Ieee(eui64.to_u64()));
        if let Some(announce) = incoming.device_announce() {
            let claimed = (Nwk(announce.node_id.0), Ieee(announce.eui64.to_u64()));
            if self.believe(claimed, source, sender_ieee) {
                info!("device {} announced itself as {}", claimed.1, claimed.0);
                self.emit(CoordinatorEvent::DeviceJoined {
                    nwk: claimed.0,
                    ieee: claimed.1,
                })
                .await;
            }
        }
        let ieee = match sender_ieee {
            Some(ieee) if self.believe((source, ieee), source, Some(ieee)) => Some(ieee),
            _ => self.shared.lock().devices.ieee(source),
        };
        let broadcast = !matches!(
            incoming.message_type,
            IncomingMessageType::UNICAST | IncomingMessageType::UNICAST_REPLY
        );
        let aps = incoming.aps_frame;
        let message = IncomingMessage {
            source,
            ieee,
            src_endpoint: aps.source_endpoint,
            dst_endpoint: aps.destination_endpoint,
            profile: aps.profile_id,
            cluster: aps.cluster_id,
            aps_sequence: aps.sequence,
            payload: incoming.message_contents,
            lqi: incoming.last_hop_lqi,
            rssi: incoming.last_hop_rssi,
            broadcast,
            read_at: Some(port.last_read_at),
        };
        // Before v14 the callback carries no EUI-64: ask the NCP's address table once, and
        // hold this sender's messages (in order) until it answers, so the server sees the
        // device under one identity from its first message on.
        if let Some(held) = port.held.get_mut(&source) {
            held.push(message);
            return;
        }
        if message.ieee.is_none() && message.profile != super::PROFILE_ZDO {
            let lookup = Command::LookupEui64ByNodeId(LookupEui64ByNodeId {
                node_id: NodeId(source.0),
            });
            if let Ok(sequence) = port.session.send(&lookup, now()) {
                port.lookups.insert(sequence, source);
                port.held.insert(source, vec![message]);
                return;
            }
        }
        port.incoming_emitted = true;
        self.emit(CoordinatorEvent::Incoming(message)).await;
    }

    /// Delivers the messages held for `source`'s address lookup, with `ieee` when found.
    async fn release_held<P>(&mut self, port: &mut Port<P>, source: Nwk, ieee: Option<Ieee>) {
        let ieee = match ieee {
            Some(ieee) if self.believe((source, ieee), source, Some(ieee)) => Some(ieee),
            _ => self.shared.lock().devices.ieee(source),
        };
        for mut message in port.held.remove(&source).unwrap_or_default() {
            message.ieee = message.ieee.or(ieee);
            port.incoming_emitted = true;
            self.emit(CoordinatorEvent::Incoming(message)).await;
        }
    }

    /// The trust centre saw `ieee` join or rejoin as `nwk`: learned, and remembered as the
    /// voucher for the announce that follows.
    async fn device_joined(&mut self, nwk: Nwk, ieee: Ieee) {
        self.witness.saw_join(nwk, ieee, now());
        let learned = self.shared.lock().devices.learn(nwk, ieee);
        if learned != super::device_table::Learned::Unchanged {
            self.saver.changed();
        }
        info!("device {ieee} is {nwk}");
        self.emit(CoordinatorEvent::DeviceJoined { nwk, ieee })
            .await;
    }

    /// Learns an address pair a frame claims (an announce, or the sender's IEEE address) when
    /// [`DeviceTable::judge_announce`] accepts it; false when refused (logged at debug: a
    /// hostile device must not flood the journal).
    fn believe(&mut self, claimed: (Nwk, Ieee), sender: Nwk, sender_ieee: Option<Ieee>) -> bool {
        let vouched = self.witness.vouches(claimed.0, claimed.1, now());
        let mut shared = self.shared.lock();
        match shared
            .devices
            .judge_announce(claimed, sender, sender_ieee, vouched)
        {
            Ok(()) => {
                let learned = shared.devices.learn(claimed.0, claimed.1);
                drop(shared);
                if learned != super::device_table::Learned::Unchanged {
                    self.saver.changed();
                }
                true
            }
            Err(refused) => {
                debug!(
                    "not believed: {} as {} from {sender}: {refused}",
                    claimed.1, claimed.0
                );
                false
            }
        }
    }
}

fn expect_success(name: &str, response: &Response) -> Result<(), Trouble> {
    match response.status() {
        Some(status) if status.is_success() => Ok(()),
        _ => Err(unexpected(name, response)),
    }
}

fn unexpected(name: &str, response: &Response) -> Trouble {
    Trouble::Startup(format!("{name} answered {response:?}"))
}

/// A message tag not in flight: 1..=255 before v14 (u8 tags), 1..=0xFFFF from v14.
fn allocate_ezsp_tag<P>(port: &mut Port<P>, version: EzspVersion) -> u16 {
    let max: u16 = if version.uses_sl_status() {
        u16::MAX
    } else {
        u16::from(u8::MAX)
    };
    loop {
        let candidate = port.next_ezsp_tag;
        port.next_ezsp_tag = if candidate >= max { 1 } else { candidate + 1 };
        if !port.in_flight.contains_key(&candidate) {
            return candidate;
        }
    }
}

fn take_aps_sequence<P>(port: &mut Port<P>) -> u8 {
    let sequence = port.next_aps_sequence;
    port.next_aps_sequence = sequence.wrapping_add(1);
    sequence
}
