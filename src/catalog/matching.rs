//! `zigbee-otad catalog match`: what a device with a given identity would be offered from the
//! configured catalogs, and why each nearby entry was passed over. No image is downloaded:
//! local index files and folders are read as they are, cloud sources from the cache.
//!
//! The choice is the server's (ZCL8 §11.13.4 and zigbee-herdsman's `findMatchingOtaImage`
//! restrictions, as [`Restrictions::check`] applies them): among the entries for the device's
//! manufacturer code and image type (or the 0xFFFF wildcards) whose restrictions it meets and
//! that the policy allows (deny list, pins, downgrades), the newest; the same version listed
//! with two different digests of one algorithm is offered from neither.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::cache::Cache;
use super::model::{
    CatalogEntry, DenyRule, DeviceQuery, HashAlgorithm, ImageHash, ImageSize, Locator, Provenance,
    RestrictionMismatch, Restrictions, SourceKind, VersionPin, WILDCARD,
};
use super::provider::{SourceCatalog, parse_catalog};
use super::service::read_capped;
use super::sources::{DEFAULT_CACHE_BYTES, source_name_in};
use crate::config::Config;
use crate::ota::OtaFile;

/// Largest local index file read.
const MAX_LOCAL_INDEX: u64 = 32 * 1024 * 1024;
/// Largest `.ota` file read from a folder.
const MAX_LOCAL_FILE: u64 = 16 * 1024 * 1024;

/// The device asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MatchDevice {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The version it runs.
    pub file_version: u32,
    /// Its hardware version, if given.
    pub hardware_version: Option<u16>,
    /// Its Basic cluster model identifier, if given.
    pub model_id: Option<String>,
    /// Its Basic cluster manufacturer name, if given.
    pub manufacturer_name: Option<String>,
}

/// The image the device would be offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchOffer {
    /// The source listing it.
    pub source: String,
    /// Its file version.
    pub file_version: u32,
    /// Its SHA-512, when the catalog publishes one.
    pub sha512: Option<String>,
    /// Where it is downloaded from (`null` for a local file).
    pub url: Option<String>,
    /// The catalog's file name.
    pub file_name: Option<String>,
    /// Release notes, when the catalog has them.
    pub release_notes: Option<String>,
}

/// Why one nearby entry was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    /// The source listing it.
    pub source: String,
    /// Its file version.
    pub file_version: u32,
    /// The catalog's file name.
    pub file_name: Option<String>,
    /// The reason, in words (`wrong model`, `version range`, `hardware range`, `denied`, …).
    pub reason: String,
}

/// The answer of `catalog match`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchReport {
    /// The device asked about.
    pub device: MatchDevice,
    /// What it would be offered (`null`: nothing).
    pub offer: Option<MatchOffer>,
    /// Every nearby entry not offered, and why.
    pub reasons: Vec<PassedOver>,
    /// Sources that could not be read (no cached catalog yet, unreadable file, …).
    pub notes: Vec<String>,
}

/// The server's image-choice policy, as far as the choice of an image goes (the CLI builds it
/// from the server's configuration).
#[derive(Debug, Clone, Copy)]
pub struct MatchPolicy<'a> {
    /// Images never offered.
    pub deny: &'a [DenyRule],
    /// Version pins per manufacturer and image type.
    pub pins: &'a [VersionPin],
    /// Offer versions older than the device's.
    pub allow_downgrade: bool,
}

