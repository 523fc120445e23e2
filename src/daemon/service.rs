//! The daemon's main loop: the thin tokio layer over the sans-IO OTA server (STYLE.md rule 9).
//!
//! One task owns the [`OtaServer`]. It `select!`s over the coordinator's events, the server's
//! next deadline, control requests from the status socket, signals and a few timers; after each
//! wake-up it hands the server's outgoing frames to the coordinator and publishes a status
//! snapshot. The coordinator driver runs in its own task (one per serial port); the status socket
//! in another. Every queue between them is bounded.
//!
//! `zigbee-otad run` and `zigbee-otad demo` both run this code; the demo only points it at the
//! simulated coordinator and watches the snapshots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalog::claims::{ClaimGate, DEFAULT_NEW_CLAIMS_PER_HOUR};
use crate::catalog::service::load_known_devices;
use crate::config::Config;
use crate::coordinator::any::{AnyCoordinator, DriverKind};
use crate::coordinator::{
    AnswerTiming, BroadcastMessage, CLUSTER_OTA_UPGRADE, Coordinator, CoordinatorConfig,
    CoordinatorEvent, CoordinatorState, MessageTag, Nwk, PROFILE_HOME_AUTOMATION, SendError,
    UnicastMessage,
};
use crate::server::rate::TokenBucket;
use crate::server::{Destination, Ieee};
use crate::server::{DeviceAddr, NotifyTarget, OtaServer, Outgoing, ServerEvent};

use super::catalog_driver::CatalogDriver;
use super::control::{self, Persister};
use super::export::ExportServer;
use super::history::HistoryRecord;
use super::identities::Identities;
use super::images::{self, ImageLibrary, LibraryView};
use super::library_loader::LibraryLoader;
use super::loop_lag::LoopLag;
use super::outbox::{Outbox, Sent};
use super::settings::coordinator_config;
pub use super::settings::server_config;
use super::socket::{ControlRequest, StatusSocket};
use super::socket_access::resolve_group;
use super::status::{self, StatusSnapshot};
use super::systemd::Notifier;

/// OTA frames answered from addresses the device table cannot name: a burst, then one per
/// interval (made-up addresses; a real device is named by its join or announce).
const UNKNOWN_SENDER_BURST: u32 = 20;
const UNKNOWN_SENDER_EVERY: Duration = Duration::from_millis(200);
/// How often the status snapshot is rebuilt while anything changes.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(250);

