//! The `inspect` report of an OTA file: a serialisable summary whose JSON field names follow
//! ARCHITECTURE.md (the OTA header's names in snake_case, ZCL8 §11.4.2), and a human rendering.

use std::fmt;

use serde::Serialize;

use super::container::ContainerCheck;
use super::file::OtaFile;
use super::types::{ManufacturerCode, TagId};

/// One sub-element in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectSubElement {
    /// Tag identifier.
    pub tag: u16,
    /// Data length.
    pub length: u32,
    /// File offset of the tag.
    pub offset: usize,
    /// Payload kind of the data (`gbl`, `ebl`, `unknown`).
    pub payload: &'static str,
    /// Telink tag info, for Telink 0xF000 elements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telink_tag_info: Option<u16>,
}

/// Everything `zigbee-otad inspect FILE [--json]` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Manufacturer name when known (extra).
    pub manufacturer_name: Option<&'static str>,
    /// Image type.
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
    /// Header version.
    pub header_version: u16,
    /// Header length.
    pub header_length: u16,
    /// Field control.
    pub field_control: u16,
    /// Stack version.
    pub stack_version: u16,
    /// Header string: text when printable, else lowercase hex of all 32 bytes.
    pub header_string: String,
    /// `text` or `hex`: how `header_string` is written (extra).
    pub header_string_encoding: &'static str,
    /// Total image size.
    pub image_size: u32,
    /// Optional security credential version.
    pub security_credential_version: Option<u8>,
    /// Optional upgrade file destination, as `aa:bb:…` (a string: JSON numbers cannot hold 64 bits).
    pub upgrade_file_destination: Option<String>,
    /// Optional minimum hardware version.
    pub minimum_hardware_version: Option<u16>,
    /// Optional maximum hardware version.
    pub maximum_hardware_version: Option<u16>,
    /// Sub-elements in file order.
    pub sub_elements: Vec<InspectSubElement>,
    /// Offset of the magic in the file.
    pub magic_offset: usize,
    /// Bytes after the image.
    pub trailing_bytes: usize,
    /// `gbl`, `ebl` or `unknown`.
    pub payload: &'static str,
    /// `valid`, `invalid` or `unknown`.
    pub payload_check: &'static str,
    /// Why the payload is invalid, or what an unknown payload looks like (extra).
    pub payload_check_detail: Option<String>,
    /// `none`, `ikea_ngis`, `legrand_prefix` or `unknown_prefix` (extra).
    pub container: &'static str,
    /// Bytes after the image that belong to the container (extra).
    pub container_suffix_bytes: usize,
    /// `none` (no integrity data), `valid`, `unverifiable` or `invalid`: the container's own block hashes
    /// (IKEA `NGIS`) against the image (extra).
    pub container_check: &'static str,
    /// How many block hashes matched, or which one did not (extra).
    pub container_check_detail: Option<String>,
    /// Whether `zigbee-otad run` would offer this file ([`OtaFile::verify_integrity`]) (extra).
    pub offered: bool,
    /// Why it would not be offered (extra).
    pub offer_refusal: Option<String>,
    /// `complete`, `hue_sbl`, `unframed` or `broken` (extra).
    pub framing: &'static str,
    /// Where framing broke (extra).
    pub framing_detail: Option<String>,
    /// File size (extra).
    pub file_size: usize,
}

