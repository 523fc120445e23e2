//! The OTA upgrade file header (ZCL8 §11.4.2): 56 fixed bytes, then the optional fields that the
//! field control selects (security credential version, upgrade file destination, hardware versions).

use std::fmt;

use super::OtaError;
use super::types::{
    FileVersion, HardwareVersion, HeaderVersion, ImageType, ManufacturerCode,
    SecurityCredentialVersion, StackVersion,
};
use nom::Parser;
use nom::combinator::cond;

use crate::wire::fields;
use crate::wire::{PutLe, Truncated};
use crate::zigbee::Ieee;

/// The upgrade file identifier 0x0BEEF11E as it appears in the file (little-endian).
pub const OTA_MAGIC: [u8; 4] = [0x1E, 0xF1, 0xEE, 0x0B];

/// Length of the mandatory header fields.
pub const FIXED_HEADER_LENGTH: u16 = 56;

/// Largest `header_length` accepted. The spec's fields need at most 69 bytes; real files use 56
/// or 60. Anything far beyond that is a corrupt file, not a longer header.
pub const MAX_HEADER_LENGTH: u16 = 256;

/// Field control bits (header offset 8).
pub mod field_control {
    /// Bit 0: the security credential version is present.
    pub const SECURITY_CREDENTIAL_VERSION_PRESENT: u16 = 0x0001;
    /// Bit 1: the upgrade file destination (device-specific file) is present.
    pub const DEVICE_SPECIFIC_FILE: u16 = 0x0002;
    /// Bit 2: minimum and maximum hardware versions are present.
    pub const HARDWARE_VERSIONS_PRESENT: u16 = 0x0004;
}

/// The hardware range a file is for (both optional fields together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HardwareVersions {
    /// Minimum hardware version.
    pub minimum: HardwareVersion,
    /// Maximum hardware version.
    pub maximum: HardwareVersion,
}

/// The OTA header, field by field, named as in ZCL8 §11.4.2.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OtaHeader {
    /// OTA header version (0x0100).
    pub header_version: HeaderVersion,
    /// Header length as declared: the offset of the first sub-element.
    pub header_length: u16,
    /// The raw field control. Bits 0–2 always agree with the optional fields below: `decode`
    /// derives the fields from them and `encode` derives them from the fields. Other bits round-trip.
    pub field_control: u16,
    /// Manufacturer code.
    pub manufacturer_code: ManufacturerCode,
    /// Image type.
    pub image_type: ImageType,
    /// File version.
    pub file_version: FileVersion,
    /// Zigbee stack version.
    pub stack_version: StackVersion,
    /// The 32-byte header string, as stored (often NUL-padded text, sometimes binary).
    pub header_string: [u8; 32],
    /// Total image size in bytes, header included.
    pub image_size: u32,
    /// Optional: security credential version (field control bit 0).
    pub security_credential_version: Option<SecurityCredentialVersion>,
    /// Optional: the one device this file is for (field control bit 1).
    pub upgrade_file_destination: Option<Ieee>,
    /// Optional: minimum and maximum hardware versions (field control bit 2).
    pub hardware_versions: Option<HardwareVersions>,
}

impl OtaHeader {
    /// A header with no optional fields, header length 56, and `image_size` still to be filled in.
    pub fn new(
        manufacturer_code: ManufacturerCode,
        image_type: ImageType,
        file_version: FileVersion,
    ) -> Self {
        OtaHeader {
            header_version: HeaderVersion::ZIGBEE,
            header_length: FIXED_HEADER_LENGTH,
            field_control: 0,
            manufacturer_code,
            image_type,
            file_version,
            stack_version: StackVersion::ZIGBEE_PRO,
            header_string: [0; 32],
            image_size: u32::from(FIXED_HEADER_LENGTH),
            security_credential_version: None,
            upgrade_file_destination: None,
            hardware_versions: None,
        }
    }

    /// Decodes a header starting at the magic. Fields after `header_length` are not read.
    pub fn decode(bytes: &[u8]) -> Result<OtaHeader, OtaError> {
        Self::decode_at(bytes, 0)
    }

