//! The catalog service (IO): the scheduled refresh of the cloud sources, the lazy download of
//! the images known devices could take, the cache's size cap, and the per-source quota
//! ledgers kept in `state_dir` (CATALOGS.md, "Consequence for a gateway"; ARCHITECTURE.md
//! principle 4, "The cloud is a source, not a dependency").
//!
//! One [`CatalogService::refresh`] does, for each cloud source in config order:
//!
//! 1. a (conditional) catalog call through [`CatalogClient::refresh_source`], if its
//!    [`Limiter`] allows one now; a source that may not be called yet is skipped and the report
//!    says until when, it is never waited for. A `zigbee-ota-index` configured with a local
//!    `path` is read from that file instead (stored when its bytes changed);
//! 2. then, over the merged cached catalogs, [`MergedCatalog::images_for`] the known devices,
//!    and a download of each of those images the cache does not hold yet (so each image is
//!    fetched at most once ever). Downloads from one source are paced by its minimum call
//!    interval (a few seconds); a longer hold (backoff, quota) defers them to a later refresh.
//!    An image whose download failed (bytes that do not match the published digest, a full
//!    disk, a cut connection) is not downloaded again for 1 min, doubling per failure up to a
//!    day (in memory: a restart tries at once); a catalog that corrects the digest names a new
//!    image, which is fetched at once;
//! 3. prunes images no cached catalog references, down to the cache's size cap;
//! 4. writes every source's ledger atomically (`state_dir/ledger-<source>.json`, temp file,
//!    fsync, rename, fsync of the directory), so a restart does not reset the month. A ledger
//!    is also written before each call with that call counted (write-ahead) and after it with
//!    its outcome, so a crash in the middle of a refresh forgets none; when the write-ahead
//!    fails (a full disk), the call is not made.
//!
//! Every network outcome ends up in the [`RefreshReport`] and the log; the previous cache stays
//! in service whatever happens. The daemon serves what the cache holds after its next
//! `daemon::images::load`, so nothing else couples the two.
//!
//! Ledger files: a missing one starts a fresh month. A corrupt or unreadable one is moved aside
//! (`ledger-<source>.json.corrupt`) and the source starts *held back*: as if a call had just
//! failed with the longest backoff (a day for LEDVANCE), with the month's usage counted from
//! zero. Assuming the whole month's budget spent would stop updates for up to a month because
//! of one bad file; a day's pause bounds the damage while keeping a restart loop (which could
//! corrupt the file each time) from hammering the API.
//!
//! The devices the daemon passes are also kept in `state_dir/known-devices.json` (when the list
//! is not empty), so `zigbee-otad catalog list|refresh` can work without the daemon.
//!
//! ```
//! use zigbee_otad::catalog::service::KnownDevice;
//!
//! let device = KnownDevice {
//!     manufacturer_code: 0x1189,
//!     image_type: 0x0019,
//!     current_file_version: 0x0010_2428,
//!     hardware_version: None,
//!     model_id: None,
//!     manufacturer_name: None,
//! };
//! let json = serde_json::to_string(&[device.clone()])?;
//! let back: Vec<KnownDevice> = serde_json::from_str(&json)?;
//! assert_eq!(back, [device.clone()]);
//! assert_eq!(device.query().image_type, 0x0019);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::cache::{Cache, CacheError, StoredCatalog, Validators};
use super::limiter::{Ledger, LimitReason, Limiter, LimiterConfig, RetryAt, unix_seconds};
use super::merged::MergedCatalog;
use super::model::{CatalogEntry, DeviceQuery, ImageHash, Provenance, SourceKind};
use super::provider::http::{CatalogClient, CatalogError, HttpSettings, Refreshed, SourceSpec};
use super::provider::parse_catalog;
use super::sources::{DEFAULT_CACHE_BYTES, source_name_in};
use crate::config::{self, Config, SourceSection};

/// Longest wait for a source's minimum call interval between two calls of one refresh; any
/// longer hold defers the call to a later refresh.
const MAX_PACING_WAIT: Duration = Duration::from_secs(120);
/// How long an image whose download failed is not downloaded again (doubling per failure).
const FAILED_IMAGE_HOLD: Duration = Duration::from_secs(60);
/// The longest such hold.
const FAILED_IMAGE_HOLD_MAX: Duration = Duration::from_secs(24 * 3600);
/// Largest ledger file read (the limiter rejects anything bigger than its own cap anyway).
const MAX_LEDGER_FILE_BYTES: u64 = 64 * 1024;
/// Largest known-devices file read.
const MAX_KNOWN_DEVICES_BYTES: u64 = 1024 * 1024;
/// Most devices kept in the known-devices file.
const MAX_KNOWN_DEVICES: usize = 4096;
/// The known-devices file in `state_dir`.
pub const KNOWN_DEVICES_FILE: &str = "known-devices.json";

/// The catalog service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The catalog cache could not be opened.
    #[error("catalog cache: {0}")]
    Cache(#[from] CacheError),
    /// The HTTP client could not be built.
    #[error("catalog client: {0}")]
    Client(#[from] CatalogError),
    /// The state directory could not be created.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A source name that cannot name a ledger or cache file.
    #[error(
        "catalog.source[{index}].name {name:?}: must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"
    )]
    BadSourceName {
        /// The source's position in the config.
        index: usize,
        /// The name.
        name: String,
    },
    /// Two cloud sources share a name (and would share a ledger and a cache file).
    #[error("catalog.source[{index}].name {name:?}: an earlier source already has this name")]
    DuplicateSourceName {
        /// The second source's position in the config.
        index: usize,
        /// The name.
        name: String,
    },
    /// The known-devices file is unreadable.
    #[error("known devices {}: {message}", path.display())]
    KnownDevices {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// A device the gateway has heard from, as far as choosing its image goes: what the lazy
/// downloads are for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KnownDevice {
    /// Manufacturer code from its Query Next Image Request.
    pub manufacturer_code: u16,
    /// Image type from that request.
    pub image_type: u16,
    /// The file version it runs.
    pub current_file_version: u32,
    /// Its hardware version, when it sent one.
    pub hardware_version: Option<u16>,
    /// Its Basic cluster model identifier, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Its Basic cluster manufacturer name, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer_name: Option<String>,
}

