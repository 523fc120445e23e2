//! Catalog providers: the sans-IO parsers that turn a source's catalog bytes into
//! [`CatalogEntry`] values, and the HTTP edge that fetches them within the rate limits.
//!
//! * [`ledvance`]: the LEDVANCE cloud API (`{"firmwares":[…]}`), CATALOGS.md "The LEDVANCE API";
//!   [`ledvance_newer`]: its documented `newer` endpoint, one call per device kind.
//! * [`zigbee_ota_index`]: the zigbee-OTA `index.json` manifest, CATALOGS.md "zigbee-OTA index.json";
//!   also zigpy-ota's `z2m_v1_ota.json` (kind `zigpy-ota`), which is the same format.
//! * [`ikea`], [`inovelli`], [`thirdreality`], [`sonoff`]: the vendor feeds zigpy reads
//!   (`zigpy/ota/providers.py`). Salus is refused at configuration (see `config`).
//! * [`http`]: the IO edge (reqwest + rustls): HTTPS only, size caps, timeouts, conditional
//!   requests, digests checked before anything is stored.
//!
//! A local folder of `.ota` files (kind `directory`) needs no parser here: its provider parses
//! each file with the `ota` module, stores it in the cache by digest, and lists it with
//! [`Locator::CacheKey`](super::model::Locator::CacheKey), producing the same [`SourceCatalog`].
//!
//! Parsers take hostile input: the document is size-capped, every field is type- and
//! range-checked, and an entry that fails is reported in [`ParsedCatalog::rejected`] (naming
//! the entry index and field) without spoiling the others.

pub(crate) mod bounded_json;
pub mod http;
pub mod ikea;
pub mod inovelli;
mod json;
pub mod ledvance;
pub mod ledvance_newer;
pub mod sonoff;
pub mod thirdreality;
pub mod zigbee_ota_index;

use self::json::EntryFields;
use super::model::{
    CatalogEntry, ImageHash, ImageSize, Locator, Provenance, Restrictions, SourceKind,
};

/// Most entries accepted from one catalog (the real ones hold a few hundred to a thousand).
pub const MAX_ENTRIES: usize = 20_000;

/// A catalog document could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogParseError {
    /// The document is larger than the cap.
    #[error("catalog is {length} bytes, more than the {max}-byte cap")]
    TooLarge {
        /// Bytes received.
        length: usize,
        /// The cap.
        max: usize,
    },
    /// Not JSON.
    #[error("catalog is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// JSON, but not the expected top-level shape.
    #[error("catalog top level: expected {expected}")]
    Shape {
        /// What the parser expected, e.g. `an object with a "firmwares" array`.
        expected: &'static str,
    },
    /// More entries than [`MAX_ENTRIES`] (in any one array or object; the parse stops at the
    /// first one too many).
    #[error("catalog lists at least {count} entries, more than the {max} accepted")]
    TooManyEntries {
        /// Entries seen.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Parsed, the catalog would take more memory than allowed (estimated while parsing).
    #[error("catalog would take more than {max} bytes of memory once parsed")]
    TooComplex {
        /// The budget.
        max: usize,
    },
}

