//! The proxy's tokio glue (STYLE.md rule 9) and its [`Coordinator`] handle: one task owns the
//! stick's serial port, the TCP listener and the one upstream connection, moves bytes between
//! them and the sans-IO [`Relay`], sleeps until [`Relay::poll_timeout`], hands the daemon's
//! sends to the relay and turns relay events into [`CoordinatorEvent`]s. The device table is
//! saved off this task by the debounced [`DeviceTableSaver`].
//!
//! One upstream at a time: a new connection replaces the one open (with a log line), so a stack
//! that restarts while its old socket lingers, half dead, is not locked out. The listener is loopback unless the config writes out another address.
//!
//! With `[proxy] link`, the virtual stick is also a pseudo-terminal (a symlink at that path to
//! a [`Pty`]). A pty has no connect or disconnect: upstream counts as connected on the pty from
//! its first bytes (always an ASH RST), and as gone when what we write is not read within
//! [`PTY_WRITE_TIMEOUT`] (nobody holds the port open; the frames are dropped, as they would be
//! on a closed socket), so a stalled reader never holds the stick back.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, error, info, warn};

use super::relay::{Relay, RelayConfig, RelayEvent};
use crate::config::OtaScope;
use crate::coordinator::driver_io::{ReadOutcome, now, read_if_open, sleep_until};
use crate::coordinator::handle::{
    DriverCommand, DriverHandle, DriverSetup, RunsBehindHandle, TaskSide,
};
use crate::coordinator::serial::{self, SerialIo};
use crate::coordinator::{CoordinatorConfig, CoordinatorEvent, CoordinatorState};
use crate::pty::Pty;

/// How long to wait before binding the listener again after a failure.
const REBIND_DELAY: Duration = Duration::from_secs(5);
/// A write to the pty that takes longer means nobody reads it.
pub const PTY_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// What the proxy adds to the coordinator's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Where upstream connects.
    pub listen: SocketAddr,
    /// Also offer the virtual stick as a pty, with a symlink at this path.
    pub link: Option<PathBuf>,
    /// Whose OTA cluster traffic is ours.
    pub scope: OtaScope,
}

/// Where the listener is bound, once bound: written by the task, read by the handle.
type Listening = Arc<Mutex<Option<SocketAddr>>>;

/// The handle of a running proxy; implements [`Coordinator`](crate::coordinator::Coordinator)
/// for the daemon.
#[derive(Debug)]
pub struct ProxyCoordinator {
    handle: DriverHandle,
    listening: Listening,
}

impl ProxyCoordinator {
    /// Starts the proxy task on the current tokio runtime.
    pub fn start(
        config: CoordinatorConfig,
        settings: ProxySettings,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        Self::start_with(config, settings, RelayConfig::new(OtaScope::All, 1))
    }

    /// Like [`ProxyCoordinator::start`] with explicit relay tuning (its scope and endpoint
    /// are taken from `settings` and `config`).
    pub fn start_with(
        config: CoordinatorConfig,
        settings: ProxySettings,
        mut tuning: RelayConfig,
    ) -> (Self, mpsc::Receiver<CoordinatorEvent>) {
        tuning.scope = settings.scope.clone();
        tuning.endpoint = config.endpoint;
        let setup = DriverSetup {
            what: "proxy",
            protocol: "ezsp",
            measures_latency: false,
            command_queue: 64,
            event_queue: 1024,
        };
        let (handle, task, events) = DriverHandle::new(setup, &config.state_dir);
        let listening = Listening::default();
        let span =
            tracing::info_span!("proxy", port = %config.serial.path, listen = %settings.listen);
        let devices = task.shared.lock().devices.clone();
        match Relay::new(tuning, devices) {
            Ok(relay) => {
                let driver = Driver {
                    config,
                    settings,
                    relay,
                    task,
                    listening: Arc::clone(&listening),
                };
                handle.attach(tokio::spawn(driver.run().instrument(span)));
            }
            Err(e) => {
                warn!("ASH link configuration: {e}; the proxy stays stopped");
                handle.stopped();
            }
        }
        (ProxyCoordinator { handle, listening }, events)
    }

