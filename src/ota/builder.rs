//! Writes complete OTA files (ZCL8 §11.4) for synthetic fixtures: any optional header field, any
//! sub-elements, and the quirky layouts of real files on purpose (a prefix before the magic,
//! bytes after the image, Telink tag info, raw data without framing, IKEA and Legrand wrappers).

use sha2::Digest;

use super::container::{LEGRAND_SUFFIX_LENGTH, NGIS_MAGIC};
use super::header::OtaHeader;
use super::types::TagId;
use crate::wire::PutLe;

/// One piece of the body after the header.
#[derive(Debug, Clone)]
enum BodyPart {
    SubElement { tag: TagId, data: Vec<u8> },
    Telink { tag_info: u16, data: Vec<u8> },
    Raw(Vec<u8>),
}

/// How the file is wrapped.
#[derive(Debug, Clone)]
enum Wrapper {
    None,
    Prefix(Vec<u8>),
    Legrand,
    IkeaNgis { signature: Vec<u8> },
}

/// Builds an OTA file. `image_size` is computed unless overridden; `header_length` is raised to
/// what the optional fields need.
#[derive(Debug, Clone)]
pub struct OtaFileBuilder {
    header: OtaHeader,
    body: Vec<BodyPart>,
    wrapper: Wrapper,
    trailing: Vec<u8>,
    image_size_override: Option<u32>,
}

impl OtaFileBuilder {
    /// Starts from `header`; its `image_size` is replaced when building.
    pub fn new(header: OtaHeader) -> Self {
        OtaFileBuilder {
            header,
            body: Vec::new(),
            wrapper: Wrapper::None,
            trailing: Vec::new(),
            image_size_override: None,
        }
    }

    /// Appends a spec sub-element.
    pub fn sub_element(mut self, tag: TagId, data: Vec<u8>) -> Self {
        self.body.push(BodyPart::SubElement { tag, data });
        self
    }

    /// Appends a Telink tag 0xF000 sub-element with its 2 tag-info bytes after the length.
    pub fn telink_sub_element(mut self, tag_info: u16, data: Vec<u8>) -> Self {
        self.body.push(BodyPart::Telink { tag_info, data });
        self
    }

    /// Appends bytes without sub-element framing (Hue `.sbl-ota`, raw firmware).
    pub fn raw(mut self, bytes: Vec<u8>) -> Self {
        self.body.push(BodyPart::Raw(bytes));
        self
    }

    /// Puts arbitrary bytes before the magic.
    pub fn prefix(mut self, bytes: Vec<u8>) -> Self {
        self.wrapper = Wrapper::Prefix(bytes);
        self
    }

    /// Wraps like Legrand: a u32 size prefix and a 17-byte suffix.
    pub fn legrand_wrapper(mut self) -> Self {
        self.wrapper = Wrapper::Legrand;
        self
    }

    /// Wraps in an IKEA `NGIS` container with the given signature after the image, with one
    /// SHA-256 per 16 KiB block of the contained file (as IKEA's files have).
    pub fn ikea_ngis_wrapper(mut self, signature: Vec<u8>) -> Self {
        self.wrapper = Wrapper::IkeaNgis { signature };
        self
    }

    /// Appends bytes after the image (outside `image_size`).
    pub fn trailing(mut self, bytes: Vec<u8>) -> Self {
        self.trailing = bytes;
        self
    }

    /// Writes this `image_size` instead of the real one (for truncated or oversized fixtures).
    pub fn image_size(mut self, image_size: u32) -> Self {
        self.image_size_override = Some(image_size);
        self
    }

    /// The header as it will be written.
    pub fn final_header(&self) -> OtaHeader {
        let mut header = self.header.clone();
        header.header_length = header.header_length.max(header.fields_length());
        header.field_control = header.effective_field_control();
        let body_len: usize = self.body.iter().map(BodyPart::encoded_len).sum();
        let real_size = usize::from(header.header_length) + body_len;
        header.image_size = self
            .image_size_override
            .unwrap_or(u32::try_from(real_size).unwrap_or(u32::MAX));
        header
    }

    /// The file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut image = Vec::new();
        self.final_header().encode(&mut image);
        for part in &self.body {
            part.encode(&mut image);
        }
        let mut out = Vec::new();
        match &self.wrapper {
            Wrapper::None => {
                out.extend_from_slice(&image);
                out.extend_from_slice(&self.trailing);
            }
            Wrapper::Prefix(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(&image);
                out.extend_from_slice(&self.trailing);
            }
            Wrapper::Legrand => {
                out.put_u32_le(self.final_header().image_size);
                out.extend_from_slice(&image);
                out.extend_from_slice(&self.trailing);
                out.resize(out.len() + LEGRAND_SUFFIX_LENGTH, 0x4C);
            }
            Wrapper::IkeaNgis { signature } => {
                const BLOCK_SIZE: usize = 16 * 1024;
                let contained = image.len() + self.trailing.len();
                let hash_count = contained.div_ceil(BLOCK_SIZE);
                let image_offset = 40 + 32 * hash_count;
                let image_end = image_offset + contained;
                let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                out.extend_from_slice(&NGIS_MAGIC);
                out.put_u32_le(12);
                out.put_u32_le(0);
                out.put_u32_le(0);
                out.put_u32_le(as_u32(image_offset));
                out.put_u32_le(as_u32(contained));
                out.put_u32_le(as_u32(image_end));
                out.put_u32_le(0);
                out.put_u32_le(as_u32(BLOCK_SIZE));
                out.put_u32_le(as_u32(hash_count));
                let mut contained_bytes = image;
                contained_bytes.extend_from_slice(&self.trailing);
                for block in contained_bytes.chunks(BLOCK_SIZE) {
                    out.extend_from_slice(&sha2::Sha256::digest(block));
                }
                out.extend_from_slice(&contained_bytes);
                out.extend_from_slice(signature);
            }
        }
        out
    }
}

impl BodyPart {
    fn encoded_len(&self) -> usize {
        match self {
            BodyPart::SubElement { data, .. } => 6 + data.len(),
            BodyPart::Telink { data, .. } => 8 + data.len(),
            BodyPart::Raw(bytes) => bytes.len(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = |data: &Vec<u8>| u32::try_from(data.len()).unwrap_or(u32::MAX);
        match self {
            BodyPart::SubElement { tag, data } => {
                out.put_u16_le(tag.0);
                out.put_u32_le(len(data));
                out.extend_from_slice(data);
            }
            BodyPart::Telink { tag_info, data } => {
                out.put_u16_le(TagId::TELINK_ENCRYPTED.0);
                out.put_u32_le(len(data));
                out.put_u16_le(*tag_info);
                out.extend_from_slice(data);
            }
            BodyPart::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}