/// Answers for `device` from the catalogs `config` names, under the server's image-choice
/// policy (its deny list, pins and downgrade setting).
pub fn match_device(config: &Config, policy: MatchPolicy<'_>, device: MatchDevice) -> MatchReport {
    let (catalogs, notes) = gather(config);
    let query = DeviceQuery {
        manufacturer_code: device.manufacturer_code,
        image_type: device.image_type,
        current_file_version: device.file_version,
        hardware_version: device.hardware_version,
        model_id: device.model_id.as_deref(),
        manufacturer_name: device.manufacturer_name.as_deref(),
    };
    let pin = policy
        .pins
        .iter()
        .find(|p| {
            p.manufacturer_code == query.manufacturer_code && p.image_type == query.image_type
        })
        .map(|p| p.file_version);
    let mut eligible: Vec<(u8, &CatalogEntry)> = Vec::new();
    let mut reasons = Vec::new();
    for entry in catalogs.iter().flat_map(|c| &c.entries) {
        let code_fits = entry.manufacturer_code == query.manufacturer_code
            || entry.manufacturer_code == WILDCARD;
        let type_fits = entry.image_type == query.image_type || entry.image_type == WILDCARD;
        if !code_fits || !type_fits {
            continue;
        }
        let version = entry.file_version;
        let reason = match entry.restrictions.check(&query) {
            Err(mismatch) => Some(mismatch_words(mismatch, &entry.restrictions)),
            Ok(()) => {
                if let Some(rule) = policy.deny.iter().find(|r| {
                    r.matches(query.manufacturer_code, query.image_type, version)
                        || r.matches(entry.manufacturer_code, entry.image_type, version)
                }) {
                    Some(format!("denied ({})", rule.reason))
                } else if let Some(pinned) = pin.filter(|&p| p != version) {
                    Some(format!("pinned to {pinned:#010x}"))
                } else if version == query.current_file_version && pin.is_none() {
                    Some("the version the device runs".to_owned())
                } else if version < query.current_file_version
                    && pin.is_none()
                    && !policy.allow_downgrade
                {
                    Some("older than the device's version (downgrades not allowed)".to_owned())
                } else {
                    None
                }
            }
        };
        match reason {
            Some(reason) => reasons.push(passed(entry, reason)),
            None => {
                let rank = u8::from(entry.manufacturer_code != query.manufacturer_code)
                    + u8::from(entry.image_type != query.image_type);
                eligible.push((rank, entry));
            }
        }
    }
    // Newest first; the most specific listing, then the earliest source, at equal versions.
    eligible.sort_by_key(|(rank, e)| (std::cmp::Reverse(e.file_version), *rank));
    let mut offer = None;
    while let Some(&(rank, best)) = eligible.first() {
        let same: Vec<&CatalogEntry> = eligible
            .iter()
            .filter(|(r, e)| e.file_version == best.file_version && *r == rank)
            .map(|(_, e)| *e)
            .collect();
        let conflict = same.iter().any(|a| {
            same.iter()
                .any(|b| a.hash.algorithm() == b.hash.algorithm() && a.hash != b.hash)
        });
        if !conflict {
            offer = Some(offer_of(best));
            for (_, other) in eligible.iter().skip(1) {
                reasons.push(passed(
                    other,
                    format!(
                        "a newer or equal one is offered ({:#010x})",
                        best.file_version
                    ),
                ));
            }
            break;
        }
        for entry in &same {
            reasons.push(passed(
                entry,
                "listed with different digests by the sources; neither is offered".to_owned(),
            ));
        }
        eligible.retain(|(_, e)| e.file_version != best.file_version);
    }
    MatchReport {
        device,
        offer,
        reasons,
        notes,
    }
}

fn passed(entry: &CatalogEntry, reason: String) -> PassedOver {
    PassedOver {
        source: entry.provenance.source.clone(),
        file_version: entry.file_version,
        file_name: entry.display_name.clone(),
        reason,
    }
}

fn offer_of(entry: &CatalogEntry) -> MatchOffer {
    MatchOffer {
        source: entry.provenance.source.clone(),
        file_version: entry.file_version,
        sha512: match entry.hash {
            ImageHash::Sha512(_) => Some(entry.hash.to_hex()),
            ImageHash::Sha256(_) | ImageHash::Sha3_256(_) | ImageHash::Unpinned(_) => None,
        },
        url: match &entry.locator {
            Locator::Url(url) => Some(url.clone()),
            _ => None,
        },
        file_name: entry.display_name.clone(),
        release_notes: entry.release_notes.clone(),
    }
}

fn mismatch_words(mismatch: RestrictionMismatch, r: &Restrictions) -> String {
    match mismatch {
        RestrictionMismatch::ModelId => format!(
            "wrong model (the entry is for model `{}`)",
            r.model_id.as_deref().unwrap_or("")
        ),
        RestrictionMismatch::ManufacturerName => format!(
            "wrong manufacturer name (the entry is for {})",
            r.manufacturer_names.join(", ")
        ),
        RestrictionMismatch::BelowMinFileVersion | RestrictionMismatch::AboveMaxFileVersion => {
            format!(
                "version range (the entry is for devices running {}..={})",
                r.min_file_version
                    .map_or("0".to_owned(), |v| format!("{v:#010x}")),
                r.max_file_version
                    .map_or("any".to_owned(), |v| format!("{v:#010x}"))
            )
        }
        RestrictionMismatch::HardwareVersion => format!(
            "hardware range (the entry is for hardware {}..={})",
            r.hardware_version_min
                .map_or("0".to_owned(), |v| v.to_string()),
            r.hardware_version_max
                .map_or("any".to_owned(), |v| v.to_string())
        ),
    }
}

