//! A parsed OTA upgrade file (ZCL8 §11.4): where the image sits in the file, its header, its
//! sub-elements (§11.4.3, `tag u16, length u32, data`) and what its upgrade image carries.

use std::fmt;

use bytes::Bytes;

use super::OtaError;
use super::container::{self, Container, ContainerCheck};
use super::header::OtaHeader;
use super::payload::{self, PayloadCheck, PayloadKind, PayloadNote};
use super::types::{ManufacturerCode, TagId};
use nom::Parser;
use nom::combinator::cond;

use crate::wire::fields;

/// Bounds on what `parse` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest accepted `image_size` (default 16 MiB; real images are below 1 MiB).
    pub max_image_size: u32,
    /// Most bytes searched before the magic (default 4096; IKEA's container puts it at ~700).
    pub max_prefix_length: usize,
    /// Refuse files whose sub-element framing is missing or broken (default off: such files
    /// are served as they are, see [`Framing`]).
    pub require_framing: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_image_size: 16 * 1024 * 1024,
            max_prefix_length: 4096,
            require_framing: false,
        }
    }
}

/// Something a sub-element does differently from the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubElementQuirk {
    /// Telink tag 0xF000: 2 "tag info" bytes follow the length and are not counted in it.
    TelinkTagInfo(u16),
}

/// One sub-element, located in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubElement {
    /// Tag identifier.
    pub tag: TagId,
    /// Length field: bytes of data.
    pub length: u32,
    /// File offset of the tag.
    pub offset: usize,
    /// File offset of the data.
    pub data_offset: usize,
    /// Non-standard layout, if any.
    pub quirk: Option<SubElementQuirk>,
}

impl SubElement {
    /// The Telink tag info, for Telink 0xF000 elements.
    pub fn telink_tag_info(&self) -> Option<u16> {
        self.quirk.map(|SubElementQuirk::TelinkTagInfo(info)| info)
    }
}

/// Where sub-element framing stopped making sense. Offsets are file offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FramingBreak {
    /// Offset of the sub-element that does not fit.
    pub offset: usize,
    /// Its tag, when at least the tag was readable.
    pub tag: Option<TagId>,
    /// Its length field, when readable.
    pub length: Option<u32>,
    /// Bytes left in the image from `offset`.
    pub available: usize,
}

impl fmt::Display for FramingBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tag, self.length) {
            (Some(tag), Some(length)) => write!(
                f,
                "sub-element at offset {} (tag {tag}, length {length}) runs past the end of the image: {} bytes left",
                self.offset, self.available
            ),
            _ => write!(
                f,
                "{} stray bytes at offset {}: too short for a 6-byte sub-element header",
                self.available, self.offset
            ),
        }
    }
}

/// How well the bytes after the header are framed as sub-elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Framing {
    /// Sub-elements exactly fill the image (Telink tag info included).
    Complete,
    /// Philips Hue `.sbl-ota`: raw Hue data (`2A 00 01`) right after the header, no sub-elements.
    HueSbl,
    /// No sub-element fits at the first position: raw firmware after the header (UltronSMART).
    Unframed(FramingBreak),
    /// Some sub-elements parse, then one does not fit (Datek "combined" files).
    Broken(FramingBreak),
}

impl Framing {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Framing::Complete => "complete",
            Framing::HueSbl => "hue_sbl",
            Framing::Unframed(_) => "unframed",
            Framing::Broken(_) => "broken",
        }
    }

    /// Where framing broke, if it did.
    pub fn break_point(&self) -> Option<&FramingBreak> {
        match self {
            Framing::Unframed(point) | Framing::Broken(point) => Some(point),
            Framing::Complete | Framing::HueSbl => None,
        }
    }
}

/// What the upgrade image (tag 0x0000) carries, and whether it checks out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayloadSummary {
    /// Kind of the first upgrade image (or of the raw data, for unframed files).
    pub kind: PayloadKind,
    /// What an unchecked payload looks like.
    pub note: Option<PayloadNote>,
    /// zigpy's rule: invalid if any upgrade image is invalid; valid if there is at least one and
    /// all are valid GBL/EBL; unknown otherwise.
    pub check: PayloadCheck,
}

