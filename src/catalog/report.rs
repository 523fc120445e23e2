//! The backends of `zigbee-otad catalog list [--json]` and `zigbee-otad catalog refresh`
//! (ARCHITECTURE.md, "Command line"): what the cached catalogs offer, which images are on disk,
//! what each known device could get, and one refresh within the rate limits.
//!
//! `list` makes no network call. The known devices come from the caller; the CLI passes
//! [`load_known_devices`](super::service::load_known_devices)
//! (`state_dir/known-devices.json`, written by the daemon's refreshes), because the
//! coordinator's own `devices.txt` holds addresses only, not what a device runs.
//!
//! ```
//! use zigbee_otad::catalog::report::{CatalogListing, DeviceOffer};
//! use zigbee_otad::catalog::service::KnownDevice;
//!
//! let listing = CatalogListing {
//!     sources: Vec::new(),
//!     devices: vec![DeviceOffer {
//!         device: KnownDevice { manufacturer_code: 0x1189, image_type: 0x19,
//!                               current_file_version: 1, hardware_version: None,
//!                               model_id: None, manufacturer_name: None },
//!         offer: None,
//!         reason: Some("no source lists an image".into()),
//!     }],
//!     cached_image_bytes: 0,
//! };
//! assert!(listing.to_string().contains("1189/0019"));
//! assert_eq!(serde_json::to_value(&listing)?["devices"][0]["offer"], serde_json::Value::Null);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;

use serde::Serialize;

use super::cache::Cache;
use super::limiter::{Limiter, unix_seconds};
use super::merged::MergedCatalog;
use super::model::{CatalogEntry, Locator};
use super::scheduler::ImageHolds;
use super::service::{
    CatalogService, Clock, KnownDevice, Progress, RefreshReport, ServiceError, Usage, format_unix,
    ledger_path, read_ledger, source_limits, valid_source_name,
};
use super::sources::{DEFAULT_CACHE_BYTES, source_name_in};
use crate::config::Config;

/// What the cache holds, per source and per known device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogListing {
    /// One line per configured source, in config order.
    pub sources: Vec<SourceListing>,
    /// What each known device could get.
    pub devices: Vec<DeviceOffer>,
    /// Bytes of verified images in the cache.
    pub cached_image_bytes: u64,
}

/// One configured source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceListing {
    /// The source name.
    pub name: String,
    /// `ledvance`, `zigbee-ota-index` or `directory`.
    pub kind: String,
    /// When its cached catalog was fetched (seconds since the Unix epoch), if there is one.
    pub fetched_unix: Option<u64>,
    /// The cached catalog's entries.
    pub entries: Vec<EntryListing>,
    /// This month's usage, for cloud sources.
    pub usage: Option<Usage>,
    /// Why something is missing (no catalog yet, a local folder, an unreadable ledger).
    pub note: Option<String>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryListing {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
    /// Published size in bytes.
    pub size: u64,
    /// The catalog's name for it.
    pub name: Option<String>,
    /// True when the verified image is in the cache.
    pub downloaded: bool,
}

/// What one known device could get from the cached catalogs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceOffer {
    /// The device.
    pub device: KnownDevice,
    /// The best image for it, if any.
    pub offer: Option<Offer>,
    /// Why there is none.
    pub reason: Option<String>,
}

/// The image a device could get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// The source listing it.
    pub source: String,
    /// Its file version.
    pub file_version: u32,
    /// True when it is in the cache (the daemon serves it); false until a refresh fetches it.
    pub downloaded: bool,
}

