//! The catalog model: one offered firmware image, where it came from, how to fetch and verify
//! it, and which devices may take it.
//!
//! Field names follow the Zigbee OTA Upgrade cluster (ZCL §11.4, the OTA header: manufacturer
//! code, image type, file version, hardware versions) and, for restrictions, the zigbee-OTA
//! `index.json` manifest (`minFileVersion`, `maxFileVersion`, `hardwareVersionMin/Max`, `modelId`,
//! `manufacturerName`). Plain integers stand for the wire types until the `ota` module's newtypes
//! are wired in.

use std::fmt;

use sha2::Digest;

use super::partial_image::MAX_IMAGE_DOWNLOAD_BYTES;

/// The manufacturer code and image type value that match every device (ZCL §11.4.2.6).
pub const WILDCARD: u16 = 0xFFFF;

/// The kind of source a catalog entry came from: the configuration's kind, one enum for both.
pub use crate::config::SourceKind;

/// Where an entry came from: the configured source's name and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The source's name (unique among the configured sources).
    pub source: String,
    /// What kind of source it is.
    pub kind: SourceKind,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.source, self.kind)
    }
}

/// The digest a catalog publishes for an image file, or, for a catalog that publishes none,
/// the key under which the cache pins the digest of the first verified download.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageHash {
    /// SHA-256 (LEDVANCE's `shA256`).
    Sha256([u8; 32]),
    /// SHA-512 (zigbee-OTA's `sha512`).
    Sha512([u8; 64]),
    /// SHA3-256 (IKEA DIRIGERA's `fw_sha3_256`).
    Sha3_256([u8; 32]),
    /// No published digest (Inovelli, Third Reality, Sonoff, IKEA TRÅDFRI): not a digest of the
    /// file but a key naming the entry (see [`ImageHash::unpinned`]). It matches no bytes. The
    /// cache verifies such a download by its OTA header instead and pins the SHA-512 of what it
    /// stored under this key ([`Cache::resolve`](super::cache::Cache::resolve)); the image is
    /// served only through that pin.
    Unpinned([u8; 32]),
}

/// The hash algorithms a catalog may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// SHA3-256.
    Sha3_256,
    /// No published digest: [`ImageHash::Unpinned`].
    Unpinned,
}

impl HashAlgorithm {
    /// `sha256`, `sha512`, `sha3-256` or `unpinned`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha3_256 => "sha3-256",
            HashAlgorithm::Unpinned => "unpinned",
        }
    }

    /// Hex digits in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Sha3_256 | HashAlgorithm::Unpinned => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }
}

