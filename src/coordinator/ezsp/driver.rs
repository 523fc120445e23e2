//! The tokio glue of the EZSP coordinator (STYLE.md rule 9): one task that opens the port when
//! the [`EzspHost`] asks, moves bytes between the port and the host, sleeps until
//! [`EzspHost::poll_timeout`], hands queued [`Coordinator`](super::Coordinator) calls to the host
//! while it accepts them, and turns host events into [`CoordinatorEvent`]s and the shared state
//! the handle reads. Disk work is limited to loading the network settings the host asks for
//! (once, when the NCP holds no network) and the debounced device-table saver's own task.

use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use super::host::{EzspHost, HostEvent, LatencySample};
use crate::coordinator::driver_io::{ReadOutcome, now, read_if_open, sleep_until};
use crate::coordinator::handle::{DriverCommand, TaskSide};
use crate::coordinator::network::NetworkSettings;
use crate::coordinator::serial::{self, SerialIo};
use crate::coordinator::{CoordinatorConfig, CoordinatorEvent, CoordinatorState};

pub(super) struct Driver {
    pub(super) config: CoordinatorConfig,
    pub(super) host: EzspHost,
    /// The handle's state, commands and events, and the device-table saver.
    pub(super) task: TaskSide,
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut port: Option<SerialIo> = None;
        let mut buffer = [0u8; 512];
        loop {
            if self.handle_events(&mut port).await {
                // Let the listener answer what just arrived before anything is written: the
                // answer's DATA frame then carries the ASH acknowledgement of the request, and
                // one write serves both (on the daemon's single-threaded runtime the listener
                // runs during this yield).
                tokio::task::yield_now().await;
            }
            // Everything already queued goes out in the next write together.
            while self.host.accepts_commands() {
                let Ok(command) = self.task.commands.try_recv() else {
                    break;
                };
                self.dispatch(command);
            }
            self.handle_events(&mut port).await;
            // No `flush()`: the port has no user-space buffer, and on a serial port
            // tokio-serial's flush is tcdrain(3), which would block the runtime's thread until
            // the UART has shifted every byte out (~6 ms per frame at 115200).
            if let (Some(io), Some(bytes)) = (port.as_mut(), self.host.poll_transmit(now()))
                && let Err(e) = io.write_all(&bytes).await
            {
                port = None;
                self.host.port_lost(&e.to_string(), now());
                continue;
            }
            self.handle_events(&mut port).await;
            let deadline = self.host.poll_timeout();
            let accepting = self.host.accepts_commands();
            tokio::select! {
                biased;
                _ = self.task.cancel.cancelled() => break,
                read = read_if_open(port.as_mut(), &mut buffer) => match ReadOutcome::of(read, &buffer) {
                    ReadOutcome::Bytes(bytes) => self.host.handle_input(bytes, now()),
                    ReadOutcome::Interrupted => {}
                    ReadOutcome::Gone(why) => {
                        port = None;
                        self.host.port_lost(&why, now());
                    }
                },
                _ = sleep_until(deadline) => self.host.handle_timeout(now()),
                command = self.task.commands.recv(), if accepting => {
                    if let Some(command) = command {
                        self.dispatch(command);
                    }
                }
            }
        }
        drop(port);
        self.host.stop(now());
        self.handle_events(&mut None).await;
        self.task.shared.lock().max_payload = None;
        self.task.saver.flush().await;
    }

    fn dispatch(&mut self, command: DriverCommand) {
        let at = now();
        match command {
            DriverCommand::PermitJoining { seconds } => self.host.permit_joining(seconds, at),
            DriverCommand::Unicast {
                tag,
                message,
                timing,
            } => self.host.send_unicast(tag, message, timing, at),
            DriverCommand::ZclRequest { tag, request } => {
                self.host.send_unicast(tag, request.to_unicast(), None, at);
            }
            DriverCommand::Broadcast { tag, message } => self.host.send_broadcast(tag, message, at),
        }
    }

    /// Acts on every host event; true when an incoming message went to the listener.
    async fn handle_events(&mut self, port: &mut Option<SerialIo>) -> bool {
        let mut incoming = false;
        while let Some(event) = self.host.poll_event() {
            match event {
                HostEvent::StateChanged(state) => self.state_changed(state).await,
                HostEvent::Incoming(message) => {
                    incoming = true;
                    self.emit(CoordinatorEvent::Incoming(message)).await;
                }
                HostEvent::Delivery { tag, outcome } => {
                    self.emit(CoordinatorEvent::DeliveryReport { tag, outcome })
                        .await;
                }
                HostEvent::DeviceJoined { nwk, ieee } => {
                    self.emit(CoordinatorEvent::DeviceJoined { nwk, ieee })
                        .await;
                }
                HostEvent::DeviceTableChanged => self.task.devices_changed(self.host.devices()),
                HostEvent::OpenPort if !self.task.cancel.is_cancelled() => {
                    match serial::open(&self.config.serial) {
                        Ok(io) => {
                            *port = Some(io);
                            self.host.port_opened(now());
                        }
                        Err(e) => self.host.port_lost(&e.to_string(), now()),
                    }
                }
                HostEvent::NetworkSettingsNeeded => {
                    let settings = NetworkSettings::load_or_create(
                        &self.config.state_dir,
                        &self.config.network,
                    )
                    .map_err(|e| e.to_string());
                    self.host.network_settings(settings, now());
                }
                HostEvent::AnswerLatency(sample) => {
                    if let Some(latency) = self.task.shared.lock().latency.as_mut() {
                        match sample {
                            LatencySample::Host(d) => latency.host.record(d),
                            LatencySample::SerialInToOut(d) => latency.serial_in_to_out.record(d),
                        }
                    }
                }
                other => debug!("host event not used by the daemon: {other:?}"),
            }
        }
        incoming
    }

    async fn state_changed(&mut self, state: CoordinatorState) {
        {
            let mut shared = self.task.shared.lock();
            shared.state = state;
            match state {
                CoordinatorState::Up => {
                    shared.network = self.host.network_info().or(shared.network);
                    shared.max_payload = self.host.max_payload();
                    shared.firmware.version = shared
                        .network
                        .map(|n| format!("EZSP v{}", n.protocol_version));
                }
                CoordinatorState::NetworkDown => {}
                _ => shared.max_payload = None,
            }
        }
        if let (CoordinatorState::Up, Some(version)) = (state, self.host.version()) {
            tracing::Span::current().record("ezsp_version", version.get());
        }
        info!("coordinator {state:?}");
        self.task.state_changed(state).await;
    }

    /// A dropped receiver means nobody listens any more; the driver keeps the NCP running.
    async fn emit(&self, event: CoordinatorEvent) {
        self.task.emit(event).await;
    }
}
