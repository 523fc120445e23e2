//! The on-disk cache (`cache_dir`, ARCHITECTURE.md "Configuration"; STYLE.md rule 29): each
//! source's last catalog and every image, stored by digest, so the daemon serves with no
//! network at all.
//!
//! Layout (every name is made here, never taken from a catalog):
//!
//! ```text
//! cache_dir/catalogs/<source name>.json     envelope: validators, fetch time, body + its sha256
//! cache_dir/images/sha256-<hex>             image bytes (or sha512-<hex>, sha3-256-<hex>)
//! cache_dir/pins.json                        unpinned key → sha512 of the verified file (`pins`)
//! cache_dir/*/.tmp-…                        files being written; never read, removed at open
//! ```
//!
//! Every write is atomic: a temp file in the same directory, `fsync`, `rename`, `fsync` of the
//! directory. An image is hashed once, when it is downloaded and verified before it is stored
//! under its digest; a later open trusts a digest-named image (its size is checked against the
//! catalog's when it is looked up) unless asked to re-verify ([`Verify::Rehash`]), so a reload
//! does not read hundreds of megabytes again. Catalogs are checked against the digest in their
//! envelope at every open. Partial, foreign and oversized files, and what fails a check, are
//! removed and reported. A byte cap is kept by pruning images no known device wants (then
//! wanted ones, when they alone exceed it), and by starting no download that would not fit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::{CatalogEntry, HashAlgorithm, ImageHash, ImageSize, Provenance, SourceKind};
use super::partial_image::{MAX_IMAGE_DOWNLOAD_BYTES, PartialImage};
use super::pins::{ExpectedImage, MAX_PINS_FILE_BYTES, Pins};
use super::provider::{CatalogParseError, ParsedCatalog, SourceCatalog, parse_catalog};

const CATALOG_DIR: &str = "catalogs";
const IMAGE_DIR: &str = "images";
const PINS_FILE: &str = "pins.json";
use crate::atomic_file::{self, TEMP_PREFIX};
/// Longest source name accepted as a file name.
const MAX_SOURCE_NAME: usize = 64;
/// Largest image file read back: the 16 MiB OTA cap plus the wrapper allowance. Anything
/// larger was not written by this cache and is removed unread.
const MAX_IMAGE_FILE_BYTES: u64 = MAX_IMAGE_DOWNLOAD_BYTES + ImageSize::WRAPPER_ALLOWANCE;
/// Largest catalog envelope read back (the catalogs' own caps plus room for escaping).
const MAX_ENVELOPE_BYTES: u64 = 80 * 1024 * 1024;

/// A cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A file system call failed.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `write`, `rename`, …).
        operation: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Image bytes do not have the published digest.
    #[error("image does not match its published digest {expected}")]
    HashMismatch {
        /// The digest the catalog published.
        expected: ImageHash,
    },
    /// An image with no published digest is not the file its entry describes.
    #[error("image {expected} (no published digest) refused: {reason}")]
    Unverified {
        /// What the entry says.
        expected: ExpectedImage,
        /// What did not fit.
        reason: String,
    },
    /// Image bytes do not have the published size.
    #[error("image is {actual} bytes, which does not fit the published size {expected:?}")]
    SizeMismatch {
        /// The size the catalog published.
        expected: ImageSize,
        /// The bytes received.
        actual: u64,
    },
    /// A source name that cannot be a file name (`[A-Za-z0-9_-]`, at most 64 characters,
    /// not starting with `.`).
    #[error("source name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    BadSourceName {
        /// The name given.
        name: String,
    },
    /// A catalog body that is not UTF-8 (catalogs are JSON).
    #[error("catalog body for source {source_name:?} is not UTF-8")]
    NotUtf8 {
        /// The source.
        source_name: String,
    },
}

