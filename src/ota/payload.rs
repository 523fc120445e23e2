//! What an upgrade image carries: Silicon Labs GBL and EBL bootloader images (structure and
//! CRC-32 check, as UG266 and UG103.6 define them and zigpy's `validators.py` checks them), and
//! the other payloads seen in real files, which are recognised but not checked.

use std::fmt;

use crc::{CRC_32_ISO_HDLC, Crc, Table};
use serde::Serialize;

use crate::wire::Reader;

/// GBL files start with the header tag `EB 17 A6 03`.
pub const GBL_MAGIC: [u8; 4] = [0xEB, 0x17, 0xA6, 0x03];
/// GBL end tag, followed by its 4-byte length and the CRC-32.
pub const GBL_END_TAG: [u8; 4] = [0xFC, 0x04, 0x04, 0xFC];
/// EBL files start with the header tag 0x0000 of length 0x008C.
pub const EBL_MAGIC: [u8; 4] = [0x00, 0x00, 0x00, 0x8C];
/// EBL end tag, followed by its big-endian length (4) and the CRC-32.
pub const EBL_END_TAG: [u8; 2] = [0xFC, 0x04];
/// Encrypted EBL files start with the encryption header tag 0xFB05.
pub const ENCRYPTED_EBL_MAGIC: [u8; 2] = [0xFB, 0x05];
/// EBL files are padded with 0xFF to a multiple of this many bytes.
pub const EBL_ALIGNMENT: usize = 64;
/// CRC-32 (ISO-HDLC, the zlib one) of any data followed by its own little-endian CRC-32.
pub const CRC32_RESIDUE: u32 = 0x2144_DF1C;

/// Slice-by-16 tables: the check runs over every byte of the image, so speed matters here.
static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

/// The kind of firmware payload in an upgrade image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayloadKind {
    /// Silicon Labs Gecko Bootloader image.
    Gbl,
    /// Silicon Labs Ember Bootloader image.
    Ebl,
    /// Anything else; [`PayloadNote`] says what it looks like when we know.
    Unknown,
}

impl PayloadKind {
    /// `gbl`, `ebl` or `unknown`, as the inspect report prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Gbl => "gbl",
            PayloadKind::Ebl => "ebl",
            PayloadKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an unchecked payload looks like, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayloadNote {
    /// Encrypted EBL (starts with tag 0xFB05): the CRC covers ciphertext we cannot check.
    EncryptedEbl,
    /// Philips Hue block format (starts `2A 00 01`), as in `.sbl-ota` files.
    HueSbl,
    /// xz-compressed data (`FD 37 7A 58 5A 00`).
    Xz,
    /// NXP JN51xx image (starts `12 34 56 78`).
    NxpJn,
    /// Telink encrypted image (manufacturer tag 0xF000 with a 2-byte tag info).
    TelinkEncrypted,
    /// Raw firmware directly after the header, without sub-element framing.
    Raw,
}

impl PayloadNote {
    /// Short lowercase name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadNote::EncryptedEbl => "encrypted_ebl",
            PayloadNote::HueSbl => "hue_sbl",
            PayloadNote::Xz => "xz",
            PayloadNote::NxpJn => "nxp_jn",
            PayloadNote::TelinkEncrypted => "telink_encrypted",
            PayloadNote::Raw => "raw",
        }
    }
}

/// The outcome of checking a payload's structure and CRC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadCheck {
    /// GBL or EBL with intact structure and CRC.
    Valid,
    /// GBL or EBL that fails a check.
    Invalid(PayloadDefect),
    /// A payload we cannot check (not GBL or EBL, or no upgrade image at all).
    Unknown,
}

impl PayloadCheck {
    /// `valid`, `invalid` or `unknown`, as the inspect report prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            PayloadCheck::Valid => "valid",
            PayloadCheck::Invalid(_) => "invalid",
            PayloadCheck::Unknown => "unknown",
        }
    }
}