impl From<&OtaFile> for InspectReport {
    fn from(file: &OtaFile) -> Self {
        let header = file.header();
        let (header_string, header_string_encoding) = match header.header_string_text() {
            Some(text) => (text.to_owned(), "text"),
            None => (
                header
                    .header_string
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                "hex",
            ),
        };
        let sub_elements = file
            .sub_elements()
            .iter()
            .map(|element| InspectSubElement {
                tag: element.tag.0,
                length: element.length,
                offset: element.offset,
                payload: super::payload::classify(file.sub_element_data(element))
                    .0
                    .as_str(),
                telink_tag_info: element.telink_tag_info(),
            })
            .collect();
        let summary = file.payload();
        let payload_check_detail = match &summary.check {
            super::PayloadCheck::Invalid(defect) => Some(defect.to_string()),
            _ => summary.note.map(|note| note.as_str().to_owned()),
        };
        let (container_check, container_check_detail) =
            match super::container::check_block_hashes(file.file_bytes(), file.container()) {
                Ok(ContainerCheck::BlockHashesMatch { blocks }) => {
                    ("valid", Some(format!("{blocks} block hashes match")))
                }
                Ok(ContainerCheck::Unverifiable { reason }) => ("unverifiable", Some(reason)),
                Ok(_) => ("none", None),
                Err(error) => ("invalid", Some(error.to_string())),
            };
        let offer_refusal = file.verify_integrity().err().map(|e| e.to_string());
        InspectReport {
            container_check,
            container_check_detail,
            offered: offer_refusal.is_none(),
            offer_refusal,
            manufacturer_code: header.manufacturer_code.0,
            manufacturer_name: header.manufacturer_code.name(),
            image_type: header.image_type.0,
            file_version: header.file_version.0,
            header_version: header.header_version.0,
            header_length: header.header_length,
            field_control: header.field_control,
            stack_version: header.stack_version.0,
            header_string,
            header_string_encoding,
            image_size: header.image_size,
            security_credential_version: header.security_credential_version.map(|v| v.0),
            upgrade_file_destination: header.upgrade_file_destination.map(|d| d.to_string()),
            minimum_hardware_version: header.hardware_versions.map(|h| h.minimum.0),
            maximum_hardware_version: header.hardware_versions.map(|h| h.maximum.0),
            sub_elements,
            magic_offset: file.magic_offset(),
            trailing_bytes: file.trailing_bytes(),
            payload: summary.kind.as_str(),
            payload_check: summary.check.as_str(),
            payload_check_detail,
            container: file.container().name(),
            container_suffix_bytes: file.container().suffix_length(),
            framing: file.framing().name(),
            framing_detail: file.framing().break_point().map(|p| p.to_string()),
            file_size: file.file_bytes().len(),
        }
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "manufacturer_code   {}",
            ManufacturerCode(self.manufacturer_code)
        )?;
        writeln!(f, "image_type          0x{:04X}", self.image_type)?;
        writeln!(f, "file_version        0x{:08X}", self.file_version)?;
        writeln!(f, "header_version      0x{:04X}", self.header_version)?;
        writeln!(f, "header_length       {}", self.header_length)?;
        writeln!(f, "field_control       0x{:04X}", self.field_control)?;
        writeln!(f, "stack_version       {}", self.stack_version)?;
        match self.header_string_encoding {
            "text" => writeln!(f, "header_string       {:?}", self.header_string)?,
            _ => writeln!(f, "header_string       (binary) {}", self.header_string)?,
        }
        writeln!(f, "image_size          {}", self.image_size)?;
        if let Some(version) = self.security_credential_version {
            writeln!(f, "security_credential_version {version}")?;
        }
        if let Some(destination) = &self.upgrade_file_destination {
            writeln!(f, "upgrade_file_destination {destination}")?;
        }
        if let (Some(min), Some(max)) =
            (self.minimum_hardware_version, self.maximum_hardware_version)
        {
            writeln!(f, "hardware_versions   0x{min:04X}..=0x{max:04X}")?;
        }
        writeln!(
            f,
            "container           {} (magic at offset {})",
            self.container, self.magic_offset
        )?;
        writeln!(
            f,
            "trailing_bytes      {} ({} belong to the container)",
            self.trailing_bytes, self.container_suffix_bytes
        )?;
        writeln!(f, "file_size           {}", self.file_size)?;
        match &self.framing_detail {
            Some(detail) => writeln!(f, "framing             {}: {detail}", self.framing)?,
            None => writeln!(f, "framing             {}", self.framing)?,
        }
        writeln!(f, "sub_elements        {}", self.sub_elements.len())?;
        for element in &self.sub_elements {
            let tag = TagId(element.tag);
            write!(f, "  {tag}")?;
            if tag.name().is_none() && tag.is_manufacturer_specific() {
                write!(f, " (manufacturer-specific)")?;
            }
            write!(
                f,
                " length {} at offset {} ({})",
                element.length, element.offset, element.payload
            )?;
            if let Some(info) = element.telink_tag_info {
                write!(f, ", Telink tag info {info}")?;
            }
            writeln!(f)?;
        }
        match &self.container_check_detail {
            Some(detail) => writeln!(f, "container_check     {} ({detail})", self.container_check)?,
            None => writeln!(f, "container_check     {}", self.container_check)?,
        }
        match &self.offer_refusal {
            Some(reason) => writeln!(f, "offered             no: {reason}")?,
            None => writeln!(f, "offered             yes")?,
        }
        match &self.payload_check_detail {
            Some(detail) => write!(
                f,
                "payload             {} {} ({detail})",
                self.payload, self.payload_check
            ),
            None => write!(
                f,
                "payload             {} {}",
                self.payload, self.payload_check
            ),
        }
    }
}