/// Every configured source's entries: local files read now, cloud catalogs from the cache.
fn gather(config: &Config) -> (Vec<SourceCatalog>, Vec<String>) {
    let mut catalogs = Vec::new();
    let mut notes = Vec::new();
    let cache = Cache::open(&config.catalog.cache_dir, DEFAULT_CACHE_BYTES).map(|(c, _)| c);
    for (index, section) in config.catalog.sources.iter().enumerate() {
        let name = source_name_in(config, index);
        match (section.kind, &section.path) {
            (SourceKind::Directory, Some(path)) => catalogs.push(folder(&name, path)),
            (kind, Some(path)) if kind.has_catalog_document() => {
                let provenance = Provenance {
                    source: name.clone(),
                    kind,
                };
                let url = path.display().to_string();
                let parsed = read_capped(path, MAX_LOCAL_INDEX)
                    .map_err(|e| e.to_string())
                    .and_then(|body| body.ok_or_else(|| "no such file".to_owned()))
                    .and_then(|body| {
                        parse_catalog(provenance.kind, &body, &url, &provenance)
                            .map_err(|e| e.to_string())
                    });
                match parsed {
                    Ok(parsed) => catalogs.push(SourceCatalog {
                        provenance,
                        entries: parsed.entries,
                    }),
                    Err(error) => notes.push(format!("{name}: {}: {error}", path.display())),
                }
            }
            _ => match &cache {
                Err(error) => notes.push(format!("{name}: catalog cache unavailable: {error}")),
                Ok(cache) => match cache.catalog(&name).map(|s| s.source_catalog()) {
                    None => notes.push(format!(
                        "{name}: no cached catalog yet (run `catalog refresh`)"
                    )),
                    Some(Err(error)) => {
                        notes.push(format!("{name}: cached catalog unreadable: {error}"))
                    }
                    Some(Ok(catalog)) => catalogs.push(catalog),
                },
            },
        }
    }
    (catalogs, notes)
}

/// A local folder's `.ota` files as catalog entries (their header says what they are for).
fn folder(name: &str, dir: &Path) -> SourceCatalog {
    let provenance = Provenance {
        source: name.to_owned(),
        kind: SourceKind::Directory,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    let entries = paths
        .iter()
        .filter_map(|path| {
            let bytes = read_capped(path, MAX_LOCAL_FILE).ok()??;
            let hash = ImageHash::compute(HashAlgorithm::Sha512, &bytes);
            let length = bytes.len() as u64;
            let file = OtaFile::parse(bytes).ok()?;
            let header = file.header();
            let mut restrictions = Restrictions::default();
            if let Some(range) = header.hardware_versions {
                restrictions.hardware_version_min = Some(range.minimum.0);
                restrictions.hardware_version_max = Some(range.maximum.0);
            }
            Some(CatalogEntry {
                provenance: provenance.clone(),
                manufacturer_code: header.manufacturer_code.0,
                image_type: header.image_type.0,
                file_version: header.file_version.0,
                size: ImageSize::FileLength(length),
                hash,
                locator: Locator::CacheKey(hash),
                restrictions,
                display_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                release_notes: None,
            })
        })
        .collect();
    SourceCatalog {
        provenance,
        entries,
    }
}

impl fmt::Display for MatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        write!(
            f,
            "device {:04x}/{:04x} running {:08x}",
            d.manufacturer_code, d.image_type, d.file_version
        )?;
        if let Some(hw) = d.hardware_version {
            write!(f, ", hardware {hw}")?;
        }
        if let Some(model) = &d.model_id {
            write!(f, ", model {model}")?;
        }
        if let Some(name) = &d.manufacturer_name {
            write!(f, ", manufacturer {name}")?;
        }
        writeln!(f)?;
        match &self.offer {
            Some(offer) => {
                writeln!(
                    f,
                    "offer: {:08x} from {} ({})",
                    offer.file_version,
                    offer.source,
                    offer.file_name.as_deref().unwrap_or("-")
                )?;
                if let Some(url) = &offer.url {
                    writeln!(f, "  url {url}")?;
                }
                if let Some(notes) = &offer.release_notes {
                    writeln!(f, "  release notes: {notes}")?;
                }
            }
            None => writeln!(f, "offer: nothing")?,
        }
        for r in &self.reasons {
            writeln!(
                f,
                "  passed over {:08x} from {} ({}): {}",
                r.file_version,
                r.source,
                r.file_name.as_deref().unwrap_or("-"),
                r.reason
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}
