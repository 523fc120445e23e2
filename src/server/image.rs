//! The catalog's view as the server sees it: verified images, each with the exact bytes to
//! serve (ZCL8 §11.4: the whole OTA file from its magic for `image_size` bytes), the header
//! fields that decide who may have it, where it came from, and the catalog's restrictions.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

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

/// One verified image the server may offer.
#[derive(Clone, PartialEq, Eq)]
pub struct OtaImage {
    key: ImageKey,
    bytes: Bytes,
    hardware_versions: Option<(u16, u16)>,
    destination: Option<Ieee>,
    provenance: Provenance,
    restrictions: CatalogRestrictions,
}

impl fmt::Debug for OtaImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtaImage")
            .field("key", &format_args!("{}", self.key))
            .field("size", &self.bytes.len())
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
        if u32::try_from(bytes.len()).is_err() {
            return Err(ImageTooLarge { len: bytes.len() });
        }
        Ok(OtaImage {
            key,
            bytes,
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

    /// The exact bytes served.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Size in bytes (checked to fit in `u32` by [`OtaImage::new`]).
    pub fn size(&self) -> u32 {
        u32::try_from(self.bytes.len()).unwrap_or(u32::MAX)
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

    /// Up to `max_len` bytes at `offset`, as a cheap slice of the served bytes; `None` when
    /// `offset` is at or past the end.
    pub fn block(&self, offset: u32, max_len: u8) -> Option<Bytes> {
        let start = usize::try_from(offset).ok()?;
        if start >= self.bytes.len() {
            return None;
        }
        let end = start
            .saturating_add(usize::from(max_len))
            .min(self.bytes.len());
        Some(self.bytes.slice(start..end))
    }
}