impl KnownDevice {
    /// The device as the OTA server knows it (`OtaServer::devices()`); `None` until it has
    /// sent a Query Next Image Request.
    pub fn from_status(status: &crate::server::DeviceStatus) -> Option<Self> {
        Some(KnownDevice {
            manufacturer_code: status.manufacturer_code?,
            image_type: status.image_type?,
            current_file_version: status.current_file_version?,
            hardware_version: status.hardware_version,
            model_id: status.identity.as_ref().and_then(|i| i.model_id.clone()),
            manufacturer_name: status
                .identity
                .as_ref()
                .and_then(|i| i.manufacturer_name.clone()),
        })
    }

    /// The lookup for the merged catalog.
    pub fn query(&self) -> DeviceQuery<'_> {
        DeviceQuery {
            manufacturer_code: self.manufacturer_code,
            image_type: self.image_type,
            current_file_version: self.current_file_version,
            hardware_version: self.hardware_version,
            model_id: self.model_id.as_deref(),
            manufacturer_name: self.manufacturer_name.as_deref(),
        }
    }
}

/// Every distinct [`KnownDevice`] among the server's devices, sorted.
pub fn known_devices(statuses: &[crate::server::DeviceStatus]) -> Vec<KnownDevice> {
    let mut devices: Vec<KnownDevice> = statuses
        .iter()
        .filter_map(KnownDevice::from_status)
        .collect();
    devices.sort_unstable();
    devices.dedup();
    devices
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownDevicesFile {
    devices: Vec<KnownDevice>,
}

/// The devices the last daemon refresh knew (`state_dir/known-devices.json`); empty when the
/// file does not exist yet.
pub fn load_known_devices(state_dir: &Path) -> Result<Vec<KnownDevice>, ServiceError> {
    let path = state_dir.join(KNOWN_DEVICES_FILE);
    let error = |message: String| ServiceError::KnownDevices {
        path: path.clone(),
        message,
    };
    let bytes = match read_capped(&path, MAX_KNOWN_DEVICES_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Vec::new()),
        Err(io_error) => return Err(error(io_error.to_string())),
    };
    let file: KnownDevicesFile =
        serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
    if file.devices.len() > MAX_KNOWN_DEVICES {
        return Err(error(format!(
            "{} devices, more than the {MAX_KNOWN_DEVICES} kept",
            file.devices.len()
        )));
    }
    Ok(file.devices)
}

/// Where the service takes the time from: the wall clock, or a virtual clock for tests (its
/// waits advance it instantly).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Clock {
    /// `SystemTime::now()` and real sleeps.
    #[default]
    System,
    /// A shared virtual time.
    Virtual(VirtualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => wall_clock(),
            Clock::Virtual(clock) => clock.now(),
        }
    }

    async fn sleep(&self, duration: Duration) {
        match self {
            Clock::System => tokio::time::sleep(duration).await,
            Clock::Virtual(clock) => clock.advance(duration),
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    // The one place the catalog reads the clock: the service is the IO layer.
    SystemTime::now()
}

/// A virtual time shared by clones; waits on it advance it instantly.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<Mutex<SystemTime>>);

impl VirtualClock {
    /// A virtual clock showing `start`.
    pub fn new(start: SystemTime) -> Self {
        VirtualClock(Arc::new(Mutex::new(start)))
    }

    /// The virtual time.
    pub fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the virtual time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

/// How [`CatalogService::open_with`] sets the service up.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Where the time comes from.
    pub clock: Clock,
    /// Bytes of images kept beyond those a cached catalog references (the daemon's loader
    /// opens the cache with the same default).
    pub cache_cap_bytes: u64,
    /// HTTP timeouts and the catalog size cap.
    pub http: HttpSettings,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            clock: Clock::System,
            cache_cap_bytes: DEFAULT_CACHE_BYTES,
            http: HttpSettings::default(),
        }
    }
}

/// One catalog source with its limiter (for its calls and its image downloads).
#[derive(Debug)]
struct CloudSource {
    spec: SourceSpec,
    /// A `zigbee-ota-index` given as a local file: read from disk, its images downloaded.
    local_index: Option<PathBuf>,
    limiter: Limiter,
    ledger_path: PathBuf,
    /// Set when the ledger file was corrupt at open; reported by the first refresh.
    ledger_note: Option<String>,
}

impl CloudSource {
    /// Writes the ledger after a call, so a crash mid-refresh does not forget it.
    fn save_ledger(&self) -> Result<(), String> {
        let json = self.limiter.ledger().to_json();
        write_atomically(&self.ledger_path, json.as_bytes()).map_err(|error| {
            let message = format!("saving the ledger {}: {error}", self.ledger_path.display());
            tracing::error!(source = %self.spec.provenance.source, "{message}");
            message
        })
    }
}

/// The catalog service: owns the cache, the HTTP client and one limiter per cloud source.
/// It is `Send`, so the daemon can move it into a task of its own for each refresh.
#[derive(Debug)]
pub struct CatalogService {
    cache: Cache,
    client: CatalogClient,
    sources: Vec<CloudSource>,
    state_dir: PathBuf,
    clock: Clock,
    /// Images whose download failed (bytes that did not verify, a full disk, a dropped
    /// connection): not downloaded again before the time given, so a lying catalog or a full
    /// disk cannot make every refresh fetch the same bytes again. A catalog that corrects a
    /// digest names a different image, which is not held.
    held_images: HashMap<ImageHash, ImageHold>,
}

