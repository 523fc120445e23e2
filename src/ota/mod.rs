//! The OTA upgrade file (ZCL8 §11.4): header, sub-elements, vendor containers and the quirks of
//! real files, and the Silicon Labs GBL/EBL payload checks.
//!
//! [`OtaFile::parse`] keeps the file's original bytes. The server serves slices of
//! [`OtaFile::image_bytes`] (from the magic, `image_size` bytes): exactly what was verified, never a
//! re-serialisation (re-serialising dropped sub-elements and broke updates in deCONZ #42).
//!
//! What `parse` refuses, and what it only reports:
//! - refused: no magic; a header that is truncated or whose `header_length` disagrees with its
//!   field control; an `image_size` past the end of the file, above the cap, or below the header;
//!   a container whose own offsets do not hold.
//! - reported, and still served: bytes before the magic ([`Container`]), bytes after the image
//!   ([`OtaFile::trailing_bytes`]), Telink tag info, Hue `.sbl-ota` raw data, and sub-element
//!   framing that is missing or breaks part-way ([`Framing`]). Devices accept these files from
//!   other servers (zigbee-herdsman serves from the magic for `image_size` bytes), so refusing
//!   them would strand the devices. [`ParseLimits::require_framing`] turns framing errors into
//!   refusals for callers that want the strict reading.
//! - checked before serving, by [`OtaFile::verify_integrity`]: a GBL/EBL upgrade image whose
//!   structure or CRC is broken, and IKEA `NGIS` block hashes (SHA-256 per 16 KiB block) that do
//!   not match, are never offered; a hash table laid out unlike the known IKEA files is reported
//!   as unverifiable. `parse` stays cheap; the daemon's image loader calls both.
//!
//! ```
//! use zigbee_otad::ota::{
//!     FileVersion, ImageType, ManufacturerCode, OtaFile, OtaFileBuilder, OtaHeader, PayloadCheck,
//!     PayloadKind, TagId, payload::GblBuilder,
//! };
//!
//! let mut header = OtaHeader::new(ManufacturerCode::IKEA, ImageType(0x2803), FileVersion(0x0100_0001));
//! header.set_header_string("example");
//! let gbl = GblBuilder::new().tag([0xFE, 0x01, 0x01, 0xFE], vec![0xAB; 100]).build();
//! let bytes = OtaFileBuilder::new(header.clone())
//!     .sub_element(TagId::UPGRADE_IMAGE, gbl)
//!     .build();
//!
//! let file = OtaFile::parse(bytes.clone()).unwrap();
//! assert_eq!(file.header().file_version, FileVersion(0x0100_0001));
//! assert_eq!(file.image_bytes(), &bytes[..]);
//! assert_eq!(file.sub_elements()[0].tag, TagId::UPGRADE_IMAGE);
//! assert_eq!(file.payload().kind, PayloadKind::Gbl);
//! assert_eq!(file.payload().check, PayloadCheck::Valid);
//!
//! let mut encoded = Vec::new();
//! file.header().encode(&mut encoded);
//! assert_eq!(OtaHeader::decode(&encoded).unwrap(), *file.header());
//! ```

pub mod builder;
pub mod container;
pub mod file;
pub mod header;
pub mod inspect;
pub mod payload;
pub mod types;

pub use builder::OtaFileBuilder;
pub use container::{Container, ContainerCheck};
pub use file::{
    Framing, FramingBreak, OtaFile, ParseLimits, PayloadSummary, SubElement, SubElementQuirk,
};
pub use header::{HardwareVersions, OTA_MAGIC, OtaHeader};
pub use inspect::InspectReport;
pub use payload::{PayloadCheck, PayloadDefect, PayloadKind, PayloadNote};
pub use types::{
    FileVersion, HardwareVersion, HeaderVersion, ImageType, ManufacturerCode,
    SecurityCredentialVersion, StackVersion, TagId,
};

/// Why an OTA file was refused. Offsets are byte offsets in the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtaError {
    /// The upgrade file identifier 0x0BEEF11E is nowhere in the searched range.
    #[error("no OTA magic 1E F1 EE 0B in the first {searched} bytes (file is {file_size} bytes)")]
    NoMagic {
        /// Bytes searched.
        searched: usize,
        /// File size.
        file_size: usize,
    },
    /// `OtaHeader::decode` was given bytes that do not start with the magic.
    #[error("bad OTA magic at offset {offset}: found 0x{found:08X}, expected 0x0BEEF11E")]
    BadMagic {
        /// Offset of the identifier.
        offset: usize,
        /// The little-endian u32 found.
        found: u32,
    },
    /// The file ends inside the header.
    #[error(
        "OTA header truncated: {field} at offset {offset} needs {needed} bytes, only {available} left"
    )]
    HeaderTruncated {
        /// The header field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// `header_length` is shorter than the fields that the field control says are present.
    #[error(
        "header_length at offset {offset} is {header_length}, but field_control 0x{field_control:04X} needs {fields_length} bytes of header fields"
    )]
    HeaderLengthTooShort {
        /// Offset of `header_length`.
        offset: usize,
        /// The declared header length.
        header_length: u16,
        /// Bytes the present fields take.
        fields_length: usize,
        /// The field control.
        field_control: u16,
    },
    /// `header_length` is beyond any sane header.
    #[error("header_length at offset {offset} is {header_length}, above the maximum of {max}")]
    HeaderLengthTooLarge {
        /// Offset of `header_length`.
        offset: usize,
        /// The declared header length.
        header_length: u16,
        /// The largest accepted.
        max: u16,
    },
    /// `image_size` does not even cover the header.
    #[error(
        "image_size at offset {offset} is {image_size}, smaller than header_length {header_length}"
    )]
    ImageSizeTooSmall {
        /// Offset of `image_size`.
        offset: usize,
        /// The declared image size.
        image_size: u32,
        /// The declared header length.
        header_length: u16,
    },
    /// `image_size` is above the configured cap.
    #[error("image_size at offset {offset} is {image_size} bytes, above the limit of {max}")]
    ImageSizeTooLarge {
        /// Offset of `image_size`.
        offset: usize,
        /// The declared image size.
        image_size: u32,
        /// The cap.
        max: u32,
    },
    /// The file ends before the image does.
    #[error(
        "file truncated: header at offset {magic_offset} says image_size {image_size}, but only {available} bytes follow the magic (file is {file_size} bytes)"
    )]
    ImageTruncated {
        /// Offset of the magic.
        magic_offset: usize,
        /// The declared image size.
        image_size: u32,
        /// Bytes from the magic to the end of the file.
        available: usize,
        /// File size.
        file_size: usize,
    },
    /// A vendor container's own header is inconsistent.
    #[error("{container} container: {field} at offset {offset}: {problem}")]
    Container {
        /// The container (`IKEA NGIS`).
        container: &'static str,
        /// The container field at fault.
        field: &'static str,
        /// Offset of that field.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// The upgrade image is a GBL or EBL that fails its structure or CRC check
    /// ([`OtaFile::verify_integrity`]).
    #[error("upgrade image payload is invalid: {0}")]
    InvalidPayload(PayloadDefect),
    /// Sub-element framing is broken and [`ParseLimits::require_framing`] is set.
    #[error("sub-element framing broken: {0}")]
    Framing(FramingBreak),
}