/// HTTP validators kept per source for conditional requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// The last `ETag`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The last `Last-Modified`, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// One source's last catalog as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCatalog {
    /// The configured source name.
    pub source: String,
    /// Its kind, to pick the parser.
    pub kind: SourceKind,
    /// The URL it was fetched from (LEDVANCE download URLs are built on it).
    pub url: String,
    /// Validators for the next conditional request.
    pub validators: Validators,
    /// When it was fetched (or last confirmed unchanged).
    pub fetched_at: SystemTime,
    /// The response body, unmodified.
    pub body: Vec<u8>,
}

impl StoredCatalog {
    /// The source's provenance.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            source: self.source.clone(),
            kind: self.kind,
        }
    }

    /// Parses the stored body with its kind's parser: how the daemon starts serving from the
    /// cache with no network.
    pub fn parse(&self) -> Result<ParsedCatalog, CatalogParseError> {
        parse_catalog(self.kind, &self.body, &self.url, &self.provenance())
    }

    /// The parsed entries, ready for [`MergedCatalog::new`](super::merged::MergedCatalog::new).
    pub fn source_catalog(&self) -> Result<SourceCatalog, CatalogParseError> {
        Ok(SourceCatalog {
            provenance: self.provenance(),
            entries: self.parse()?.entries,
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    source: String,
    kind: SourceKind,
    url: String,
    validators: Validators,
    fetched_unix_ms: u64,
    body_sha256: String,
    body: String,
}

/// Something found at open and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The file.
    pub path: PathBuf,
    /// Why it went.
    pub reason: RemovalReason,
}

/// Why a file was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalReason {
    /// A temp file left by an interrupted write.
    PartialWrite,
    /// Contents do not match the digest.
    Corrupt,
    /// A name this cache never writes.
    Foreign,
    /// Pruned: no known device wants it and the cache was over its cap.
    Unreferenced,
    /// Pruned although wanted: the wanted images alone were over the cap.
    OverCap,
    /// Larger than any OTA file may be: removed without reading it.
    TooLarge,
}

/// The outcome of [`Cache::prune`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Images removed.
    pub removed: Vec<Removed>,
    /// Bytes still above the cap (0: referenced images are removed too when needed).
    pub over_cap_by: u64,
}

/// The cache directory, with what it held when opened and what was stored since.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_image_bytes: u64,
    images: HashMap<ImageHash, u64>,
    catalogs: HashMap<String, StoredCatalog>,
    pins: Pins,
}

/// How [`Cache::open_with`] treats the stored images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verify {
    /// Trust a digest-named image: it was hashed when it was stored (the default).
    #[default]
    Trust,
    /// Read and hash every image again; remove those that no longer match.
    Rehash,
}

impl Cache {
    /// Opens (creating if needed) the cache in `dir`, keeping at most `max_image_bytes` of
    /// images ([`Cache::prune`] enforces it). Images are trusted ([`Verify::Trust`]); what is
    /// partial, foreign, oversized or a corrupt catalog is removed and listed in the report.
    pub fn open(dir: &Path, max_image_bytes: u64) -> Result<(Self, Vec<Removed>), CacheError> {
        Self::open_with(dir, max_image_bytes, Verify::Trust)
    }