/// A failed image download's hold: until when, after how many failures in a row.
#[derive(Debug, Clone, Copy)]
struct ImageHold {
    until: SystemTime,
    failures: u32,
}

impl ImageHold {
    /// The hold after one more failure at `now`: [`FAILED_IMAGE_HOLD`], doubled for each
    /// failure before, at most [`FAILED_IMAGE_HOLD_MAX`].
    fn after_failure(previous: Option<ImageHold>, now: SystemTime) -> Self {
        let failures = previous.map_or(0, |hold| hold.failures).saturating_add(1);
        let doublings = failures.saturating_sub(1).min(16);
        let hold = FAILED_IMAGE_HOLD
            .saturating_mul(1u32 << doublings)
            .min(FAILED_IMAGE_HOLD_MAX);
        ImageHold {
            until: now + hold,
            failures,
        }
    }
}

impl CatalogService {
    /// Opens the cache, loads each cloud source's ledger from `state_dir` and builds the HTTP
    /// client with the configured timeouts. Uses the wall clock.
    pub fn open(config: &Config) -> Result<Self, ServiceError> {
        let http = HttpSettings {
            connect_timeout: config.catalog.connect_timeout,
            request_timeout: config.catalog.request_timeout,
            ..HttpSettings::default()
        };
        Self::open_with(
            config,
            ServiceOptions {
                http,
                ..ServiceOptions::default()
            },
        )
    }