/// Why a GBL or EBL payload is invalid. Offsets are relative to the payload's first byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadDefect {
    /// EBL length is not a multiple of 64.
    #[error("EBL size {size} is not a multiple of 64 bytes")]
    EblSizeNotAligned {
        /// Payload length.
        size: usize,
    },
    /// A tag header or tag value runs past the end of the payload.
    #[error(
        "{format} tag at offset {offset} runs past the end: needs {needed} bytes, {available} left"
    )]
    TagTruncated {
        /// `GBL` or `EBL`.
        format: &'static str,
        /// Offset of the tag.
        offset: usize,
        /// Bytes the tag needs (header, or header plus value).
        needed: usize,
        /// Bytes left from the tag's offset.
        available: usize,
    },
    /// Bytes other than 0xFF after the EBL end tag.
    #[error("EBL padding at offset {offset} holds 0x{byte:02X}, only 0xFF is allowed")]
    EblPaddingNotFf {
        /// Offset of the first bad padding byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// The CRC-32 over the image up to its end tag does not leave the residue.
    #[error(
        "{format} CRC-32 over bytes 0..{end} is wrong: residue 0x{computed:08X}, expected 0x{CRC32_RESIDUE:08X}"
    )]
    CrcMismatch {
        /// `GBL` or `EBL`.
        format: &'static str,
        /// End of the checked range (just after the end tag's CRC).
        end: usize,
        /// The residue computed.
        computed: u32,
    },
}

/// Classifies a payload by its first bytes.
pub fn classify(payload: &[u8]) -> (PayloadKind, Option<PayloadNote>) {
    if payload.starts_with(&GBL_MAGIC) {
        (PayloadKind::Gbl, None)
    } else if payload.starts_with(&EBL_MAGIC) {
        (PayloadKind::Ebl, None)
    } else if payload.starts_with(&ENCRYPTED_EBL_MAGIC) {
        (PayloadKind::Unknown, Some(PayloadNote::EncryptedEbl))
    } else if payload.starts_with(&[0x2A, 0x00, 0x01]) {
        (PayloadKind::Unknown, Some(PayloadNote::HueSbl))
    } else if payload.starts_with(&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
        (PayloadKind::Unknown, Some(PayloadNote::Xz))
    } else if payload.starts_with(&[0x12, 0x34, 0x56, 0x78]) {
        (PayloadKind::Unknown, Some(PayloadNote::NxpJn))
    } else {
        (PayloadKind::Unknown, None)
    }
}

/// Classifies and checks one payload: GBL and EBL are walked tag by tag and CRC-checked, anything
/// else is [`PayloadCheck::Unknown`].
pub fn check(payload: &[u8]) -> (PayloadKind, PayloadCheck) {
    let (kind, _) = classify(payload);
    let result = match kind {
        PayloadKind::Gbl => check_gbl(payload),
        PayloadKind::Ebl => check_ebl(payload),
        PayloadKind::Unknown => return (kind, PayloadCheck::Unknown),
    };
    match result {
        Ok(()) => (kind, PayloadCheck::Valid),
        Err(defect) => (kind, PayloadCheck::Invalid(defect)),
    }
}

fn truncated(format: &'static str, offset: usize, needed: usize, len: usize) -> PayloadDefect {
    PayloadDefect::TagTruncated {
        format,
        offset,
        needed,
        available: len.saturating_sub(offset),
    }
}

fn crc_over(format: &'static str, payload: &[u8], end: usize) -> Result<(), PayloadDefect> {
    let computed = CRC32.checksum(payload.get(..end).unwrap_or(payload));
    if computed == CRC32_RESIDUE {
        Ok(())
    } else {
        Err(PayloadDefect::CrcMismatch {
            format,
            end,
            computed,
        })
    }
}

/// GBL: tags of 4-byte id and little-endian u32 length up to the end tag, whose value ends in the
/// CRC-32 of everything before it. Bytes after the end tag are padding (Hue pads) and not checked.
pub fn check_gbl(payload: &[u8]) -> Result<(), PayloadDefect> {
    let mut reader = Reader::new(payload);
    loop {
        let offset = reader.position();
        let tag = reader
            .array::<4>("gbl tag")
            .map_err(|_| truncated("GBL", offset, 8, payload.len()))?;
        let length = reader
            .u32("gbl tag length")
            .map_err(|_| truncated("GBL", offset, 8, payload.len()))?;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        reader
            .take("gbl tag value", length)
            .map_err(|_| truncated("GBL", offset, 8usize.saturating_add(length), payload.len()))?;
        if tag == GBL_END_TAG {
            return crc_over("GBL", payload, reader.position());
        }
    }
}