/// How the daemon is run.
#[derive(Debug, Default)]
pub struct DaemonOptions {
    /// Bind the status socket named in the config.
    pub status_socket: bool,
    /// Talk to systemd (readiness, status text, watchdog).
    pub systemd: bool,
    /// Also deliver every server event here (the demo's progress display). Events are dropped
    /// when the receiver lags; the daemon never waits for it.
    pub events: Option<mpsc::Sender<ServerEvent>>,
    /// The file the configuration came from: SIGHUP reads it again.
    pub config_path: Option<PathBuf>,
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// The latest status snapshot.
    pub snapshots: watch::Receiver<StatusSnapshot>,
    /// The verified images the server offers, with where each came from.
    pub library: watch::Receiver<Arc<LibraryView>>,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Starts the daemon on the current runtime: loads the images, opens the coordinator and
    /// starts serving.
    pub async fn start(config: Config, options: DaemonOptions) -> anyhow::Result<Daemon> {
        let server_config = server_config(&config)?;
        let coordinator_config = coordinator_config(&config);
        let (snapshot_tx, snapshots) = watch::channel(StatusSnapshot::default());
        let cancel = CancellationToken::new();
        let (control_tx, control_rx) = mpsc::channel(16);
        let (library_tx, library_rx) = watch::channel(Arc::new(LibraryView::default()));
        let mut side_tasks = Vec::new();
        if let Some(section) = &config.export {
            let export = ExportServer::bind(section).await.with_context(|| {
                format!("cannot listen for the index export on {}", section.listen)
            })?;
            side_tasks.push(tokio::spawn(export.serve(library_rx.clone())));
        }
        if let Some(section) = &config.mqtt {
            side_tasks.push(tokio::spawn(super::mqtt::run(
                section.clone(),
                snapshots.clone(),
                library_rx.clone(),
                control_tx.clone(),
            )));
        }

        let socket = if options.status_socket {
            let path = &config.status.socket;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let control_group = match &config.status.control_group {
                None => None,
                Some(name) => {
                    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
                    Some(
                        resolve_group(name, &read("/etc/group"), &read("/etc/passwd"))
                            .map_err(anyhow::Error::msg)?,
                    )
                }
            };
            let socket = StatusSocket::bind(path)
                .with_context(|| format!("cannot bind the status socket {}", path.display()))?
                .with_history(control::history_path(&config.state_dir))
                .with_control_group(control_group);
            Some(tokio::spawn(socket.serve(snapshots.clone(), control_tx)))
        } else {
            drop(control_tx);
            None
        };

        let catalog = CatalogDriver::new(&config);
        // Claims admitted by an earlier run stay admitted (their file is what it downloaded for).
        let claims = ClaimGate::new(
            DEFAULT_NEW_CLAIMS_PER_HOUR,
            load_known_devices(&config.state_dir).unwrap_or_default(),
        );
        let main = MainLoop {
            config,
            config_path: options.config_path,
            server: OtaServer::new(server_config),
            snapshot_tx,
            control_rx,
            cancel: cancel.clone(),
            notifier: if options.systemd {
                Notifier::from_environment()
            } else {
                Notifier::default()
            },
            events: options.events,
            library_tx,
            outbox: Outbox::new(),
            library_loader: LibraryLoader::default(),
            library_sources: Vec::new(),
            catalog,
            claims,
            unknown_senders: TokenBucket::new(UNKNOWN_SENDER_BURST, UNKNOWN_SENDER_EVERY),
            loop_lag: LoopLag::default(),
            coordinator_up: false,
            ready_sent: false,
            dirty: true,
            persister: None,
            time_zone: jiff::tz::TimeZone::system(),
            identities: None,
        };
        let task = tokio::spawn(async move {
            let result = main.run(coordinator_config).await;
            if let Some(socket) = socket {
                socket.abort();
            }
            for task in side_tasks {
                task.abort();
            }
            result
        });
        Ok(Daemon {
            snapshots,
            library: library_rx,
            cancel,
            task,
        })
    }

    /// Asks the daemon to stop (as SIGTERM does) and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.wait().await
    }

    /// Waits until the daemon stops by itself (SIGTERM, SIGINT, or a fatal error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the daemon task panicked")?
    }
}