    /// Decodes a header from `bytes` (which start at the magic); errors report offsets plus `base`,
    /// so that they are file offsets.
    pub(crate) fn decode_at(bytes: &[u8], base: usize) -> Result<OtaHeader, OtaError> {
        let at = |t: Truncated| OtaError::HeaderTruncated {
            field: t.field,
            offset: base + t.offset,
            needed: t.needed,
            available: t.available,
        };
        let (magic, after_magic) =
            fields::finish(bytes, fields::bytes("upgrade_file_id", 4)).map_err(at)?;
        if magic != OTA_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(magic);
            return Err(OtaError::BadMagic {
                offset: base,
                found: u32::from_le_bytes(found),
            });
        }
        let header_length_offset = base + 6;
        let after_magic_at = |t: Truncated| {
            at(Truncated {
                offset: t.offset + OTA_MAGIC.len(),
                ..t
            })
        };
        let (fixed, rest) = fields::finish(after_magic, |input| {
            let (input, (header_version, header_length, field_control)) = (
                fields::u16("header_version"),
                fields::u16("header_length"),
                fields::u16("field_control"),
            )
                .parse_complete(input)?;
            let (input, (manufacturer_code, image_type, file_version, stack_version)) = (
                fields::u16("manufacturer_code"),
                fields::u16("image_type"),
                fields::u32("file_version"),
                fields::u16("stack_version"),
            )
                .parse_complete(input)?;
            let (input, (header_string, image_size)) = (
                fields::bytes("header_string", 32),
                fields::u32("image_size"),
            )
                .parse_complete(input)?;
            let (input, security_credential_version) = cond(
                field_control & field_control::SECURITY_CREDENTIAL_VERSION_PRESENT != 0,
                fields::u8("security_credential_version"),
            )
            .parse_complete(input)?;
            let (input, upgrade_file_destination) = cond(
                field_control & field_control::DEVICE_SPECIFIC_FILE != 0,
                fields::u64("upgrade_file_destination"),
            )
            .parse_complete(input)?;
            let (input, hardware_versions) = cond(
                field_control & field_control::HARDWARE_VERSIONS_PRESENT != 0,
                (
                    fields::u16("minimum_hardware_version"),
                    fields::u16("maximum_hardware_version"),
                ),
            )
            .parse_complete(input)?;
            let read = (
                (header_version, header_length, field_control),
                (manufacturer_code, image_type, file_version, stack_version),
                (header_string, image_size),
                (
                    security_credential_version,
                    upgrade_file_destination,
                    hardware_versions,
                ),
            );
            Ok((input, read))
        })
        .map_err(after_magic_at)?;
        let (
            (header_version, header_length, field_control),
            (manufacturer_code, image_type, file_version, stack_version),
            (header_string_bytes, image_size),
            (security_credential_version, upgrade_file_destination, hardware_versions),
        ) = fixed;
        let header_version = HeaderVersion(header_version);
        let manufacturer_code = ManufacturerCode(manufacturer_code);
        let image_type = ImageType(image_type);
        let file_version = FileVersion(file_version);
        let stack_version = StackVersion(stack_version);
        let mut header_string = [0u8; 32];
        header_string.copy_from_slice(header_string_bytes);
        let security_credential_version =
            security_credential_version.map(SecurityCredentialVersion);
        let upgrade_file_destination = upgrade_file_destination.map(Ieee);
        let hardware_versions = hardware_versions.map(|(minimum, maximum)| HardwareVersions {
            minimum: HardwareVersion(minimum),
            maximum: HardwareVersion(maximum),
        });

