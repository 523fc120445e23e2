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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use super::relay::{Relay, RelayConfig, RelayEvent};
use crate::config::OtaScope;
use crate::coordinator::device_store::{DeviceTableSaver, SAVE_DEBOUNCE, load_device_table};
use crate::coordinator::ezsp::DEVICE_TABLE_FILE;
use crate::coordinator::handle::{DriverHandle, check_up_and_size};
use crate::coordinator::serial::{self, SerialIo};
use crate::coordinator::{
    BroadcastMessage, Coordinator, CoordinatorConfig, CoordinatorEvent, CoordinatorFirmware,
    CoordinatorState, DeliveryOutcome, DeviceTable, MAX_PERMIT_JOIN_SECONDS, MessageTag,
    NetworkInfo, SendError, UnicastMessage, ZclRequest,
};
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

#[derive(Debug)]
enum ProxyCommand {
    Unicast {
        tag: MessageTag,
        message: UnicastMessage,
    },
    ZclRequest {
        tag: MessageTag,
        request: ZclRequest,
    },
    Broadcast {
        tag: MessageTag,
        message: BroadcastMessage,
    },
    PermitJoining {
        seconds: u8,
    },
}

#[derive(Debug)]
struct SharedState {
    state: CoordinatorState,
    max_payload: Option<usize>,
    network: Option<NetworkInfo>,
    devices: DeviceTable,
    listening: Option<SocketAddr>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<SharedState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle of a running proxy; implements [`Coordinator`] for the daemon.
#[derive(Debug)]
pub struct ProxyCoordinator {
    shared: Arc<Shared>,
    handle: DriverHandle<ProxyCommand>,
}

/// The runtime's clock.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
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
        let table_path = config.state_dir.join(DEVICE_TABLE_FILE);
        let devices = load_device_table(&table_path);
        let shared = Arc::new(Shared {
            inner: Mutex::new(SharedState {
                state: CoordinatorState::Starting,
                max_payload: None,
                network: None,
                devices: devices.clone(),
                listening: None,
            }),
        });
        let (command_tx, command_rx) = mpsc::channel(64);
        let (event_tx, event_rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let span =
            tracing::info_span!("proxy", port = %config.serial.path, listen = %settings.listen);
        let saver = DeviceTableSaver::spawn(table_path, SAVE_DEBOUNCE, {
            let shared = Arc::clone(&shared);
            Arc::new(move || shared.lock().devices.to_text())
        });
        let task = match Relay::new(tuning, devices) {
            Ok(relay) => {
                let driver = Driver {
                    config,
                    settings,
                    relay,
                    saver,
                    shared: Arc::clone(&shared),
                    events: event_tx,
                    commands: command_rx,
                    cancel: cancel.clone(),
                };
                Some(tokio::spawn(driver.run().instrument(span)))
            }
            Err(e) => {
                warn!("ASH link configuration: {e}; the proxy stays stopped");
                shared.lock().state = CoordinatorState::Stopped;
                None
            }
        };
        (
            ProxyCoordinator {
                shared,
                handle: DriverHandle::new("proxy", command_tx, cancel, task),
            },
            event_rx,
        )
    }

    /// The address the listener is bound to, once bound.
    pub fn listening(&self) -> Option<SocketAddr> {
        self.shared.lock().listening
    }

    /// Stops the proxy and waits for its task (the port and the listener are closed).
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }

    fn queue(&self, command: ProxyCommand) -> Result<(), SendError> {
        self.handle.queue(command)
    }

    fn check_up_and_size(&self, len: usize) -> Result<(), SendError> {
        let shared = self.shared.lock();
        check_up_and_size(shared.state, shared.max_payload, len)
    }

    fn next_tag(&self) -> MessageTag {
        self.handle.next_tag()
    }
}

impl Coordinator for ProxyCoordinator {
    fn send_unicast(&self, message: UnicastMessage) -> Result<MessageTag, SendError> {
        if message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.check_up_and_size(message.payload.len())?;
        let tag = self.next_tag();
        self.queue(ProxyCommand::Unicast { tag, message })?;
        Ok(tag)
    }

    fn send_zcl_request(&self, request: &ZclRequest) -> Result<MessageTag, SendError> {
        if request.destination.is_broadcast() {
            return Err(SendError::BadDestination(request.destination));
        }
        self.check_up_and_size(request.zcl_frame.len())?;
        let tag = self.next_tag();
        self.queue(ProxyCommand::ZclRequest {
            tag,
            request: request.clone(),
        })?;
        Ok(tag)
    }