impl ImageHash {
    /// Parses a hex digest (either case) of the given algorithm; `None` when it is not exactly
    /// the right number of hex digits.
    pub fn from_hex(algorithm: HashAlgorithm, text: &str) -> Option<Self> {
        fn fill<const N: usize>(text: &str) -> Option<[u8; N]> {
            let digits = text.as_bytes();
            if digits.len() != N * 2 {
                return None;
            }
            let mut out = [0u8; N];
            for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
                let (high, low) = match pair {
                    [high, low] => (hex_value(*high)?, hex_value(*low)?),
                    _ => return None,
                };
                *byte = high << 4 | low;
            }
            Some(out)
        }
        match algorithm {
            HashAlgorithm::Sha256 => fill::<32>(text).map(ImageHash::Sha256),
            HashAlgorithm::Sha512 => fill::<64>(text).map(ImageHash::Sha512),
            HashAlgorithm::Sha3_256 => fill::<32>(text).map(ImageHash::Sha3_256),
            HashAlgorithm::Unpinned => fill::<32>(text).map(ImageHash::Unpinned),
        }
    }

    /// Parses `sha256-<hex>`, `sha512-<hex>` or `sha3-256-<hex>` (the forms
    /// [`ImageHash::cache_key`] writes for image files); never an unpinned key.
    pub fn from_cache_key(key: &str) -> Option<Self> {
        let (algorithm, hex) = key.rsplit_once('-')?;
        match algorithm {
            "sha256" => Self::from_hex(HashAlgorithm::Sha256, hex),
            "sha512" => Self::from_hex(HashAlgorithm::Sha512, hex),
            "sha3-256" => Self::from_hex(HashAlgorithm::Sha3_256, hex),
            _ => None,
        }
    }

    /// Computes the digest of `data` with the given algorithm. For
    /// [`HashAlgorithm::Unpinned`] this is the SHA-256 of `data` as an unpinned key: see
    /// [`ImageHash::unpinned`].
    pub fn compute(algorithm: HashAlgorithm, data: &[u8]) -> Self {
        match algorithm {
            HashAlgorithm::Sha256 => ImageHash::Sha256(sha2::Sha256::digest(data).into()),
            HashAlgorithm::Sha512 => ImageHash::Sha512(sha2::Sha512::digest(data).into()),
            HashAlgorithm::Sha3_256 => ImageHash::Sha3_256(sha3::Sha3_256::digest(data).into()),
            HashAlgorithm::Unpinned => ImageHash::Unpinned(sha2::Sha256::digest(data).into()),
        }
    }

    /// The key of an entry whose catalog publishes no digest: it names the source kind, the
    /// download URL and the manufacturer code, image type and file version the file's header
    /// must carry, so a changed entry is a new key and is verified again.
    pub fn unpinned(
        kind: SourceKind,
        url: &str,
        manufacturer_code: u16,
        image_type: u16,
        file_version: u32,
    ) -> Self {
        let text =
            format!("{kind}\n{url}\n{manufacturer_code:04x}/{image_type:04x}/{file_version:08x}");
        Self::compute(HashAlgorithm::Unpinned, text.as_bytes())
    }

    /// True when `data` has this digest. An unpinned key matches nothing.
    pub fn matches(&self, data: &[u8]) -> bool {
        !self.is_unpinned() && Self::compute(self.algorithm(), data) == *self
    }

    /// True for an [`ImageHash::Unpinned`] key.
    pub fn is_unpinned(&self) -> bool {
        matches!(self, ImageHash::Unpinned(_))
    }

    /// The algorithm of this digest.
    pub fn algorithm(&self) -> HashAlgorithm {
        match self {
            ImageHash::Sha256(_) => HashAlgorithm::Sha256,
            ImageHash::Sha512(_) => HashAlgorithm::Sha512,
            ImageHash::Sha3_256(_) => HashAlgorithm::Sha3_256,
            ImageHash::Unpinned(_) => HashAlgorithm::Unpinned,
        }
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        match self {
            ImageHash::Sha256(bytes) | ImageHash::Sha3_256(bytes) | ImageHash::Unpinned(bytes) => {
                bytes
            }
            ImageHash::Sha512(bytes) => bytes,
        }
    }

    /// Lower-case hex of the digest.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(self.digest().len() * 2);
        for byte in self.digest() {
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// `sha256-<hex>` / `sha512-<hex>` / `sha3-256-<hex>` (`unpinned-<hex>` for a key): a name
    /// made only of `[a-z0-9-]`, safe as a file name.
    pub fn cache_key(&self) -> String {
        format!("{}-{}", self.algorithm().name(), self.to_hex())
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm().name(), self.to_hex())
    }
}

impl fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How to obtain an image's bytes. Never a file name from a catalog used as a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Locator {
    /// Download from this URL (https, or http on a loopback address; checked by the HTTP edge).
    Url(String),
    /// Already in the on-disk cache under this digest (local folders put their files there).
    CacheKey(ImageHash),
}

/// What a catalog's size figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageSize {
    /// The exact length of the file (LEDVANCE `length`).
    FileLength(u64),
    /// The OTA header's `image_size` (zigbee-OTA `fileSize`); the file may be longer (vendor
    /// wrappers, trailing bytes) or, in broken uploads, shorter. The digest decides.
    HeaderImageSize(u64),
    /// The catalog publishes no size (IKEA DIRIGERA, Inovelli, Third Reality): a download may
    /// be up to the 16 MiB cap every image has, and the digest or, lacking one, the OTA header
    /// decides.
    Unpublished,
}

impl ImageSize {
    /// The figure in bytes, whatever it measures (0 when unpublished).
    pub fn bytes(self) -> u64 {
        match self {
            ImageSize::FileLength(bytes) | ImageSize::HeaderImageSize(bytes) => bytes,
            ImageSize::Unpublished => 0,
        }
    }

    /// The most bytes a download may deliver: the length itself, or the header size plus
    /// [`ImageSize::WRAPPER_ALLOWANCE`] for wrappers around the OTA file.
    pub fn download_limit(self) -> u64 {
        match self {
            ImageSize::FileLength(bytes) => bytes,
            ImageSize::HeaderImageSize(bytes) => bytes.saturating_add(Self::WRAPPER_ALLOWANCE),
            ImageSize::Unpublished => MAX_IMAGE_DOWNLOAD_BYTES,
        }
    }

    /// Bytes a file may carry beyond its header's `image_size` (IKEA's container adds about
    /// 1 KB, Legrand 21 bytes, trailing signatures a few hundred).
    pub const WRAPPER_ALLOWANCE: u64 = 64 * 1024;