/// One catalog entry was refused; the others still count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A required field is absent or null.
    #[error("entry {index}: field `{field}` is missing")]
    Missing {
        /// Position of the entry in the catalog's array (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("entry {index}: field `{field}` must be {expected}")]
    WrongType {
        /// Position of the entry (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// A number is negative, fractional or too large for the field.
    #[error("entry {index}: field `{field}` = {value} is outside 0..={max}")]
    OutOfRange {
        /// Position of the entry (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
        /// The value as written.
        value: String,
        /// The largest value accepted.
        max: u64,
    },
    /// A string or list is longer than accepted.
    #[error("entry {index}: field `{field}` is longer than {max}")]
    TooLong {
        /// Position of the entry (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
        /// The cap (bytes for strings, items for lists).
        max: usize,
    },
    /// A digest is not the right number of hex digits.
    #[error("entry {index}: field `{field}` is not a {algorithm} digest ({hex_len} hex digits)")]
    BadHash {
        /// Position of the entry (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
        /// The algorithm expected.
        algorithm: &'static str,
        /// Hex digits expected.
        hex_len: usize,
    },
    /// A URL is not an absolute http(s) URL.
    #[error("entry {index}: field `{field}` is not an absolute http(s) URL")]
    BadUrl {
        /// Position of the entry (0-based).
        index: usize,
        /// The field's JSON path within the entry.
        field: &'static str,
    },
    /// The hex version in a LEDVANCE `fullName` disagrees with the packed identity version.
    #[error(
        "entry {index}: `fullName` says version {full_name:#010x} but `identity.version` packs to {identity:#010x}"
    )]
    VersionMismatch {
        /// Position of the entry (0-based).
        index: usize,
        /// The version read from `fullName`.
        full_name: u32,
        /// `major<<24 | minor<<16 | build<<8 | revision`.
        identity: u32,
    },
    /// A known-bad image that is never offered (e.g. IKEA's bricking image types).
    #[error("entry {index}: refused: {reason}")]
    Refused {
        /// Position of the entry (0-based).
        index: usize,
        /// Why.
        reason: &'static str,
    },
    /// `minFileVersion` > `maxFileVersion` or `hardwareVersionMin` > `hardwareVersionMax`.
    #[error("entry {index}: `{field}` range is empty (min {min} > max {max})")]
    EmptyRange {
        /// Position of the entry (0-based).
        index: usize,
        /// Which range.
        field: &'static str,
        /// Its minimum.
        min: u64,
        /// Its maximum.
        max: u64,
    },
}

/// The entries a source offers, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCatalog {
    /// Accepted entries.
    pub entries: Vec<CatalogEntry>,
    /// Entries refused, each naming its index and field.
    pub rejected: Vec<EntryError>,
}

/// One source's entries, ready for the merged catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCatalog {
    /// The source.
    pub provenance: Provenance,
    /// Its entries (each also carries the provenance).
    pub entries: Vec<CatalogEntry>,
}

/// Largest vendor feed accepted (the real ones are a few KB to 20 KB).
pub const MAX_FEED_BYTES: usize = 2 * 1024 * 1024;

/// A value its getter already range-checked to `0..=u16::MAX`.
pub(crate) fn narrow_u16(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// A value its getter already range-checked to `0..=u32::MAX`.
pub(crate) fn narrow_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// What a vendor feed without digests says about one image.
pub(crate) struct VendorImage<'a> {
    pub(crate) manufacturer_code: u16,
    pub(crate) image_type: u16,
    pub(crate) file_version: u32,
    pub(crate) size: ImageSize,
    pub(crate) url: &'a str,
    /// The Basic cluster model identifier the feed names for it, if any.
    pub(crate) model_id: Option<&'a str>,
    pub(crate) display_name: Option<String>,
}

impl VendorImage<'_> {
    /// The entry, keyed by [`ImageHash::unpinned`]: the cache verifies its download by the OTA
    /// header and pins its digest (see `catalog::pins`).
    pub(crate) fn into_unpinned_entry(self, provenance: &Provenance) -> CatalogEntry {
        CatalogEntry {
            provenance: provenance.clone(),
            manufacturer_code: self.manufacturer_code,
            image_type: self.image_type,
            file_version: self.file_version,
            size: self.size,
            hash: ImageHash::unpinned(
                provenance.kind,
                self.url,
                self.manufacturer_code,
                self.image_type,
                self.file_version,
            ),
            locator: Locator::Url(self.url.to_owned()),
            restrictions: Restrictions {
                model_id: self.model_id.map(str::to_owned),
                ..Restrictions::default()
            },
            display_name: self.display_name,
            release_notes: None,
        }
    }
}