    fn send_broadcast(&self, message: BroadcastMessage) -> Result<MessageTag, SendError> {
        if !message.destination.is_broadcast() {
            return Err(SendError::BadDestination(message.destination));
        }
        self.check_up_and_size(message.payload.len())?;
        let tag = self.next_tag();
        self.queue(ProxyCommand::Broadcast { tag, message })?;
        Ok(tag)
    }

    fn max_aps_payload(&self) -> Option<usize> {
        self.shared.lock().max_payload
    }

    fn permit_joining(&self, seconds: u8) -> Result<(), SendError> {
        if seconds > MAX_PERMIT_JOIN_SECONDS {
            return Err(SendError::PermitJoinTooLong(seconds));
        }
        self.check_up_and_size(0)?;
        self.queue(ProxyCommand::PermitJoining { seconds })
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

    fn firmware(&self) -> Option<CoordinatorFirmware> {
        Some(CoordinatorFirmware {
            protocol: "ezsp",
            version: self
                .network_info()
                .map(|n| format!("EZSP v{} (through the proxy)", n.protocol_version)),
        })
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
    saver: DeviceTableSaver,
    shared: Arc<Shared>,
    events: mpsc::Sender<CoordinatorEvent>,
    commands: mpsc::Receiver<ProxyCommand>,
    cancel: CancellationToken,
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
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            let stick_read = async {
                match stick.as_mut() {
                    Some(io) => io.read(&mut stick_buffer).await,
                    None => std::future::pending().await,
                }
            };
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
                _ = self.cancel.cancelled() => break,
                read = stick_read => match read {
                    Ok(0) => {
                        stick = None;
                        self.relay.stick_lost("end of file", now());
                    }
                    Ok(n) => self.relay.handle_stick_input(stick_buffer.get(..n).unwrap_or_default(), now()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        stick = None;
                        self.relay.stick_lost(&e.to_string(), now());
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
                _ = sleep => self.relay.handle_timeout(now()),
                command = self.commands.recv() => {
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
        self.saver.flush().await;
    }

    async fn bind(&mut self) -> Option<TcpListener> {
        match TcpListener::bind(self.settings.listen).await {
            Ok(bound) => {
                let address = bound.local_addr().ok();
                info!(
                    "proxy listening on tcp://{} for the upstream stack",
                    address.map_or(self.settings.listen, |a| a)
                );
                self.shared.lock().listening = address;
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

    fn dispatch(&mut self, command: ProxyCommand) {
        let at = now();
        match command {
            ProxyCommand::Unicast { tag, message } => self.relay.send_unicast(tag, message, at),
            ProxyCommand::ZclRequest { tag, request } => {
                self.relay.send_zcl_request(tag, &request, at);
            }
            ProxyCommand::Broadcast { tag, message } => self.relay.send_broadcast(tag, message, at),
            ProxyCommand::PermitJoining { seconds } => self.relay.permit_joining(seconds, at),
        }
    }

    async fn handle_events(&mut self, stick: &mut Option<SerialIo>) {
        while let Some(event) = self.relay.poll_event() {
            match event {
                RelayEvent::OpenStick if !self.cancel.is_cancelled() => {
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
                RelayEvent::DeviceTableChanged => {
                    self.shared.lock().devices = self.relay.devices().clone();
                    self.saver.changed();
                }
            }
        }
    }

    async fn set_state(&mut self, state: CoordinatorState) {
        {
            let mut shared = self.shared.lock();
            shared.state = state;
            if state == CoordinatorState::Up {
                shared.network = self.relay.network_info().or(shared.network);
            }
            shared.max_payload = self.relay.max_payload();
        }
        info!("coordinator {state:?} (proxy)");
        self.emit(CoordinatorEvent::StateChanged(state)).await;
        if matches!(
            state,
            CoordinatorState::Resetting | CoordinatorState::Disconnected
        ) {
            while let Ok(command) = self.commands.try_recv() {
                let tag = match command {
                    ProxyCommand::Unicast { tag, .. }
                    | ProxyCommand::ZclRequest { tag, .. }
                    | ProxyCommand::Broadcast { tag, .. } => tag,
                    ProxyCommand::PermitJoining { .. } => continue,
                };
                self.emit(CoordinatorEvent::DeliveryReport {
                    tag,
                    outcome: DeliveryOutcome::LinkLost,
                })
                .await;
            }
        }
    }

    async fn emit(&self, event: CoordinatorEvent) {
        tokio::select! {
            _ = self.events.send(event) => {}
            _ = self.cancel.cancelled() => {}
        }
    }
}