    /// True when a file of `length` bytes fits this figure.
    pub fn accepts_length(self, length: u64) -> bool {
        match self {
            ImageSize::FileLength(bytes) => length == bytes,
            ImageSize::HeaderImageSize(_) | ImageSize::Unpublished => {
                length <= self.download_limit()
            }
        }
    }
}

/// Which devices may take an image, beyond manufacturer code and image type.
/// `None`/empty means "no restriction".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Restrictions {
    /// The device's current file version must be at least this (`minFileVersion`).
    pub min_file_version: Option<u32>,
    /// The device's current file version must be at most this (`maxFileVersion`).
    pub max_file_version: Option<u32>,
    /// The device's hardware version must be at least this (`hardwareVersionMin`).
    pub hardware_version_min: Option<u16>,
    /// The device's hardware version must be at most this (`hardwareVersionMax`).
    pub hardware_version_max: Option<u16>,
    /// The device's Basic cluster model identifier must equal this (`modelId`).
    pub model_id: Option<String>,
    /// The device's Basic cluster manufacturer name must be one of these (`manufacturerName`).
    pub manufacturer_names: Vec<String>,
}

/// What is known about the device asking for an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceQuery<'a> {
    /// Manufacturer code from Query Next Image Request.
    pub manufacturer_code: u16,
    /// Image type from Query Next Image Request.
    pub image_type: u16,
    /// The device's current file version.
    pub current_file_version: u32,
    /// Hardware version, when the request carried one.
    pub hardware_version: Option<u16>,
    /// Basic cluster model identifier, when known.
    pub model_id: Option<&'a str>,
    /// Basic cluster manufacturer name, when known.
    pub manufacturer_name: Option<&'a str>,
}

/// Why a restriction excluded a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestrictionMismatch {
    /// Current version below `minFileVersion`.
    BelowMinFileVersion,
    /// Current version above `maxFileVersion`.
    AboveMaxFileVersion,
    /// Hardware version outside the range, or unknown while the image names a range.
    HardwareVersion,
    /// Model identifier different, or unknown while the image names one.
    ModelId,
    /// Manufacturer name not listed, or unknown while the image lists names.
    ManufacturerName,
}

impl Restrictions {
    /// Checks a device against these restrictions. Unknown device facts never satisfy a
    /// restriction that needs them: an image meant for one hardware revision is not offered to a
    /// device that did not say which revision it is.
    pub fn check(&self, device: &DeviceQuery<'_>) -> Result<(), RestrictionMismatch> {
        if self
            .min_file_version
            .is_some_and(|min| device.current_file_version < min)
        {
            return Err(RestrictionMismatch::BelowMinFileVersion);
        }
        if self
            .max_file_version
            .is_some_and(|max| device.current_file_version > max)
        {
            return Err(RestrictionMismatch::AboveMaxFileVersion);
        }
        if self.hardware_version_min.is_some() || self.hardware_version_max.is_some() {
            let hardware = device
                .hardware_version
                .ok_or(RestrictionMismatch::HardwareVersion)?;
            let below = self.hardware_version_min.is_some_and(|min| hardware < min);
            let above = self.hardware_version_max.is_some_and(|max| hardware > max);
            if below || above {
                return Err(RestrictionMismatch::HardwareVersion);
            }
        }
        if let Some(model) = &self.model_id
            && device.model_id != Some(model.as_str())
        {
            return Err(RestrictionMismatch::ModelId);
        }
        if !self.manufacturer_names.is_empty() {
            let name = device
                .manufacturer_name
                .ok_or(RestrictionMismatch::ManufacturerName)?;
            if !self.manufacturer_names.iter().any(|listed| listed == name) {
                return Err(RestrictionMismatch::ManufacturerName);
            }
        }
        Ok(())
    }
}

/// One image a source offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CatalogEntry {
    /// The source that listed it.
    pub provenance: Provenance,
    /// Manufacturer code (0xFFFF matches every manufacturer).
    pub manufacturer_code: u16,
    /// Image type (0xFFFF matches every image type).
    pub image_type: u16,
    /// File version; higher is newer.
    pub file_version: u32,
    /// The published size.
    pub size: ImageSize,
    /// The published digest, checked before the image is stored or offered.
    pub hash: ImageHash,
    /// Where the bytes come from.
    pub locator: Locator,
    /// Which devices may take it.
    pub restrictions: Restrictions,
    /// A display name (LEDVANCE `productName`, zigbee-OTA `fileName`): for humans and logs only.
    pub display_name: Option<String>,
    /// Release notes, when the source has them.
    pub release_notes: Option<String>,
}

