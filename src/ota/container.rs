//! Vendor wrappers around the OTA file: bytes before the magic (ZCL8 §11.4 has none; the field
//! does). Recognised: IKEA's signed `NGIS` container, Legrand's 4-byte size prefix with a 17-byte
//! suffix; any other prefix is kept as [`Container::UnknownPrefix`] (Sonoff's 100 bytes, Third
//! Reality's 152), because zigbee-herdsman serves from the first magic and devices accept that.

use std::fmt;

use serde::Serialize;

use super::OtaError;
use super::header::OTA_MAGIC;
use crate::wire::fields;

/// Bytes before the NGIS hash table (magic, version and the offset/size/block fields).
const NGIS_HASH_TABLE_OFFSET: usize = 40;
/// One SHA-256 per block.
const NGIS_HASH_LENGTH: usize = 32;

/// The IKEA container's magic.
pub const NGIS_MAGIC: [u8; 4] = *b"NGIS";
/// Legrand's suffix after the image: 1 + 16 bytes.
pub const LEGRAND_SUFFIX_LENGTH: usize = 17;
/// Legrand's prefix: the image size as a little-endian u32.
pub const LEGRAND_PREFIX_LENGTH: usize = 4;

/// What wraps the OTA file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Container {
    /// The file starts with the magic.
    None,
    /// IKEA's signed container: a header, one SHA-256 per block of the OTA file, the OTA file,
    /// a signature. [`check_block_hashes`] verifies the hashes; the signature (IKEA's key) is not
    /// checked. When the container's size is
    /// larger than the header's `image_size`, zigpy folds the extra bytes into tag 0 and rewrites
    /// the header; we serve the header's `image_size` bytes unchanged and count the rest as
    /// trailing bytes (no such file is in the corpus).
    IkeaNgis {
        /// Offset of the OTA file (NGIS bytes 16..20).
        image_offset: u32,
        /// Size of the OTA file as the container declares it (bytes 20..24).
        image_size: u32,
        /// Hash block size (bytes 32..36).
        block_size: u32,
        /// Number of block hashes (bytes 36..40).
        hash_count: u32,
        /// Bytes after the declared OTA file (the signature).
        suffix_length: usize,
    },
    /// Legrand: the image size as a u32 prefix, and a 17-byte suffix.
    LegrandPrefix {
        /// The prefix's value.
        declared_size: u32,
    },
    /// Unrecognised bytes before the magic.
    UnknownPrefix {
        /// Prefix length (= the magic offset).
        length: usize,
    },
}

impl Container {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Container::None => "none",
            Container::IkeaNgis { .. } => "ikea_ngis",
            Container::LegrandPrefix { .. } => "legrand_prefix",
            Container::UnknownPrefix { .. } => "unknown_prefix",
        }
    }

    /// Bytes after the image that the container declares as its own (signature, suffix).
    pub fn suffix_length(&self) -> usize {
        match self {
            Container::IkeaNgis { suffix_length, .. } => *suffix_length,
            Container::LegrandPrefix { .. } => LEGRAND_SUFFIX_LENGTH,
            Container::None | Container::UnknownPrefix { .. } => 0,
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Container::None => f.write_str("none"),
            Container::IkeaNgis {
                image_offset,
                image_size,
                block_size,
                hash_count,
                suffix_length,
            } => write!(
                f,
                "IKEA NGIS (image at {image_offset}, {image_size} bytes; {hash_count} block hashes of {block_size} bytes; {suffix_length}-byte signature)"
            ),
            Container::LegrandPrefix { declared_size } => write!(
                f,
                "Legrand (4-byte size prefix {declared_size}, {LEGRAND_SUFFIX_LENGTH}-byte suffix)"
            ),
            Container::UnknownPrefix { length } => {
                write!(f, "unknown {length}-byte prefix before the magic")
            }
        }
    }
}