    /// [`CatalogService::open`] with chosen options (tests use a [`VirtualClock`]).
    pub fn open_with(config: &Config, options: ServiceOptions) -> Result<Self, ServiceError> {
        let ServiceOptions {
            clock,
            cache_cap_bytes,
            http,
        } = options;
        let now = clock.now();
        fs::create_dir_all(&config.state_dir).map_err(|source| ServiceError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
        let (cache, removed) = Cache::open(&config.catalog.cache_dir, cache_cap_bytes)?;
        for file in removed {
            tracing::warn!(removed = ?file, "catalog cache: removed a file that failed verification");
        }
        let client = CatalogClient::new(http)?;
        let mut sources: Vec<CloudSource> = Vec::new();
        for (index, section) in config.catalog.sources.iter().enumerate() {
            let Some((kind, limits)) = cloud_kind(section) else {
                continue;
            };
            let name = source_name_in(config, index);
            if !valid_source_name(&name) {
                return Err(ServiceError::BadSourceName { index, name });
            }
            if sources.iter().any(|s| s.spec.provenance.source == name) {
                return Err(ServiceError::DuplicateSourceName { index, name });
            }
            // The config allows exactly one of `url` and `path` for cloud kinds.
            let (url, local_index) = match (&section.url, &section.path) {
                (Some(url), _) => (url.clone(), None),
                (None, Some(path)) => (path.display().to_string(), Some(path.clone())),
                (None, None) => continue,
            };
            let ledger_path = ledger_path(&config.state_dir, &name);
            let (limiter, ledger_note) = load_limiter(&ledger_path, limits, now);
            sources.push(CloudSource {
                spec: SourceSpec {
                    provenance: Provenance { source: name, kind },
                    url,
                },
                local_index,
                limiter,
                ledger_path,
                ledger_note,
            });
        }
        Ok(CatalogService {
            cache,
            client,
            sources,
            state_dir: config.state_dir.clone(),
            clock,
            held_images: HashMap::new(),
        })
    }

    /// Calls and bytes each cloud source used this month, against its limits.
    pub fn usage(&self) -> Vec<(String, Usage)> {
        let now = self.clock.now();
        self.sources
            .iter()
            .map(|s| (s.spec.provenance.source.clone(), Usage::of(&s.limiter, now)))
            .collect()
    }

    /// One refresh (see the module docs). Never waits for a source that may not be called
    /// yet, never panics on a network outcome; everything that happened is in the report.
    ///
    /// `known_devices` are the devices heard from; when the list is empty (a daemon that just
    /// started), the devices saved by the last refresh that had some are used.
    pub async fn refresh(&mut self, known_devices: &[KnownDevice]) -> RefreshReport {
        self.refresh_with_progress(known_devices, |_| {}).await
    }

    /// [`CatalogService::refresh`], calling `progress` after each catalog call and download.
    pub async fn refresh_with_progress<F>(
        &mut self,
        known_devices: &[KnownDevice],
        progress: F,
    ) -> RefreshReport
    where
        F: FnMut(&Progress) + Send,
    {
        self.run(known_devices, true, progress).await
    }

    /// Only the image downloads of a refresh, from the cached catalogs, with no catalog call:
    /// for a device heard for the first time between two scheduled refreshes (the catalog
    /// outcome is [`CatalogOutcome::NotRequested`]).
    pub async fn fetch_images(&mut self, known_devices: &[KnownDevice]) -> RefreshReport {
        self.run(known_devices, false, |_| {}).await
    }

    async fn run<F>(
        &mut self,
        known_devices: &[KnownDevice],
        fetch_catalogs: bool,
        mut progress: F,
    ) -> RefreshReport
    where
        F: FnMut(&Progress) + Send,
    {
        let started = self.clock.now();
        let mut general_errors = Vec::new();
        let known_devices = if known_devices.is_empty() {
            load_known_devices(&self.state_dir).unwrap_or_else(|error| {
                tracing::warn!(%error, "saved devices unreadable; downloading for none");
                general_errors.push(error.to_string());
                Vec::new()
            })
        } else {
            known_devices.to_vec()
        };
        let mut lines: Vec<SourceRefresh> = Vec::with_capacity(self.sources.len());
        for source in &mut self.sources {
            let name = source.spec.provenance.source.clone();
            let mut line = SourceRefresh::new(&name, source.spec.provenance.kind);
            if let Some(note) = source.ledger_note.take() {
                line.errors.push(note);
            }
            if !fetch_catalogs {
                line.catalog = CatalogOutcome::NotRequested;
                lines.push(line);
                continue;
            }
            let now = self.clock.now();
            let result = match &source.local_index {
                Some(path) => refresh_local_index(&source.spec, path, &mut self.cache, now),
                None => match save_ledger_ahead(&source.limiter, &source.ledger_path, now) {
                    Ok(()) => {
                        self.client
                            .refresh_source(&source.spec, &mut self.cache, &mut source.limiter, now)
                            .await
                    }
                    Err(error) => Err(CatalogError::LedgerNotSaved(error)),
                },
            };
            let outcome = match result {
                Ok(refreshed) if refreshed.changed => CatalogOutcome::Changed {
                    rejected: refreshed.catalog.rejected.len(),
                },
                Ok(_) => CatalogOutcome::Unchanged,
                Err(CatalogError::RateLimited { retry, .. }) => CatalogOutcome::skipped(retry),
                Err(error) => {
                    let error = error.to_string();
                    tracing::warn!(source = %name, %error, "catalog refresh failed; the cached catalog stays");
                    line.errors.push(error.clone());
                    CatalogOutcome::Failed { error }
                }
            };
            if !matches!(outcome, CatalogOutcome::Skipped { .. })
                && let Err(error) = source.save_ledger()
            {
                line.errors.push(error);
            }
            tracing::info!(source = %name, outcome = %outcome, "catalog refresh");
            progress(&Progress::Catalog {
                source: name,
                outcome: outcome.clone(),
            });
            line.catalog = outcome;
            lines.push(line);
        }

        // What the cache serves now, from every source whose catalog is readable.
        let mut catalogs = Vec::new();
        for (source, line) in self.sources.iter().zip(lines.iter_mut()) {
            let Some(stored) = self.cache.catalog(&source.spec.provenance.source) else {
                continue;
            };
            match stored.source_catalog() {
                Ok(catalog) => {
                    line.entries = catalog.entries.len();
                    catalogs.push(catalog);
                }
                Err(error) => line
                    .errors
                    .push(format!("cached catalog unreadable: {error}")),
            }
        }
        let merged = MergedCatalog::new(catalogs);
        let queries: Vec<DeviceQuery<'_>> = known_devices.iter().map(KnownDevice::query).collect();
        let all_wanted = merged.images_for(queries.iter());
        // Only what known devices want counts as referenced: a catalog listing an image does
        // not keep it cached (issue 18: the cap must be able to prune).
        let referenced: HashSet<ImageHash> = all_wanted.iter().map(|e| e.hash).collect();
        let wanted: Vec<CatalogEntry> = all_wanted
            .into_iter()
            .filter(|entry| self.cache.image_path(entry).is_none())
            .cloned()
            .collect();
        let mut pruned = Vec::new();
        match self.cache.prune(&referenced) {
            Ok(report) => pruned.extend(report.removed),
            Err(error) => general_errors.push(format!("pruning the cache: {error}")),
        }
        for entry in wanted {
            let Some(index) = self
                .sources
                .iter()
                .position(|s| s.spec.provenance == entry.provenance)
            else {
                continue;
            };
            let (Some(source), Some(line)) = (self.sources.get_mut(index), lines.get_mut(index))
            else {
                continue;
            };
            let held = self
                .held_images
                .get(&entry.hash)
                .copied()
                .filter(|hold| hold.until > self.clock.now());
            let download = match held {
                Some(hold) => held_download(&entry, hold),
                None if !self.cache.has_room_for(entry.size.bytes(), &referenced) => {
                    cache_full_download(&entry, self.cache.max_image_bytes(), self.clock.now())
                }
                None => {
                    download(
                        &self.client,
                        &self.clock,
                        &mut self.cache,
                        (&mut source.limiter, &source.ledger_path),
                        &source.spec.url,
                        &entry,
                    )
                    .await
                }
            };
            match &download.outcome {
                DownloadOutcome::Failed { .. } => {
                    let previous = self.held_images.get(&entry.hash).copied();
                    self.held_images.insert(
                        entry.hash,
                        ImageHold::after_failure(previous, self.clock.now()),
                    );
                }
                DownloadOutcome::Stored { .. } => {
                    self.held_images.remove(&entry.hash);
                }
                DownloadOutcome::Deferred { .. } => {}
            }
            if let DownloadOutcome::Failed { error } = &download.outcome {
                line.errors.push(error.clone());
            }
            if !matches!(download.outcome, DownloadOutcome::Deferred { .. })
                && let Err(error) = source.save_ledger()
            {
                line.errors.push(error);
            }
            progress(&Progress::Download {
                source: line.name.clone(),
                download: download.clone(),
            });
            line.downloads.push(download);
        }

        let mut report = RefreshReport {
            started_unix: unix_seconds(started),
            finished_unix: 0,
            sources: lines,
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: general_errors,
        };
        match self.cache.prune(&referenced) {
            Ok(after) => {
                report.pruned = pruned
                    .iter()
                    .chain(&after.removed)
                    .map(|removed| removed.path.display().to_string())
                    .collect();
                report.cache_over_cap_by = after.over_cap_by;
            }
            Err(error) => report.errors.push(format!("pruning the cache: {error}")),
        }

        let finished = self.clock.now();
        for (source, line) in self.sources.iter().zip(report.sources.iter_mut()) {
            line.usage = Usage::of(&source.limiter, finished);
            // Also saves what changed without a call (a held-back ledger after a corrupt one).
            if let Err(error) = source.save_ledger() {
                line.errors.push(error);
            }
        }
        if !known_devices.is_empty()
            && let Err(error) = save_known_devices(&self.state_dir, &known_devices)
        {
            report
                .errors
                .push(format!("saving the known devices: {error}"));
        }
        report.finished_unix = unix_seconds(finished);
        report
    }
}

/// Writes the ledger as it will be once the next call has started (write-ahead): a call is
/// made only when a restart right after it would know about it. When the limiter refuses the
/// call anyway there is nothing to write. If the call then does not happen (it is deferred),
/// the file counts one call too many until the next save: the safe side.
fn save_ledger_ahead(limiter: &Limiter, path: &Path, now: SystemTime) -> Result<(), String> {
    let mut ahead = limiter.clone();
    if ahead.begin_call(now, 0).is_err() {
        return Ok(());
    }
    write_atomically(path, ahead.ledger().to_json().as_bytes())
        .map_err(|error| format!("the ledger {} cannot be saved: {error}", path.display()))
}

/// Writes `state_dir/known-devices.json` atomically: the devices sorted, without duplicates,
/// at most [`MAX_KNOWN_DEVICES`].
fn save_known_devices(state_dir: &Path, devices: &[KnownDevice]) -> io::Result<()> {
    let mut devices = devices.to_vec();
    devices.sort_unstable();
    devices.dedup();
    devices.truncate(MAX_KNOWN_DEVICES);
    let json = serde_json::to_vec(&KnownDevicesFile { devices }).map_err(io::Error::other)?;
    write_atomically(&state_dir.join(KNOWN_DEVICES_FILE), &json)
}

/// Reads a `zigbee-ota-index` kept as a local file and stores it in the cache when its bytes
/// differ from the cached ones ("unchanged" otherwise). A file that does not parse is not
/// stored: the previous catalog stays.
fn refresh_local_index(
    spec: &SourceSpec,
    path: &Path,
    cache: &mut Cache,
    now: SystemTime,
) -> Result<Refreshed, CatalogError> {
    let name = &spec.provenance.source;
    let kind = spec.provenance.kind;
    let unreadable = |message: String| CatalogError::Transport {
        url: spec.url.clone(),
        message,
    };
    let body = match read_capped(path, HttpSettings::default().max_catalog_bytes) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(unreadable("no such file".to_owned())),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let catalog = parse_catalog(kind, &body, &spec.url, &spec.provenance).map_err(|error| {
        CatalogError::Decode {
            source_name: name.clone(),
            error,
        }
    })?;
    let unchanged = cache
        .catalog(name)
        .is_some_and(|stored| stored.kind == kind && stored.url == spec.url && stored.body == body);
    if !unchanged {
        cache.store_catalog(StoredCatalog {
            source: name.clone(),
            kind,
            url: spec.url.clone(),
            validators: Validators::default(),
            fetched_at: now,
            body,
        })?;
    }
    Ok(Refreshed {
        changed: !unchanged,
        catalog,
    })
}

/// Downloads one image, first waiting out the source's minimum call interval when that is
/// short; any other hold defers it.
async fn download(
    client: &CatalogClient,
    clock: &Clock,
    cache: &mut Cache,
    (limiter, ledger_path): (&mut Limiter, &Path),
    source_url: &str,
    entry: &CatalogEntry,
) -> Download {
    if let Err(retry) = limiter.check(clock.now())
        && retry.reason == LimitReason::MinInterval
    {
        let wait = retry
            .at
            .duration_since(clock.now())
            .unwrap_or(Duration::ZERO);
        if wait <= MAX_PACING_WAIT {
            clock.sleep(wait).await;
        }
    }
    let now = clock.now();
    let (_, bytes_before) = limiter.usage(now);
    let result = match save_ledger_ahead(limiter, ledger_path, now) {
        Ok(()) => {
            client
                .ensure_image(entry, source_url, cache, limiter, now)
                .await
        }
        Err(error) => Err(CatalogError::LedgerNotSaved(error)),
    };
    let (_, bytes_after) = limiter.usage(now);
    let outcome = match result {
        Ok(()) => DownloadOutcome::Stored {
            bytes: bytes_after.saturating_sub(bytes_before),
        },
        Err(CatalogError::RateLimited { retry, .. }) => DownloadOutcome::Deferred {
            until_unix: unix_seconds(retry.at),
            reason: reason_name(retry.reason).to_owned(),
        },
        Err(error) => DownloadOutcome::Failed {
            error: error.to_string(),
        },
    };
    let label = format!(
        "{:04x}/{:04x}/{:08x}",
        entry.manufacturer_code, entry.image_type, entry.file_version
    );
    match &outcome {
        DownloadOutcome::Failed { error } => {
            tracing::warn!(source = %entry.provenance.source, image = %label, %error, "image download failed; nothing stored");
        }
        other => {
            tracing::info!(source = %entry.provenance.source, image = %label, outcome = %other, "image download");
        }
    }
    Download {
        manufacturer_code: entry.manufacturer_code,
        image_type: entry.image_type,
        file_version: entry.file_version,
        sha: entry.hash.to_hex(),
        outcome,
    }
}

/// The report line of a download not tried because the image failed before.
fn held_download(entry: &CatalogEntry, hold: ImageHold) -> Download {
    deferred_download(
        entry,
        hold.until,
        format!("failed {} time(s) before", hold.failures),
    )
}

/// A download not started: the image would not fit under the cache's cap beside the images
/// known devices want. Tried again at the next refresh (a device may have moved on).
fn cache_full_download(entry: &CatalogEntry, cap: u64, now: SystemTime) -> Download {
    deferred_download(
        entry,
        now,
        format!("the image cache is full (cap {cap} bytes)"),
    )
}

fn deferred_download(entry: &CatalogEntry, until: SystemTime, reason: String) -> Download {
    Download {
        manufacturer_code: entry.manufacturer_code,
        image_type: entry.image_type,
        file_version: entry.file_version,
        sha: entry.hash.to_hex(),
        outcome: DownloadOutcome::Deferred {
            until_unix: unix_seconds(until),
            reason,
        },
    }
}

/// The model kind and limits of a cloud source; `None` for a local folder.
fn cloud_kind(section: &SourceSection) -> Option<(SourceKind, LimiterConfig)> {
    match section.kind {
        config::SourceKind::Ledvance => Some((SourceKind::Ledvance, LimiterConfig::ledvance())),
        config::SourceKind::ZigbeeOtaIndex => {
            Some((SourceKind::ZigbeeOtaIndex, LimiterConfig::static_host()))
        }
        config::SourceKind::Directory => None,
    }
}

/// The limits a cloud source's ledger is measured against (for `catalog list`).
pub(crate) fn source_limits(section: &SourceSection) -> Option<LimiterConfig> {
    cloud_kind(section).map(|(_, limits)| limits)
}

/// `state_dir/ledger-<source>.json`.
pub fn ledger_path(state_dir: &Path, source: &str) -> PathBuf {
    state_dir.join(format!("ledger-{source}.json"))
}

/// Reads a ledger file: `Ok(None)` when there is none.
pub(crate) fn read_ledger(path: &Path) -> Result<Option<Ledger>, String> {
    match read_capped(path, MAX_LEDGER_FILE_BYTES) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => Ledger::from_json(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// The limiter for a source from its ledger file (see the module docs for a corrupt one).
fn load_limiter(path: &Path, limits: LimiterConfig, now: SystemTime) -> (Limiter, Option<String>) {
    match read_ledger(path) {
        Ok(Some(ledger)) => (Limiter::with_ledger(limits, ledger), None),
        Ok(None) => (Limiter::new(limits, now), None),
        Err(error) => {
            let aside = path.with_extension("json.corrupt");
            let moved = match fs::rename(path, &aside) {
                Ok(()) => format!("moved to {}", aside.display()),
                Err(rename_error) => format!("could not be moved aside: {rename_error}"),
            };
            let note = format!(
                "ledger {} unreadable ({error}), {moved}; holding this source back for {}",
                path.display(),
                humantime::format_duration(limits.backoff_max)
            );
            tracing::error!("{note}");
            (
                Limiter::with_ledger(limits, held_back(limits, now)),
                Some(note),
            )
        }
    }
}

/// A ledger as if a call had just failed with the longest backoff.
fn held_back(limits: LimiterConfig, now: SystemTime) -> Ledger {
    let millis = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    Ledger {
        last_call_unix_ms: Some(millis(now)),
        blocked_until_unix_ms: Some(millis(now + limits.backoff_max)),
        consecutive_failures: 1,
        ..Ledger::new(now)
    }
}

/// Reads at most `cap` bytes of `path` (an error if it is longer); `Ok(None)` if absent.
pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Replaces `path` atomically and durably (see [`crate::atomic_file`]); the ledger and the
/// known devices are private state.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    Ok(crate::atomic_file::write(
        path,
        bytes,
        crate::atomic_file::OWNER_ONLY,
    )?)
}