struct MainLoop {
    config: Config,
    config_path: Option<PathBuf>,
    server: OtaServer,
    snapshot_tx: watch::Sender<StatusSnapshot>,
    control_rx: mpsc::Receiver<ControlRequest>,
    cancel: CancellationToken,
    notifier: Notifier,
    events: Option<mpsc::Sender<ServerEvent>>,
    /// The loaded images, for the index export and MQTT.
    library_tx: watch::Sender<Arc<LibraryView>>,
    /// Loads the image library off this thread.
    library_loader: LibraryLoader,
    /// Frames on their way to the coordinator, and unicasts awaiting their delivery report.
    outbox: Outbox,
    library_sources: Vec<status::SourceStatus>,
    /// The cloud catalogs: their schedule, the service and its last reports.
    catalog: CatalogDriver,
    /// Which devices' claims may start downloads (confirmed devices, new claims per hour).
    claims: ClaimGate,
    /// OTA frames from addresses the device table cannot name, all together.
    unknown_senders: TokenBucket,
    /// How late the loop runs ([`LoopLag`], the snapshot's `main_loop`).
    loop_lag: LoopLag,
    coordinator_up: bool,
    ready_sent: bool,
    dirty: bool,
    /// Writes the installer's decisions and the history (its own thread).
    persister: Option<Persister>,
    /// The local time zone, for the apply window.
    time_zone: jiff::tz::TimeZone,
    /// Device identities (Basic cluster), read on first OTA contact; set once the state
    /// directory exists.
    identities: Option<Identities>,
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

#[allow(clippy::disallowed_methods)] // the IO layer reads the wall clock for UTC fields
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl MainLoop {
    async fn run(mut self, coordinator_config: CoordinatorConfig) -> anyhow::Result<()> {
        // First: a SIGHUP (or SIGTERM) during the start-up work must not end the process.
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let port = coordinator_config.serial.path.clone();
        std::fs::create_dir_all(&self.config.state_dir).with_context(|| {
            format!(
                "cannot create the state directory {}",
                self.config.state_dir.display()
            )
        })?;
        self.sync_clock();
        self.server
            .restore_control(control::load_control(&self.config.state_dir), now_std());
        self.persister = Some(Persister::start(&self.config.state_dir));
        self.identities = Some(Identities::open(
            &self.config.state_dir,
            self.config.server.endpoint.get(),
            &mut self.server,
        ));
        // The first load comes before the serial port is opened: the first request is answered
        // from it. Later loads run while serving, off this thread (`LibraryLoader`).
        let config = self.config.clone();
        let library = tokio::task::spawn_blocking(move || images::load(&config))
            .await
            .context("loading the image library")?;
        self.apply_library(library);
        self.notifier.status("starting the coordinator");
        let kind = match (&self.config.proxy, self.config.coordinator.protocol) {
            (Some(proxy), _) => DriverKind::Proxy(crate::proxy::ProxySettings {
                listen: proxy.listen.address(),
                link: proxy.link.clone(),
                scope: proxy.scope(),
            }),
            (None, crate::config::Protocol::Ezsp) => DriverKind::Ezsp,
            (None, crate::config::Protocol::Znp) => DriverKind::Znp,
        };
        let (coordinator, mut coordinator_events) = AnyCoordinator::start(kind, coordinator_config);
        let coordinator = Arc::new(coordinator);

        let mut notify = tokio::time::interval_at(
            Instant::now() + self.config.server.notify_interval,
            self.config.server.notify_interval,
        );
        // Timers run only when they have work: an idle daemon sleeps until a frame, a signal, a
        // request or its next refresh (plus the watchdog, under systemd).
        self.publish(coordinator.as_ref(), &port);
        let mut publish_at: Option<Instant> = None;
        let watchdog_interval = self.notifier.watchdog_interval();
        let mut next_watchdog = watchdog_interval.map(|interval| Instant::now() + interval);

        let result = loop {
            let identities = self.identities.as_ref().map(Identities::reader);
            let (claims, server) = (&mut self.claims, &self.server);
            self.catalog.drive(&self.config, now_std(), || {
                claims.admit(
                    &images::claims(&server.devices()),
                    |ieee| identities.is_some_and(|r| r.is_read(ieee)),
                    now_std(),
                )
            });
            self.flush(coordinator.as_ref());
            if self.dirty && publish_at.is_none() {
                publish_at = Some(Instant::now() + SNAPSHOT_INTERVAL);
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let identity_deadline = self.identities.as_ref().and_then(Identities::poll_timeout);
            let deadline = self
                .server
                .poll_timeout()
                .into_iter()
                .chain(identity_deadline)
                .chain(self.outbox.poll_timeout())
                .chain(self.catalog.deadline())
                .min()
                .map(Instant::from_std)
                .unwrap_or(far);
            self.loop_lag.turn_ended(now_std());
            tokio::select! {
                _ = self.cancel.cancelled() => break Ok(()),
                _ = terminate.recv() => {
                    tracing::info!("SIGTERM: finishing what is in flight and stopping");
                    break Ok(());
                }
                _ = interrupt.recv() => {
                    tracing::info!("SIGINT: stopping");
                    break Ok(());
                }
                _ = hangup.recv() => {
                    let notify_interval = self.config.server.notify_interval;
                    self.reload_config();
                    if notify_interval != self.config.server.notify_interval {
                        let every = self.config.server.notify_interval;
                        notify = tokio::time::interval_at(Instant::now() + every, every);
                    }
                    tracing::info!("SIGHUP: rescanning image sources");
                    self.reload_images();
                }
                event = coordinator_events.recv() => match event {
                    Some(event @ CoordinatorEvent::StateChanged(_)) => {
                        // State changes are shown at once (status right after READY=1 is current).
                        self.on_coordinator_event(event, coordinator.as_ref(), &port);
                        self.publish(coordinator.as_ref(), &port);
                        // Behind the proxy the network is upstream's to start: ready once
                        // the proxy listens, so upstream can connect.
                        let proxy = self.config.proxy.is_some();
                        if (self.coordinator_up || proxy) && !self.ready_sent {
                            self.ready_sent = true;
                            self.notifier.ready();
                        }
                    }
                    Some(event) => self.on_coordinator_event(event, coordinator.as_ref(), &port),
                    None => break Err(anyhow::anyhow!("the coordinator driver stopped")),
                },
                Some(request) = self.control_rx.recv() => {
                    self.on_control(request, coordinator.as_ref());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.loop_lag.timer_fired(deadline.into_std(), now_std());
                    self.sync_clock();
                    self.server.handle_timeout(now_std());
                    self.outbox.handle_timeout(now_std());
                    if let Some(identities) = &mut self.identities {
                        identities.handle_timeout(now_std());
                    }
                    self.dirty = true;
                }
                Some(library) = self.library_loader.next() => {
                    self.library_loader.loaded();
                    self.apply_library(library);
                }
                Some(done) = self.catalog.next_done() => {
                    if self.catalog.on_done(done, now_std()) {
                        self.reload_images();
                    }
                }
                _ = notify.tick() => {
                    if self.coordinator_up {
                        self.server.notify(NotifyTarget::Broadcast, now_std());
                    }
                }
                _ = tokio::time::sleep_until(publish_at.unwrap_or(far)), if publish_at.is_some() => {
                    publish_at = None;
                    // Only confirmed devices' claims, within the hourly budget, start a fetch.
                    let identities = self.identities.as_ref().map(Identities::reader);
                    let wanted = self.claims.wanted_count(
                        &images::claims(&self.server.devices()),
                        |ieee| identities.is_some_and(|r| r.is_read(ieee)),
                        now_std(),
                    );
                    self.catalog.devices_heard(wanted);
                    self.publish(coordinator.as_ref(), &port);
                }
                _ = tokio::time::sleep_until(next_watchdog.unwrap_or(far)), if next_watchdog.is_some() => {
                    self.notifier.watchdog();
                    next_watchdog = watchdog_interval.map(|interval| Instant::now() + interval);
                }
            }
            self.loop_lag.turn_started(now_std());
            self.drain_events();
            if let Some(persister) = &mut self.persister {
                persister.save_control_if_changed(&self.server);
            }
        };

        // Answer what is already decided, then stop.
        self.notifier.stopping();
        self.flush(coordinator.as_ref());
        self.publish(coordinator.as_ref(), &port);
        if let Some(persister) = self.persister.take() {
            persister.finish(&self.server);
        }
        coordinator.shutdown().await;
        tracing::info!("stopped");
        result
    }

    /// Asks for the image library to be loaded again, off this thread.
    fn reload_images(&mut self) {
        self.library_loader.request(&self.config);
    }

    /// Serves a library just loaded.
    fn apply_library(&mut self, library: ImageLibrary) {
        let ImageLibrary {
            images,
            sources,
            notes,
            ..
        } = library;
        tracing::info!(images = images.len(), "image library loaded");
        self.library_tx.send_replace(Arc::new(LibraryView {
            images: images.clone(),
            notes,
        }));
        self.server.set_images(images, now_std());
        self.library_sources = sources;
        // The full refresh first, then the image fetch after it; an error stays shown until a
        // later report for that source succeeds.
        for report in self.catalog.reports() {
            let earlier: Vec<Option<String>> = self
                .library_sources
                .iter()
                .map(|s| s.last_error.clone())
                .collect();
            for status in &mut self.library_sources {
                status.absorb(report);
            }
            for (status, earlier) in self.library_sources.iter_mut().zip(earlier) {
                if status.last_error.is_none() {
                    status.last_error = earlier;
                }
            }
        }
        self.dirty = true;
    }

    /// SIGHUP: reads the configuration file again and applies what can change while running —
    /// the server's limits and policies, the upgrade-time policy, the catalog sources and
    /// intervals. The coordinator, the endpoint, the state directory and the status socket
    /// change on restart only. An invalid file changes nothing.
    fn reload_config(&mut self) {
        let Some(path) = self.config_path.clone() else {
            return;
        };
        let mut config = match Config::load(&path) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!("configuration not reloaded, the running one stays: {error}");
                return;
            }
        };
        let server_config = match server_config(&config) {
            Ok(server_config) => server_config,
            Err(error) => {
                tracing::error!("configuration not reloaded, the running one stays: {error:#}");
                return;
            }
        };
        let restart_only = config.coordinator.port != self.config.coordinator.port
            || config.server.endpoint != self.config.server.endpoint
            || config.state_dir != self.config.state_dir
            || config.status.socket != self.config.status.socket;
        if restart_only {
            tracing::warn!(
                "coordinator, endpoint, state_dir and status socket changes take effect on restart"
            );
        }
        config.coordinator = self.config.coordinator.clone();
        config.server.endpoint = self.config.server.endpoint;
        config.state_dir = self.config.state_dir.clone();
        config.status = self.config.status.clone();
        let sources_changed = config.catalog != self.config.catalog;
        self.server.set_config(server_config);
        self.config = config;
        self.catalog
            .configured(&self.config, sources_changed, now_std());
        tracing::info!(path = %path.display(), "configuration reloaded");
        self.dirty = true;
    }