/// Finds the OTA file inside `bytes`: returns the container and the magic's offset.
/// The magic is searched for in the first `max_prefix + 4` bytes only.
pub fn locate(bytes: &[u8], max_prefix: usize) -> Result<(Container, usize), OtaError> {
    if bytes.starts_with(&NGIS_MAGIC) {
        return locate_ngis(bytes);
    }
    let searched = bytes.len().min(max_prefix.saturating_add(OTA_MAGIC.len()));
    let magic_offset = bytes
        .get(..searched)
        .unwrap_or(bytes)
        .windows(OTA_MAGIC.len())
        .position(|window| window == OTA_MAGIC)
        .ok_or(OtaError::NoMagic {
            searched,
            file_size: bytes.len(),
        })?;
    let container = match magic_offset {
        0 => Container::None,
        LEGRAND_PREFIX_LENGTH => {
            let declared_size =
                fields::finish(bytes, fields::u32("legrand prefix")).map_or(0, |(size, _)| size);
            let expected_len = usize::try_from(declared_size)
                .ok()
                .and_then(|size| size.checked_add(LEGRAND_PREFIX_LENGTH + LEGRAND_SUFFIX_LENGTH));
            if expected_len == Some(bytes.len()) {
                Container::LegrandPrefix { declared_size }
            } else {
                Container::UnknownPrefix {
                    length: magic_offset,
                }
            }
        }
        length => Container::UnknownPrefix { length },
    };
    Ok((container, magic_offset))
}

/// A fault in the IKEA container's own fields.
fn ngis_error(field: &'static str, offset: usize, problem: String) -> OtaError {
    OtaError::Container {
        container: "IKEA NGIS",
        field,
        offset,
        problem,
    }
}

fn locate_ngis(bytes: &[u8]) -> Result<(Container, usize), OtaError> {
    let truncated = |t: crate::wire::Truncated| {
        ngis_error(
            t.field,
            t.offset,
            format!("needs {} bytes, only {} left", t.needed, t.available),
        )
    };
    let ((_, image_offset, image_size, _, block_size, hash_count), _) = fields::finish(
        bytes,
        (
            fields::bytes("ngis header", 16),
            fields::u32("image_offset"),
            fields::u32("image_size"),
            fields::bytes("ngis header", 8),
            fields::u32("block_size"),
            fields::u32("hash_count"),
        ),
    )
    .map_err(truncated)?;

    let start = usize::try_from(image_offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(image_size).unwrap_or(usize::MAX));
    if end > bytes.len() {
        return Err(ngis_error(
            "image_size",
            20,
            format!(
                "image at {image_offset} of {image_size} bytes ends at {end}, past the file's {} bytes",
                bytes.len()
            ),
        ));
    }
    if bytes.get(start..start.saturating_add(4)) != Some(&OTA_MAGIC[..]) {
        return Err(ngis_error(
            "image_offset",
            16,
            format!("no OTA magic at the declared image offset {image_offset}"),
        ));
    }
    let container = Container::IkeaNgis {
        image_offset,
        image_size,
        block_size,
        hash_count,
        suffix_length: bytes.len() - end,
    };
    Ok((container, start))
}

/// What a container's own integrity data says about the image it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerCheck {
    /// No container, or one without integrity data.
    NoIntegrityData,
    /// Every block hash matched (IKEA `NGIS`: one SHA-256 per block of the OTA file).
    BlockHashesMatch {
        /// Blocks verified.
        blocks: u32,
    },
    /// The hash table is not laid out as in the IKEA files we know (its count or position), so
    /// nothing could be checked. Such a file is served as other servers serve it (zigpy does not
    /// check these hashes) with a warning, rather than refused on a guess about the format.
    Unverifiable {
        /// What did not fit.
        reason: String,
    },
}