    /// The address the listener is bound to, once bound.
    pub fn listening(&self) -> Option<SocketAddr> {
        *self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the proxy and waits for its task (the port and the listener are closed).
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

impl RunsBehindHandle for ProxyCoordinator {
    fn driver_handle(&self) -> &DriverHandle {
        &self.handle
    }
}

/// The one upstream connection.
enum Upstream {
    Tcp(TcpStream),
    /// Bytes arrived on the pty and nothing has shown the reader gone since.
    Pty,
}

struct Driver {
    config: CoordinatorConfig,
    settings: ProxySettings,
    relay: Relay,
    /// The handle's state, commands and events, and the device-table saver.
    task: TaskSide,
    listening: Listening,
}

impl Driver {
    async fn run(mut self) {
        let mut stick: Option<SerialIo> = None;
        let mut upstream: Option<Upstream> = None;
        let mut listener: Option<TcpListener> = None;
        let mut pty = self.open_pty();
        let mut rebind_at = Some(now());
        let mut stick_buffer = [0u8; 512];
        let mut upstream_buffer = [0u8; 512];
        let mut pty_buffer = [0u8; 512];
        loop {
            if let Some(at) = rebind_at
                && now() >= at
            {
                rebind_at = None;
                listener = self.bind().await;
                if listener.is_none() {
                    rebind_at = Some(now() + REBIND_DELAY);
                }
            }
            self.handle_events(&mut stick).await;
            self.flush(&mut stick, &mut upstream, &mut pty).await;
            self.handle_events(&mut stick).await;
            let deadline = [self.relay.poll_timeout(), rebind_at]
                .into_iter()
                .flatten()
                .min();
            let upstream_read = async {
                match upstream.as_mut() {
                    Some(Upstream::Tcp(io)) => io.read(&mut upstream_buffer).await,
                    _ => std::future::pending().await,
                }
            };
            let pty_read = async {
                match pty.as_mut() {
                    Some(p) => p.master.read(&mut pty_buffer).await,
                    None => std::future::pending().await,
                }
            };
            let accept = async {
                match listener.as_ref() {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.task.cancel.cancelled() => break,
                read = read_if_open(stick.as_mut(), &mut stick_buffer) => match ReadOutcome::of(read, &stick_buffer) {
                    ReadOutcome::Bytes(bytes) => self.relay.handle_stick_input(bytes, now()),
                    ReadOutcome::Interrupted => {}
                    ReadOutcome::Gone(why) => {
                        stick = None;
                        self.relay.stick_lost(&why, now());
                    }
                },
                read = upstream_read => match read {
                    Ok(n) if n > 0 => self.relay.handle_upstream_input(upstream_buffer.get(..n).unwrap_or_default(), now()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => {
                        if let Err(e) = other {
                            debug!("upstream read: {e}");
                        }
                        upstream = None;
                        self.relay.upstream_disconnected(now());
                    }
                },
                read = pty_read => match read {
                    Ok(n) => {
                        let bytes = pty_buffer.get(..n).unwrap_or_default();
                        match upstream {
                            None => {
                                info!("upstream stack opened the pty");
                                upstream = Some(Upstream::Pty);
                                self.relay.upstream_connected(now());
                                self.relay.handle_upstream_input(bytes, now());
                            }
                            Some(Upstream::Pty) => self.relay.handle_upstream_input(bytes, now()),
                            Some(Upstream::Tcp(_)) => debug!("{n} bytes on the pty ignored: an upstream is connected over TCP"),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        warn!("the proxy's pty failed ({e}); it is closed");
                        pty = None;
                        if matches!(upstream, Some(Upstream::Pty)) {
                            upstream = None;
                            self.relay.upstream_disconnected(now());
                        }
                    }
                },
                accepted = accept => match accepted {
                    Ok((stream, peer)) => {
                        if upstream.is_some() {
                            warn!("upstream stack connected again from {peer}: it replaces the previous connection (one stack at a time shares the stick)");
                        } else {
                            info!("upstream stack connected from {peer}");
                        }
                        let _ = stream.set_nodelay(true);
                        upstream = Some(Upstream::Tcp(stream));
                        self.relay.upstream_connected(now());
                    }
                    Err(e) => debug!("accept: {e}"),
                },
                _ = sleep_until(deadline) => self.relay.handle_timeout(now()),
                command = self.task.commands.recv() => {
                    if let Some(command) = command {
                        self.dispatch(command);
                    }
                }
            }
        }
        drop(upstream);
        drop(stick);
        if let (Some(link), Some(_)) = (&self.settings.link, pty.take()) {
            let _ = std::fs::remove_file(link);
        }
        self.relay.stick_lost("stopped", now());
        self.handle_events(&mut None).await;
        self.set_state(CoordinatorState::Stopped).await;
        self.task.saver.flush().await;
    }

    async fn bind(&mut self) -> Option<TcpListener> {
        match TcpListener::bind(self.settings.listen).await {
            Ok(bound) => {
                let address = bound.local_addr().ok();
                info!(
                    "proxy listening on tcp://{} for the upstream stack",
                    address.map_or(self.settings.listen, |a| a)
                );
                *self
                    .listening
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = address;
                Some(bound)
            }
            Err(e) => {
                error!(
                    "proxy cannot listen on {}: {e}; trying again in {REBIND_DELAY:?}",
                    self.settings.listen
                );
                None
            }
        }
    }

    fn open_pty(&self) -> Option<Pty> {
        let link = self.settings.link.as_deref()?;
        match Pty::open(Some(link)) {
            Ok(pty) => {
                info!(
                    "proxy also offers the stick at {} ({})",
                    link.display(),
                    pty.path
                );
                Some(pty)
            }
            Err(e) => {
                error!("proxy link: {e}; only the TCP listener is offered");
                None
            }
        }
    }

    /// Writes what the relay has for either side; a failed write loses that side.
    async fn flush(
        &mut self,
        stick: &mut Option<SerialIo>,
        upstream: &mut Option<Upstream>,
        pty: &mut Option<Pty>,
    ) {
        if let (Some(io), Some(bytes)) = (stick.as_mut(), self.relay.poll_stick_transmit(now()))
            && let Err(e) = io.write_all(&bytes).await
        {
            *stick = None;
            self.relay.stick_lost(&e.to_string(), now());
        }
        let Some(bytes) = self.relay.poll_upstream_transmit(now()) else {
            return;
        };
        let written = match (upstream.as_mut(), pty.as_mut()) {
            (Some(Upstream::Tcp(io)), _) => io.write_all(&bytes).await.map_err(|e| e.to_string()),
            (Some(Upstream::Pty), Some(p)) => {
                match tokio::time::timeout(PTY_WRITE_TIMEOUT, p.master.write_all(&bytes)).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(_) => Err("nobody reads the pty".to_owned()),
                }
            }
            _ => Err("no upstream".to_owned()),
        };
        if let Err(e) = written
            && upstream.is_some()
        {
            debug!("upstream write: {e}");
            *upstream = None;
            self.relay.upstream_disconnected(now());
        }
        // Nothing may stay queued for a connection that is gone.
        if upstream.is_none() {
            while self.relay.poll_upstream_transmit(now()).is_some() {}
        }
    }

    fn dispatch(&mut self, command: DriverCommand) {
        let at = now();
        match command {
            DriverCommand::Unicast { tag, message, .. } => {
                self.relay.send_unicast(tag, message, at);
            }
            DriverCommand::ZclRequest { tag, request } => {
                self.relay.send_zcl_request(tag, &request, at);
            }
            DriverCommand::Broadcast { tag, message } => {
                self.relay.send_broadcast(tag, message, at)
            }
            DriverCommand::PermitJoining { seconds } => self.relay.permit_joining(seconds, at),
        }
    }

    async fn handle_events(&mut self, stick: &mut Option<SerialIo>) {
        while let Some(event) = self.relay.poll_event() {
            match event {
                RelayEvent::OpenStick if !self.task.cancel.is_cancelled() => {
                    match serial::open(&self.config.serial) {
                        Ok(io) => {
                            *stick = Some(io);
                            self.relay.stick_opened(now());
                        }
                        Err(e) => self.relay.stick_lost(&e.to_string(), now()),
                    }
                }
                RelayEvent::OpenStick => {}
                RelayEvent::StateChanged(state) => self.set_state(state).await,
                RelayEvent::Incoming(message) => {
                    self.emit(CoordinatorEvent::Incoming(message)).await;
                }
                RelayEvent::Delivery { tag, outcome } => {
                    self.emit(CoordinatorEvent::DeliveryReport { tag, outcome })
                        .await;
                }
                RelayEvent::DeviceJoined { nwk, ieee } => {
                    self.emit(CoordinatorEvent::DeviceJoined { nwk, ieee })
                        .await;
                }
                RelayEvent::DeviceTableChanged => self.task.devices_changed(self.relay.devices()),
            }
        }
    }

    async fn set_state(&mut self, state: CoordinatorState) {
        {
            let mut shared = self.task.shared.lock();
            shared.state = state;
            if state == CoordinatorState::Up {
                shared.network = self.relay.network_info().or(shared.network);
                shared.firmware.version = shared
                    .network
                    .map(|n| format!("EZSP v{} (through the proxy)", n.protocol_version));
            }
            shared.max_payload = self.relay.max_payload();
        }
        info!("coordinator {state:?} (proxy)");
        self.task.state_changed(state).await;
    }

    /// A dropped receiver means nobody listens any more; the proxy keeps serving upstream.
    async fn emit(&self, event: CoordinatorEvent) {
        self.task.emit(event).await;
    }
}