/// True when `name` can name a ledger and a cache file (the cache's own rule).
pub(crate) fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn reason_name(reason: LimitReason) -> &'static str {
    match reason {
        LimitReason::MinInterval => "min-interval",
        LimitReason::MonthlyCalls => "monthly-calls",
        LimitReason::MonthlyBytes => "monthly-bytes",
        LimitReason::Backoff => "backoff",
    }
}

/// Calls and bytes used this month against the monthly limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Calls started this month.
    pub calls: u64,
    /// The monthly call limit (`u64::MAX`, `null` in JSON, for none).
    #[serde(serialize_with = "limit_or_null")]
    pub monthly_calls: u64,
    /// Response bytes received this month.
    pub bytes: u64,
    /// The monthly byte limit (`u64::MAX`, `null` in JSON, for none).
    #[serde(serialize_with = "limit_or_null")]
    pub monthly_bytes: u64,
}

fn limit_or_null<S: serde::Serializer>(limit: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    if *limit == u64::MAX {
        serializer.serialize_none()
    } else {
        serializer.serialize_u64(*limit)
    }
}

impl Usage {
    /// A limiter's usage for the month containing `now`.
    pub fn of(limiter: &Limiter, now: SystemTime) -> Self {
        let (calls, bytes) = limiter.usage(now);
        Usage {
            calls,
            monthly_calls: limiter.config().monthly_calls,
            bytes,
            monthly_bytes: limiter.config().monthly_bytes,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |value: u64| {
            if value == u64::MAX {
                "unlimited".to_owned()
            } else {
                value.to_string()
            }
        };
        write!(
            f,
            "{} of {} calls, {} of {} bytes this month",
            self.calls,
            limit(self.monthly_calls),
            self.bytes,
            limit(self.monthly_bytes)
        )
    }
}

/// What became of a source's catalog call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CatalogOutcome {
    /// A new catalog was stored.
    Changed {
        /// Entries the parser refused (each is logged by the parser's error).
        rejected: usize,
    },
    /// 304 Not Modified: the cached catalog stays.
    Unchanged,
    /// The limiter held the call back; no request was made.
    Skipped {
        /// When a call may be made (seconds since the Unix epoch).
        until_unix: u64,
        /// `min-interval`, `backoff`, `monthly-calls` or `monthly-bytes`.
        reason: String,
    },
    /// The call failed; the cached catalog stays.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// No call was asked for ([`CatalogService::fetch_images`]); the cached catalog was used.
    NotRequested,
}

