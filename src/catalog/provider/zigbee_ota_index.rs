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

use super::json::{EntryFields, MAX_TEXT_BYTES};
use super::{
    CatalogParseError, EntryError, ParsedCatalog, narrow_u16, narrow_u32, parse_entry_list,
};
use crate::catalog::model::{
    CatalogEntry, HashAlgorithm, ImageSize, Locator, Provenance, Restrictions,
};

/// Largest manifest accepted (the real one is about 550 KB).
pub const MAX_INDEX_BYTES: usize = 8 * 1024 * 1024;

/// Most `manufacturerName` items accepted per entry.
const MAX_MANUFACTURER_NAMES: usize = 256;

/// Largest `fileSize` accepted (the OTA header's `image_size` is a u32).
const MAX_IMAGE_BYTES: u64 = u32::MAX as u64;

/// Parses an `index.json` manifest; `provenance` is stamped on every entry.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    parse_entry_list(
        input,
        MAX_INDEX_BYTES,
        None,
        "an array of image entries",
        |fields| parse_entry(fields, provenance),
    )
}

fn parse_entry(
    fields: &EntryFields<'_>,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let u16_max = u64::from(u16::MAX);
    let u32_max = u64::from(u32::MAX);
    let (manufacturer_code, image_type, file_version) =
        fields.ota_identity(["manufacturerCode", "imageType", "fileVersion"])?;
    let file_size = fields.unsigned("fileSize", "fileSize", MAX_IMAGE_BYTES)?;
    let hash = fields.digest("sha512", HashAlgorithm::Sha512)?;
    let url = fields.url("url")?;

    let (min_file_version, max_file_version) = optional_range(
        fields,
        ["minFileVersion", "maxFileVersion"],
        "minFileVersion..maxFileVersion",
        u32_max,
    )?;
    let (hardware_version_min, hardware_version_max) = optional_range(
        fields,
        ["hardwareVersionMin", "hardwareVersionMax"],
        "hardwareVersionMin..hardwareVersionMax",
        u16_max,
    )?;

    let restrictions = Restrictions {
        min_file_version: min_file_version.map(narrow_u32),
        max_file_version: max_file_version.map(narrow_u32),
        hardware_version_min: hardware_version_min.map(narrow_u16),
        hardware_version_max: hardware_version_max.map(narrow_u16),
        model_id: fields.optional_string("modelId")?,
        manufacturer_names: fields.text_list(
            "manufacturerName",
            MAX_MANUFACTURER_NAMES,
            MAX_TEXT_BYTES,
        )?,
    };

    Ok(CatalogEntry {
        provenance: provenance.clone(),
        manufacturer_code,
        image_type,
        file_version,
        size: ImageSize::HeaderImageSize(file_size),
        hash,
        locator: Locator::Url(url.to_owned()),
        restrictions,
        display_name: fields.optional_string("fileName")?,
        release_notes: fields.optional_string("releaseNotes")?,
    })
}

/// An optional `[min, max]` pair of fields, each within `0..=max`; `range` names the pair when
/// it is empty (min > max).
fn optional_range(
    fields: &EntryFields<'_>,
    [min_field, max_field]: [&'static str; 2],
    range: &'static str,
    max: u64,
) -> Result<(Option<u64>, Option<u64>), EntryError> {
    let low = fields.optional_unsigned(min_field, max)?;
    let high = fields.optional_unsigned(max_field, max)?;
    match (low, high) {
        (Some(min), Some(max)) if min > max => Err(EntryError::EmptyRange {
            index: fields.index,
            field: range,
            min,
            max,
        }),
        _ => Ok((low, high)),
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
