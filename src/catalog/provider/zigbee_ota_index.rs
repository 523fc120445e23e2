//! The zigbee-OTA `index.json` manifest, as described in CATALOGS.md ("zigbee-OTA
//! `index.json`"): a JSON array of `{fileName, fileVersion, fileSize, url, imageType,
//! manufacturerCode, sha512, otaHeaderString, …}` with optional restrictions `modelId`,
//! `manufacturerName[]`, `hardwareVersionMin/Max`, `minFileVersion`, `maxFileVersion`, and
//! `releaseNotes`.
//!
//! * `fileSize` is the OTA header's `image_size`, not always the file's length (58 of the 897
//!   real entries differ: wrappers, trailing bytes, one truncated upload), so it becomes
//!   [`ImageSize::HeaderImageSize`] and the `sha512` decides.
//! * `fileName` is only a display name; the image is fetched from `url` and stored by digest.
//! * `force` (a downgrade switch) is a policy matter and is not read here.

use super::json::{EntryFields, MAX_TEXT_BYTES, parse_document};
use super::{CatalogParseError, EntryError, ParsedCatalog, entries_array, narrow_u16, narrow_u32};
use crate::catalog::model::{
    CatalogEntry, HashAlgorithm, ImageHash, ImageSize, Locator, Provenance, Restrictions,
};

/// Largest manifest accepted (the real one is about 550 KB).
pub const MAX_INDEX_BYTES: usize = 8 * 1024 * 1024;

/// Most `manufacturerName` items accepted per entry.
const MAX_MANUFACTURER_NAMES: usize = 256;

/// Largest `fileSize` accepted (the OTA header's `image_size` is a u32).
const MAX_IMAGE_BYTES: u64 = u32::MAX as u64;

/// Parses an `index.json` manifest; `provenance` is stamped on every entry.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    let document = parse_document(input, MAX_INDEX_BYTES)?;
    let items = entries_array(Some(&document), "an array of image entries")?;
    let mut entries = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_entry(index, item, provenance) {
            Ok(entry) => entries.push(entry),
            Err(error) => rejected.push(error),
        }
    }
    Ok(ParsedCatalog { entries, rejected })
}

fn parse_entry(
    index: usize,
    item: &serde_json::Value,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let fields = EntryFields::new(index, item)?;
    let u16_max = u64::from(u16::MAX);
    let u32_max = u64::from(u32::MAX);
    let manufacturer_code = fields.unsigned("manufacturerCode", "manufacturerCode", u16_max)?;
    let image_type = fields.unsigned("imageType", "imageType", u16_max)?;
    let file_version = fields.unsigned("fileVersion", "fileVersion", u32_max)?;
    let file_size = fields.unsigned("fileSize", "fileSize", MAX_IMAGE_BYTES)?;
    let digest = fields.text("sha512", MAX_TEXT_BYTES)?;
    let hash = ImageHash::from_hex(HashAlgorithm::Sha512, digest).ok_or(EntryError::BadHash {
        index,
        field: "sha512",
        algorithm: "sha512",
        hex_len: HashAlgorithm::Sha512.hex_len(),
    })?;
    let url = fields.url("url")?;

    let min_file_version = fields.optional_unsigned("minFileVersion", u32_max)?;
    let max_file_version = fields.optional_unsigned("maxFileVersion", u32_max)?;
    check_range(
        index,
        "minFileVersion..maxFileVersion",
        min_file_version,
        max_file_version,
    )?;
    let hardware_version_min = fields.optional_unsigned("hardwareVersionMin", u16_max)?;
    let hardware_version_max = fields.optional_unsigned("hardwareVersionMax", u16_max)?;
    check_range(
        index,
        "hardwareVersionMin..hardwareVersionMax",
        hardware_version_min,
        hardware_version_max,
    )?;

    let restrictions = Restrictions {
        min_file_version: min_file_version.map(narrow_u32),
        max_file_version: max_file_version.map(narrow_u32),
        hardware_version_min: hardware_version_min.map(narrow_u16),
        hardware_version_max: hardware_version_max.map(narrow_u16),
        model_id: fields
            .optional_text("modelId", MAX_TEXT_BYTES)?
            .map(str::to_owned),
        manufacturer_names: fields.text_list(
            "manufacturerName",
            MAX_MANUFACTURER_NAMES,
            MAX_TEXT_BYTES,
        )?,
    };

    Ok(CatalogEntry {
        provenance: provenance.clone(),
        manufacturer_code: narrow_u16(manufacturer_code),
        image_type: narrow_u16(image_type),
        file_version: narrow_u32(file_version),
        size: ImageSize::HeaderImageSize(file_size),
        hash,
        locator: Locator::Url(url.to_owned()),
        restrictions,
        display_name: fields
            .optional_text("fileName", MAX_TEXT_BYTES)?
            .map(str::to_owned),
        release_notes: fields
            .optional_text("releaseNotes", MAX_TEXT_BYTES)?
            .map(str::to_owned),
    })
}

