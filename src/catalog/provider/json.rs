//! Field access on untrusted catalog JSON: every getter names the entry and the field it read,
//! checks the type and range, and caps string lengths.

use serde_json::{Map, Value};

use super::{EntryError, narrow_u16, narrow_u32};
use crate::catalog::model::{HashAlgorithm, ImageHash};

/// Longest text field accepted (release notes run to a few KB in practice).
pub(crate) const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest URL accepted.
pub(crate) const MAX_URL_BYTES: usize = 2048;

pub(crate) use super::bounded_json::parse_document;

/// The fields of one catalog entry, with the entry's index for error messages.
pub(crate) struct EntryFields<'a> {
    pub(crate) index: usize,
    object: &'a Map<String, Value>,
}

impl<'a> EntryFields<'a> {
    pub(crate) fn new(index: usize, value: &'a Value) -> Result<Self, EntryError> {
        match value {
            Value::Object(object) => Ok(EntryFields { index, object }),
            _ => Err(EntryError::WrongType {
                index,
                field: "(entry)",
                expected: "an object",
            }),
        }
    }

    /// A nested object, e.g. `identity`.
    pub(crate) fn object(&self, field: &'static str) -> Result<EntryFields<'a>, EntryError> {
        match self.object.get(field) {
            Some(Value::Object(object)) => Ok(EntryFields {
                index: self.index,
                object,
            }),
            Some(_) => Err(self.wrong_type(field, "an object")),
            None => Err(self.missing(field)),
        }
    }

    /// A required unsigned integer within `0..=max`; `path` names it fully for errors.
    pub(crate) fn unsigned(
        &self,
        field: &'static str,
        path: &'static str,
        max: u64,
    ) -> Result<u64, EntryError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Err(self.missing(path)),
            Some(value) => self.unsigned_value(value, path, max),
        }
    }

    /// A required `u16` (a manufacturer code, an image type), named by its field in errors.
    pub(crate) fn unsigned_u16(&self, field: &'static str) -> Result<u16, EntryError> {
        self.unsigned(field, field, u64::from(u16::MAX))
            .map(narrow_u16)
    }

    /// The three numbers that identify an OTA image (ZCL §11.4.2: manufacturer code, image
    /// type, file version), read in that order from the fields the feed names them by.
    pub(crate) fn ota_identity(
        &self,
        [manufacturer_code, image_type, file_version]: [&'static str; 3],
    ) -> Result<(u16, u16, u32), EntryError> {
        Ok((
            self.unsigned_u16(manufacturer_code)?,
            self.unsigned_u16(image_type)?,
            self.unsigned(file_version, file_version, u64::from(u32::MAX))
                .map(narrow_u32)?,
        ))
    }

    /// A required hex digest of `algorithm` (read as text of at most [`MAX_TEXT_BYTES`]).
    pub(crate) fn digest(
        &self,
        field: &'static str,
        algorithm: HashAlgorithm,
    ) -> Result<ImageHash, EntryError> {
        let text = self.text(field, MAX_TEXT_BYTES)?;
        self.digest_from_hex(field, algorithm, text)
    }

    /// `text`, the value of `field`, as a hex digest of `algorithm`.
    pub(crate) fn digest_from_hex(
        &self,
        field: &'static str,
        algorithm: HashAlgorithm,
        text: &str,
    ) -> Result<ImageHash, EntryError> {
        ImageHash::from_hex(algorithm, text).ok_or(EntryError::BadHash {
            index: self.index,
            field,
            algorithm: algorithm.name(),
            hex_len: algorithm.hex_len(),
        })
    }

    /// An optional unsigned integer within `0..=max` (absent or null is `None`).
    pub(crate) fn optional_unsigned(
        &self,
        field: &'static str,
        max: u64,
    ) -> Result<Option<u64>, EntryError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.unsigned_value(value, field, max).map(Some),
        }
    }

    fn unsigned_value(
        &self,
        value: &Value,
        path: &'static str,
        max: u64,
    ) -> Result<u64, EntryError> {
        let Value::Number(number) = value else {
            return Err(self.wrong_type(path, "an unsigned integer"));
        };
        match number.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(EntryError::OutOfRange {
                index: self.index,
                field: path,
                value: number.to_string(),
                max,
            }),
        }
    }

    /// A required string of at most `max_bytes`.
    pub(crate) fn text(
        &self,
        field: &'static str,
        max_bytes: usize,
    ) -> Result<&'a str, EntryError> {
        self.optional_text(field, max_bytes)?
            .ok_or_else(|| self.missing(field))
    }

    /// An optional string of at most `max_bytes` (absent or null is `None`).
    pub(crate) fn optional_text(
        &self,
        field: &'static str,
        max_bytes: usize,
    ) -> Result<Option<&'a str>, EntryError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.len() <= max_bytes => Ok(Some(text)),
            Some(Value::String(_)) => Err(EntryError::TooLong {
                index: self.index,
                field,
                max: max_bytes,
            }),
            Some(_) => Err(self.wrong_type(field, "a string")),
        }
    }

    /// An optional text field of at most [`MAX_TEXT_BYTES`], owned (a display name, release
    /// notes).
    pub(crate) fn optional_string(
        &self,
        field: &'static str,
    ) -> Result<Option<String>, EntryError> {
        Ok(self
            .optional_text(field, MAX_TEXT_BYTES)?
            .map(str::to_owned))
    }

    /// An optional array of strings (absent or null is empty).
    pub(crate) fn text_list(
        &self,
        field: &'static str,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<String>, EntryError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= max_items => items
                .iter()
                .map(|item| match item {
                    Value::String(text) if text.len() <= max_bytes => Ok(text.clone()),
                    Value::String(_) => Err(EntryError::TooLong {
                        index: self.index,
                        field,
                        max: max_bytes,
                    }),
                    _ => Err(self.wrong_type(field, "an array of strings")),
                })
                .collect(),
            Some(Value::Array(_)) => Err(EntryError::TooLong {
                index: self.index,
                field,
                max: max_items,
            }),
            Some(_) => Err(self.wrong_type(field, "an array of strings")),
        }
    }

    /// A required URL: `http://` or `https://`, no whitespace or control characters.
    pub(crate) fn url(&self, field: &'static str) -> Result<&'a str, EntryError> {
        let url = self.text(field, MAX_URL_BYTES)?;
        if check_url_shape(url) {
            Ok(url)
        } else {
            Err(EntryError::BadUrl {
                index: self.index,
                field,
            })
        }
    }

    pub(crate) fn missing(&self, field: &'static str) -> EntryError {
        EntryError::Missing {
            index: self.index,
            field,
        }
    }

    pub(crate) fn wrong_type(&self, field: &'static str, expected: &'static str) -> EntryError {
        EntryError::WrongType {
            index: self.index,
            field,
            expected,
        }
    }
}

/// True for an absolute `http(s)://host…` URL without whitespace or control characters. The
/// HTTP edge parses it fully and enforces https (or loopback http) before any request.
pub(crate) fn check_url_shape(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            !rest.is_empty()
                && !rest.starts_with('/')
                && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}
