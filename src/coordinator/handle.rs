//! The handle every coordinator driver hands out (ARCHITECTURE.md principle 2), written once for
//! EZSP, ZNP and the EZSP proxy.
//!
//! A driver runs as one tokio task fed by a bounded queue of [`DriverCommand`]s. Its handle
//! ([`DriverHandle`]) checks each send (the stick is up, the payload fits, the destination suits
//! the kind of send, a permit-join is not "forever"), numbers it ([`MessageTag`]), queues it
//! without waiting, answers the [`Coordinator`] questions from the [`DriverState`] the task
//! keeps current, and stops the task on `shutdown` or when dropped. A driver's own handle type
//! only says where its [`DriverHandle`] is ([`RunsBehindHandle`]); the one [`Coordinator`]
//! implementation below serves all three.
//!
//! The task's ends of the same pieces are a [`TaskSide`]: the shared state, the command queue,
//! the event channel, the cancellation token and the debounced device-table saver.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::device_store::{DeviceTableSaver, SAVE_DEBOUNCE, load_device_table};
use super::latency::{AnswerLatency, AnswerLatencyHistograms};
use super::{
    AnswerTiming, BroadcastMessage, Coordinator, CoordinatorEvent, CoordinatorFirmware,
    CoordinatorState, DeliveryOutcome, DeviceTable, MAX_PERMIT_JOIN_SECONDS, MessageTag,
    NetworkInfo, SendError, UnicastMessage, ZclRequest,
};

/// The file in the state directory that keeps the device table.
pub const DEVICE_TABLE_FILE: &str = "devices.txt";

/// What a handle asks its driver task to do.
#[derive(Debug)]
pub enum DriverCommand {
    /// An APS unicast.
    Unicast {
        /// Its tag.
        tag: MessageTag,
        /// The message.
        message: UnicastMessage,
        /// For an answer: when its request was read, and the answer ready.
        timing: Option<AnswerTiming>,
    },
    /// A ZCL request (a driver that does not track requests sends it as
    /// [`ZclRequest::to_unicast`]).
    ZclRequest {
        /// Its tag.
        tag: MessageTag,
        /// The request.
        request: ZclRequest,
    },
    /// An APS broadcast.
    Broadcast {
        /// Its tag.
        tag: MessageTag,
        /// The message.
        message: BroadcastMessage,
    },
    /// Open the network for joining for `seconds` (0 closes it).
    PermitJoining {
        /// How long.
        seconds: u8,
    },
}

impl DriverCommand {
    /// The tag of a send (a permit-join has none).
    pub fn tag(&self) -> Option<MessageTag> {
        match self {
            DriverCommand::Unicast { tag, .. }
            | DriverCommand::ZclRequest { tag, .. }
            | DriverCommand::Broadcast { tag, .. } => Some(*tag),
            DriverCommand::PermitJoining { .. } => None,
        }
    }
}

/// What the handle reads and the driver task writes.
#[derive(Debug)]
pub struct DriverState {
    /// The coordinator state.
    pub state: CoordinatorState,
    /// The stick's maximum APS payload; `None` while unknown (sends are then not size-checked
    /// here, the stick refuses what does not fit).
    pub max_payload: Option<usize>,
    /// The network, once up.
    pub network: Option<NetworkInfo>,
    /// The NWK ↔ IEEE table, as last saved.
    pub devices: DeviceTable,
    /// The protocol, and the firmware once the stick has described itself.
    pub firmware: CoordinatorFirmware,
    /// The answer latency figures, for a driver that measures them.
    pub latency: Option<AnswerLatencyHistograms>,
}

/// The [`DriverState`] behind its lock.
#[derive(Debug)]
pub struct DriverShared {
    inner: Mutex<DriverState>,
}

impl DriverShared {
    /// Locks the state (a panic elsewhere while holding it does not poison the handle).
    pub fn lock(&self) -> MutexGuard<'_, DriverState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What differs between drivers when their handle is made.
#[derive(Debug, Clone, Copy)]
pub struct DriverSetup {
    /// What the driver is, for the log ("coordinator", "proxy").
    pub what: &'static str,
    /// The protocol it speaks, for [`Coordinator::firmware`] ("ezsp", "znp").
    pub protocol: &'static str,
    /// True when the driver measures the answer latency ([`Coordinator::answer_latency`]).
    pub measures_latency: bool,
    /// Capacity of the command queue between the handle and the task.
    pub command_queue: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
}

/// The driver task's ends of what its handle holds.
#[derive(Debug)]
pub struct TaskSide {
    /// The state the handle reads.
    pub shared: Arc<DriverShared>,
    /// The handle's commands.
    pub commands: mpsc::Receiver<DriverCommand>,
    /// Where events go.
    pub events: mpsc::Sender<CoordinatorEvent>,
    /// Fires on `shutdown` or when the handle is dropped.
    pub cancel: CancellationToken,
    /// Writes `devices.txt` off the task, debounced and atomically ([`crate::atomic_file`]).
    pub saver: DeviceTableSaver,
}

/// What [`TaskSide::emit`] made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitted {
    /// The listener has it (or will, from the channel).
    Queued,
    /// The driver was cancelled while the channel was full: the event is dropped.
    Cancelled,
    /// Nobody listens any more: the receiver is gone.
    NobodyListens,
}