/// Checks a container's own integrity data against the file: for IKEA `NGIS`, every block of
/// the contained OTA file must hash (SHA-256) to the entry of the container's hash table (the
/// layout of the real TRADFRI files: `hash_count = ceil(image_size / block_size)` hashes from
/// byte 40, before the image). A hash that does not match is an error; a table laid out
/// otherwise is [`ContainerCheck::Unverifiable`]. `bytes` is the whole file, as [`locate`] saw
/// it.
pub fn check_block_hashes(bytes: &[u8], container: &Container) -> Result<ContainerCheck, OtaError> {
    let Container::IkeaNgis {
        image_offset,
        image_size,
        block_size,
        hash_count,
        ..
    } = *container
    else {
        return Ok(ContainerCheck::NoIntegrityData);
    };
    use sha2::Digest;
    let as_usize = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    let (start, size, block) = (
        as_usize(image_offset),
        as_usize(image_size),
        as_usize(block_size),
    );
    let unverifiable = |reason: String| Ok(ContainerCheck::Unverifiable { reason });
    if block == 0 {
        return unverifiable("block_size (offset 32) is 0".to_owned());
    }
    let needed = size.div_ceil(block);
    if as_usize(hash_count) != needed {
        return unverifiable(format!(
            "hash_count (offset 36) is {hash_count}, but {image_size} bytes in blocks of {block_size} make {needed}"
        ));
    }
    let Some(table_end) = needed
        .checked_mul(NGIS_HASH_LENGTH)
        .and_then(|len| len.checked_add(NGIS_HASH_TABLE_OFFSET))
        .filter(|end| *end <= start)
    else {
        return unverifiable(format!(
            "{hash_count} hashes do not fit before the image at offset {image_offset}"
        ));
    };
    let past_end = |field: &'static str, offset: usize| {
        ngis_error(
            field,
            offset,
            format!("reaches past the file's {} bytes", bytes.len()),
        )
    };
    let table = bytes
        .get(NGIS_HASH_TABLE_OFFSET..table_end)
        .ok_or_else(|| past_end("hash_count", 36))?;
    let image = bytes
        .get(start..start.saturating_add(size))
        .ok_or_else(|| past_end("image_size", 20))?;
    for (index, (expected, data)) in table
        .chunks(NGIS_HASH_LENGTH)
        .zip(image.chunks(block))
        .enumerate()
    {
        let actual = sha2::Sha256::digest(data);
        if actual.as_slice() != expected {
            let from = index * block;
            return Err(ngis_error(
                "block hash",
                NGIS_HASH_TABLE_OFFSET + index * NGIS_HASH_LENGTH,
                format!(
                    "block {index} (image bytes {from}..{}) does not match its SHA-256",
                    from + data.len()
                ),
            ));
        }
    }
    Ok(ContainerCheck::BlockHashesMatch { blocks: hash_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ota_stub(len: usize) -> Vec<u8> {
        let mut v = OTA_MAGIC.to_vec();
        v.resize(len, 0xAA);
        v
    }

    #[test]
    fn plain_and_prefixed() {
        assert_eq!(locate(&ota_stub(60), 4096), Ok((Container::None, 0)));
        let mut prefixed = vec![0x55; 100];
        prefixed.extend(ota_stub(60));
        assert_eq!(
            locate(&prefixed, 4096),
            Ok((Container::UnknownPrefix { length: 100 }, 100))
        );
        assert_eq!(
            locate(&prefixed, 50),
            Err(OtaError::NoMagic {
                searched: 54,
                file_size: 160
            })
        );
    }

    #[test]
    fn legrand_needs_matching_size_prefix() {
        let mut file = 60u32.to_le_bytes().to_vec();
        file.extend(ota_stub(60));
        file.extend([0u8; 17]);
        assert_eq!(
            locate(&file, 4096),
            Ok((Container::LegrandPrefix { declared_size: 60 }, 4))
        );
        file.push(0);
        assert_eq!(
            locate(&file, 4096),
            Ok((Container::UnknownPrefix { length: 4 }, 4))
        );
    }

    #[test]
    fn ngis_offsets_are_checked() {
        let mut file = b"NGIS".to_vec();
        file.resize(16, 0);
        file.extend(48u32.to_le_bytes());
        file.extend(60u32.to_le_bytes());
        file.resize(48, 0);
        file.extend(ota_stub(60));
        file.extend([0x51; 8]);
        assert_eq!(
            locate(&file, 0).unwrap().1,
            48,
            "NGIS gives the offset; no search"
        );
        file[16] = 40;
        let err = locate(&file, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "IKEA NGIS container: image_offset at offset 16: no OTA magic at the declared image offset 40"
        );
        file[16] = 48;
        file[20] = 200;
        assert!(matches!(
            locate(&file, 0),
            Err(OtaError::Container {
                field: "image_size",
                ..
            })
        ));
        assert!(matches!(
            locate(b"NGIS\0\0", 0),
            Err(OtaError::Container {
                field: "ngis header",
                ..
            })
        ));
    }
}