impl CatalogOutcome {
    fn skipped(retry: RetryAt) -> Self {
        CatalogOutcome::Skipped {
            until_unix: unix_seconds(retry.at),
            reason: reason_name(retry.reason).to_owned(),
        }
    }
}

impl fmt::Display for CatalogOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogOutcome::Changed { rejected: 0 } => f.write_str("new catalog stored"),
            CatalogOutcome::Changed { rejected } => {
                write!(f, "new catalog stored ({rejected} entries refused)")
            }
            CatalogOutcome::Unchanged => f.write_str("unchanged (304)"),
            CatalogOutcome::Skipped { until_unix, reason } => {
                write!(
                    f,
                    "not called ({reason}) until {}",
                    format_unix(*until_unix)
                )
            }
            CatalogOutcome::Failed { error } => write!(f, "failed: {error}"),
            CatalogOutcome::NotRequested => f.write_str("not requested (cached copy used)"),
        }
    }
}

/// What became of one image download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DownloadOutcome {
    /// Downloaded, verified and stored.
    Stored {
        /// Bytes received.
        bytes: u64,
    },
    /// The limiter held it back; no request was made. A later refresh tries again.
    Deferred {
        /// When a call may be made (seconds since the Unix epoch).
        until_unix: u64,
        /// `min-interval`, `backoff`, `monthly-calls` or `monthly-bytes` (the limiter held it
        /// back), or `failed N time(s) before` (this image's download failed, see
        /// [`CatalogService::refresh`]).
        reason: String,
    },
    /// The download failed or did not verify; nothing was stored.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for DownloadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadOutcome::Stored { bytes } => write!(f, "stored ({bytes} bytes)"),
            DownloadOutcome::Deferred { until_unix, reason } => {
                write!(f, "deferred ({reason}) until {}", format_unix(*until_unix))
            }
            DownloadOutcome::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// One image download attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Download {
    /// The image's manufacturer code.
    pub manufacturer_code: u16,
    /// Its image type.
    pub image_type: u16,
    /// Its file version.
    pub file_version: u32,
    /// Its published digest (hex).
    pub sha: String,
    /// What happened.
    pub outcome: DownloadOutcome,
}

