//! The EZSP coordinator: the sans-IO [`host::EzspHost`] (start-up, sends, callbacks, recovery;
//! UG100 for EZSP, UG101 for ASH) run over a serial port by the thin tokio [`driver`]
//! (STYLE.md rules 9 and 11), behind the [`Coordinator`] handle [`EzspCoordinator`].
//!
//! - [`host`]: the state machine and its verbs; the module docs say what it owns and how the
//!   EZSP proxy (issue 17) will reuse it.
//! - [`events`]: the host's settings, events and errors.
//! - [`startup`]: reset, version, configuration, endpoint, resume or form, up.
//! - [`up`]: sends and delivery reports, callbacks, address lookups.
//! - [`driver`]: bytes between the port and the host, [`Coordinator`] calls in, events out.
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

mod driver;
pub mod events;
pub mod host;
pub mod startup;
#[cfg(test)]
mod tests;
pub mod up;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, warn};

use super::device_store::{DeviceTableSaver, SAVE_DEBOUNCE, load_device_table};
use super::latency::{AnswerLatency, AnswerLatencyHistograms};
use super::serial::Backoff;
use super::{
    AnswerTiming, BroadcastMessage, Coordinator, CoordinatorConfig, CoordinatorEvent,
    CoordinatorState, DeviceTable, MessageTag, NetworkInfo, SendError, UnicastMessage,
};
use crate::ash::LinkConfig;
use crate::ezsp::SessionConfig;
use driver::Driver;
pub use host::{EzspHost, HostConfig, HostEvent, RequestFailed, RequestId, SubmitError, Trouble};

/// The file in the state directory that keeps the device table.
pub const DEVICE_TABLE_FILE: &str = "devices.txt";

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
        let host = HostConfig::new(1);
        EzspTuning {
            link: host.link,
            session: host.session,
            network_up_timeout: host.network_up_timeout,
            keepalive_interval: host.keepalive_interval,
            delivery_timeout: host.delivery_timeout,
            backoff: host.backoff,
            command_queue: 64,
            event_queue: 1024,
        }
    }
}

/// What the handle asks the driver task to do.
#[derive(Debug)]
pub(super) enum DriverCommand {
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
    pub(super) fn tag(&self) -> Option<MessageTag> {
        match self {
            DriverCommand::Unicast { tag, .. } | DriverCommand::Broadcast { tag, .. } => Some(*tag),
            DriverCommand::PermitJoining { .. } => None,
        }
    }
}

/// What the handle and the task share.
#[derive(Debug)]
pub(super) struct SharedState {
    pub(super) state: CoordinatorState,
    pub(super) max_payload: Option<usize>,
    pub(super) network: Option<NetworkInfo>,
    pub(super) devices: DeviceTable,
    pub(super) latency: AnswerLatencyHistograms,
}

#[derive(Debug)]
pub(super) struct Shared {
    inner: Mutex<SharedState>,
    next_tag: AtomicU32,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, SharedState> {
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
                devices: devices.clone(),
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
        let host_config = HostConfig {
            endpoint: config.endpoint,
            link: tuning.link.clone(),
            session: tuning.session,
            network_up_timeout: tuning.network_up_timeout,
            keepalive_interval: tuning.keepalive_interval,
            delivery_timeout: tuning.delivery_timeout,
            backoff: tuning.backoff.clone(),
        };
        let task = match EzspHost::new(host_config, devices, driver::now()) {
            Ok(host) => {
                let driver = Driver {
                    config,
                    host,
                    saver,
                    shared: Arc::clone(&shared),
                    events: event_tx,
                    commands: command_rx,
                    cancel: cancel.clone(),
                };
                Some(tokio::spawn(driver.run().instrument(span)))
            }
            Err(e) => {
                warn!("ASH link configuration: {e}; the coordinator stays stopped");
                shared.lock().state = CoordinatorState::Stopped;
                None
            }
        };
        (
            EzspCoordinator {
                shared,
                commands: command_tx,
                cancel,
                task: Mutex::new(task),
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
