//! The image library: every verified image the server may offer, gathered from the configured
//! sources as they are on disk right now — local folders parsed file by file, and the cloud
//! sources' images that the catalog cache holds (verified by hash when the cache was opened).
//!
//! Each image is verified from a full read and then served from its file with bounded reads
//! ([`ImageFile`]): the library holds headers and metadata, not image bytes.
//!
//! Nothing here touches the network: the daemon serves from this library with no network at
//! all, and reloads it after a catalog refresh or a SIGHUP.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::image_file::ImageFile;
use crate::catalog::cache::Cache;
use crate::catalog::model::{CatalogEntry, ImageHash, ImageSize};
use crate::catalog::service::KnownDevice;
pub use crate::catalog::sources::{DEFAULT_CACHE_BYTES, source_name_in};
use crate::config::{Config, SourceKind};
use crate::ota::{ContainerCheck, OtaFile};
use crate::server::{CatalogRestrictions, DeviceStatus, OtaImage, Provenance};
use crate::zcl::Ieee;

use super::status::{MAX_SKIPPED_SHOWN, SourceStatus};

/// Files larger than this in a local folder are not OTA images (the parser's own cap is 16 MiB).
const MAX_LOCAL_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most files read from one local folder.
const MAX_LOCAL_FILES: usize = 4096;

/// What the library holds after a load.
#[derive(Debug, Default)]
pub struct ImageLibrary {
    /// Verified images, ready for the server.
    pub images: Vec<Arc<OtaImage>>,
    /// One line per configured source, for the status socket.
    pub sources: Vec<SourceStatus>,
    /// Files or entries that were skipped, with the reason (also logged).
    pub skipped: Vec<String>,
    /// What the catalogs say about each image beyond what the server needs, by the image's
    /// `provenance().location`.
    pub notes: HashMap<String, ImageNotes>,
}

/// What a catalog says about an image for people and for other OTA stacks (the index export and
/// Home Assistant show it; the server does not need it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageNotes {
    /// The catalog's file name.
    pub file_name: Option<String>,
    /// Release notes: text, or a URL.
    pub release_notes: Option<String>,
    /// Basic-cluster manufacturer names the image is restricted to.
    pub manufacturer_names: Vec<String>,
}

/// The loaded images with their notes, shared read-only with the index export and MQTT.
#[derive(Debug, Clone, Default)]
pub struct LibraryView {
    /// Verified images, as the server has them.
    pub images: Vec<Arc<OtaImage>>,
    /// By `provenance().location`.
    pub notes: HashMap<String, ImageNotes>,
}

/// A source's `name`, or its kind with its position appended unless `index` is 0.
/// Loads every source in `config` from disk.
pub fn load(config: &Config) -> ImageLibrary {
    let mut library = ImageLibrary::default();
    let needs_cache = config
        .catalog
        .sources
        .iter()
        .any(|s| s.kind != SourceKind::Directory);
    let cache = if needs_cache {
        match Cache::open(&config.catalog.cache_dir, DEFAULT_CACHE_BYTES) {
            Ok((cache, removed)) => {
                for r in removed {
                    tracing::warn!(removed = ?r, "catalog cache: removed a file that failed verification");
                }
                Some(cache)
            }
            Err(error) => {
                tracing::warn!(%error, "catalog cache unavailable; serving local folders only");
                library
                    .skipped
                    .push(format!("catalog cache unavailable: {error}"));
                None
            }
        }
    } else {
        None
    };
    for (index, source) in config.catalog.sources.iter().enumerate() {
        let name = source_name_in(config, index);
        let before = library.images.len();
        let skipped_before = library.skipped.len();
        let mut status = SourceStatus {
            name: name.clone(),
            kind: source.kind.config_name().to_owned(),
            ..SourceStatus::default()
        };
        match (source.kind, &source.path) {
            (SourceKind::Directory, Some(path)) => {
                load_directory(&name, path, &mut library, &mut status);
            }
            _ => {
                if let Some(cache) = &cache {
                    load_cached(&name, cache, &mut library, &mut status);
                }
            }
        }
        tracing::info!(
            source = %name,
            images = library.images.len() - before,
            "image source loaded"
        );
        let skipped = library.skipped.get(skipped_before..).unwrap_or_default();
        status.skipped_count = skipped.len();
        status.skipped = skipped.iter().take(MAX_SKIPPED_SHOWN).cloned().collect();
        library.sources.push(status);
    }
    library
}