/// A parsed OTA file that keeps its original bytes.
#[derive(Debug, Clone)]
pub struct OtaFile {
    bytes: Bytes,
    magic_offset: usize,
    container: Container,
    header: OtaHeader,
    sub_elements: Vec<SubElement>,
    framing: Framing,
    payload: PayloadSummary,
}

impl OtaFile {
    /// Parses a file with the default [`ParseLimits`].
    pub fn parse(bytes: impl Into<Bytes>) -> Result<OtaFile, OtaError> {
        Self::parse_with(bytes, &ParseLimits::default())
    }

    /// Parses a file: finds the image (past any container), decodes the header, checks that the
    /// image fits in the file, frames the sub-elements and checks the upgrade image's payload.
    pub fn parse_with(bytes: impl Into<Bytes>, limits: &ParseLimits) -> Result<OtaFile, OtaError> {
        let bytes = bytes.into();
        let (container, magic_offset) = container::locate(&bytes, limits.max_prefix_length)?;
        let from_magic = bytes.get(magic_offset..).unwrap_or_default();
        let header = OtaHeader::decode_at(from_magic, magic_offset)?;
        if header.image_size > limits.max_image_size {
            return Err(OtaError::ImageSizeTooLarge {
                offset: magic_offset + 52,
                image_size: header.image_size,
                max: limits.max_image_size,
            });
        }
        let image_size = usize::try_from(header.image_size).unwrap_or(usize::MAX);
        let image = from_magic
            .get(..image_size)
            .ok_or(OtaError::ImageTruncated {
                magic_offset,
                image_size: header.image_size,
                available: from_magic.len(),
                file_size: bytes.len(),
            })?;
        let header_length = usize::from(header.header_length);
        let (sub_elements, framing) = frame(image, header_length, magic_offset, &header);
        if let Some(point) = framing.break_point().filter(|_| limits.require_framing) {
            return Err(OtaError::Framing(*point));
        }
        let payload = summarise(image, header_length, magic_offset, &sub_elements, &framing);
        Ok(OtaFile {
            bytes,
            magic_offset,
            container,
            header,
            sub_elements,
            framing,
            payload,
        })
    }

    /// What must hold before a server offers this file, beyond what `parse` checks: the upgrade
    /// image's GBL/EBL structure and CRC are intact, and a container's block hashes (IKEA `NGIS`)
    /// match the image. Payloads that cannot be checked (vendor formats, encrypted EBL) pass, as
    /// they do in zigpy. Returns what the container's own check found.
    pub fn verify_integrity(&self) -> Result<ContainerCheck, OtaError> {
        if let PayloadCheck::Invalid(defect) = &self.payload.check {
            return Err(OtaError::InvalidPayload(defect.clone()));
        }
        container::check_block_hashes(&self.bytes, &self.container)
    }

    /// Exactly the bytes the server serves: from the magic, `image_size` bytes.
    pub fn image_bytes(&self) -> &[u8] {
        self.bytes.get(self.image_range()).unwrap_or_default()
    }

    /// The served bytes as a cheap shared slice of the original buffer.
    pub fn image(&self) -> Bytes {
        self.bytes.slice(self.image_range())
    }

    fn image_range(&self) -> std::ops::Range<usize> {
        self.magic_offset..self.image_end()
    }

    fn image_end(&self) -> usize {
        // parse() checked that the image fits in the file, so this cannot overflow.
        self.magic_offset + usize::try_from(self.header.image_size).unwrap_or(0)
    }

    /// The whole file as given to `parse`.
    pub fn file_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Offset of the magic in the file.
    pub fn magic_offset(&self) -> usize {
        self.magic_offset
    }

    /// What wraps the image.
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// The header.
    pub fn header(&self) -> &OtaHeader {
        &self.header
    }

    /// The sub-elements that framed, in file order.
    pub fn sub_elements(&self) -> &[SubElement] {
        &self.sub_elements
    }

    /// How well the sub-elements framed.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// What the upgrade image carries and whether it checks out.
    pub fn payload(&self) -> &PayloadSummary {
        &self.payload
    }