impl TaskSide {
    /// Sends an event to the listener. A full channel holds the driver back (the stick's
    /// retransmissions wait meanwhile); cancellation ends the wait, so a stalled listener
    /// cannot block shutdown, but an event the channel has room for is always queued.
    pub async fn emit(&self, event: CoordinatorEvent) -> Emitted {
        tokio::select! {
            biased;
            sent = self.events.send(event) => match sent {
                Ok(()) => Emitted::Queued,
                Err(_) => Emitted::NobodyListens,
            },
            _ = self.cancel.cancelled() => Emitted::Cancelled,
        }
    }

    /// Tells the listener the stick's new state; when the stick resets or is gone, every send
    /// still queued for it is reported lost ([`TaskSide::report_queued_lost`]).
    pub async fn state_changed(&mut self, state: CoordinatorState) {
        self.emit(CoordinatorEvent::StateChanged(state)).await;
        if matches!(
            state,
            CoordinatorState::Resetting | CoordinatorState::Disconnected
        ) {
            self.report_queued_lost().await;
        }
    }

    /// The core's device table changed: the handle sees the new one, and `devices.txt` is
    /// written off the task within the debounce.
    pub fn devices_changed(&self, devices: &DeviceTable) {
        self.shared.lock().devices = devices.clone();
        self.saver.changed();
    }

    /// The commands queued for a link that is gone: each send is reported
    /// [`DeliveryOutcome::LinkLost`] rather than sent on the next link (permit-joins are
    /// dropped). Returns what was emitted, so a driver can act on [`Emitted::NobodyListens`].
    pub async fn report_queued_lost(&mut self) -> Emitted {
        let mut emitted = Emitted::Queued;
        while let Ok(command) = self.commands.try_recv() {
            if let Some(tag) = command.tag() {
                emitted = self
                    .emit(CoordinatorEvent::DeliveryReport {
                        tag,
                        outcome: DeliveryOutcome::LinkLost,
                    })
                    .await;
            }
        }
        emitted
    }
}

/// A running driver task, its command queue, its message numbering and the state it keeps.
#[derive(Debug)]
pub struct DriverHandle {
    what: &'static str,
    shared: Arc<DriverShared>,
    commands: mpsc::Sender<DriverCommand>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    next_tag: AtomicU32,
}

impl DriverHandle {
    /// A handle with no task yet, and the task's side: the device table is loaded from
    /// `devices.txt` in `state_dir` (see it in `shared`), and its saver started on the current
    /// tokio runtime. The state is `Starting` until the task says otherwise; give the task to
    /// [`DriverHandle::attach`].
    pub fn new(
        setup: DriverSetup,
        state_dir: &Path,
    ) -> (Self, TaskSide, mpsc::Receiver<CoordinatorEvent>) {
        let table_path = state_dir.join(DEVICE_TABLE_FILE);
        let shared = Arc::new(DriverShared {
            inner: Mutex::new(DriverState {
                state: CoordinatorState::Starting,
                max_payload: None,
                network: None,
                devices: load_device_table(&table_path),
                firmware: CoordinatorFirmware {
                    protocol: setup.protocol,
                    version: None,
                },
                latency: setup
                    .measures_latency
                    .then(AnswerLatencyHistograms::default),
            }),
        });
        let (command_tx, command_rx) = mpsc::channel(setup.command_queue.max(1));
        let (event_tx, event_rx) = mpsc::channel(setup.event_queue.max(1));
        let cancel = CancellationToken::new();
        let saver = DeviceTableSaver::spawn(table_path, SAVE_DEBOUNCE, {
            let shared = Arc::clone(&shared);
            Arc::new(move || shared.lock().devices.to_text())
        });
        let handle = DriverHandle {
            what: setup.what,
            shared: Arc::clone(&shared),
            commands: command_tx,
            cancel: cancel.clone(),
            task: Mutex::new(None),
            next_tag: AtomicU32::new(1),
        };
        let task_side = TaskSide {
            shared,
            commands: command_rx,
            events: event_tx,
            cancel,
            saver,
        };
        (handle, task_side, event_rx)
    }