fn load_directory(name: &str, dir: &Path, library: &mut ImageLibrary, status: &mut SourceStatus) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            let message = format!("{}: cannot read folder: {error}", dir.display());
            tracing::warn!(source = %name, "{message}");
            status.last_error = Some(message.clone());
            library.skipped.push(message);
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .take(MAX_LOCAL_FILES)
        .collect();
    paths.sort();
    for path in paths {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            _ => continue,
        };
        if meta.len() > MAX_LOCAL_FILE_BYTES {
            skip(
                library,
                name,
                format!(
                    "{}: {} bytes is too large for an OTA image",
                    path.display(),
                    meta.len()
                ),
            );
            continue;
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| OtaFile::parse(bytes).map_err(|e| e.to_string()))
            .and_then(|file| {
                verify_before_offering(&file, &path.display().to_string())?;
                Ok(file)
            });
        match parsed {
            Ok(file) => match OtaImage::from_file(&file) {
                Ok(image) => {
                    let image =
                        read_from_disk(image, &path, &meta, &file).with_provenance(Provenance {
                            source: name.to_owned(),
                            location: path.display().to_string(),
                        });
                    tracing::debug!(source = %name, file = %path.display(), image = %image.key(), "local image");
                    library.notes.insert(
                        image.provenance().location.clone(),
                        ImageNotes {
                            file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                            ..ImageNotes::default()
                        },
                    );
                    status.entries += 1;
                    library.images.push(image.shared());
                }
                Err(error) => skip(library, name, format!("{}: {error}", path.display())),
            },
            Err(error) => skip(library, name, format!("{}: {error}", path.display())),
        }
    }
}

fn load_cached(name: &str, cache: &Cache, library: &mut ImageLibrary, status: &mut SourceStatus) {
    let Some(stored) = cache.catalog(name) else {
        tracing::info!(source = %name, "no cached catalog yet");
        return;
    };
    let catalog = match stored.source_catalog() {
        Ok(catalog) => catalog,
        Err(error) => {
            skip(library, name, format!("cached catalog unreadable: {error}"));
            return;
        }
    };
    status.entries = catalog.entries.len();
    // One image per entry, even when two entries list the same file: each carries its own
    // restrictions (one file for two model ids, say). The bytes are read and checked once.
    let mut read: HashMap<ImageHash, Result<OtaImage, String>> = HashMap::new();
    for entry in &catalog.entries {
        if !cache.has_image(&entry.hash) {
            continue;
        }
        let base = read
            .entry(entry.hash)
            .or_insert_with(|| cached_image(name, cache, entry));
        match base {
            Ok(image)
                if (
                    image.key().manufacturer_code,
                    image.key().image_type,
                    image.key().file_version,
                ) != (
                    entry.manufacturer_code,
                    entry.image_type,
                    entry.file_version,
                ) =>
            {
                let reason = format!(
                    "{:04x}/{:04x}/{:08x}: the file's header says {}",
                    entry.manufacturer_code,
                    entry.image_type,
                    entry.file_version,
                    image.key()
                );
                skip(library, name, reason);
            }
            Ok(image) => {
                library.notes.insert(
                    image.provenance().location.clone(),
                    ImageNotes {
                        file_name: entry.display_name.clone(),
                        release_notes: entry.release_notes.clone(),
                        manufacturer_names: entry.restrictions.manufacturer_names.clone(),
                    },
                );
                library.images.push(
                    image
                        .clone()
                        .with_restrictions(restrictions(entry))
                        .shared(),
                );
            }
            Err(reason) => {
                let reason = std::mem::take(reason);
                if !reason.is_empty() {
                    skip(library, name, reason);
                }
            }
        }
    }
}

/// The catalog's restrictions of one entry, as the server checks them.
fn restrictions(entry: &CatalogEntry) -> CatalogRestrictions {
    let r = &entry.restrictions;
    CatalogRestrictions {
        min_current_version: r.min_file_version,
        max_current_version: r.max_file_version,
        min_hardware_version: r.hardware_version_min,
        max_hardware_version: r.hardware_version_max,
        models: r.model_id.iter().cloned().collect(),
        manufacturer_names: r.manufacturer_names.clone(),
    }
}

