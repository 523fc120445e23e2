//! The catalog's view as the server sees it: verified images, each with the exact bytes to
//! serve (ZCL8 §11.4: the whole OTA file from its magic for `image_size` bytes), the header
//! fields that decide who may have it, where it came from, and the catalog's restrictions.
//!
//! The bytes are either in memory or behind an [`ImageReader`] (the daemon's image files, read
//! a block at a time so the library is not held in RAM; issue 18). The server itself opens no
//! file: the reader is handed in.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::Ieee;
use crate::ota::OtaFile;

/// The triple that names an OTA file on the air (every block request and response carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ImageKey {
    /// Manufacturer code (0xFFFF in an image matches every manufacturer).
    pub manufacturer_code: u16,
    /// Image type (0xFFFF in an image matches every type).
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
}

impl fmt::Display for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}/{:04x}/{:08x}",
            self.manufacturer_code, self.image_type, self.file_version
        )
    }
}

/// Where an image came from, for logs and for telling two sources apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The catalog source (e.g. "ledvance", "zigbee-ota-index", "directory").
    pub source: String,
    /// Where in that source (URL or file name).
    pub location: String,
}

/// Restrictions a catalog attaches to an image beyond its OTA header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogRestrictions {
    /// Offer only to devices running at least this version.
    pub min_current_version: Option<u32>,
    /// Offer only to devices running at most this version.
    pub max_current_version: Option<u32>,
    /// Offer only to devices whose hardware version is at least this.
    pub min_hardware_version: Option<u16>,
    /// Offer only to devices whose hardware version is at most this.
    pub max_hardware_version: Option<u16>,
    /// Offer only to devices whose model identifier is one of these (empty: any model).
    pub models: Vec<String>,
    /// Offer only to devices whose manufacturer name is one of these (empty: any name).
    pub manufacturer_names: Vec<String>,
}

/// Reads an image's served bytes from where they are kept (a file, for the daemon).
pub trait ImageReader: fmt::Debug + Send + Sync {
    /// Fills all of `buf` with the served bytes from `offset` (the caller keeps the range
    /// within the image). An error when the bytes cannot be read or changed since verified.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

#[derive(Clone)]
enum Content {
    Memory(Bytes),
    Reader(Arc<dyn ImageReader>),
}

/// One verified image the server may offer.
#[derive(Clone)]
pub struct OtaImage {
    key: ImageKey,
    content: Content,
    len: u32,
    /// SHA-256 of the served bytes: tells two sources' copies apart without reading them.
    digest: [u8; 32],
    hardware_versions: Option<(u16, u16)>,
    destination: Option<Ieee>,
    provenance: Provenance,
    restrictions: CatalogRestrictions,
}

impl PartialEq for OtaImage {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.len == other.len
            && self.digest == other.digest
            && self.hardware_versions == other.hardware_versions
            && self.destination == other.destination
            && self.provenance == other.provenance
            && self.restrictions == other.restrictions
    }
}

impl Eq for OtaImage {}

impl fmt::Debug for OtaImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtaImage")
            .field("key", &format_args!("{}", self.key))
            .field("size", &self.len)
            .field("in_memory", &matches!(self.content, Content::Memory(_)))
            .field("hardware_versions", &self.hardware_versions)
            .field("destination", &self.destination)
            .field("provenance", &self.provenance)
            .field("restrictions", &self.restrictions)
            .finish()
    }
}

/// Images larger than a `u32` can address cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("image of {len} bytes does not fit the 32-bit image size field")]
pub struct ImageTooLarge {
    /// The length offered.
    pub len: usize,
}

impl OtaImage {
    /// An image serving exactly `bytes` (the OTA file from its magic, `image_size` bytes long).
    pub fn new(key: ImageKey, bytes: Bytes) -> Result<Self, ImageTooLarge> {
        let Ok(len) = u32::try_from(bytes.len()) else {
            return Err(ImageTooLarge { len: bytes.len() });
        };
        Ok(OtaImage {
            key,
            digest: Sha256::digest(&bytes).into(),
            content: Content::Memory(bytes),
            len,
            hardware_versions: None,
            destination: None,
            provenance: Provenance::default(),
            restrictions: CatalogRestrictions::default(),
        })
    }