/// An image that must never be offered (a known bricking image, a broken release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    /// Manufacturer code the rule applies to.
    pub manufacturer_code: u16,
    /// Image type, or every image type of the manufacturer.
    pub image_type: Option<u16>,
    /// One file version, or every version.
    pub file_version: Option<u32>,
    /// Why (logged when an image is refused).
    pub reason: String,
}

impl DenyRule {
    /// True when the rule covers this image.
    pub fn matches(&self, manufacturer_code: u16, image_type: u16, file_version: u32) -> bool {
        self.manufacturer_code == manufacturer_code
            && self.image_type.is_none_or(|t| t == image_type)
            && self.file_version.is_none_or(|v| v == file_version)
    }
}

/// Keeps every device of one manufacturer and image type on one file version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionPin {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The only version offered to these devices.
    pub file_version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_hex_round_trip_and_cache_key() {
        let hash = ImageHash::compute(HashAlgorithm::Sha256, b"abc");
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ImageHash::from_cache_key(&hash.cache_key()), Some(hash));
        assert_eq!(
            ImageHash::from_hex(HashAlgorithm::Sha256, &hash.to_hex().to_uppercase()),
            Some(hash)
        );
        assert!(hash.matches(b"abc"));
        assert!(!hash.matches(b"abd"));
    }

    #[test]
    fn hash_hex_rejects_wrong_length_and_digits() {
        assert_eq!(ImageHash::from_hex(HashAlgorithm::Sha256, "ab"), None);
        let bad = "g".repeat(64);
        assert_eq!(ImageHash::from_hex(HashAlgorithm::Sha256, &bad), None);
        let multibyte = "é".repeat(32);
        assert_eq!(ImageHash::from_hex(HashAlgorithm::Sha256, &multibyte), None);
        assert_eq!(ImageHash::from_cache_key("md5-00"), None);
        assert_eq!(ImageHash::from_cache_key("../../etc/passwd"), None);
    }

    fn device(version: u32) -> DeviceQuery<'static> {
        DeviceQuery {
            manufacturer_code: 0x10F2,
            image_type: 0x7B32,
            current_file_version: version,
            ..DeviceQuery::default()
        }
    }

    #[test]
    fn restrictions_need_known_facts() {
        let hardware = Restrictions {
            hardware_version_min: Some(2),
            hardware_version_max: Some(7),
            ..Restrictions::default()
        };
        assert_eq!(
            hardware.check(&device(1)),
            Err(RestrictionMismatch::HardwareVersion)
        );
        let mut known = device(1);
        known.hardware_version = Some(1);
        assert_eq!(
            hardware.check(&known),
            Err(RestrictionMismatch::HardwareVersion)
        );
        known.hardware_version = Some(7);
        assert_eq!(hardware.check(&known), Ok(()));

        let named = Restrictions {
            model_id: Some("lumi.motion.ac01".into()),
            manufacturer_names: vec!["LUMI".into(), "Aqara".into()],
            ..Restrictions::default()
        };
        let mut lumi = device(1);
        assert_eq!(named.check(&lumi), Err(RestrictionMismatch::ModelId));
        lumi.model_id = Some("lumi.motion.ac01");
        assert_eq!(
            named.check(&lumi),
            Err(RestrictionMismatch::ManufacturerName)
        );
        lumi.manufacturer_name = Some("Aqara");
        assert_eq!(named.check(&lumi), Ok(()));
    }

    #[test]
    fn file_version_window() {
        let window = Restrictions {
            min_file_version: Some(10),
            max_file_version: Some(20),
            ..Restrictions::default()
        };
        assert_eq!(
            window.check(&device(9)),
            Err(RestrictionMismatch::BelowMinFileVersion)
        );
        assert_eq!(window.check(&device(10)), Ok(()));
        assert_eq!(window.check(&device(20)), Ok(()));
        assert_eq!(
            window.check(&device(21)),
            Err(RestrictionMismatch::AboveMaxFileVersion)
        );
    }

    #[test]
    fn size_kinds() {
        assert!(ImageSize::FileLength(100).accepts_length(100));
        assert!(!ImageSize::FileLength(100).accepts_length(99));
        assert!(ImageSize::HeaderImageSize(100).accepts_length(50));
        assert!(ImageSize::HeaderImageSize(100).accepts_length(100 + 1000));
        assert!(!ImageSize::HeaderImageSize(100).accepts_length(100 + 70_000));
    }

    proptest! {
        #[test]
        fn any_digest_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let hash = ImageHash::Sha256(bytes);
            prop_assert_eq!(ImageHash::from_hex(HashAlgorithm::Sha256, &hash.to_hex()), Some(hash));
            prop_assert_eq!(ImageHash::from_cache_key(&hash.cache_key()), Some(hash));
        }
    }
}