/// Reads one cached image (hashed once, when it was downloaded and stored), parses it, and
/// checks that it is what the catalog says it is.
fn cached_image(name: &str, cache: &Cache, entry: &CatalogEntry) -> Result<OtaImage, String> {
    let label = format!(
        "{:04x}/{:04x}/{:08x}",
        entry.manufacturer_code, entry.image_type, entry.file_version
    );
    // An entry without a published digest is served through the digest the cache pinned.
    let digest = cache
        .resolve(&entry.hash)
        .ok_or_else(|| format!("{label}: not pinned yet"))?;
    let path = cache
        .image_path(entry)
        .ok_or_else(|| format!("{label}: not in the cache"))?;
    // Taken before the bytes are read: a file changed after this is refused when served.
    let metadata = std::fs::metadata(&path).map_err(|e| format!("{label}: {e}"))?;
    let bytes = cache
        .read_image(&digest)
        .map_err(|e| format!("{label}: {e}"))?;
    let file = OtaFile::parse(bytes).map_err(|e| format!("{label}: {e}"))?;
    verify_before_offering(&file, &label).map_err(|e| format!("{label}: {e}"))?;
    let header = file.header();
    if header.manufacturer_code.0 != entry.manufacturer_code
        || header.image_type.0 != entry.image_type
        || header.file_version.0 != entry.file_version
    {
        return Err(format!(
            "{label}: the file's header says {:04x}/{:04x}/{:08x}",
            header.manufacturer_code.0, header.image_type.0, header.file_version.0
        ));
    }
    if let ImageSize::HeaderImageSize(size) = entry.size
        && u64::from(header.image_size) != size
    {
        return Err(format!(
            "{label}: the catalog says image_size {size}, the header {}",
            header.image_size
        ));
    }
    let image = OtaImage::from_file(&file).map_err(|e| format!("{label}: {e}"))?;
    let image = read_from_disk(image, &path, &metadata, &file).with_provenance(Provenance {
        source: name.to_owned(),
        location: digest.to_hex(),
    });
    Ok(image)
}

/// The verified `image` served from `path` with bounded reads from now on; its bytes in
/// memory are dropped with `file` (issue 18: the library is not held in RAM).
fn read_from_disk(
    image: OtaImage,
    path: &Path,
    metadata: &std::fs::Metadata,
    file: &OtaFile,
) -> OtaImage {
    let start = u64::try_from(file.magic_offset()).unwrap_or(u64::MAX);
    let reader = ImageFile::new(path, metadata, start, u64::from(image.size()));
    image.read_through(Arc::new(reader))
}

/// [`OtaFile::verify_integrity`]: an error is why the file is not offered; a container whose
/// integrity data cannot be read is offered with a warning.
fn verify_before_offering(file: &OtaFile, label: &str) -> Result<(), String> {
    match file.verify_integrity() {
        Ok(ContainerCheck::Unverifiable { reason }) => {
            tracing::warn!(file = %label, "offered without checking its container's block hashes: {reason}");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(error) => Err(format!("not offered: {error}")),
    }
}

fn skip(library: &mut ImageLibrary, source: &str, reason: String) {
    tracing::warn!(source = %source, "skipped: {reason}");
    library.skipped.push(reason);
}

/// Each device with a known IEEE address and what it claims to be: what the catalog's lazy
/// downloads are for, once the `ClaimGate` admits it. A device counts once it has sent a Query
/// Next Image Request; one the device table cannot name never does.
pub fn claims(statuses: &[DeviceStatus]) -> Vec<(Ieee, KnownDevice)> {
    statuses
        .iter()
        .filter_map(|status| Some((status.ieee?, known_device(status)?)))
        .collect()
}

/// The device as the OTA server knows it; `None` until it has sent a Query Next Image Request.
fn known_device(status: &DeviceStatus) -> Option<KnownDevice> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_need_a_query_and_an_ieee_address() {
        let status = |nwk, ieee: Option<u64>, mfr: Option<u16>| DeviceStatus {
            ieee: ieee.map(Ieee),
            nwk,
            manufacturer_code: mfr,
            image_type: mfr.map(|_| 25),
            current_file_version: mfr.map(|_| 7),
            hardware_version: None,
            ..DeviceStatus::default()
        };
        let found = claims(&[
            status(1, Some(1), Some(4489)),
            status(2, Some(2), None),
            status(3, None, Some(4489)),
            status(4, Some(4), Some(4364)),
        ]);
        let summary: Vec<(u64, u16)> = found
            .iter()
            .map(|(ieee, claim)| (ieee.0, claim.manufacturer_code))
            .collect();
        assert_eq!(summary, [(1, 4489), (4, 4364)]);
        assert_eq!(found[0].1.query().current_file_version, 7);
    }
}