    fn on_coordinator_event(
        &mut self,
        event: CoordinatorEvent,
        coordinator: &dyn Coordinator,
        port: &str,
    ) {
        self.dirty = true;
        match event {
            CoordinatorEvent::Incoming(message) => {
                let identity_answer = self
                    .identities
                    .as_mut()
                    .is_some_and(|identities| identities.on_incoming(&message, now_std()));
                if identity_answer {
                    return;
                }
                if message.cluster != CLUSTER_OTA_UPGRADE
                    || message.profile != PROFILE_HOME_AUTOMATION
                {
                    tracing::trace!(cluster = message.cluster, "ignoring a non-OTA message");
                    return;
                }
                if message.ieee.is_none() && !self.unknown_senders.try_take(now_std()) {
                    // Not in the device table (made-up addresses): answered at a bounded rate.
                    tracing::trace!(nwk = %message.source, "unknown sender over its rate; not answered");
                    return;
                }
                let source = DeviceAddr {
                    nwk: message.source.0,
                    ieee: message.ieee,
                    endpoint: message.src_endpoint,
                };
                self.server
                    .handle_frame(source, &message.payload, now_std());
                // What the server answers right away answers this message.
                let timing = message.read_at.map(|request_read_at| AnswerTiming {
                    request_read_at,
                    answer_ready_at: now_std(),
                });
                self.take_server_frames(timing);
            }
            CoordinatorEvent::StateChanged(state) => {
                tracing::info!(?state, port, "coordinator state");
                self.coordinator_up = state == CoordinatorState::Up;
                if self.coordinator_up {
                    if let Some(max) = coordinator.max_aps_payload() {
                        self.server
                            .set_max_aps_payload(u8::try_from(max).unwrap_or(u8::MAX));
                    }
                    self.server.set_wall_clock(now_std(), unix_seconds());
                    self.notifier.status("serving OTA requests");
                } else {
                    self.notifier
                        .status(&format!("coordinator {state:?}; recovering"));
                }
            }
            CoordinatorEvent::DeviceJoined { nwk, ieee } => {
                tracing::info!(%nwk, %ieee, "device joined or announced");
                self.claims.confirm(ieee);
            }
            CoordinatorEvent::DeliveryReport { tag, outcome } => {
                // A page stream waits for its last block's report (issue 18).
                if let Some(Destination::Unicast(device)) = self.outbox.on_report(tag, outcome) {
                    self.server.on_delivery(device);
                }
            }
        }
    }