    /// [`Cache::open`], re-verifying every image with [`Verify::Rehash`].
    pub fn open_with(
        dir: &Path,
        max_image_bytes: u64,
        verify: Verify,
    ) -> Result<(Self, Vec<Removed>), CacheError> {
        let mut removed = Vec::new();
        for sub in [CATALOG_DIR, IMAGE_DIR] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| CacheError::Io {
                operation: "create directory",
                path: path.clone(),
                source,
            })?;
        }
        let mut images = HashMap::new();
        for (path, name) in list_files(&dir.join(IMAGE_DIR))? {
            let verdict = if name.starts_with(TEMP_PREFIX) {
                Err(RemovalReason::PartialWrite)
            } else if let Some(hash) = ImageHash::from_cache_key(&name) {
                match fs::metadata(&path) {
                    Ok(meta) if !meta.is_file() => Err(RemovalReason::Corrupt),
                    Ok(meta) if meta.len() > MAX_IMAGE_FILE_BYTES => Err(RemovalReason::TooLarge),
                    Ok(meta) => match verify {
                        Verify::Trust => Ok((hash, meta.len())),
                        Verify::Rehash => match fs::read(&path) {
                            Ok(bytes) if hash.matches(&bytes) => Ok((hash, len_u64(&bytes))),
                            _ => Err(RemovalReason::Corrupt),
                        },
                    },
                    Err(_) => Err(RemovalReason::Corrupt),
                }
            } else {
                Err(RemovalReason::Foreign)
            };
            match verdict {
                Ok((hash, length)) => {
                    images.insert(hash, length);
                }
                Err(reason) => removed.push(remove(path, reason)?),
            }
        }
        let mut catalogs = HashMap::new();
        for (path, name) in list_files(&dir.join(CATALOG_DIR))? {
            let verdict = if name.starts_with(TEMP_PREFIX) {
                Err(RemovalReason::PartialWrite)
            } else {
                match name.strip_suffix(".json") {
                    Some(source) if valid_source_name(source) => {
                        read_envelope(&path, source).ok_or(RemovalReason::Corrupt)
                    }
                    _ => Err(RemovalReason::Foreign),
                }
            };
            match verdict {
                Ok(catalog) => {
                    catalogs.insert(catalog.source.clone(), catalog);
                }
                Err(reason) => removed.push(remove(path, reason)?),
            }
        }
        let pins_path = dir.join(PINS_FILE);
        let mut pins = match read_pins(&pins_path) {
            Ok(pins) => pins,
            Err(()) => {
                removed.push(remove(pins_path, RemovalReason::Corrupt)?);
                Pins::default()
            }
        };
        pins.retain(|digest| images.contains_key(digest));
        let cache = Cache {
            dir: dir.to_owned(),
            max_image_bytes,
            images,
            catalogs,
            pins,
        };
        Ok((cache, removed))
    }

    /// The last catalog stored for `source`.
    pub fn catalog(&self, source: &str) -> Option<&StoredCatalog> {
        self.catalogs.get(source)
    }

    /// Every stored catalog.
    pub fn catalogs(&self) -> impl Iterator<Item = &StoredCatalog> {
        self.catalogs.values()
    }

    /// Stores a source's catalog atomically, replacing the previous one.
    pub fn store_catalog(&mut self, catalog: StoredCatalog) -> Result<(), CacheError> {
        if !valid_source_name(&catalog.source) {
            return Err(CacheError::BadSourceName {
                name: catalog.source,
            });
        }
        let body = String::from_utf8(catalog.body.clone()).map_err(|_| CacheError::NotUtf8 {
            source_name: catalog.source.clone(),
        })?;
        let envelope = Envelope {
            source: catalog.source.clone(),
            kind: catalog.kind,
            url: catalog.url.clone(),
            validators: catalog.validators.clone(),
            fetched_unix_ms: unix_millis(catalog.fetched_at),
            body_sha256: ImageHash::compute(HashAlgorithm::Sha256, &catalog.body).to_hex(),
            body,
        };
        let json = serde_json::to_vec(&envelope).unwrap_or_default();
        let name = format!("{}.json", catalog.source);
        write_atomically(&self.dir.join(CATALOG_DIR), &name, &json)?;
        self.catalogs.insert(catalog.source.clone(), catalog);
        Ok(())
    }

    /// Verifies `bytes` against the entry's digest and size, then stores them atomically under
    /// the digest. Nothing unverified is ever written under an image name.
    pub fn store_image(&mut self, entry: &CatalogEntry, bytes: &[u8]) -> Result<(), CacheError> {
        let length = len_u64(bytes);
        if !entry.size.accepts_length(length) {
            return Err(CacheError::SizeMismatch {
                expected: entry.size,
                actual: length,
            });
        }
        let digest = if entry.hash.is_unpinned() {
            let expected = ExpectedImage::of(entry);
            expected
                .verify(bytes)
                .map_err(|reason| CacheError::Unverified { expected, reason })?;
            ImageHash::compute(HashAlgorithm::Sha512, bytes)
        } else if entry.hash.matches(bytes) {
            entry.hash
        } else {
            return Err(CacheError::HashMismatch {
                expected: entry.hash,
            });
        };
        write_atomically(&self.dir.join(IMAGE_DIR), &digest.cache_key(), bytes)?;
        self.images.insert(digest, length);
        if entry.hash.is_unpinned() {
            self.pin(entry.hash, digest)?;
        }
        Ok(())
    }

    /// Records `key → digest` and writes `pins.json`.
    fn pin(&mut self, key: ImageHash, digest: ImageHash) -> Result<(), CacheError> {
        self.pins.insert(key, digest);
        write_atomically(&self.dir, PINS_FILE, self.pins.to_json().as_bytes())
    }

    /// The digest an entry's image is stored under: the published digest itself, or for an
    /// unpinned key the pinned SHA-512 (`None` while nothing is pinned). See [`super::pins`].
    pub fn resolve(&self, hash: &ImageHash) -> Option<ImageHash> {
        if hash.is_unpinned() {
            self.pins.get(hash)
        } else {
            Some(*hash)
        }
    }

    /// Starts a streamed download of `entry`'s image: a fresh temporary file in the image
    /// folder, at most the entry's size (and 16 MiB). See [`PartialImage`].
    pub fn begin_image(&self, entry: &CatalogEntry) -> Result<PartialImage, CacheError> {
        static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
        let counter = DOWNLOADS.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(IMAGE_DIR);
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{counter}",
            entry.hash.cache_key(),
            std::process::id()
        ));
        PartialImage::create(temp.clone(), entry.hash, ExpectedImage::of(entry)).map_err(|source| {
            CacheError::Io {
                operation: "create",
                path: temp,
                source,
            }
        })
    }

    /// Finishes a streamed download: checks size and digest, fsyncs, renames it under its
    /// digest and fsyncs the folder. A download that fails the check is removed.
    pub fn commit_image(&mut self, mut partial: PartialImage) -> Result<(), CacheError> {
        let length = partial.written();
        if !partial.expected_size.accepts_length(length) {
            return Err(CacheError::SizeMismatch {
                expected: partial.expected_size,
                actual: length,
            });
        }
        let digest = partial.finish().map_err(io_error("fsync", &partial.temp))?;
        let key = partial.expected_hash;
        if key.is_unpinned() {
            // No published digest: the file must be what the entry says (the download is
            // capped at 16 MiB, so reading it back is bounded).
            let bytes = fs::read(&partial.temp).map_err(io_error("read", &partial.temp))?;
            let expected = partial.expected_image;
            expected
                .verify(&bytes)
                .map_err(|reason| CacheError::Unverified { expected, reason })?;
        } else if digest != key {
            return Err(CacheError::HashMismatch { expected: key });
        }
        let dir = self.dir.join(IMAGE_DIR);
        let target = dir.join(digest.cache_key());
        atomic_file::commit(&partial.temp, &target).map_err(cache_io)?;
        self.images.insert(digest, length);
        if key.is_unpinned() {
            self.pin(key, digest)?;
        }
        Ok(())
    }

    /// True when the image with this digest (or pinned for this unpinned key) is in the cache.
    pub fn has_image(&self, hash: &ImageHash) -> bool {
        self.resolve(hash)
            .is_some_and(|digest| self.images.contains_key(&digest))
    }

    /// The file holding `entry`'s image, when it is cached and fits the entry's size.
    pub fn image_path(&self, entry: &CatalogEntry) -> Option<PathBuf> {
        let digest = self.resolve(&entry.hash)?;
        let length = *self.images.get(&digest)?;
        entry
            .size
            .accepts_length(length)
            .then(|| self.dir.join(IMAGE_DIR).join(digest.cache_key()))
    }

    /// Reads a cached image. It was hashed when stored; its length is checked against the
    /// one seen at open (a file changed behind the cache's back is refused, not hashed). An
    /// unpinned key reads its pinned digest's file.
    pub fn read_image(&self, hash: &ImageHash) -> Result<Vec<u8>, CacheError> {
        let hash = &self
            .resolve(hash)
            .ok_or(CacheError::HashMismatch { expected: *hash })?;
        let path = self.dir.join(IMAGE_DIR).join(hash.cache_key());
        let bytes = fs::read(&path).map_err(|source| CacheError::Io {
            operation: "read",
            path,
            source,
        })?;
        let known = self.images.get(hash).copied();
        if known == Some(len_u64(&bytes)) {
            Ok(bytes)
        } else {
            Err(CacheError::HashMismatch { expected: *hash })
        }
    }

    /// How many images the cache holds.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Bytes of images in the cache.
    pub fn image_bytes(&self) -> u64 {
        self.images.values().sum()
    }

    /// The cap on image bytes.
    pub fn max_image_bytes(&self) -> u64 {
        self.max_image_bytes
    }

    /// True when an image of `length` bytes fits under the cap once the images not in
    /// `referenced` are pruned: a download that would not is not started, so referenced
    /// images cannot grow the cache past its cap either.
    pub fn has_room_for(&self, length: u64, referenced: &HashSet<ImageHash>) -> bool {
        let referenced: HashSet<ImageHash> = referenced
            .iter()
            .filter_map(|hash| self.resolve(hash))
            .collect();
        let kept: u64 = self
            .images
            .iter()
            .filter(|(hash, _)| referenced.contains(hash))
            .map(|(_, length)| *length)
            .sum();
        kept.saturating_add(length) <= self.max_image_bytes
    }

    /// Keeps the images under the cap: removes images not in `referenced` first, largest
    /// first; when the referenced ones alone are still over the cap (a cap lowered, a cache
    /// filled by hand), referenced ones too, largest first. The cap holds either way.
    pub fn prune(&mut self, referenced: &HashSet<ImageHash>) -> Result<PruneReport, CacheError> {
        let referenced: HashSet<ImageHash> = referenced
            .iter()
            .filter_map(|hash| self.resolve(hash))
            .collect();
        let mut report = PruneReport::default();
        let mut total = self.image_bytes();
        let mut candidates: Vec<(bool, ImageHash, u64)> = self
            .images
            .iter()
            .map(|(hash, length)| (referenced.contains(hash), *hash, *length))
            .collect();
        // Unreferenced before referenced; largest first within each.
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
        for (is_referenced, hash, length) in candidates {
            if total <= self.max_image_bytes {
                break;
            }
            let path = self.dir.join(IMAGE_DIR).join(hash.cache_key());
            let reason = if is_referenced {
                RemovalReason::OverCap
            } else {
                RemovalReason::Unreferenced
            };
            report.removed.push(remove(path, reason)?);
            self.images.remove(&hash);
            total = total.saturating_sub(length);
        }
        report.over_cap_by = total.saturating_sub(self.max_image_bytes);
        if !report.removed.is_empty() {
            let images = &self.images;
            self.pins.retain(|digest| images.contains_key(digest));
            write_atomically(&self.dir, PINS_FILE, self.pins.to_json().as_bytes())?;
        }
        Ok(report)
    }
}