/// EBL: the size is a multiple of 64; tags of big-endian u16 id and u16 length up to the end tag
/// 0xFC04, then nothing but 0xFF padding; the CRC-32 covers everything up to the end tag's value.
pub fn check_ebl(payload: &[u8]) -> Result<(), PayloadDefect> {
    if !payload.len().is_multiple_of(EBL_ALIGNMENT) {
        return Err(PayloadDefect::EblSizeNotAligned {
            size: payload.len(),
        });
    }
    let mut reader = Reader::new(payload);
    loop {
        let offset = reader.position();
        let tag = reader
            .array::<2>("ebl tag")
            .map_err(|_| truncated("EBL", offset, 4, payload.len()))?;
        let length = reader
            .u16_be("ebl tag length")
            .map_err(|_| truncated("EBL", offset, 4, payload.len()))?;
        reader
            .take("ebl tag value", usize::from(length))
            .map_err(|_| truncated("EBL", offset, 4 + usize::from(length), payload.len()))?;
        if tag == EBL_END_TAG {
            let end = reader.position();
            let padding = reader.rest();
            if let Some(bad) = padding.iter().position(|&b| b != 0xFF) {
                return Err(PayloadDefect::EblPaddingNotFf {
                    offset: end + bad,
                    byte: padding.get(bad).copied().unwrap_or_default(),
                });
            }
            return crc_over("EBL", payload, end);
        }
    }
}

/// Builds synthetic GBL images for tests and fixtures: a header tag, any data tags, the end tag
/// with a correct CRC, optional padding, and a way to corrupt the CRC.
#[derive(Debug, Clone, Default)]
pub struct GblBuilder {
    tags: Vec<([u8; 4], Vec<u8>)>,
    padding: Vec<u8>,
    corrupt_crc: bool,
}

impl GblBuilder {
    /// A GBL with only the header tag (version 3, type 0).
    pub fn new() -> Self {
        let mut header = Vec::new();
        header.extend_from_slice(&0x0300_0000u32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        GblBuilder {
            tags: vec![(GBL_MAGIC, header)],
            padding: Vec::new(),
            corrupt_crc: false,
        }
    }

    /// Adds a tag (for example a program-data tag `FE 01 01 FE` with its payload).
    pub fn tag(mut self, id: [u8; 4], value: Vec<u8>) -> Self {
        self.tags.push((id, value));
        self
    }

    /// Adds bytes after the end tag.
    pub fn padding(mut self, bytes: Vec<u8>) -> Self {
        self.padding = bytes;
        self
    }

    /// Flips one bit of the stored CRC, so the check fails.
    pub fn corrupt_crc(mut self) -> Self {
        self.corrupt_crc = true;
        self
    }

    /// The image bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, value) in &self.tags {
            out.extend_from_slice(id);
            out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&GBL_END_TAG);
        out.extend_from_slice(&4u32.to_le_bytes());
        append_crc(&mut out, self.corrupt_crc);
        out.extend_from_slice(&self.padding);
        out
    }
}

/// Builds synthetic EBL images: the header tag, data tags, the end tag with a correct CRC and 0xFF
/// padding to a multiple of 64 (each of which can be broken on purpose).
#[derive(Debug, Clone, Default)]
pub struct EblBuilder {
    tags: Vec<([u8; 2], Vec<u8>)>,
    corrupt_crc: bool,
    unaligned: bool,
    padding_byte: Option<u8>,
}

impl EblBuilder {
    /// An EBL with only its 0x8C-byte header tag.
    pub fn new() -> Self {
        let mut header = vec![0u8; 0x8C];
        if let Some(first) = header.get_mut(..2) {
            first.copy_from_slice(&[0x02, 0x02]);
        }
        EblBuilder {
            tags: vec![([0x00, 0x00], header)],
            ..Default::default()
        }
    }

    /// Adds a tag (for example program data 0xFE01), value at most 65535 bytes.
    pub fn tag(mut self, id: [u8; 2], value: Vec<u8>) -> Self {
        self.tags.push((id, value));
        self
    }

    /// Flips one bit of the stored CRC.
    pub fn corrupt_crc(mut self) -> Self {
        self.corrupt_crc = true;
        self
    }