    fn on_control(&mut self, request: ControlRequest, coordinator: &dyn Coordinator) {
        self.sync_clock();
        let answer = control::handle(request.request, &mut self.server, coordinator, now_std());
        let _ = request.reply.send(answer);
        self.dirty = true;
    }

    /// Ties the server's clock to the wall clock and the local time zone (the apply window,
    /// timed holds); cheap, so it is done before every timeout and control request.
    fn sync_clock(&mut self) {
        let unix = unix_seconds();
        self.server.set_wall_clock(now_std(), unix);
        let offset = jiff::Timestamp::from_second(i64::try_from(unix).unwrap_or(i64::MAX))
            .map(|t| self.time_zone.to_offset(t).seconds())
            .unwrap_or(0);
        self.server.set_utc_offset(offset);
    }

    /// Hands the server's frames to the coordinator; frames it cannot take now are held
    /// (bounded) and retried on the next wake-up.
    fn flush(&mut self, coordinator: &dyn Coordinator) {
        self.take_server_frames(None);
        self.flush_frames(coordinator);
        // Identity reads go after the answers: a device is never kept waiting for them.
        if let Some(identities) = &mut self.identities {
            identities.flush(coordinator);
        }
    }

    fn flush_frames(&mut self, coordinator: &dyn Coordinator) {
        while let Some(frame) = self.outbox.poll_send() {
            let result = send(coordinator, &frame.outgoing, frame.timing);
            if self.outbox.sent(frame, result, now_std()) == Sent::Stop {
                break;
            }
        }
    }