    /// A sub-element's data.
    pub fn sub_element_data(&self, element: &SubElement) -> &[u8] {
        let end = element
            .data_offset
            .saturating_add(usize::try_from(element.length).unwrap_or(usize::MAX));
        self.bytes.get(element.data_offset..end).unwrap_or_default()
    }

    /// Bytes after the image (`magic_offset + image_size` to the end of the file).
    pub fn trailing_bytes(&self) -> usize {
        self.bytes.len().saturating_sub(self.image_end())
    }

    /// Trailing bytes that the container does not account for (what zigpy reports as the
    /// unparsed rest): Salus' 4 bytes, SDevices' 8, but not IKEA's signature or Legrand's suffix.
    pub fn unexplained_trailing_bytes(&self) -> usize {
        self.trailing_bytes()
            .saturating_sub(self.container.suffix_length())
    }
}

/// Frames the sub-elements of `image` (which starts at the magic, at file offset `base`).
fn frame(
    image: &[u8],
    header_length: usize,
    base: usize,
    header: &OtaHeader,
) -> (Vec<SubElement>, Framing) {
    let body = image.get(header_length..).unwrap_or_default();
    // zigpy tries Hue's format first: a Hue file whose data starts with the Hue block magic.
    if header.manufacturer_code == ManufacturerCode::PHILIPS
        && payload::classify(body).1 == Some(PayloadNote::HueSbl)
    {
        return (Vec::new(), Framing::HueSbl);
    }
    let (elements, point) = match walk(image, header_length, base, false) {
        (elements, Ok(())) => return (elements, Framing::Complete),
        (elements, Err(point)) => (elements, point),
    };
    // zigpy's last resort, Telink's layout: it only differs from the strict one at tag 0xF000.
    if let (telink_elements, Ok(())) = walk(image, header_length, base, true) {
        return (telink_elements, Framing::Complete);
    }
    if elements.is_empty() {
        (elements, Framing::Unframed(point))
    } else {
        (elements, Framing::Broken(point))
    }
}

/// Walks sub-elements from `start` to the end of `image`. With `telink`, tag 0xF000 carries two
/// extra tag-info bytes after its length.
fn walk(
    image: &[u8],
    start: usize,
    base: usize,
    telink: bool,
) -> (Vec<SubElement>, Result<(), FramingBreak>) {
    let mut elements = Vec::new();
    let mut input = image.get(start..).unwrap_or_default();
    while !input.is_empty() {
        let offset = base + image.len() - input.len();
        let available = input.len();
        let Ok(((tag, length), after_tag)) =
            fields::finish(input, (fields::u16("tag"), fields::u32("length")))
        else {
            let stray = FramingBreak {
                offset,
                tag: None,
                length: None,
                available,
            };
            return (elements, Err(stray));
        };
        let tag = TagId(tag);
        let past_end = FramingBreak {
            offset,
            tag: Some(tag),
            length: Some(length),
            available,
        };
        let telink_info = telink && tag == TagId::TELINK_ENCRYPTED;
        let length_usize = usize::try_from(length).unwrap_or(usize::MAX);
        let Ok(((quirk, data_start), rest)) = fields::finish(after_tag, |input| {
            let (input, info) =
                cond(telink_info, fields::u16("telink tag info")).parse_complete(input)?;
            let data_start = input.len();
            let (input, _data) = fields::bytes("data", length_usize)(input)?;
            Ok((
                input,
                (info.map(SubElementQuirk::TelinkTagInfo), data_start),
            ))
        }) else {
            return (elements, Err(past_end));
        };
        let data_offset = base + image.len() - data_start;
        elements.push(SubElement {
            tag,
            length,
            offset,
            data_offset,
            quirk,
        });
        input = rest;
    }
    (elements, Ok(()))
}