impl fmt::Display for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "image {:04x}/{:04x}/{:08x}: {}",
            self.manufacturer_code, self.image_type, self.file_version, self.outcome
        )
    }
}

/// One source's part of a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRefresh {
    /// The source name (as in the cache, the logs and the status).
    pub name: String,
    /// `ledvance` or `zigbee-ota-index`.
    pub kind: String,
    /// The catalog call.
    pub catalog: CatalogOutcome,
    /// Entries in the catalog now cached for this source.
    pub entries: usize,
    /// Image downloads attempted.
    pub downloads: Vec<Download>,
    /// Every failure, in order.
    pub errors: Vec<String>,
    /// This month's usage after the refresh.
    pub usage: Usage,
}

impl SourceRefresh {
    fn new(name: &str, kind: SourceKind) -> Self {
        SourceRefresh {
            name: name.to_owned(),
            kind: kind.config_name().to_owned(),
            catalog: CatalogOutcome::Unchanged,
            entries: 0,
            downloads: Vec::new(),
            errors: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// Bytes of images stored by this refresh.
    pub fn downloaded_bytes(&self) -> u64 {
        self.downloads
            .iter()
            .map(|d| match d.outcome {
                DownloadOutcome::Stored { bytes } => bytes,
                _ => 0,
            })
            .sum()
    }
}

/// What one refresh did (the log, `catalog refresh`, and the status socket show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// When it started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// When it finished.
    pub finished_unix: u64,
    /// One line per cloud source, in config order.
    pub sources: Vec<SourceRefresh>,
    /// Cache files removed by pruning.
    pub pruned: Vec<String>,
    /// Bytes the cache is still over its cap (referenced images are never pruned).
    pub cache_over_cap_by: u64,
    /// Failures not tied to one source.
    pub errors: Vec<String>,
}

impl RefreshReport {
    /// True when nothing failed (skips and deferrals are not failures).
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.sources.iter().all(|s| s.errors.is_empty())
    }
}

impl fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.sources {
            writeln!(f, "{} ({}): catalog {}", line.name, line.kind, line.catalog)?;
            writeln!(f, "  {} entries cached; {}", line.entries, line.usage)?;
            for download in &line.downloads {
                writeln!(f, "  {download}")?;
            }
            let downloaded = line.downloaded_bytes();
            if downloaded > 0 {
                writeln!(f, "  {downloaded} image bytes downloaded")?;
            }
            // Failed downloads already named their error on their own line.
            let shown = |error: &String| {
                line.downloads.iter().any(
                    |d| matches!(&d.outcome, DownloadOutcome::Failed { error: e } if e == error),
                )
            };
            for error in line.errors.iter().filter(|error| !shown(error)) {
                writeln!(f, "  error: {error}")?;
            }
        }
        if !self.pruned.is_empty() {
            writeln!(f, "pruned {} unreferenced images", self.pruned.len())?;
        }
        if self.cache_over_cap_by > 0 {
            writeln!(
                f,
                "cache is {} bytes over its cap (all referenced)",
                self.cache_over_cap_by
            )?;
        }
        for error in &self.errors {
            writeln!(f, "error: {error}")?;
        }
        Ok(())
    }
}