        let fields_length = bytes.len() - rest.len();
        if usize::from(header_length) < fields_length {
            return Err(OtaError::HeaderLengthTooShort {
                offset: header_length_offset,
                header_length,
                fields_length,
                field_control,
            });
        }
        if header_length > MAX_HEADER_LENGTH {
            return Err(OtaError::HeaderLengthTooLarge {
                offset: header_length_offset,
                header_length,
                max: MAX_HEADER_LENGTH,
            });
        }
        if image_size < u32::from(header_length) {
            return Err(OtaError::ImageSizeTooSmall {
                offset: base + 52,
                image_size,
                header_length,
            });
        }
        Ok(OtaHeader {
            header_version,
            header_length,
            field_control,
            manufacturer_code,
            image_type,
            file_version,
            stack_version,
            header_string,
            image_size,
            security_credential_version,
            upgrade_file_destination,
            hardware_versions,
        })
    }

    /// The field control as `encode` writes it: bits 0–2 from the optional fields, others as stored.
    pub fn effective_field_control(&self) -> u16 {
        let mut bits = self.field_control
            & !(field_control::SECURITY_CREDENTIAL_VERSION_PRESENT
                | field_control::DEVICE_SPECIFIC_FILE
                | field_control::HARDWARE_VERSIONS_PRESENT);
        if self.security_credential_version.is_some() {
            bits |= field_control::SECURITY_CREDENTIAL_VERSION_PRESENT;
        }
        if self.upgrade_file_destination.is_some() {
            bits |= field_control::DEVICE_SPECIFIC_FILE;
        }
        if self.hardware_versions.is_some() {
            bits |= field_control::HARDWARE_VERSIONS_PRESENT;
        }
        bits
    }

    /// Bytes taken by the fixed and the present optional fields (56..=69).
    pub fn fields_length(&self) -> u16 {
        let mut len = FIXED_HEADER_LENGTH;
        if self.security_credential_version.is_some() {
            len += 1;
        }
        if self.upgrade_file_destination.is_some() {
            len += 8;
        }
        if self.hardware_versions.is_some() {
            len += 4;
        }
        len
    }

    /// Bytes `encode` writes: `header_length`, or the fields' length if that is larger.
    pub fn encoded_len(&self) -> usize {
        usize::from(self.header_length.max(self.fields_length()))
    }

    /// Writes the header as stored: the fields, then zero bytes up to `header_length` when it
    /// declares more than the fields need (no real file does; kept so such files can be built).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&OTA_MAGIC);
        out.put_u16_le(self.header_version.0);
        out.put_u16_le(self.header_length);
        out.put_u16_le(self.effective_field_control());
        out.put_u16_le(self.manufacturer_code.0);
        out.put_u16_le(self.image_type.0);
        out.put_u32_le(self.file_version.0);
        out.put_u16_le(self.stack_version.0);
        out.extend_from_slice(&self.header_string);
        out.put_u32_le(self.image_size);
        if let Some(version) = self.security_credential_version {
            out.put_u8_le(version.0);
        }
        if let Some(destination) = self.upgrade_file_destination {
            out.put_u64_le(destination.0);
        }
        if let Some(range) = self.hardware_versions {
            out.put_u16_le(range.minimum.0);
            out.put_u16_le(range.maximum.0);
        }
        out.resize(start + self.encoded_len(), 0);
    }

    /// The header string as text when it is printable UTF-8 after removing NUL padding.
    pub fn header_string_text(&self) -> Option<&str> {
        let end = self
            .header_string
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        let text = std::str::from_utf8(self.header_string.get(..end)?).ok()?;
        text.chars().all(|c| !c.is_control()).then_some(text)
    }

    /// Sets the header string from text (truncated to 32 bytes, NUL-padded).
    pub fn set_header_string(&mut self, text: &str) {
        self.header_string = [0; 32];
        for (slot, byte) in self.header_string.iter_mut().zip(text.bytes()) {
            *slot = byte;
        }
    }
}