    /// The image an OTA file serves: its bytes from the magic for `image_size` bytes (a cheap
    /// slice of the parsed buffer, never a re-serialisation), and the header's manufacturer,
    /// type, version, hardware range and upgrade file destination.
    pub fn from_file(file: &OtaFile) -> Result<Self, ImageTooLarge> {
        let header = file.header();
        let key = ImageKey {
            manufacturer_code: header.manufacturer_code.0,
            image_type: header.image_type.0,
            file_version: header.file_version.0,
        };
        let mut image = OtaImage::new(key, file.image())?;
        if let Some(range) = header.hardware_versions {
            image = image.with_hardware_versions(range.minimum.0, range.maximum.0);
        }
        if let Some(destination) = header.upgrade_file_destination {
            image = image.with_destination(Ieee(destination.0));
        }
        Ok(image)
    }

    /// Sets the header's hardware version range (`minimum..=maximum`).
    #[must_use]
    pub fn with_hardware_versions(mut self, minimum: u16, maximum: u16) -> Self {
        self.hardware_versions = Some((minimum, maximum));
        self
    }

    /// Sets the header's upgrade file destination: only this device may have the image.
    #[must_use]
    pub fn with_destination(mut self, ieee: Ieee) -> Self {
        self.destination = Some(ieee);
        self
    }

    /// Sets where the image came from.
    #[must_use]
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = provenance;
        self
    }

    /// Sets the catalog's restrictions.
    #[must_use]
    pub fn with_restrictions(mut self, restrictions: CatalogRestrictions) -> Self {
        self.restrictions = restrictions;
        self
    }

    /// Wraps the image for sharing between the catalog view and sessions.
    pub fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }

    /// Manufacturer code, image type and file version.
    pub fn key(&self) -> ImageKey {
        self.key
    }

    /// Serves the bytes through `reader` from now on and drops the copy in memory. The reader
    /// must give the very bytes this image was built from (their digest is kept).
    #[must_use]
    pub fn read_through(mut self, reader: Arc<dyn ImageReader>) -> Self {
        self.content = Content::Reader(reader);
        self
    }

    /// True when both serve the same bytes (compared by digest, without reading them).
    pub fn same_bytes(&self, other: &OtaImage) -> bool {
        self.len == other.len && self.digest == other.digest
    }

    /// SHA-256 of the served bytes.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// All the served bytes (read from the reader when not in memory: up to 16 MiB).
    pub fn read_all(&self) -> io::Result<Bytes> {
        match &self.content {
            Content::Memory(bytes) => Ok(bytes.clone()),
            Content::Reader(reader) => {
                let mut buf = vec![0; usize::try_from(self.len).unwrap_or(usize::MAX)];
                reader.read_exact_at(0, &mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Size in bytes (checked to fit in `u32` by [`OtaImage::new`]).
    pub fn size(&self) -> u32 {
        self.len
    }

    /// The header's hardware version range.
    pub fn hardware_versions(&self) -> Option<(u16, u16)> {
        self.hardware_versions
    }

    /// The header's upgrade file destination.
    pub fn destination(&self) -> Option<Ieee> {
        self.destination
    }

    /// Where the image came from.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The catalog's restrictions.
    pub fn restrictions(&self) -> &CatalogRestrictions {
        &self.restrictions
    }

    /// Up to `max_len` bytes at `offset` (a cheap slice of bytes in memory, or one bounded
    /// read); `None` when `offset` is at or past the end, or the bytes cannot be read.
    pub fn block(&self, offset: u32, max_len: u8) -> Option<Bytes> {
        if offset >= self.len {
            return None;
        }
        let len = (self.len - offset).min(u32::from(max_len));
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        match &self.content {
            Content::Memory(bytes) => Some(bytes.slice(start..end)),
            Content::Reader(reader) => {
                let mut buf = vec![0; end - start];
                match reader.read_exact_at(u64::from(offset), &mut buf) {
                    Ok(()) => Some(Bytes::from(buf)),
                    Err(error) => {
                        tracing::debug!(image = %self.key, %error, "image bytes unreadable");
                        None
                    }
                }
            }
        }
    }
}