    /// Leaves out the padding, so the size is (almost certainly) not a multiple of 64.
    pub fn unaligned(mut self) -> Self {
        self.unaligned = true;
        self
    }

    /// Pads with this byte instead of 0xFF (invalid unless it is 0xFF).
    pub fn padding_byte(mut self, byte: u8) -> Self {
        self.padding_byte = Some(byte);
        self
    }

    /// The image bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, value) in &self.tags {
            out.extend_from_slice(id);
            out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&EBL_END_TAG);
        out.extend_from_slice(&4u16.to_be_bytes());
        append_crc(&mut out, self.corrupt_crc);
        if !self.unaligned {
            let padded = out.len().next_multiple_of(EBL_ALIGNMENT);
            out.resize(padded, self.padding_byte.unwrap_or(0xFF));
        }
        out
    }
}

fn append_crc(out: &mut Vec<u8>, corrupt: bool) {
    let mut crc = CRC32.checksum(out);
    if corrupt {
        crc ^= 1;
    }
    out.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program_data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn residue_matches_zlib_convention() {
        // crc32("123456789") is the catalogue check value; appending it yields the residue.
        let mut data = b"123456789".to_vec();
        assert_eq!(CRC32.checksum(&data), 0xCBF4_3926);
        data.extend_from_slice(&0xCBF4_3926u32.to_le_bytes());
        assert_eq!(CRC32.checksum(&data), CRC32_RESIDUE);
    }

    #[test]
    fn gbl_valid_and_padded() {
        let gbl = GblBuilder::new().tag([0xFE, 1, 1, 0xFE], program_data(300));
        assert_eq!(check(&gbl.build()), (PayloadKind::Gbl, PayloadCheck::Valid));
        let padded = gbl.padding(vec![0xFF; 10]).build();
        assert_eq!(check(&padded).1, PayloadCheck::Valid);
    }

    #[test]
    fn gbl_crc_and_truncation_are_reported() {
        let bad = GblBuilder::new()
            .tag([0xFE, 1, 1, 0xFE], program_data(40))
            .corrupt_crc()
            .build();
        let end = bad.len();
        assert!(matches!(
            check_gbl(&bad),
            Err(PayloadDefect::CrcMismatch { format: "GBL", end: e, .. }) if e == end
        ));
        let good = GblBuilder::new().build();
        assert_eq!(
            check_gbl(&good[..good.len() - 2]),
            Err(PayloadDefect::TagTruncated {
                format: "GBL",
                offset: 16,
                needed: 12,
                available: 10
            })
        );
    }

    #[test]
    fn ebl_valid_then_each_rule_broken() {
        let ebl = EblBuilder::new().tag([0xFE, 0x01], program_data(1000));
        let bytes = ebl.build();
        assert_eq!(bytes.len() % 64, 0);
        assert_eq!(check(&bytes), (PayloadKind::Ebl, PayloadCheck::Valid));

        let unaligned = ebl.clone().unaligned().build();
        assert_eq!(
            check_ebl(&unaligned),
            Err(PayloadDefect::EblSizeNotAligned {
                size: unaligned.len()
            })
        );

        let bad_padding = ebl.clone().padding_byte(0x00).build();
        let end = 4 + 0x8C + 4 + 1000 + 8;
        assert_eq!(
            check_ebl(&bad_padding),
            Err(PayloadDefect::EblPaddingNotFf {
                offset: end,
                byte: 0
            })
        );

        let bad_crc = ebl.corrupt_crc().build();
        assert!(matches!(
            check_ebl(&bad_crc),
            Err(PayloadDefect::CrcMismatch { format: "EBL", end: e, .. }) if e == end
        ));
    }

    #[test]
    fn other_payloads_are_classified_not_checked() {
        assert_eq!(
            classify(&[0xFB, 0x05, 0x00, 0x06]),
            (PayloadKind::Unknown, Some(PayloadNote::EncryptedEbl))
        );
        assert_eq!(
            classify(&[0x2A, 0x00, 0x01, 0x0F]).1,
            Some(PayloadNote::HueSbl)
        );
        assert_eq!(
            check(&[1, 2, 3]),
            (PayloadKind::Unknown, PayloadCheck::Unknown)
        );
        assert_eq!(check(&[]), (PayloadKind::Unknown, PayloadCheck::Unknown));
    }
}