impl fmt::Debug for OtaHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("OtaHeader");
        s.field("header_version", &self.header_version)
            .field("header_length", &self.header_length)
            .field(
                "field_control",
                &format_args!("0x{:04X}", self.field_control),
            )
            .field("manufacturer_code", &self.manufacturer_code)
            .field("image_type", &self.image_type)
            .field("file_version", &self.file_version)
            .field("stack_version", &self.stack_version);
        match self.header_string_text() {
            Some(text) => s.field("header_string", &text),
            None => s.field(
                "header_string",
                &format_args!("{}", crate::wire::hex_spaced(&self.header_string)),
            ),
        };
        s.field("image_size", &self.image_size)
            .field(
                "security_credential_version",
                &self.security_credential_version,
            )
            .field("upgrade_file_destination", &self.upgrade_file_destination)
            .field("hardware_versions", &self.hardware_versions)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> OtaHeader {
        let mut header = OtaHeader::new(ManufacturerCode::IKEA, ImageType(0x2803), FileVersion(1));
        header.set_header_string("EBL tradfri");
        header.image_size = 100;
        header
    }

    #[test]
    fn fixed_header_layout() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        assert_eq!(out.len(), 56);
        assert_eq!(&out[..4], &OTA_MAGIC);
        assert_eq!(&out[4..12], &[0x00, 0x01, 56, 0, 0, 0, 0x7C, 0x11]);
        assert_eq!(&out[52..56], &100u32.to_le_bytes());
        assert_eq!(OtaHeader::decode(&out).unwrap(), sample());
    }

    #[test]
    fn optional_fields_follow_field_control_order() {
        let mut header = sample();
        header.header_length = 69;
        header.security_credential_version = Some(SecurityCredentialVersion::SE_1_2);
        header.upgrade_file_destination = Some(Ieee(0x0011_2233_4455_6677));
        header.hardware_versions = Some(HardwareVersions {
            minimum: HardwareVersion(0x0102),
            maximum: HardwareVersion(0x0304),
        });
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out.len(), 69);
        assert_eq!(out[8], 0x07);
        assert_eq!(out[56], 0x03);
        assert_eq!(&out[57..65], &0x0011_2233_4455_6677u64.to_le_bytes());
        assert_eq!(&out[65..69], &[0x02, 0x01, 0x04, 0x03]);
        let decoded = OtaHeader::decode(&out).unwrap();
        assert_eq!(decoded.field_control, 0x07);
        header.field_control = 0x07;
        assert_eq!(decoded, header);
    }

    #[test]
    fn header_length_shorter_than_fields_is_refused() {
        let mut out = Vec::new();
        let mut header = sample();
        header.hardware_versions = Some(HardwareVersions {
            minimum: HardwareVersion(0),
            maximum: HardwareVersion(5),
        });
        header.encode(&mut out);
        out[6] = 56; // header_length says 56, the hardware versions need 60
        let err = OtaHeader::decode(&out).unwrap_err();
        assert_eq!(
            err,
            OtaError::HeaderLengthTooShort {
                offset: 6,
                header_length: 56,
                fields_length: 60,
                field_control: 4
            }
        );
    }

    #[test]
    fn truncated_header_names_field() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        let err = OtaHeader::decode(&out[..30]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OTA header truncated: header_string at offset 20 needs 32 bytes, only 10 left"
        );
    }

    #[test]
    fn header_string_text_or_binary() {
        let mut header = sample();
        assert_eq!(header.header_string_text(), Some("EBL tradfri"));
        header.header_string[3] = 0x01;
        assert_eq!(header.header_string_text(), None);
        header.header_string = [0xFF; 32];
        assert_eq!(header.header_string_text(), None);
    }

    pub(crate) fn arb_header() -> impl Strategy<Value = OtaHeader> {
        (
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()),
            (any::<u32>(), any::<u16>(), any::<[u8; 32]>(), any::<u32>()),
            (
                proptest::option::of(any::<u8>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of((any::<u16>(), any::<u16>())),
                0u16..20,
            ),
        )
            .prop_map(
                |(
                    (version, control, manufacturer, image_type),
                    (file_version, stack, string, size),
                    (credential, destination, hardware, extra),
                )| {
                    let mut header = OtaHeader {
                        header_version: HeaderVersion(version),
                        header_length: 0,
                        field_control: control,
                        manufacturer_code: ManufacturerCode(manufacturer),
                        image_type: ImageType(image_type),
                        file_version: FileVersion(file_version),
                        stack_version: StackVersion(stack),
                        header_string: string,
                        image_size: 0,
                        security_credential_version: credential.map(SecurityCredentialVersion),
                        upgrade_file_destination: destination.map(Ieee),
                        hardware_versions: hardware.map(|(minimum, maximum)| HardwareVersions {
                            minimum: HardwareVersion(minimum),
                            maximum: HardwareVersion(maximum),
                        }),
                    };
                    header.field_control = header.effective_field_control();
                    header.header_length = header.fields_length() + extra;
                    header.image_size = size.max(u32::from(header.header_length));
                    header
                },
            )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(header in arb_header()) {
            let mut out = Vec::new();
            header.encode(&mut out);
            prop_assert_eq!(out.len(), header.encoded_len());
            prop_assert_eq!(OtaHeader::decode(&out).unwrap(), header);
        }
    }
}
