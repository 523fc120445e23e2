//! The ZNP coordinator driver: the sans-IO [`crate::znp::host::Host`] run over a serial port by
//! one tokio task (STYLE.md rules 9 and 11; PROTOCOLS.md §3). It moves bytes between the port
//! and the host, turns [`Coordinator`] calls into host sends and host events into
//! [`CoordinatorEvent`]s, and recovers as the EZSP driver does: a stick that resets or stops
//! answering is started again on the same port, a port that vanishes (read `Ok(0)` or an I/O
//! error) is reopened, both after the capped exponential [`Backoff`].
//!
//! Before the first start-up the network to form is resolved from the config and
//! `network.json` in the state directory ([`NetworkSettings::load_or_create`]: the generated key
//! is kept there, as for EZSP), and the device table is loaded from `devices.txt`.
//!
//! ```no_run
//! # async fn demo() {
//! use zigbee_otad::coordinator::{Coordinator, CoordinatorConfig, FlowControl, SerialConfig};
//! use zigbee_otad::coordinator::znp::ZnpCoordinator;
//! let (coordinator, mut events) = ZnpCoordinator::start(CoordinatorConfig {
//!     serial: SerialConfig { path: "/dev/ttyUSB0".into(), baudrate: 115_200, flow_control: FlowControl::None },
//!     state_dir: "/var/lib/zigbee-otad".into(),
//!     network: Default::default(),
//!     endpoint: 1,
//! });
//! while let Some(event) = events.recv().await {
//!     println!("{event:?} (state {:?})", coordinator.state());
//! }
//! # }
//! ```

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{Instrument, info, warn};

use super::driver_io::{ReadOutcome, now, sleep_until};
use super::handle::{
    DriverCommand, DriverHandle, DriverSetup, Emitted, RunsBehindHandle, TaskSide,
};
use super::network::NetworkSettings;
use super::serial::{self, Backoff};
use super::{CoordinatorConfig, CoordinatorEvent, CoordinatorState, DeliveryOutcome};
use crate::znp::host::{Host, HostConfig, HostEvent, Lost, MAX_APS_PAYLOAD};

/// Tuning knobs of the driver; [`ZnpTuning::default`] suits real sticks.
#[derive(Debug, Clone)]
pub struct ZnpTuning {
    /// Host timeouts (the network and endpoint fields are replaced from the config).
    pub host: Option<HostConfig>,
    /// Delay before reopening a vanished port or restarting a reset stick.
    pub backoff: Backoff,
    /// Capacity of the command queue between the handle and the driver task.
    pub command_queue: usize,
    /// Capacity of the event channel.
    pub event_queue: usize,
}

impl Default for ZnpTuning {
    fn default() -> Self {
        ZnpTuning {
            host: None,
            backoff: Backoff::default(),
            command_queue: 64,
            event_queue: 1024,
        }
    }
}

/// The handle of a running ZNP driver; implements [`Coordinator`](super::Coordinator).
#[derive(Debug)]
pub struct ZnpCoordinator {
    handle: DriverHandle,
}

impl ZnpCoordinator {
    /// Starts the driver task on the current tokio runtime with default tuning. Events arrive
    /// on the returned receiver; the first is `StateChanged(Starting)`. Dropping the handle
    /// stops the driver.
    pub fn start(config: CoordinatorConfig) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        Self::start_with(config, ZnpTuning::default())
    }

    /// Like [`ZnpCoordinator::start`] with explicit tuning.
    pub fn start_with(
        config: CoordinatorConfig,
        tuning: ZnpTuning,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        let setup = DriverSetup {
            what: "coordinator",
            protocol: "znp",
            measures_latency: false,
            command_queue: tuning.command_queue,
            event_queue: tuning.event_queue,
        };
        let (handle, task, events) = DriverHandle::new(setup, &config.state_dir);
        let span = tracing::info_span!("znp", port = %config.serial.path);
        let driver = Driver {
            config,
            tuning,
            task,
            reported: None,
        };
        handle.attach(tokio::spawn(driver.run().instrument(span)));
        (ZnpCoordinator { handle }, events)
    }

    /// Stops the driver and waits for its task to end (the port is closed).
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

