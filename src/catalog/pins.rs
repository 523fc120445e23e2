//! Images whose catalog publishes no digest (Inovelli, Third Reality, Sonoff, IKEA TRÅDFRI):
//! how their first download is verified, and the pin that fixes what was accepted.
//!
//! Such an entry carries an [`ImageHash::Unpinned`] key instead of a digest. Its download is
//! accepted only when the file parses as an OTA file (ZCL §11.4), its header carries exactly the
//! entry's manufacturer code, image type and file version, the entry's size fits (the file's
//! length, or the header's `image_size`), and its container's own integrity data (IKEA `NGIS`
//! block hashes) checks out. The cache then stores it under its SHA-512 like any other image and
//! records the pin `key → sha512` in `cache_dir/pins.json`. From then on the entry resolves to
//! that digest: a later download that differs is a different file and is not served under the
//! pin, and the image is checked like every cached image (see `cache`).

use std::collections::BTreeMap;

use super::model::{CatalogEntry, HashAlgorithm, ImageHash, ImageSize};
use crate::ota::OtaFile;
use crate::ota::container::ContainerCheck;

/// Largest pins file read back.
pub(crate) const MAX_PINS_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What an unpinned entry says its file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedImage {
    /// Manufacturer code the header must carry.
    pub manufacturer_code: u16,
    /// Image type the header must carry.
    pub image_type: u16,
    /// File version the header must carry.
    pub file_version: u32,
    /// The published size.
    pub size: ImageSize,
}

impl std::fmt::Display for ExpectedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}/{:04x}/{:08x}",
            self.manufacturer_code, self.image_type, self.file_version
        )
    }
}

impl ExpectedImage {
    /// The facts of `entry`.
    pub fn of(entry: &CatalogEntry) -> Self {
        ExpectedImage {
            manufacturer_code: entry.manufacturer_code,
            image_type: entry.image_type,
            file_version: entry.file_version,
            size: entry.size,
        }
    }

    /// Checks a downloaded file against these facts (see the module docs); `Err` says what
    /// did not fit.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), String> {
        let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if !self.size.accepts_length(length) {
            return Err(format!(
                "the file is {length} bytes, which does not fit the published size {:?}",
                self.size
            ));
        }
        let file = OtaFile::parse(bytes.to_vec()).map_err(|e| format!("not an OTA file: {e}"))?;
        let header = file.header();
        let found = (
            header.manufacturer_code.0,
            header.image_type.0,
            header.file_version.0,
        );
        let wanted = (self.manufacturer_code, self.image_type, self.file_version);
        if found != wanted {
            return Err(format!(
                "the catalog says {:04x}/{:04x}/{:08x}, the file's header {:04x}/{:04x}/{:08x}",
                wanted.0, wanted.1, wanted.2, found.0, found.1, found.2
            ));
        }
        if let ImageSize::HeaderImageSize(size) = self.size
            && u64::from(header.image_size) != size
        {
            return Err(format!(
                "the catalog says image_size {size}, the header {}",
                header.image_size
            ));
        }
        match file.verify_integrity() {
            Ok(ContainerCheck::Unverifiable { reason }) => Err(format!(
                "no published digest and the container's block hashes cannot be checked: {reason}"
            )),
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// The pins: unpinned key → SHA-512 of the file accepted for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    map: BTreeMap<ImageHash, ImageHash>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PinsFile {
    /// `unpinned key hex` → `sha512 hex`.
    pins: BTreeMap<String, String>,
}

impl Pins {
    /// The digest pinned for `key`.
    pub fn get(&self, key: &ImageHash) -> Option<ImageHash> {
        self.map.get(key).copied()
    }

    /// Pins `digest` for `key` (replacing an earlier pin: the entry's file was verified anew).
    pub fn insert(&mut self, key: ImageHash, digest: ImageHash) {
        self.map.insert(key, digest);
    }

