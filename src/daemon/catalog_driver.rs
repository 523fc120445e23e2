//! The catalog service's driver (thin IO glue around [`CatalogScheduler`]): it does what the
//! scheduler asks — opens the service (opening verifies the cache) or runs it — on a thread of
//! its own with its own small runtime, and hands each result back to the main loop through one
//! channel. The daemon's runtime has one thread, which also keeps the serial link's timers: the
//! catalog's network waits, hashing, fsyncs and pruning never run on it (ARCHITECTURE.md,
//! "Data flow").

use std::time::Instant;

use tokio::sync::mpsc;

use crate::catalog::scheduler::{CatalogAction, CatalogScheduler, RunKind};
use crate::catalog::service::KnownDevice;
use crate::catalog::service::{CatalogService, Clock, RefreshReport};
use crate::config::{Config, SourceKind};

/// What an open or a run hands back.
#[derive(Debug)]
pub enum CatalogDone {
    /// The service for the current configuration, or none (no cloud source, or it could not
    /// be opened: logged, and serving goes on from what is on disk).
    Opened(Option<CatalogService>),
    /// A run ended.
    Ran {
        /// The service, for the next run.
        service: CatalogService,
        /// What the run did.
        report: RefreshReport,
        /// Which run it was.
        kind: RunKind,
    },
}

/// The catalog service, its schedule and its last reports.
#[derive(Debug)]
pub struct CatalogDriver {
    scheduler: CatalogScheduler,
    /// `None` while it is being opened or runs (or there is none).
    service: Option<CatalogService>,
    done_tx: mpsc::Sender<CatalogDone>,
    done_rx: mpsc::Receiver<CatalogDone>,
    /// The last full refresh, and the last image-only fetch after it (for the status socket).
    last_refresh: Option<RefreshReport>,
    last_fetch: Option<RefreshReport>,
}

impl CatalogDriver {
    /// A driver whose first [`CatalogDriver::drive`] opens the service for the configuration.
    pub fn new(config: &Config) -> Self {
        let (done_tx, done_rx) = mpsc::channel(1);
        CatalogDriver {
            scheduler: CatalogScheduler::new(config.catalog.refresh_interval),
            service: None,
            done_tx,
            done_rx,
            last_refresh: None,
            last_fetch: None,
        }
    }

    /// Starts what the schedule asks for at `now`. `devices` (the claims a run downloads for:
    /// the daemon's `ClaimGate` admits them) is read only when a run starts.
    pub fn drive(
        &mut self,
        config: &Config,
        now: Instant,
        devices: impl FnOnce() -> Vec<KnownDevice>,
    ) {
        let mut devices = Some(devices);
        while let Some(action) = self.scheduler.poll(now) {
            match action {
                CatalogAction::Open => self.open(config, now),
                CatalogAction::Run(kind) => {
                    if kind == RunKind::Retry {
                        tracing::info!("trying the catalogs again after a failed refresh");
                    }
                    let devices = devices.take().map(|read| read()).unwrap_or_default();
                    self.run(kind, devices, now);
                }
            }
        }
    }

    /// When [`CatalogDriver::drive`] has work next without another event.
    pub fn deadline(&self) -> Option<Instant> {
        self.scheduler.poll_timeout()
    }

    /// The next open or run that ended (for the main loop's `select!`).
    pub async fn next_done(&mut self) -> Option<CatalogDone> {
        self.done_rx.recv().await
    }

    /// Takes back what an open or a run handed over. True when a run ended: the image library
    /// should be loaded again.
    pub fn on_done(&mut self, done: CatalogDone, now: Instant) -> bool {
        match done {
            CatalogDone::Opened(service) => {
                self.scheduler.opened(service.is_some(), now);
                self.service = service;
                false
            }
            CatalogDone::Ran {
                service,
                report,
                kind,
            } => {
                tracing::info!("catalog refresh finished:\n{report}");
                self.service = Some(service);
                if let Some(delay) = self.scheduler.finished(&report, now, Clock::System.now()) {
                    tracing::info!(
                        "a catalog refresh failed; trying again in {}",
                        humantime::format_duration(delay)
                    );
                }
                match kind {
                    RunKind::ImagesOnly => self.last_fetch = Some(report),
                    RunKind::Full | RunKind::Retry => {
                        self.last_refresh = Some(report);
                        self.last_fetch = None;
                    }
                }
                true
            }
        }
    }

    /// The OTA server has heard from `count` devices (more than at the last run fetches their
    /// images).
    pub fn devices_heard(&mut self, count: usize) {
        self.scheduler.devices_heard(count);
    }

    /// A device's identity was learned.
    pub fn identity_learned(&mut self) {
        self.scheduler.identity_learned();
    }

    /// SIGHUP applied `config`; `sources_changed` when its catalog section differs.
    pub fn configured(&mut self, config: &Config, sources_changed: bool, now: Instant) {
        self.scheduler
            .configured(config.catalog.refresh_interval, sources_changed, now);
    }

    /// The last full refresh, then the last image fetch after it.
    pub fn reports(&self) -> impl Iterator<Item = &RefreshReport> {
        self.last_refresh.iter().chain(&self.last_fetch)
    }

    fn open(&mut self, config: &Config, now: Instant) {
        self.service = None;
        let has_cloud_sources = config
            .catalog
            .sources
            .iter()
            .any(|s| s.kind != SourceKind::Directory);
        if !has_cloud_sources {
            self.scheduler.opened(false, now);
            return;
        }
        let config = config.clone();
        self.off_thread(now, move || {
            let service = CatalogService::open(&config)
                .map_err(|error| tracing::warn!(%error, "catalog refresh disabled"))
                .ok();
            CatalogDone::Opened(service)
        });
    }

    fn run(&mut self, kind: RunKind, devices: Vec<KnownDevice>, now: Instant) {
        let Some(mut service) = self.service.take() else {
            // The scheduler runs only an open service; should that ever differ, stop scheduling.
            self.scheduler.opened(false, now);
            return;
        };
        let holds = self.scheduler.holds().clone();
        self.off_thread(now, move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "no runtime for the catalog run");
                    return CatalogDone::Ran {
                        service,
                        report: RefreshReport::failed(format!("no runtime: {error}")),
                        kind,
                    };
                }
            };
            let report = runtime.block_on(async {
                match kind {
                    RunKind::Full | RunKind::Retry => service.refresh(&devices, &holds).await,
                    RunKind::ImagesOnly => service.fetch_images(&devices, &holds).await,
                }
            });
            CatalogDone::Ran {
                service,
                report,
                kind,
            }
        });
    }

    /// Runs `work` on a thread of its own and sends its result to the main loop. When no
    /// thread can be started, the schedule stops (logged) rather than blocking the main loop.
    fn off_thread(&mut self, now: Instant, work: impl FnOnce() -> CatalogDone + Send + 'static) {
        let done = self.done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("catalog".into())
            .spawn(move || {
                let _ = done.blocking_send(work());
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "no thread for the catalog service; catalog refresh disabled");
            self.scheduler.opened(false, now);
        }
    }
}