/// Reads `pins.json`: none is empty; `Err` when it is unreadable or corrupt (it is then
/// removed, and the unpinned images are verified again at their next download).
fn read_pins(path: &Path) -> Result<Pins, ()> {
    match fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Pins::default()),
        Ok(meta) if meta.len() <= MAX_PINS_FILE_BYTES => {}
        _ => return Err(()),
    }
    let bytes = fs::read(path).map_err(|_| ())?;
    Pins::from_json(&bytes).map_err(|_| ())
}

fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SOURCE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn read_envelope(path: &Path, source: &str) -> Option<StoredCatalog> {
    let length = fs::metadata(path).ok()?.len();
    if length > MAX_ENVELOPE_BYTES {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    let envelope: Envelope = serde_json::from_slice(&bytes).ok()?;
    let body = envelope.body.into_bytes();
    let body_hash = ImageHash::from_hex(HashAlgorithm::Sha256, &envelope.body_sha256)?;
    if envelope.source != source || !body_hash.matches(&body) {
        return None;
    }
    Some(StoredCatalog {
        source: envelope.source,
        kind: envelope.kind,
        url: envelope.url,
        validators: envelope.validators,
        fetched_at: UNIX_EPOCH + Duration::from_millis(envelope.fetched_unix_ms),
        body,
    })
}

/// Regular files in `dir` with their names (non-UTF-8 names are reported as foreign).
fn list_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, CacheError> {
    let read_error = |source| CacheError::Io {
        operation: "list",
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for item in fs::read_dir(dir).map_err(read_error)? {
        let item = item.map_err(read_error)?;
        if item.file_type().map_err(read_error)?.is_file() {
            let name = item.file_name().to_string_lossy().into_owned();
            files.push((item.path(), name));
        }
    }
    files.sort();
    Ok(files)
}

fn remove(path: PathBuf, reason: RemovalReason) -> Result<Removed, CacheError> {
    match fs::remove_file(&path) {
        Ok(()) => Ok(Removed { path, reason }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Removed { path, reason }),
        Err(source) => Err(CacheError::Io {
            operation: "remove",
            path,
            source,
        }),
    }
}

/// Maps an OS error of `operation` on `path` to [`CacheError::Io`].
fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CacheError {
    let path = path.to_owned();
    move |source| CacheError::Io {
        operation,
        path,
        source,
    }
}

/// Writes `data` to `dir/name` atomically and durably (see [`crate::atomic_file`]).
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> Result<(), CacheError> {
    atomic_file::write(&dir.join(name), data, atomic_file::WORLD_READABLE).map_err(cache_io)
}

fn cache_io(error: atomic_file::WriteError) -> CacheError {
    CacheError::Io {
        operation: error.operation,
        path: error.path,
        source: error.source,
    }
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{Locator, Provenance, Restrictions};

    fn entry_for(bytes: &[u8]) -> CatalogEntry {
        CatalogEntry {
            provenance: Provenance {
                source: "test".into(),
                kind: SourceKind::ZigbeeOtaIndex,
            },
            manufacturer_code: 1,
            image_type: 2,
            file_version: 3,
            size: ImageSize::FileLength(bytes.len() as u64),
            hash: ImageHash::compute(HashAlgorithm::Sha256, bytes),
            locator: Locator::Url("https://example.org/x".into()),
            restrictions: Restrictions::default(),
            display_name: None,
            release_notes: None,
        }
    }

    fn catalog(source: &str, body: &[u8]) -> StoredCatalog {
        StoredCatalog {
            source: source.into(),
            kind: SourceKind::Ledvance,
            url: "https://example.org/firmwares".into(),
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            fetched_at: UNIX_EPOCH + Duration::from_millis(1_795_651_200_123),
            body: body.to_vec(),
        }
    }

    #[test]
    fn images_and_catalogs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert!(removed.is_empty());
        let image = b"an OTA image".to_vec();
        let entry = entry_for(&image);
        cache.store_image(&entry, &image).unwrap();
        cache
            .store_catalog(catalog("ledvance", b"{\"firmwares\":[]}"))
            .unwrap();

        let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert!(removed.is_empty());
        assert!(cache.has_image(&entry.hash));
        assert_eq!(cache.read_image(&entry.hash).unwrap(), image);
        assert_eq!(fs::read(cache.image_path(&entry).unwrap()).unwrap(), image);
        assert_eq!(
            cache.catalog("ledvance"),
            Some(&catalog("ledvance", b"{\"firmwares\":[]}"))
        );
    }

    #[test]
    fn unverified_bytes_are_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        let entry = entry_for(b"the real image");
        assert!(matches!(
            cache.store_image(&entry, b"the fake image"),
            Err(CacheError::HashMismatch { .. })
        ));
        assert!(matches!(
            cache.store_image(&entry, b"short"),
            Err(CacheError::SizeMismatch { actual: 5, .. })
        ));
        assert!(!cache.has_image(&entry.hash));
        assert_eq!(fs::read_dir(dir.path().join(IMAGE_DIR)).unwrap().count(), 0);
    }

    fn ota_file(file_version: u32) -> Vec<u8> {
        use crate::ota::OtaFileBuilder;
        use crate::ota::header::OtaHeader;
        use crate::ota::types::{FileVersion, ImageType, ManufacturerCode, TagId};
        let header = OtaHeader::new(
            ManufacturerCode(0x1286),
            ImageType(1),
            FileVersion(file_version),
        );
        OtaFileBuilder::new(header)
            .sub_element(TagId(0xF000), vec![5; 64])
            .build()
    }

    fn unpinned_entry(url: &str) -> CatalogEntry {
        CatalogEntry {
            provenance: Provenance {
                source: "sonoff".into(),
                kind: SourceKind::Sonoff,
            },
            manufacturer_code: 0x1286,
            image_type: 1,
            file_version: 7,
            size: ImageSize::Unpublished,
            hash: ImageHash::unpinned(SourceKind::Sonoff, url, 0x1286, 1, 7),
            locator: Locator::Url(url.into()),
            restrictions: Restrictions::default(),
            display_name: None,
            release_notes: None,
        }
    }

    #[test]
    fn an_unpinned_image_is_verified_by_its_header_then_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        let entry = unpinned_entry("https://example.org/a.ota");
        assert_eq!(cache.resolve(&entry.hash), None);
        // The wrong file (another version) and garbage are refused; nothing is pinned.
        let refused = cache.store_image(&entry, &ota_file(8)).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("the file's header 1286/0001/00000008"),
            "{refused}"
        );
        assert!(matches!(
            cache.store_image(&entry, b"not an OTA file"),
            Err(CacheError::Unverified { .. })
        ));
        assert!(!cache.has_image(&entry.hash));
        // The right file is stored under its SHA-512 and pinned; the pin survives a reopen.
        let image = ota_file(7);
        cache.store_image(&entry, &image).unwrap();
        let digest = ImageHash::compute(HashAlgorithm::Sha512, &image);
        assert_eq!(cache.resolve(&entry.hash), Some(digest));
        let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert!(removed.is_empty());
        assert_eq!(cache.resolve(&entry.hash), Some(digest));
        assert!(cache.has_image(&entry.hash));
        assert_eq!(cache.read_image(&entry.hash).unwrap(), image);
        assert!(
            cache
                .image_path(&entry)
                .unwrap()
                .ends_with(digest.cache_key())
        );
        // Another URL is another key: not pinned.
        assert!(!cache.has_image(&unpinned_entry("https://example.org/b.ota").hash));
        // A pin whose image is gone does not survive a reopen; a corrupt pins file is removed.
        fs::remove_file(dir.path().join(IMAGE_DIR).join(digest.cache_key())).unwrap();
        let (cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(cache.resolve(&entry.hash), None);
        fs::write(dir.path().join(PINS_FILE), b"{not json").unwrap();
        let (_, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].reason, RemovalReason::Corrupt);
    }

    #[test]
    fn streamed_unpinned_download_is_checked_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        let entry = unpinned_entry("https://example.org/a.ota");
        let mut wrong = cache.begin_image(&entry).unwrap();
        wrong.write(&ota_file(6)).unwrap();
        assert!(matches!(
            cache.commit_image(wrong),
            Err(CacheError::Unverified { .. })
        ));
        let mut right = cache.begin_image(&entry).unwrap();
        right.write(&ota_file(7)).unwrap();
        cache.commit_image(right).unwrap();
        assert_eq!(cache.read_image(&entry.hash).unwrap(), ota_file(7));
        // Only the accepted file is left in the image folder.
        assert_eq!(fs::read_dir(dir.path().join(IMAGE_DIR)).unwrap().count(), 1);
    }

    #[test]
    fn sha3_digests_are_stored_and_reverified() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        let image = b"an IKEA image".to_vec();
        let mut entry = entry_for(&image);
        entry.hash = ImageHash::compute(HashAlgorithm::Sha3_256, &image);
        assert!(matches!(
            cache.store_image(&entry, b"an IKEA imagf"),
            Err(CacheError::HashMismatch { .. })
        ));
        cache.store_image(&entry, &image).unwrap();
        let mut partial = cache.begin_image(&entry).unwrap();
        partial.write(&image).unwrap();
        cache.commit_image(partial).unwrap();
        let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert!(removed.is_empty());
        assert_eq!(cache.read_image(&entry.hash).unwrap(), image);
        assert!(
            entry.hash.cache_key().starts_with("sha3-256-"),
            "{}",
            entry.hash.cache_key()
        );
    }

    #[test]
    fn source_names_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        for name in ["../evil", ".hidden", "", "a/b", &"x".repeat(65)] {
            assert!(matches!(
                cache.store_catalog(catalog(name, b"{}")),
                Err(CacheError::BadSourceName { .. })
            ));
        }
    }

    #[test]
    fn prune_removes_only_unreferenced_images() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 25).unwrap();
        let kept = entry_for(&[1u8; 20]);
        let stale = entry_for(&[2u8; 10]);
        let stale_small = entry_for(&[3u8; 4]);
        cache.store_image(&kept, &[1u8; 20]).unwrap();
        cache.store_image(&stale, &[2u8; 10]).unwrap();
        cache.store_image(&stale_small, &[3u8; 4]).unwrap();
        let referenced: HashSet<ImageHash> = [kept.hash].into();
        let report = cache.prune(&referenced).unwrap();
        // 34 bytes, cap 25: dropping the 10-byte stale image is enough.
        assert_eq!(report.removed.len(), 1);
        assert_eq!(report.over_cap_by, 0);
        assert!(cache.has_image(&kept.hash));
        assert!(!cache.has_image(&stale.hash));
        assert!(cache.has_image(&stale_small.hash));

        // Cap 5: the 20-byte referenced image alone is over it, so it goes too (after the
        // unreferenced one); and nothing referenced-sized fits any more.
        let (mut tight, _) = Cache::open(dir.path(), 5).unwrap();
        assert!(!tight.has_room_for(20, &referenced));
        let report = tight.prune(&referenced).unwrap();
        let reasons: Vec<RemovalReason> = report.removed.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [RemovalReason::Unreferenced, RemovalReason::OverCap]
        );
        assert!(!tight.has_image(&kept.hash));
        assert_eq!(tight.image_bytes(), 0);
        assert_eq!(report.over_cap_by, 0);
        assert!(tight.has_room_for(5, &referenced));
    }

    #[test]
    fn a_file_larger_than_any_ota_file_is_removed_unread() {
        let dir = tempfile::tempdir().unwrap();
        drop(Cache::open(dir.path(), 1 << 20).unwrap());
        let name = entry_for(b"x").hash.cache_key();
        let file = fs::File::create(dir.path().join(IMAGE_DIR).join(name)).unwrap();
        file.set_len(MAX_IMAGE_FILE_BYTES + 1).unwrap();
        let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].reason, RemovalReason::TooLarge);
        assert_eq!(cache.image_bytes(), 0);
    }
}