    /// Keeps only the pins whose digest `keep` accepts (the image is still in the cache).
    pub fn retain(&mut self, mut keep: impl FnMut(&ImageHash) -> bool) {
        self.map.retain(|_, digest| keep(digest));
    }

    /// The pins as JSON for `cache_dir/pins.json`.
    pub fn to_json(&self) -> String {
        let file = PinsFile {
            pins: self
                .map
                .iter()
                .map(|(key, digest)| (key.to_hex(), digest.to_hex()))
                .collect(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }

    /// Reads `pins.json`; an entry that is not a 64-hex key and a 128-hex SHA-512 fails the
    /// whole file (it was written by us; anything else is corruption).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let file: PinsFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let mut map = BTreeMap::new();
        for (key, digest) in file.pins {
            let key = ImageHash::from_hex(HashAlgorithm::Unpinned, &key)
                .ok_or_else(|| format!("pin key {key:?} is not 64 hex digits"))?;
            let digest = ImageHash::from_hex(HashAlgorithm::Sha512, &digest)
                .ok_or_else(|| format!("pinned digest {digest:?} is not a SHA-512"))?;
            map.insert(key, digest);
        }
        Ok(Pins { map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::SourceKind;
    use crate::ota::builder::OtaFileBuilder;
    use crate::ota::header::OtaHeader;
    use crate::ota::types::{FileVersion, ImageType, ManufacturerCode, TagId};

    fn file(manufacturer_code: u16, image_type: u16, file_version: u32) -> Vec<u8> {
        let header = OtaHeader::new(
            ManufacturerCode(manufacturer_code),
            ImageType(image_type),
            FileVersion(file_version),
        );
        OtaFileBuilder::new(header)
            .sub_element(TagId(0xF000), vec![7; 100])
            .build()
    }

    fn expected(size: ImageSize) -> ExpectedImage {
        ExpectedImage {
            manufacturer_code: 0x1286,
            image_type: 1,
            file_version: 4353,
            size,
        }
    }

    #[test]
    fn header_and_size_must_match_the_entry() {
        let bytes = file(0x1286, 1, 4353);
        let length = bytes.len() as u64;
        assert_eq!(
            expected(ImageSize::FileLength(length)).verify(&bytes),
            Ok(())
        );
        let short = expected(ImageSize::FileLength(length - 1)).verify(&bytes);
        assert!(short.unwrap_err().contains("does not fit"));
        let other_version = file(0x1286, 1, 4354);
        let error = expected(ImageSize::FileLength(other_version.len() as u64))
            .verify(&other_version)
            .unwrap_err();
        assert!(error.contains("1286/0001/00001101"), "{error}");
        assert!(error.contains("1286/0001/00001102"), "{error}");
        let wrong_header_size = expected(ImageSize::HeaderImageSize(length + 1)).verify(&bytes);
        assert!(wrong_header_size.unwrap_err().contains("image_size"));
        assert!(
            expected(ImageSize::FileLength(4))
                .verify(b"\x1e\xf1\xee\x0b")
                .unwrap_err()
                .contains("not an OTA file")
        );
    }

    #[test]
    fn pins_round_trip_and_reject_garbage() {
        let key = ImageHash::unpinned(SourceKind::Sonoff, "https://x/a.ota", 1, 2, 3);
        let digest = ImageHash::compute(HashAlgorithm::Sha512, b"file");
        let mut pins = Pins::default();
        pins.insert(key, digest);
        let back = Pins::from_json(pins.to_json().as_bytes()).unwrap();
        assert_eq!(back.get(&key), Some(digest));
        assert!(Pins::from_json(br#"{"pins":{"00":"11"}}"#).is_err());
        assert!(Pins::from_json(b"[]").is_err());
        assert_ne!(
            key,
            ImageHash::unpinned(SourceKind::Sonoff, "https://x/a.ota", 1, 2, 4),
            "a changed version is a new key"
        );
        assert!(!key.matches(b"file"));
    }
}
