//! Sonoff's feed (`https://zigbee-ota.sonoff.tech/releases/upgrade.json`), as zigpy reads it
//! (`zigpy/ota/providers.py`, `Sonoff`): a JSON array of `{fw_binary_url, fw_file_version,
//! fw_filesize, fw_image_type, fw_manufacturer_id, model_id}`.
//!
//! * `fw_filesize` is the whole file's length (zigpy compares it with the downloaded length);
//!   some Sonoff files carry a 100-byte prefix before the OTA magic, which the `ota` module
//!   accepts.
//! * `model_id` is the device's Basic cluster model identifier and restricts the entry, as
//!   zigpy's `model_names` does: a device whose model is unknown or different is not offered it.
//! * No digest is published: entries are [`ImageHash::unpinned`](crate::catalog::model::ImageHash::unpinned)
//!   and the first download is verified by its OTA header and size, then pinned
//!   (`catalog::pins`).

use super::json::{EntryFields, MAX_TEXT_BYTES};
use super::{CatalogParseError, EntryError, ParsedCatalog, VendorImage, parse_firmware_array};
use crate::catalog::model::{CatalogEntry, ImageSize, Provenance};
use crate::catalog::partial_image::MAX_IMAGE_DOWNLOAD_BYTES;

/// Parses Sonoff's `upgrade.json`; `provenance` is stamped on every entry.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    parse_firmware_array(input, |fields| parse_entry(fields, provenance))
}

fn parse_entry(
    fields: &EntryFields<'_>,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let (manufacturer_code, image_type, file_version) =
        fields.ota_identity(["fw_manufacturer_id", "fw_image_type", "fw_file_version"])?;
    let file_size = fields.unsigned("fw_filesize", "fw_filesize", MAX_IMAGE_DOWNLOAD_BYTES)?;
    let url = fields.url("fw_binary_url")?;
    let model_id = fields.text("model_id", MAX_TEXT_BYTES)?;
    Ok(VendorImage {
        manufacturer_code,
        image_type,
        file_version,
        size: ImageSize::FileLength(file_size),
        url,
        model_id: Some(model_id),
        display_name: Some(model_id.to_owned()),
    }
    .into_unpinned_entry(provenance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{ImageHash, Locator, SourceKind};

    fn provenance() -> Provenance {
        Provenance {
            source: "sonoff".into(),
            kind: SourceKind::Sonoff,
        }
    }

    /// zigpy's real sample (tests/vectors/providers/README.md).
    const SAMPLE: &[u8] = include_bytes!("../../../tests/vectors/providers/sonoff_upgrade.json");

    #[test]
    fn reads_the_real_sample() {
        let parsed = parse(SAMPLE, &provenance()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.entries.len(), 3);
        let first = &parsed.entries[0];
        assert_eq!(
            (
                first.manufacturer_code,
                first.image_type,
                first.file_version
            ),
            (4742, 1, 4353)
        );
        assert_eq!(first.size, ImageSize::FileLength(131_086));
        assert_eq!(first.restrictions.model_id.as_deref(), Some("ZBMINI-L"));
        assert_eq!(
            first.locator,
            Locator::Url("https://zigbee-ota.sonoff.tech/releases/86-0001-00001101.zigbee".into())
        );
        assert_eq!(
            first.hash,
            ImageHash::unpinned(
                SourceKind::Sonoff,
                "https://zigbee-ota.sonoff.tech/releases/86-0001-00001101.zigbee",
                4742,
                1,
                4353
            )
        );
        let models: Vec<_> = parsed
            .entries
            .iter()
            .filter_map(|e| e.restrictions.model_id.as_deref())
            .collect();
        assert_eq!(models, ["ZBMINI-L", "ZBMINIL2", "SNZB-06P"]);
    }

    #[test]
    fn bad_entries_name_their_field() {
        let body = br#"[{"fw_binary_url":"ftp://x/a","fw_file_version":1,"fw_filesize":10,
            "fw_image_type":1,"fw_manufacturer_id":4742,"model_id":"M"},
            {"fw_binary_url":"https://x/a","fw_file_version":1,"fw_filesize":10,
            "fw_image_type":1,"fw_manufacturer_id":4742}]"#;
        let parsed = parse(body, &provenance()).unwrap();
        assert!(parsed.entries.is_empty());
        assert_eq!(
            parsed.rejected,
            vec![
                EntryError::BadUrl {
                    index: 0,
                    field: "fw_binary_url"
                },
                EntryError::Missing {
                    index: 1,
                    field: "model_id"
                }
            ]
        );
        assert!(parse(b"{}", &provenance()).is_err());
    }
}