    /// The task that runs the driver (the one [`DriverHandle::shutdown`] waits for).
    pub fn attach(&self, task: JoinHandle<()>) {
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    }

    /// The driver could not start at all: it stays `Stopped`, and every send says so.
    pub fn stopped(&self) {
        self.shared.lock().state = CoordinatorState::Stopped;
    }

    /// The state the task keeps.
    pub fn shared(&self) -> &DriverShared {
        &self.shared
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
            warn!("{} task ended abnormally: {e}", self.what);
        }
    }

    /// Queues a command without waiting: a full queue is [`SendError::QueueFull`], a stopped
    /// driver [`SendError::Stopped`].
    fn queue(&self, command: DriverCommand) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Checks a send of `len` bytes, then queues the command `make` builds with the next tag.
    fn send(
        &self,
        len: usize,
        make: impl FnOnce(MessageTag) -> DriverCommand,
    ) -> Result<MessageTag, SendError> {
        {
            let shared = self.shared.lock();
            check_up_and_size(shared.state, shared.max_payload, len)?;
        }
        let tag = MessageTag(self.next_tag.fetch_add(1, Ordering::Relaxed));
        self.queue(make(tag))?;
        Ok(tag)
    }

    fn unicast(
        &self,
        message: UnicastMessage,
        timing: Option<AnswerTiming>,
    ) -> Result<MessageTag, SendError> {
        if message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.send(message.payload.len(), |tag| DriverCommand::Unicast {
            tag,
            message,
            timing,
        })
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A send is refused unless the stick is up and `len` fits its maximum APS payload (when known).
pub fn check_up_and_size(
    state: CoordinatorState,
    max_payload: Option<usize>,
    len: usize,
) -> Result<(), SendError> {
    if state != CoordinatorState::Up {
        return Err(SendError::NotUp(state));
    }
    match max_payload {
        Some(max) if len > max => Err(SendError::PayloadTooLarge { len, max }),
        _ => Ok(()),
    }
}

/// A coordinator whose driver runs behind a [`DriverHandle`]: it implements [`Coordinator`]
/// through that handle.
pub trait RunsBehindHandle: Send + Sync + fmt::Debug {
    /// The driver's handle.
    fn driver_handle(&self) -> &DriverHandle;
}

impl<T: RunsBehindHandle> Coordinator for T {
    fn send_unicast(&self, message: UnicastMessage) -> Result<MessageTag, SendError> {
        self.driver_handle().unicast(message, None)
    }

    fn send_answer(
        &self,
        message: UnicastMessage,
        timing: AnswerTiming,
    ) -> Result<MessageTag, SendError> {
        self.driver_handle().unicast(message, Some(timing))
    }

    fn send_zcl_request(&self, request: &ZclRequest) -> Result<MessageTag, SendError> {
        if request.destination.is_broadcast() {
            return Err(SendError::BadDestination(request.destination));
        }
        self.driver_handle()
            .send(request.zcl_frame.len(), |tag| DriverCommand::ZclRequest {
                tag,
                request: request.clone(),
            })
    }

    fn send_broadcast(&self, message: BroadcastMessage) -> Result<MessageTag, SendError> {
        if !message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.driver_handle()
            .send(message.payload.len(), |tag| DriverCommand::Broadcast {
                tag,
                message,
            })
    }

    fn max_aps_payload(&self) -> Option<usize> {
        self.driver_handle().shared.lock().max_payload
    }

    fn permit_joining(&self, seconds: u8) -> Result<(), SendError> {
        if seconds > MAX_PERMIT_JOIN_SECONDS {
            return Err(SendError::PermitJoinTooLong(seconds));
        }
        let handle = self.driver_handle();
        {
            let shared = handle.shared.lock();
            check_up_and_size(shared.state, shared.max_payload, 0)?;
        }
        handle.queue(DriverCommand::PermitJoining { seconds })
    }

    fn device_table(&self) -> DeviceTable {
        self.driver_handle().shared.lock().devices.clone()
    }

    fn state(&self) -> CoordinatorState {
        self.driver_handle().shared.lock().state
    }

    fn network_info(&self) -> Option<NetworkInfo> {
        self.driver_handle().shared.lock().network
    }

    fn answer_latency(&self) -> Option<AnswerLatency> {
        self.driver_handle()
            .shared
            .lock()
            .latency
            .as_ref()
            .map(AnswerLatencyHistograms::summary)
    }

    fn firmware(&self) -> Option<CoordinatorFirmware> {
        Some(self.driver_handle().shared.lock().firmware.clone())
    }
}
