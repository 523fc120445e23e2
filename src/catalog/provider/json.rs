//! Field access on untrusted catalog JSON: every getter names the entry and the field it read,
//! checks the type and range, and caps string lengths.

use serde_json::{Map, Value};

use super::EntryError;

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