    /// Moves the server's outgoing frames into the outbox, with the timing of the request they
    /// answer, if any.
    fn take_server_frames(&mut self, timing: Option<AnswerTiming>) {
        while let Some(outgoing) = self.server.poll_transmit() {
            self.outbox.push(outgoing, timing);
        }
    }

    fn drain_events(&mut self) {
        if let Some(identities) = &mut self.identities
            && identities.drain_events(&mut self.server)
        {
            if let Some(persister) = &self.persister {
                persister.save_identities(identities.stored());
            }
            self.catalog.identity_learned();
            self.dirty = true;
        }
        while let Some(event) = self.server.poll_event() {
            self.dirty = true;
            if let (
                ServerEvent::TransferEnded {
                    progress,
                    started_at,
                },
                Some(persister),
            ) = (&event, &self.persister)
            {
                persister.append_history(history_record(progress, *started_at));
            }
            if let Some(events) = &self.events {
                let _ = events.try_send(event);
            }
        }
    }

    fn publish(&mut self, coordinator: &dyn Coordinator, port: &str) {
        self.dirty = false;
        let network = coordinator.network_info();
        let firmware = coordinator.firmware();
        let is_ezsp = firmware.as_ref().is_none_or(|f| f.protocol == "ezsp");
        let coordinator_status = status::CoordinatorStatus {
            port: port.to_owned(),
            state: format!("{:?}", coordinator.state()).to_lowercase(),
            protocol: firmware.as_ref().map(|f| f.protocol.to_owned()),
            firmware: firmware.and_then(|f| f.version),
            ezsp_version: network.filter(|_| is_ezsp).map(|n| n.protocol_version),
            channel: network.map(|n| n.channel),
            pan_id: network.map(|n| n.pan_id),
            extended_pan_id: network.map(|n| format!("{:016X}", n.extended_pan_id)),
            max_aps_payload: coordinator
                .max_aps_payload()
                .map(|m| u8::try_from(m).unwrap_or(u8::MAX)),
        };
        let catalog = status::CatalogStatus {
            sources: self.library_sources.clone(),
            cached_images: self.server.images().len(),
        };
        let devices = self
            .server
            .devices()
            .into_iter()
            .map(|d| status::DeviceStatus {
                model_id: d.identity.as_ref().and_then(|i| i.model_id.clone()),
                manufacturer_name: d
                    .identity
                    .as_ref()
                    .and_then(|i| i.manufacturer_name.clone()),
                power_source: d
                    .identity
                    .as_ref()
                    .and_then(|i| i.power_source_name())
                    .map(str::to_owned),
                ieee: d.ieee.map(|i| i.to_string()).unwrap_or_default(),
                nwk: d.nwk,
                manufacturer_code: d.manufacturer_code.unwrap_or_default(),
                image_type: d.image_type.unwrap_or_default(),
                current_version: d.current_file_version.unwrap_or_default(),
                available_version: d.available_file_version,
                approved: d.approved,
                held: d.held,
                queue_position: d.queue_position,
                withheld: d.withheld,
            })
            .collect();
        let mut latest: HashMap<(Option<Ieee>, u16), status::TransferStatus> = HashMap::new();
        for t in self.server.history().chain(self.server.progress().iter()) {
            latest.insert((t.ieee, t.nwk), status::TransferStatus::from(t));
        }
        let mut transfers: Vec<_> = latest.into_values().collect();
        transfers.sort_by(|a, b| a.ieee.cmp(&b.ieee).then(a.nwk.cmp(&b.nwk)));
        self.snapshot_tx.send_replace(StatusSnapshot {
            coordinator: coordinator_status,
            catalog,
            devices,
            transfers,
            latency_us: coordinator.answer_latency(),
            main_loop: Some(self.loop_lag.status()),
        });
    }
}