impl RunsBehindHandle for ZnpCoordinator {
    fn driver_handle(&self) -> &DriverHandle {
        &self.handle
    }
}

/// Why the driver left a port.
enum Leave {
    PortGone(String),
    Cancelled,
}

struct Driver {
    config: CoordinatorConfig,
    tuning: ZnpTuning,
    /// The handle's state, commands and events, and the device-table saver.
    task: TaskSide,
    reported: Option<CoordinatorState>,
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = self.tuning.backoff.clone();
        self.set_state(CoordinatorState::Starting).await;
        let settings = loop {
            let state_dir = self.config.state_dir.clone();
            let overrides = self.config.network.clone();
            let resolved = tokio::task::spawn_blocking(move || {
                NetworkSettings::load_or_create(&state_dir, &overrides)
            })
            .await;
            match resolved {
                Ok(Ok(settings)) => break settings,
                Ok(Err(e)) => warn!("cannot resolve the network to form: {e}"),
                Err(e) => warn!("network settings task failed: {e}"),
            }
            if !self.pause(backoff.next_delay()).await {
                self.set_state(CoordinatorState::Stopped).await;
                return;
            }
        };
        let mut host_config = self
            .tuning
            .host
            .clone()
            .unwrap_or_else(|| HostConfig::new(self.config.endpoint, settings.clone()));
        host_config.endpoint = self.config.endpoint;
        host_config.network = settings;
        loop {
            let leave = match serial::open(&self.config.serial) {
                Ok(io) => self.serve(io, &host_config, &mut backoff).await,
                Err(e) => Leave::PortGone(e.to_string()),
            };
            let Leave::PortGone(why) = leave else { break };
            warn!("{why}; reopening the port");
            self.fail_queued().await;
            self.set_state(CoordinatorState::Disconnected).await;
            if !self.pause(backoff.next_delay()).await {
                break;
            }
            self.set_state(CoordinatorState::Starting).await;
        }
        self.task.saver.flush().await;
        self.set_state(CoordinatorState::Stopped).await;
    }

    /// Runs the host on one open port until the port goes or the driver is cancelled.
    async fn serve<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut io: P,
        host_config: &HostConfig,
        backoff: &mut Backoff,
    ) -> Leave {
        let devices = self.task.shared.lock().devices.clone();
        let mut host = Host::new(host_config.clone(), devices, now());
        host.start(now());
        let mut buffer = [0u8; 1024];
        let mut restart_at: Option<Instant> = None;
        loop {
            while let Some(bytes) = host.poll_transmit() {
                if let Err(e) = io.write_all(&bytes).await {
                    return self
                        .port_gone(&mut host, &format!("write failed: {e}"), backoff)
                        .await;
                }
            }
            self.handle_events(&mut host, &mut restart_at, backoff)
                .await;
            // Sends may have been refused or lost while handling events: flush them too.
            if host.poll_timeout().is_some_and(|at| at <= now()) {
                host.handle_timeout(now());
                continue;
            }
            let deadline = host.poll_timeout();
            tokio::select! {
                biased;
                _ = self.task.cancel.cancelled() => return Leave::Cancelled,
                read = io.read(&mut buffer) => match ReadOutcome::of(read, &buffer) {
                    ReadOutcome::Bytes(bytes) => host.handle_input(bytes, now()),
                    ReadOutcome::Interrupted => {}
                    ReadOutcome::Gone(why) => return self.port_gone(&mut host, &why, backoff).await,
                },
                command = self.task.commands.recv(), if host.is_up() => match command {
                    Some(command) => self.dispatch(&mut host, command).await,
                    None => return Leave::Cancelled,
                },
                _ = sleep_until(restart_at) => {
                    restart_at = None;
                    self.set_state(CoordinatorState::Starting).await;
                    host.start(now());
                }
                _ = sleep_until(deadline) => host.handle_timeout(now()),
            }
        }
    }

    /// Reports what was in flight as lost, then leaves the port.
    async fn port_gone(&mut self, host: &mut Host, why: &str, backoff: &mut Backoff) -> Leave {
        host.close(now());
        let mut restart_at = None;
        self.handle_events(host, &mut restart_at, backoff).await;
        Leave::PortGone(format!("serial port gone: {why}"))
    }

    async fn dispatch(&mut self, host: &mut Host, command: DriverCommand) {
        let at = now();
        let (tag, result) = match command {
            DriverCommand::Unicast { tag, message, .. } => {
                (Some(tag), host.send_unicast(tag, &message, at))
            }
            DriverCommand::ZclRequest { tag, request } => {
                (Some(tag), host.send_unicast(tag, &request.to_unicast(), at))
            }
            DriverCommand::Broadcast { tag, message } => {
                (Some(tag), host.send_broadcast(tag, &message, at))
            }
            DriverCommand::PermitJoining { seconds } => (None, host.permit_joining(seconds, at)),
        };
        if let (Some(tag), Err(e)) = (tag, result) {
            warn!("send {tag:?} not accepted by the host: {e}");
            self.emit(CoordinatorEvent::DeliveryReport {
                tag,
                outcome: DeliveryOutcome::LinkLost,
            })
            .await;
        }
    }

    async fn handle_events(
        &mut self,
        host: &mut Host,
        restart_at: &mut Option<Instant>,
        backoff: &mut Backoff,
    ) {
        while let Some(event) = host.poll_event() {
            match event {
                HostEvent::Up {
                    network,
                    formed,
                    firmware,
                } => {
                    backoff.reset();
                    info!(
                        "{firmware}: network {} on channel {}, PAN 0x{:04X}, extended PAN {:016X}, coordinator {}",
                        if formed { "formed" } else { "resumed" },
                        network.channel,
                        network.pan_id,
                        network.extended_pan_id,
                        network.ieee
                    );
                    {
                        let mut shared = self.task.shared.lock();
                        shared.network = Some(network);
                        shared.firmware.version = Some(firmware);
                    }
                    self.set_state(CoordinatorState::Up).await;
                }
                HostEvent::Incoming(message) => {
                    self.emit(CoordinatorEvent::Incoming(message)).await;
                }
                HostEvent::Delivery { tag, outcome } => {
                    self.emit(CoordinatorEvent::DeliveryReport { tag, outcome })
                        .await;
                }
                HostEvent::DeviceJoined { nwk, ieee } => {
                    let learned = self.task.shared.lock().devices.learn(nwk, ieee);
                    if learned != super::device_table::Learned::Unchanged {
                        self.save_device_table();
                    }
                    self.emit(CoordinatorEvent::DeviceJoined { nwk, ieee })
                        .await;
                }
                HostEvent::Lost(why) => {
                    let delay = backoff.next_delay();
                    warn!("{why}; starting the stick again in {delay:?}");
                    self.task.shared.lock().network = None;
                    let state = if matches!(why, Lost::NoPing | Lost::NoAnswer(_) | Lost::PortGone)
                    {
                        CoordinatorState::Disconnected
                    } else {
                        CoordinatorState::Resetting
                    };
                    self.set_state(state).await;
                    self.fail_queued().await;
                    *restart_at = Some(now() + delay);
                }
            }
        }
    }

    /// Commands queued while the stick was down: each send gets `LinkLost`.
    async fn fail_queued(&mut self) {
        if self.task.report_queued_lost().await == Emitted::NobodyListens {
            self.task.cancel.cancel();
        }
    }

    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.task.cancel.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    async fn set_state(&mut self, state: CoordinatorState) {
        {
            let mut shared = self.task.shared.lock();
            shared.state = state;
            // The stick takes MAX_APS_PAYLOAD while up, and nothing otherwise.
            shared.max_payload = (state == CoordinatorState::Up).then_some(MAX_APS_PAYLOAD);
        }
        if self.reported != Some(state) {
            self.reported = Some(state);
            self.emit(CoordinatorEvent::StateChanged(state)).await;
        }
    }

    /// Nobody listening any more stops the driver.
    async fn emit(&self, event: CoordinatorEvent) {
        if self.task.emit(event).await == Emitted::NobodyListens {
            self.task.cancel.cancel();
        }
    }

    /// The device table changed: `devices.txt` is written off this task within the debounce
    /// (atomically and durably, [`crate::atomic_file`]).
    fn save_device_table(&self) {
        self.task.saver.changed();
    }
}
