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
//!    `path` is read from that file instead (stored when its bytes changed). A `ledvance` source
//!    follows its `mode` (the list, the documented `newer` calls per known device kind, or the
//!    list with `newer` as the fallback: see `ledvance`), all inside its limiter and ledger;
//! 2. then, over the merged cached catalogs, [`MergedCatalog::images_for`] the known devices,
//!    and a download of each of those images the cache does not hold yet (so each image is
//!    fetched at most once ever). Downloads from one source are paced by its minimum call
//!    interval (a few seconds); a longer hold (backoff, quota) defers them to a later refresh.
//!    An image under a hold (its download failed before; the [`scheduler`](super::scheduler)
//!    keeps the holds and passes them in) is not downloaded: its line says until when;
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
//!
//! The files: [`known_devices`] (what the lazy downloads are for), [`ledger`] (the per-source
//! quota files), `refresh` (one refresh's calls and downloads) and [`report`] (what a refresh
//! did, for the log, the CLI and the status socket).

pub mod known_devices;
pub mod ledger;
mod ledvance;
mod refresh;
pub mod report;

pub use known_devices::{KNOWN_DEVICES_FILE, KnownDevice, load_known_devices};
pub use ledger::ledger_path;
pub(crate) use ledger::{read_ledger, source_limits};
pub(crate) use report::format_unix;
pub use report::{
    CatalogOutcome, Download, DownloadOutcome, Progress, RefreshReport, SourceRefresh, Usage,
};

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::cache::{Cache, CacheError};
use super::limiter::Limiter;
use super::model::Provenance;
use super::model::SourceKind;
use super::provider::http::{
    CatalogClient, CatalogError, HttpSettings, SourceSpec, count_certificates,
};
use super::provider::ikea;
use super::scheduler::ImageHolds;
use super::sources::{DEFAULT_CACHE_BYTES, source_name_in};
use crate::config::{Config, LedvanceMode, SourceSection};
use ledger::{cloud_kind, load_limiter};

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
    /// A source's `ca_file` is unreadable or holds no certificate.
    #[error("catalog.source[{index}].ca_file: {message}")]
    CaFile {
        /// The source's position in the config.
        index: usize,
        /// What was wrong, naming the file.
        message: String,
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
    /// A `ledvance` source's mode (see `ledvance`); ignored for other kinds.
    mode: LedvanceMode,
    /// Its own client when it trusts CA certificates beside the system roots (IKEA's root
    /// for `ikea` sources, its `ca_file`); `None` for the shared one.
    client: Option<CatalogClient>,
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
                mode: section.mode.unwrap_or_default(),
                client: source_client(section, kind, http)
                    .map_err(|message| ServiceError::CaFile { index, message })?,
            });
        }
        Ok(CatalogService {
            cache,
            client,
            sources,
            state_dir: config.state_dir.clone(),
            clock,
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
    ///
    /// Images under one of `holds` are not downloaded (their line says until when); the
    /// scheduler keeps the holds ([`ImageHolds::absorb`] learns them from the report).
    pub async fn refresh(
        &mut self,
        known_devices: &[KnownDevice],
        holds: &ImageHolds,
    ) -> RefreshReport {
        self.refresh_with_progress(known_devices, holds, |_| {})
            .await
    }

    /// [`CatalogService::refresh`], calling `progress` after each catalog call and download.
    pub async fn refresh_with_progress<F>(
        &mut self,
        known_devices: &[KnownDevice],
        holds: &ImageHolds,
        progress: F,
    ) -> RefreshReport
    where
        F: FnMut(&Progress) + Send,
    {
        self.run(known_devices, true, holds, progress).await
    }

    /// Only the image downloads of a refresh, from the cached catalogs, with no catalog call:
    /// for a device heard for the first time between two scheduled refreshes (the catalog
    /// outcome is [`CatalogOutcome::NotRequested`]).
    pub async fn fetch_images(
        &mut self,
        known_devices: &[KnownDevice],
        holds: &ImageHolds,
    ) -> RefreshReport {
        self.run(known_devices, false, holds, |_| {}).await
    }
}

/// Largest `ca_file` read (a bundle of a few hundred certificates).
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// The client of a source that trusts CA certificates beside the system roots: IKEA's root
/// for an `ikea` source (its firmware host chains to it, as zigpy knows), and the source's
/// `ca_file`. `None` when the shared client serves.
fn source_client(
    section: &SourceSection,
    kind: SourceKind,
    http: HttpSettings,
) -> Result<Option<CatalogClient>, String> {
    let mut pem = Vec::new();
    if kind == SourceKind::Ikea {
        pem.extend_from_slice(ikea::ROOT_CA_PEM);
        pem.push(b'\n');
    }
    if let Some(path) = &section.ca_file {
        let bytes = match read_capped(path, MAX_CA_FILE_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(format!("{}: no such file", path.display())),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        };
        match count_certificates(&bytes) {
            Ok(0) => {
                return Err(format!(
                    "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                    path.display()
                ));
            }
            Ok(_) => pem.extend_from_slice(&bytes),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        }
    }
    if pem.is_empty() {
        return Ok(None);
    }
    CatalogClient::with_extra_roots(http, &pem)
        .map(Some)
        .map_err(|error| error.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_that_are_not_file_names_are_refused() {
        for bad in ["", "../x", ".hidden", "a/b", &"x".repeat(65)] {
            assert!(!valid_source_name(bad), "{bad:?}");
        }
        assert!(valid_source_name("ledvance-eu_2"));
    }
}
