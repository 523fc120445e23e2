//! Inovelli's feed for ZHA (`https://files.inovelli.com/firmware/firmware-zha-v2.json`), as
//! zigpy reads it (`zigpy/ota/providers.py`, `Inovelli`): an object from model identifier to a
//! list of `{version, channel, firmware, manufacturer_id, image_type}`.
//!
//! * The model key is the device's Basic cluster model identifier and restricts its entries.
//! * `version` is a string. Inovelli's very first image wrote it as 8 hex digits
//!   (`"0000000B"` = 11); every later one as a decimal number (`"16842764"`). Read as zigpy
//!   does: as hex when that gives at most 0x0B, otherwise as decimal. A string that is neither
//!   is refused.
//! * `channel`: every entry of the real feed says `"beta"`; this is Inovelli's feed *for* ZHA
//!   and zigpy ignores the field, so it is not a filter here either (deny or pin to hold a
//!   device back).
//! * No digest and no size: entries are unpinned, verified by the OTA header at first download
//!   and then pinned (`catalog::pins`).

use serde_json::Value;

use super::json::{EntryFields, MAX_TEXT_BYTES, parse_document};
use super::{
    CatalogParseError, EntryError, MAX_ENTRIES, MAX_FEED_BYTES, ParsedCatalog, VendorImage,
};
use crate::catalog::model::{CatalogEntry, ImageSize, Provenance};

/// The largest version Inovelli wrote in hex (its first release, 1.11).
const LAST_HEX_VERSION: u32 = 0x0B;

/// Parses Inovelli's feed; entries are numbered across models, in model key order.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    let document = parse_document(input, MAX_FEED_BYTES)?;
    let Value::Object(models) = &document else {
        return Err(CatalogParseError::Shape {
            expected: "an object from model identifier to a list of firmwares",
        });
    };
    let mut parsed = ParsedCatalog {
        entries: Vec::new(),
        rejected: Vec::new(),
    };
    let mut index = 0usize;
    for (model, firmwares) in models {
        let Value::Array(firmwares) = firmwares else {
            parsed.rejected.push(EntryError::WrongType {
                index,
                field: "(model)",
                expected: "a list of firmwares",
            });
            index += 1;
            continue;
        };
        for item in firmwares {
            if index >= MAX_ENTRIES {
                return Err(CatalogParseError::TooManyEntries {
                    count: index + 1,
                    max: MAX_ENTRIES,
                });
            }
            let entry = EntryFields::new(index, item)
                .and_then(|fields| parse_entry(&fields, model, provenance));
            match entry {
                Ok(entry) => parsed.entries.push(entry),
                Err(error) => parsed.rejected.push(error),
            }
            index += 1;
        }
    }
    Ok(parsed)
}

/// Reads Inovelli's `version` string (see the module docs).
pub fn file_version(text: &str) -> Option<u32> {
    let hex = (text.len() == 8)
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
        .filter(|v| *v <= LAST_HEX_VERSION);
    hex.or_else(|| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u32>().ok())
            .flatten()
    })
}

fn parse_entry(
    fields: &EntryFields<'_>,
    model: &str,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let index = fields.index;
    if model.len() > MAX_TEXT_BYTES {
        return Err(EntryError::TooLong {
            index,
            field: "(model)",
            max: MAX_TEXT_BYTES,
        });
    }
    let manufacturer_code = fields.unsigned_u16("manufacturer_id")?;
    let image_type = fields.unsigned_u16("image_type")?;
    let version_text = fields.text("version", MAX_TEXT_BYTES)?;
    let file_version = file_version(version_text).ok_or(EntryError::WrongType {
        index,
        field: "version",
        expected: "8 hex digits up to 0000000B, or a decimal u32",
    })?;
    let url = fields.url("firmware")?;
    Ok(VendorImage {
        manufacturer_code,
        image_type,
        file_version,
        size: ImageSize::Unpublished,
        url,
        model_id: Some(model),
        display_name: Some(model.to_owned()),
    }
    .into_unpinned_entry(provenance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::SourceKind;

    fn provenance() -> Provenance {
        Provenance {
            source: "inovelli".into(),
            kind: SourceKind::Inovelli,
        }
    }

    /// zigpy's real sample (tests/vectors/providers/README.md).
    const SAMPLE: &[u8] =
        include_bytes!("../../../tests/vectors/providers/inovelli_firmware-zha.json");

    #[test]
    fn versions_hex_first_then_decimal() {
        assert_eq!(file_version("0000000B"), Some(11));
        assert_eq!(file_version("00000009"), Some(9));
        assert_eq!(file_version("16842764"), Some(16_842_764));
        assert_eq!(file_version("0000000C"), None);
        assert_eq!(file_version("1.12"), None);
        assert_eq!(file_version(""), None);
        assert_eq!(file_version("99999999999"), None);
    }

    #[test]
    fn reads_the_real_sample() {
        let parsed = parse(SAMPLE, &provenance()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.entries.len(), 14);
        let per_model = |model: &str| {
            parsed
                .entries
                .iter()
                .filter(|e| e.restrictions.model_id.as_deref() == Some(model))
                .map(|e| e.file_version)
                .collect::<Vec<_>>()
        };
        assert_eq!(per_model("VZM31-SN").len(), 7);
        assert_eq!(per_model("VZM31-SN")[0], 0x0B);
        assert_eq!(per_model("VZM31-SN")[1], 16_842_764);
        assert_eq!(per_model("VZM36"), [67_174_402, 67_174_403, 67_174_404]);
        assert!(parsed.entries.iter().all(|e| e.manufacturer_code == 4655));
        assert!(parsed.entries.iter().all(|e| e.hash.is_unpinned()));
    }

    #[test]
    fn bad_versions_and_shapes_are_named() {
        let parsed = parse(
            br#"{"M":[{"version":"1.2","channel":"beta","firmware":"https://x/a",
                "manufacturer_id":4655,"image_type":1}],"N":"x"}"#,
            &provenance(),
        )
        .unwrap();
        assert_eq!(
            parsed.rejected,
            vec![
                EntryError::WrongType {
                    index: 0,
                    field: "version",
                    expected: "8 hex digits up to 0000000B, or a decimal u32"
                },
                EntryError::WrongType {
                    index: 1,
                    field: "(model)",
                    expected: "a list of firmwares"
                }
            ]
        );
        assert!(parse(b"[]", &provenance()).is_err());
    }
}
