//! Third Reality's feed (`https://tr-zha.s3.amazonaws.com/firmware.json`), as zigpy reads it
//! (`zigpy/ota/providers.py`, `ThirdReality`): `{"versions":[{modelId, url, version,
//! imageType, manufacturerId, fileVersion}]}`.
//!
//! * `fileVersion` is the OTA file version; `version` ("1.00.74") is for humans and becomes the
//!   display name with the model.
//! * `modelId` restricts the entry to devices reporting that Basic cluster model identifier,
//!   as zigpy's `model_names` does. Several models share one file (the real feed lists three
//!   plugs with the same image), so the restriction is what keeps each offer on its product.
//! * No digest and no size are published: entries are unpinned, and the first download is
//!   verified by its OTA header (Third Reality files carry a 152-byte prefix that the `ota`
//!   module accepts) and then pinned (`catalog::pins`).

use super::json::{EntryFields, MAX_TEXT_BYTES};
use super::{
    CatalogParseError, EntryError, MAX_FEED_BYTES, ParsedCatalog, VendorImage, parse_entry_list,
};
use crate::catalog::model::{CatalogEntry, ImageSize, Provenance};

/// Parses Third Reality's `firmware.json`; `provenance` is stamped on every entry.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    parse_entry_list(
        input,
        MAX_FEED_BYTES,
        Some("versions"),
        r#"an object with a "versions" array"#,
        |fields| parse_entry(fields, provenance),
    )
}

fn parse_entry(
    fields: &EntryFields<'_>,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let (manufacturer_code, image_type, file_version) =
        fields.ota_identity(["manufacturerId", "imageType", "fileVersion"])?;
    let url = fields.url("url")?;
    let model_id = fields.text("modelId", MAX_TEXT_BYTES)?;
    let version = fields.optional_text("version", MAX_TEXT_BYTES)?;
    Ok(VendorImage {
        manufacturer_code,
        image_type,
        file_version,
        size: ImageSize::Unpublished,
        url,
        model_id: Some(model_id),
        display_name: Some(match version {
            Some(version) => format!("{model_id} {version}"),
            None => model_id.to_owned(),
        }),
    }
    .into_unpinned_entry(provenance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::SourceKind;

    fn provenance() -> Provenance {
        Provenance {
            source: "thirdreality".into(),
            kind: SourceKind::ThirdReality,
        }
    }

    /// zigpy's real sample (tests/vectors/providers/README.md).
    const SAMPLE: &[u8] =
        include_bytes!("../../../tests/vectors/providers/thirdreality_firmware.json");

    #[test]
    fn reads_the_real_sample() {
        let parsed = parse(SAMPLE, &provenance()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.entries.len(), 14);
        let plug = parsed
            .entries
            .iter()
            .find(|e| e.restrictions.model_id.as_deref() == Some("3RSP019BZ"))
            .unwrap();
        assert_eq!(
            (plug.manufacturer_code, plug.file_version),
            (4659, 268_513_355)
        );
        assert_eq!(plug.size, ImageSize::Unpublished);
        assert!(plug.hash.is_unpinned());
        assert_eq!(plug.display_name.as_deref(), Some("3RSP019BZ 1.00.74"));
        // Three plugs share one file; each entry stays restricted to its own model.
        let same_file = parsed
            .entries
            .iter()
            .filter(|e| e.locator == plug.locator)
            .count();
        assert_eq!(same_file, 3);
        let makers: std::collections::BTreeSet<u16> =
            parsed.entries.iter().map(|e| e.manufacturer_code).collect();
        assert_eq!(makers, [4659, 4877].into());
    }

    #[test]
    fn shape_and_field_errors() {
        assert_eq!(
            parse(b"[]", &provenance()),
            Err(CatalogParseError::Shape {
                expected: r#"an object with a "versions" array"#
            })
        );
        let parsed = parse(
            br#"{"versions":[{"modelId":"M","url":"https://x/a","imageType":1,
                "manufacturerId":70000,"fileVersion":1}]}"#,
            &provenance(),
        )
        .unwrap();
        assert_eq!(
            parsed.rejected,
            vec![EntryError::OutOfRange {
                index: 0,
                field: "manufacturerId",
                value: "70000".into(),
                max: 65535
            }]
        );
    }
}