/// A step of a refresh, for a progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A source's catalog call ended (or was skipped).
    Catalog {
        /// The source.
        source: String,
        /// What happened.
        outcome: CatalogOutcome,
    },
    /// An image download ended (or was deferred).
    Download {
        /// The source.
        source: String,
        /// What happened.
        download: Download,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Catalog { source, outcome } => write!(f, "{source}: catalog {outcome}"),
            Progress::Download { source, download } => write!(f, "{source}: {download}"),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub(crate) fn format_unix(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26T00:00:00Z.
    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_651_200)
    }

    #[test]
    fn known_devices_need_a_query_and_are_deduplicated() {
        let status = |nwk, mfr: Option<u16>| crate::server::DeviceStatus {
            ieee: None,
            nwk,
            manufacturer_code: mfr,
            image_type: mfr.map(|_| 25),
            current_file_version: mfr.map(|_| 7),
            hardware_version: None,
            ..crate::server::DeviceStatus::default()
        };
        let devices = known_devices(&[
            status(1, Some(4489)),
            status(2, None),
            status(3, Some(4489)),
            status(4, Some(4364)),
        ]);
        assert_eq!(
            devices
                .iter()
                .map(|d| d.manufacturer_code)
                .collect::<Vec<_>>(),
            [4364, 4489]
        );
        assert_eq!(devices[1].query().current_file_version, 7);
    }

    #[test]
    fn corrupt_ledger_holds_the_source_back_and_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "ledvance");
        fs::write(&path, b"{not json").unwrap();
        let limits = LimiterConfig::ledvance();
        let (limiter, note) = load_limiter(&path, limits, start());
        assert!(note.unwrap().contains("unreadable"));
        assert!(!path.exists());
        assert!(dir.path().join("ledger-ledvance.json.corrupt").exists());
        let retry = limiter
            .check(start() + Duration::from_secs(3600))
            .unwrap_err();
        assert_eq!(retry.reason, LimitReason::Backoff);
        assert_eq!(retry.at, start() + limits.backoff_max);
        assert!(limiter.check(start() + limits.backoff_max).is_ok());
        assert_eq!(limiter.usage(start()), (0, 0));
    }

    #[test]
    fn missing_ledger_is_a_fresh_month_and_a_saved_one_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "ledvance");
        let (mut limiter, note) = load_limiter(&path, LimiterConfig::ledvance(), start());
        assert!(note.is_none());
        assert!(limiter.check(start()).is_ok());
        limiter.begin_call(start(), 100).unwrap();
        limiter.record_bytes(start(), 42);
        write_atomically(&path, limiter.ledger().to_json().as_bytes()).unwrap();
        let (reloaded, _) = load_limiter(&path, LimiterConfig::ledvance(), start());
        assert_eq!(reloaded.ledger(), limiter.ledger());
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("ledger-ledvance.json")]);
    }

    proptest::proptest! {
        #[test]
        fn known_devices_file_round_trips(
            raw in proptest::collection::vec(
                (proptest::prelude::any::<(u16, u16, u32)>(), proptest::option::of(0u16..4)),
                0..40,
            )
        ) {
            let devices: Vec<KnownDevice> = raw
                .iter()
                .map(|&((manufacturer_code, image_type, current_file_version), hardware_version)| {
                    KnownDevice { manufacturer_code, image_type, current_file_version, hardware_version, ..KnownDevice::default() }
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            save_known_devices(dir.path(), &devices).unwrap();
            let mut expected = devices.clone();
            expected.sort_unstable();
            expected.dedup();
            proptest::prop_assert_eq!(load_known_devices(dir.path()).unwrap(), expected);
        }
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b' '; 11]).unwrap();
        assert!(read_capped(&path, 10).is_err());
        assert_eq!(read_capped(&path, 11).unwrap().unwrap().len(), 11);
        assert!(
            read_capped(&dir.path().join("absent"), 10)
                .unwrap()
                .is_none()
        );
        fs::write(
            dir.path().join(KNOWN_DEVICES_FILE),
            vec![b' '; 2 * MAX_KNOWN_DEVICES_BYTES as usize],
        )
        .unwrap();
        assert!(load_known_devices(dir.path()).is_err());
    }

    #[test]
    fn source_names_that_are_not_file_names_are_refused() {
        for bad in ["", "../x", ".hidden", "a/b", &"x".repeat(65)] {
            assert!(!valid_source_name(bad), "{bad:?}");
        }
        assert!(valid_source_name("ledvance-eu_2"));
    }

    #[test]
    fn report_text_names_every_outcome() {
        let report = RefreshReport {
            started_unix: 1_795_651_200,
            finished_unix: 1_795_651_206,
            sources: vec![SourceRefresh {
                name: "ledvance".into(),
                kind: "ledvance".into(),
                catalog: CatalogOutcome::Skipped {
                    until_unix: 1_795_651_260,
                    reason: "backoff".into(),
                },
                entries: 2,
                downloads: vec![Download {
                    manufacturer_code: 0x1189,
                    image_type: 0x19,
                    file_version: 0x0010_2428,
                    sha: "ab".into(),
                    outcome: DownloadOutcome::Stored { bytes: 180_052 },
                }],
                errors: vec!["boom".into()],
                usage: Usage {
                    calls: 2,
                    monthly_calls: 100_000,
                    bytes: 180_100,
                    monthly_bytes: 100_000_000,
                },
            }],
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: Vec::new(),
        };
        let text = report.to_string();
        for expected in [
            "not called (backoff) until 2026-11-26T00:01:00Z",
            "image 1189/0019/00102428: stored (180052 bytes)",
            "2 of 100000 calls, 180100 of 100000000 bytes this month",
            "error: boom",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        assert!(!report.is_clean());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["sources"][0]["catalog"]["state"], "skipped");
        assert_eq!(json["sources"][0]["usage"]["monthly_calls"], 100_000);
        assert_eq!(
            json["sources"][0]["downloads"][0]["outcome"]["bytes"],
            180_052
        );
    }
}