/// Reads a catalog of at most `max_bytes` whose entries are one JSON array (the whole document,
/// or the value of `key` in it; `expected` names that shape in the error when it is not there),
/// and parses each entry with `parse_entry` (see [`parse_each`]).
fn parse_entry_list<Parsed: Into<Option<CatalogEntry>>>(
    input: &[u8],
    max_bytes: usize,
    key: Option<&str>,
    expected: &'static str,
    parse_entry: impl FnMut(&EntryFields<'_>) -> Result<Parsed, EntryError>,
) -> Result<ParsedCatalog, CatalogParseError> {
    let document = json::parse_document(input, max_bytes)?;
    let list = match key {
        Some(key) => document.get(key),
        None => Some(&document),
    };
    Ok(parse_each(entries_array(list, expected)?, parse_entry))
}

/// Reads a vendor feed that is a bare array of firmware objects (IKEA's and Sonoff's), of at
/// most [`MAX_FEED_BYTES`], with [`parse_entry_list`].
fn parse_firmware_array<Parsed: Into<Option<CatalogEntry>>>(
    input: &[u8],
    parse_entry: impl FnMut(&EntryFields<'_>) -> Result<Parsed, EntryError>,
) -> Result<ParsedCatalog, CatalogParseError> {
    parse_entry_list(
        input,
        MAX_FEED_BYTES,
        None,
        "an array of firmware objects",
        parse_entry,
    )
}

/// Parses each item of a catalog's entry array with `parse_entry` (given the item's fields,
/// which know its index), keeping the accepted entries and, in [`ParsedCatalog::rejected`], the
/// refusals: an item that is not an object, or that `parse_entry` refuses. An item that
/// `parse_entry` passes over (`None`: not a device image, e.g. gateway firmware in IKEA's feed)
/// is neither.
fn parse_each<Parsed: Into<Option<CatalogEntry>>>(
    items: &[serde_json::Value],
    mut parse_entry: impl FnMut(&EntryFields<'_>) -> Result<Parsed, EntryError>,
) -> ParsedCatalog {
    let mut parsed = ParsedCatalog {
        entries: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    for (index, item) in items.iter().enumerate() {
        let entry = EntryFields::new(index, item).and_then(|fields| parse_entry(&fields));
        match entry.map(Into::into) {
            Ok(Some(entry)) => parsed.entries.push(entry),
            Ok(None) => {}
            Err(error) => parsed.rejected.push(error),
        }
    }
    parsed
}

/// Splits a top-level JSON array into entries, applying [`MAX_ENTRIES`].
fn entries_array<'a>(
    value: Option<&'a serde_json::Value>,
    expected: &'static str,
) -> Result<&'a [serde_json::Value], CatalogParseError> {
    match value {
        Some(serde_json::Value::Array(items)) if items.len() <= MAX_ENTRIES => Ok(items),
        Some(serde_json::Value::Array(items)) => Err(CatalogParseError::TooManyEntries {
            count: items.len(),
            max: MAX_ENTRIES,
        }),
        _ => Err(CatalogParseError::Shape { expected }),
    }
}

/// Parses a catalog body with the parser for its source kind. `url` is where it was fetched
/// (LEDVANCE download URLs are built on it). A `directory` source has no catalog document, and
/// a `salus` one never gets this far.
pub fn parse_catalog(
    kind: SourceKind,
    body: &[u8],
    url: &str,
    provenance: &Provenance,
) -> Result<ParsedCatalog, CatalogParseError> {
    match kind {
        SourceKind::Ledvance => ledvance::parse(body, url, provenance),
        SourceKind::ZigbeeOtaIndex | SourceKind::ZigpyOta => {
            zigbee_ota_index::parse(body, provenance)
        }
        SourceKind::Ikea => ikea::parse(body, provenance),
        SourceKind::Inovelli => inovelli::parse(body, provenance),
        SourceKind::ThirdReality => thirdreality::parse(body, provenance),
        SourceKind::Sonoff => sonoff::parse(body, provenance),
        SourceKind::Directory => Err(CatalogParseError::Shape {
            expected: "no catalog document: a directory source lists its folder",
        }),
        SourceKind::Salus => Err(CatalogParseError::Shape {
            expected: "no catalog parser: the configuration refuses kind = \"salus\"",
        }),
    }
}