/// The history log's record of a transfer that just ended.
fn history_record(
    t: &crate::server::TransferProgress,
    started_at: std::time::Instant,
) -> HistoryRecord {
    let end_unix = unix_seconds();
    let lasted = now_std().saturating_duration_since(started_at).as_secs();
    HistoryRecord {
        ieee: t.ieee.map(|i| i.to_string()),
        nwk: t.nwk,
        manufacturer_code: t.manufacturer_code,
        image_type: t.image_type,
        from_version: t.from_version,
        to_version: t.file_version,
        image: crate::server::ImageKey {
            manufacturer_code: t.manufacturer_code,
            image_type: t.image_type,
            file_version: t.file_version,
        }
        .to_string(),
        bytes: t.offset,
        image_size: t.image_size,
        start_unix: end_unix.saturating_sub(lasted),
        end_unix,
        outcome: format!("{:?}", t.state).to_lowercase(),
        reason: t.failure.as_ref().map(|f| f.to_string()),
    }
}

fn send(
    coordinator: &dyn Coordinator,
    outgoing: &Outgoing,
    timing: Option<AnswerTiming>,
) -> Result<MessageTag, SendError> {
    match outgoing.destination {
        Destination::Unicast(device) => {
            let message = UnicastMessage::ota(
                Nwk(device.nwk),
                outgoing.source_endpoint,
                outgoing.destination_endpoint,
                outgoing.zcl_bytes.to_vec(),
            );
            match timing {
                Some(timing) => coordinator.send_answer(message, timing),
                None => coordinator.send_unicast(message),
            }
        }
        Destination::Broadcast(address) => coordinator.send_broadcast(BroadcastMessage {
            destination: Nwk(address),
            src_endpoint: outgoing.source_endpoint,
            dst_endpoint: outgoing.destination_endpoint,
            profile: PROFILE_HOME_AUTOMATION,
            cluster: CLUSTER_OTA_UPGRADE,
            radius: 0,
            payload: outgoing.zcl_bytes.to_vec(),
        }),
    }
}