/// Lists what the cache holds for every configured source and what each of `devices` could
/// get (see the module docs for where the devices come from). No network call.
pub fn list(config: &Config, devices: &[KnownDevice]) -> Result<CatalogListing, ServiceError> {
    let (cache, _) = Cache::open(&config.catalog.cache_dir, DEFAULT_CACHE_BYTES)?;
    let mut sources = Vec::new();
    let mut catalogs = Vec::new();
    for (index, section) in config.catalog.sources.iter().enumerate() {
        let name = source_name_in(config, index);
        let mut line = SourceListing {
            name: name.clone(),
            kind: section.kind.config_name().to_owned(),
            fetched_unix: None,
            entries: Vec::new(),
            usage: None,
            note: None,
        };
        let Some(limits) = source_limits(section) else {
            line.note = Some("a local folder: its files are served as they are".to_owned());
            sources.push(line);
            continue;
        };
        // Ledger files exist only for sources with a safe name; never build a path otherwise.
        let ledger = if valid_source_name(&name) {
            read_ledger(&ledger_path(&config.state_dir, &name))
        } else {
            Ok(None)
        };
        // The month's usage is shown for the month the command runs in.
        let now = Clock::System.now();
        match ledger {
            Ok(Some(ledger)) => {
                line.usage = Some(Usage::of(&Limiter::with_ledger(limits, ledger), now));
            }
            Ok(None) => line.usage = Some(Usage::of(&Limiter::new(limits, now), now)),
            Err(error) => line.note = Some(format!("ledger unreadable: {error}")),
        }
        match cache
            .catalog(&name)
            .map(|stored| (stored, stored.source_catalog()))
        {
            None => {
                line.note
                    .get_or_insert_with(|| "no cached catalog yet".to_owned());
            }
            Some((_, Err(error))) => {
                line.note = Some(format!("cached catalog unreadable: {error}"));
            }
            Some((stored, Ok(catalog))) => {
                line.fetched_unix = Some(unix_seconds(stored.fetched_at));
                line.entries = catalog
                    .entries
                    .iter()
                    .map(|entry| EntryListing {
                        manufacturer_code: entry.manufacturer_code,
                        image_type: entry.image_type,
                        file_version: entry.file_version,
                        size: entry.size.bytes(),
                        name: entry.display_name.clone(),
                        downloaded: is_cached(&cache, entry),
                    })
                    .collect();
                catalogs.push(catalog);
            }
        }
        sources.push(line);
    }
    let merged = MergedCatalog::new(catalogs);
    let devices = devices
        .iter()
        .map(|device| match merged.best_image(&device.query()) {
            Ok(entry) => DeviceOffer {
                device: device.clone(),
                offer: Some(Offer {
                    source: entry.provenance.source.clone(),
                    file_version: entry.file_version,
                    downloaded: is_cached(&cache, entry),
                }),
                reason: None,
            },
            Err(reason) => DeviceOffer {
                device: device.clone(),
                offer: None,
                reason: Some(reason.to_string()),
            },
        })
        .collect();
    Ok(CatalogListing {
        sources,
        devices,
        cached_image_bytes: cache.image_bytes(),
    })
}

/// One refresh for `catalog refresh`: opens the service (ledgers, cache), refreshes for the
/// devices in `state_dir/known-devices.json`, and reports; `progress` gets one call per
/// catalog call and per download. Limits are honoured: a source that may not be called yet is
/// reported as skipped, not waited for.
pub async fn refresh_once<F>(config: &Config, progress: F) -> Result<RefreshReport, ServiceError>
where
    F: FnMut(&Progress) + Send,
{
    let mut service = CatalogService::open(config)?;
    // No devices given: the service uses the ones saved by the daemon's last refresh.
    Ok(service
        .refresh_with_progress(&[], &ImageHolds::default(), progress)
        .await)
}

fn is_cached(cache: &Cache, entry: &CatalogEntry) -> bool {
    match &entry.locator {
        Locator::Url(_) => cache.image_path(entry).is_some(),
        _ => cache.has_image(&entry.hash),
    }
}

impl fmt::Display for CatalogListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for source in &self.sources {
            let downloaded = source.entries.iter().filter(|e| e.downloaded).count();
            write!(f, "{} ({})", source.name, source.kind)?;
            if let Some(fetched) = source.fetched_unix {
                write!(
                    f,
                    ": {} entries, {downloaded} downloaded, fetched {}",
                    source.entries.len(),
                    format_unix(fetched)
                )?;
            }
            writeln!(f)?;
            if let Some(usage) = &source.usage {
                writeln!(f, "  {usage}")?;
            }
            if let Some(note) = &source.note {
                writeln!(f, "  {note}")?;
            }
            if !source.entries.is_empty() {
                writeln!(
                    f,
                    "  {:<6} {:<6} {:<10} {:>9}  {:<10}  NAME",
                    "MFR", "TYPE", "VERSION", "SIZE", "CACHED"
                )?;
            }
            for entry in &source.entries {
                writeln!(
                    f,
                    "  {:04x}   {:04x}   {:08x}   {:>9}  {:<10}  {}",
                    entry.manufacturer_code,
                    entry.image_type,
                    entry.file_version,
                    entry.size,
                    if entry.downloaded { "yes" } else { "-" },
                    entry.name.as_deref().unwrap_or("")
                )?;
            }
        }
        writeln!(f, "cached images: {} bytes", self.cached_image_bytes)?;
        if self.devices.is_empty() {
            writeln!(f, "no known devices yet")?;
        } else {
            writeln!(f, "devices:")?;
        }
        for offer in &self.devices {
            let device = &offer.device;
            write!(
                f,
                "  {:04x}/{:04x} running {:08x}: ",
                device.manufacturer_code, device.image_type, device.current_file_version
            )?;
            match (&offer.offer, &offer.reason) {
                (Some(image), _) => writeln!(
                    f,
                    "{:08x} from {} ({})",
                    image.file_version,
                    image.source,
                    if image.downloaded {
                        "cached, served"
                    } else {
                        "not downloaded yet"
                    }
                )?,
                (None, reason) => writeln!(f, "nothing ({})", reason.as_deref().unwrap_or("-"))?,
            }
        }
        Ok(())
    }
}