fn check_range(
    index: usize,
    field: &'static str,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<(), EntryError> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(EntryError::EmptyRange {
            index,
            field,
            min,
            max,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::SourceKind;

    fn provenance() -> Provenance {
        Provenance {
            source: "koenkk".into(),
            kind: SourceKind::ZigbeeOtaIndex,
        }
    }

    fn entry(extra: &str) -> String {
        format!(
            r#"{{"fileName":"a.ota","fileVersion":26345997,"fileSize":263324,
            "url":"https://example.org/images/a.ota","imageType":31489,"manufacturerCode":4338,
            "sha512":"{}","otaHeaderString":"x"{extra}}}"#,
            "0f".repeat(64)
        )
    }

    #[test]
    fn reads_required_fields_and_restrictions() {
        let body = format!(
            "[{}]",
            entry(
                r#","hardwareVersionMin":0,"hardwareVersionMax":6,"minFileVersion":1,
                "modelId":"S1","manufacturerName":["ubisys"],"releaseNotes":"fixes""#
            )
        );
        let parsed = parse(body.as_bytes(), &provenance()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let e = &parsed.entries[0];
        assert_eq!(
            (e.manufacturer_code, e.image_type, e.file_version),
            (4338, 31489, 26_345_997)
        );
        assert_eq!(e.size, ImageSize::HeaderImageSize(263_324));
        assert_eq!(e.restrictions.hardware_version_max, Some(6));
        assert_eq!(e.restrictions.min_file_version, Some(1));
        assert_eq!(e.restrictions.max_file_version, None);
        assert_eq!(e.restrictions.model_id.as_deref(), Some("S1"));
        assert_eq!(e.restrictions.manufacturer_names, vec!["ubisys".to_owned()]);
        assert_eq!(e.release_notes.as_deref(), Some("fixes"));
        assert_eq!(e.display_name.as_deref(), Some("a.ota"));
    }

    #[test]
    fn bad_fields_name_entry_and_field() {
        let body = format!(
            "[{},{},{},{},{}]",
            entry(""),
            entry("").replace("https://example.org", "file:///etc"),
            entry("").replace("31489", "70000"),
            entry(r#","hardwareVersionMin":5,"hardwareVersionMax":1"#),
            entry(r#","manufacturerName":"ubisys""#),
        );
        let parsed = parse(body.as_bytes(), &provenance()).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(
            parsed.rejected,
            vec![
                EntryError::BadUrl {
                    index: 1,
                    field: "url"
                },
                EntryError::OutOfRange {
                    index: 2,
                    field: "imageType",
                    value: "70000".into(),
                    max: 65535
                },
                EntryError::EmptyRange {
                    index: 3,
                    field: "hardwareVersionMin..hardwareVersionMax",
                    min: 5,
                    max: 1
                },
                EntryError::WrongType {
                    index: 4,
                    field: "manufacturerName",
                    expected: "an array of strings"
                },
            ]
        );
    }

    #[test]
    fn reads_zigpy_otas_own_index() {
        // zigpy-ota publishes the same format (kind `zigpy-ota`): a real sample of it.
        let body = include_bytes!("../../../tests/vectors/providers/zigpy_ota_z2m_v1_first3.json");
        let zigpy_ota = Provenance {
            source: "zigpy-ota".into(),
            kind: SourceKind::ZigpyOta,
        };
        let parsed = parse(body, &zigpy_ota).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let keys: Vec<_> = parsed
            .entries
            .iter()
            .map(|e| (e.manufacturer_code, e.image_type, e.file_version))
            .collect();
        assert_eq!(
            keys,
            [(4880, 0, 17), (4880, 2050, 262), (4357, 41120, 10_030_066)]
        );
        assert_eq!(parsed.entries[2].size, ImageSize::HeaderImageSize(458_443));
        assert!(parsed.entries[0].hash.to_hex().starts_with("938ddf2b"));
        assert!(parsed.entries[1].release_notes.is_some());
    }

    #[test]
    fn top_level_must_be_an_array() {
        assert_eq!(
            parse(br#"{"firmwares":[]}"#, &provenance()),
            Err(CatalogParseError::Shape {
                expected: "an array of image entries"
            })
        );
        assert!(parse(b"-1.5e99999", &provenance()).is_err());
    }
}