fn summarise(
    image: &[u8],
    header_length: usize,
    base: usize,
    elements: &[SubElement],
    framing: &Framing,
) -> PayloadSummary {
    let body = image.get(header_length..).unwrap_or_default();
    match framing {
        Framing::HueSbl => {
            return PayloadSummary {
                kind: PayloadKind::Unknown,
                note: Some(PayloadNote::HueSbl),
                check: PayloadCheck::Unknown,
            };
        }
        Framing::Unframed(_) => {
            let (kind, note) = payload::classify(body);
            return PayloadSummary {
                kind,
                note: Some(note.unwrap_or(PayloadNote::Raw)),
                check: PayloadCheck::Unknown,
            };
        }
        Framing::Complete | Framing::Broken(_) => {}
    }
    let data_of = |element: &SubElement| {
        let start = element.data_offset - base;
        let end = start.saturating_add(usize::try_from(element.length).unwrap_or(usize::MAX));
        image.get(start..end).unwrap_or_default()
    };
    let mut first: Option<(PayloadKind, Option<PayloadNote>)> = None;
    let mut invalid = None;
    let mut all_valid = true;
    for element in elements.iter().filter(|e| e.tag == TagId::UPGRADE_IMAGE) {
        let data = data_of(element);
        let (kind, note) = payload::classify(data);
        first.get_or_insert((kind, note));
        match payload::check(data).1 {
            PayloadCheck::Valid => {}
            PayloadCheck::Invalid(defect) => {
                all_valid = false;
                invalid.get_or_insert(defect);
            }
            PayloadCheck::Unknown => all_valid = false,
        }
    }
    let (kind, note) = match first {
        Some(found) => found,
        None if elements.iter().any(|e| e.telink_tag_info().is_some()) => {
            (PayloadKind::Unknown, Some(PayloadNote::TelinkEncrypted))
        }
        None => (PayloadKind::Unknown, None),
    };
    let check = match invalid {
        Some(defect) => PayloadCheck::Invalid(defect),
        None if first.is_some() && all_valid => PayloadCheck::Valid,
        None => PayloadCheck::Unknown,
    };
    PayloadSummary { kind, note, check }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ota::{FileVersion, ImageType, OtaFileBuilder};

    fn header() -> OtaHeader {
        OtaHeader::new(ManufacturerCode::LEDVANCE, ImageType(1), FileVersion(2))
    }

    #[test]
    fn strict_layout_wins_over_telink_when_both_could_apply() {
        // A standard 0xF000 element of 2 bytes followed by an image: framed strictly, no tag info.
        let bytes = OtaFileBuilder::new(header())
            .sub_element(TagId(0xF000), vec![0x01, 0x0C])
            .sub_element(TagId::UPGRADE_IMAGE, vec![9; 4])
            .build();
        let file = OtaFile::parse(bytes).unwrap();
        assert_eq!(file.sub_elements().len(), 2);
        assert!(file.sub_elements().iter().all(|e| e.quirk.is_none()));
    }

    #[test]
    fn telink_tag_info_is_read_only_when_strict_framing_fails() {
        let bytes = OtaFileBuilder::new(header())
            .telink_sub_element(0x0C01, vec![7; 10])
            .build();
        // Read strictly, the tag info is taken as data and the last 2 data bytes are left over.
        let (elements, result) = walk(&bytes, 56, 0, false);
        assert_eq!(elements.len(), 1);
        assert_eq!(
            result,
            Err(FramingBreak {
                offset: 72,
                tag: None,
                length: None,
                available: 2
            })
        );
        let file = OtaFile::parse(bytes).unwrap();
        assert_eq!(file.sub_elements()[0].telink_tag_info(), Some(0x0C01));
        assert_eq!(file.sub_elements()[0].data_offset, 64);
    }

    #[test]
    fn trailing_and_unexplained_trailing() {
        let bytes = OtaFileBuilder::new(header())
            .sub_element(TagId::UPGRADE_IMAGE, vec![1; 3])
            .trailing(vec![0xFF; 8])
            .legrand_wrapper()
            .build();
        let file = OtaFile::parse(bytes).unwrap();
        // The Legrand prefix counts the image only, so 8 extra bytes make it an unknown prefix.
        assert_eq!(*file.container(), Container::UnknownPrefix { length: 4 });
        assert_eq!(file.trailing_bytes(), 8 + 17);
        assert_eq!(file.unexplained_trailing_bytes(), 25);
    }
}
