//! IKEA's `version_info.json`, as zigpy reads it (`zigpy/ota/providers.py`, `Tradfri`): a JSON
//! array mixing gateway and device images, in two styles.
//!
//! * **DIRIGERA** (default URL `https://fw.ota.homesmart.ikea.com/DIRIGERA/version_info.json`):
//!   device items are `{fw_image_type, fw_type: 2, fw_sha3_256, fw_binary_url}`. The file
//!   version is only in the URL, as the decimal after the last `_v` (`…_release_prod_v604241925_…`);
//!   the manufacturer code is IKEA's, 0x117C. `fw_sha3_256` is the file's SHA3-256: the image is
//!   checked against it like any published digest (and the daemon still checks the header
//!   against the version read from the URL before offering it).
//! * **TRÅDFRI** (the old gateway feed, `http://fw.ota.homesmart.ikea.net/feed/version_info.json`):
//!   device items are `{fw_type: 2, fw_manufacturer_id, fw_image_type, fw_file_version_MSB,
//!   fw_file_version_LSB, fw_filesize, fw_binary_url}`; version = `MSB << 16 | LSB`. The files are
//!   signed `NGIS` containers; `fw_filesize` is the size of the OTA file inside, i.e. the
//!   header's `image_size`. No digest is published: entries are unpinned, and the download is
//!   accepted only when the header matches and the container's SHA-256 block hashes check out
//!   (`catalog::pins`), then pinned.
//!
//! Rules taken from zigpy, decided one by one:
//! * Items without `fw_image_type` (DIRIGERA's own `.raucb`) and TRÅDFRI items with `fw_type`
//!   0 or 1 (gateway firmware) are not device images: skipped silently, as zigpy does.
//! * Image types 0x2200 and 0x2206 are refused (`EntryError::Refused`): zigpy drops them because
//!   they brick devices (zigpy #1428). We refuse them here as well as in the server's default
//!   deny list, so no download is spent on them even when a user replaces that list.
//! * `http://` URLs are upgraded to `https://` (zigpy does; the host serves both, and our HTTP
//!   edge never fetches plain http from a public host). A loopback host (a local mirror) is left
//!   as it is.
//! * IKEA's firmware host chains to IKEA's own "Home smart Root CA", which no system trusts;
//!   zigpy trusts it for these hosts. So do we, for `ikea` sources only and beside the system
//!   roots: [`ROOT_CA_PEM`] is that public certificate, kept as a data file with its provenance
//!   (taken from zigpy's provider). A source's `ca_file` adds more (a mirror, a new IKEA root).

/// IKEA's "Home smart Root CA" (a public certificate; the file says where it comes from): IKEA's
/// firmware host chains to it, not to a root the system trusts, so `ikea` sources trust it
/// beside the system roots, as zigpy's IKEA provider does.
pub const ROOT_CA_PEM: &[u8] = include_bytes!("ikea_root_ca.pem");

use super::json::{EntryFields, MAX_URL_BYTES};
use super::{
    CatalogParseError, EntryError, ParsedCatalog, VendorImage, narrow_u16, parse_firmware_array,
};
use crate::catalog::model::{
    CatalogEntry, HashAlgorithm, ImageSize, Locator, Provenance, Restrictions,
};
use crate::config::is_loopback_authority;

/// IKEA's manufacturer code (DIRIGERA items do not carry one).
pub const IKEA_MANUFACTURER_CODE: u16 = 0x117C;

/// Image types that brick devices (zigpy #1428); never offered.
pub const BRICKING_IMAGE_TYPES: [u16; 2] = [0x2200, 0x2206];

/// The `fw_type` of a device (Zigbee) image.
const DEVICE_IMAGE: u64 = 2;

/// Parses either style of `version_info.json`; `provenance` is stamped on every entry.
pub fn parse(input: &[u8], provenance: &Provenance) -> Result<ParsedCatalog, CatalogParseError> {
    parse_firmware_array(input, |fields| parse_entry(fields, provenance))
}

/// The version DIRIGERA writes into its file names: the decimal after the last `_v` that is
/// followed by digits and `_`.
pub fn version_from_url(url: &str) -> Option<u32> {
    url.rmatch_indices("_v").find_map(|(at, _)| {
        let rest = url.get(at + 2..)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number = rest.get(..digits)?;
        (digits > 0 && rest.as_bytes().get(digits) == Some(&b'_'))
            .then(|| number.parse::<u32>().ok())
            .flatten()
    })
}

/// `http://` → `https://`, except for a loopback host (a local mirror, which the HTTP edge
/// allows over plain http); anything else unchanged.
fn upgrade_to_https(url: &str) -> String {
    match url.strip_prefix("http://") {
        Some(rest) if !is_loopback_authority(rest) => format!("https://{rest}"),
        _ => url.to_owned(),
    }
}

fn parse_entry(
    fields: &EntryFields<'_>,
    provenance: &Provenance,
) -> Result<Option<CatalogEntry>, EntryError> {
    let index = fields.index;
    let u16_max = u64::from(u16::MAX);
    let Some(image_type) = fields.optional_unsigned("fw_image_type", u16_max)? else {
        return Ok(None);
    };
    let image_type = narrow_u16(image_type);
    let entry = match fields.optional_text("fw_sha3_256", MAX_URL_BYTES)? {
        Some(digest) => dirigera_entry(fields, image_type, digest, provenance)?,
        None => {
            if fields.unsigned("fw_type", "fw_type", u64::MAX)? != DEVICE_IMAGE {
                return Ok(None);
            }
            tradfri_entry(fields, image_type, provenance)?
        }
    };
    if BRICKING_IMAGE_TYPES.contains(&entry.image_type) {
        return Err(EntryError::Refused {
            index,
            reason: "IKEA image types 0x2200 and 0x2206 brick devices (zigpy #1428)",
        });
    }
    Ok(Some(entry))
}

fn dirigera_entry(
    fields: &EntryFields<'_>,
    image_type: u16,
    digest: &str,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let hash = fields.digest_from_hex("fw_sha3_256", HashAlgorithm::Sha3_256, digest)?;
    let url = fields.url("fw_binary_url")?;
    let file_version = version_from_url(url).ok_or_else(|| {
        fields.wrong_type(
            "fw_binary_url",
            "a URL naming the version as `_v<decimal>_`",
        )
    })?;
    let url = upgrade_to_https(url);
    Ok(CatalogEntry {
        provenance: provenance.clone(),
        manufacturer_code: IKEA_MANUFACTURER_CODE,
        image_type,
        file_version,
        size: ImageSize::Unpublished,
        hash,
        display_name: url.rsplit('/').next().map(str::to_owned),
        locator: Locator::Url(url),
        restrictions: Restrictions::default(),
        release_notes: None,
    })
}

fn tradfri_entry(
    fields: &EntryFields<'_>,
    image_type: u16,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let u16_max = u64::from(u16::MAX);
    let manufacturer_code = fields.unsigned_u16("fw_manufacturer_id")?;
    let high = fields.unsigned("fw_file_version_MSB", "fw_file_version_MSB", u16_max)?;
    let low = fields.unsigned("fw_file_version_LSB", "fw_file_version_LSB", u16_max)?;
    let size = fields.unsigned("fw_filesize", "fw_filesize", u64::from(u32::MAX))?;
    let url = upgrade_to_https(fields.url("fw_binary_url")?);
    let display_name = url.rsplit('/').next().map(str::to_owned);
    let file_version = u32::from(narrow_u16(high)) << 16 | u32::from(narrow_u16(low));
    Ok(VendorImage {
        manufacturer_code,
        image_type,
        file_version,
        size: ImageSize::HeaderImageSize(size),
        url: &url,
        model_id: None,
        display_name,
    }
    .into_unpinned_entry(provenance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_ikea_root_is_one_certificate_after_its_provenance() {
        use crate::catalog::provider::http::count_certificates;
        let text = std::str::from_utf8(ROOT_CA_PEM).unwrap();
        assert!(text.contains("zigpy/ota/providers.py"), "provenance kept");
        assert_eq!(count_certificates(ROOT_CA_PEM).unwrap(), 1);
        assert_eq!(count_certificates(b"no certificate here").unwrap(), 0);
    }
    use crate::catalog::model::SourceKind;

    fn provenance() -> Provenance {
        Provenance {
            source: "ikea".into(),
            kind: SourceKind::Ikea,
        }
    }

    /// zigpy's real samples (tests/vectors/providers/README.md).
    const DIRIGERA: &[u8] =
        include_bytes!("../../../tests/vectors/providers/ikea_version_info_dirigera.json");
    const TRADFRI: &[u8] =
        include_bytes!("../../../tests/vectors/providers/ikea_version_info_old.json");

    #[test]
    fn version_in_dirigera_urls() {
        let url = "https://fw.ota.homesmart.ikea.com/files/tradfri-controller_release_prod_v604241925_abef4451-762a-4ef9-8c11-dfd88c3e98f7.ota";
        assert_eq!(version_from_url(url), Some(604_241_925));
        assert_eq!(version_from_url("https://x/a_v12_b_v34_c.ota"), Some(34));
        assert_eq!(version_from_url("https://x/a_v12_b_vx_c.ota"), Some(12));
        assert_eq!(version_from_url("https://x/bad.ota"), None);
        assert_eq!(version_from_url("https://x/a_v99999999999_.ota"), None);
        assert_eq!(version_from_url("https://x/a_v12"), None);
        assert_eq!(
            upgrade_to_https("http://fw.ikea.net/a"),
            "https://fw.ikea.net/a"
        );
        assert_eq!(
            upgrade_to_https("http://127.0.0.1:80/a"),
            "http://127.0.0.1:80/a"
        );
        assert_eq!(
            upgrade_to_https("http://127.0.0.1.evil.example/a"),
            "https://127.0.0.1.evil.example/a"
        );
    }

    #[test]
    fn reads_the_real_dirigera_sample() {
        let parsed = parse(DIRIGERA, &provenance()).unwrap();
        // 43 items: the hub's own image is skipped, 42 device images, 2 of them refused.
        assert_eq!(parsed.entries.len(), 40);
        assert_eq!(parsed.rejected.len(), 2);
        assert!(
            parsed
                .rejected
                .iter()
                .all(|e| matches!(e, EntryError::Refused { .. }))
        );
        let first = &parsed.entries[0];
        assert_eq!(
            (
                first.manufacturer_code,
                first.image_type,
                first.file_version
            ),
            (0x117C, 10242, 268_572_245)
        );
        assert_eq!(
            first.hash.to_hex(),
            "e68e61bd57291e0b6358242e72ee2dfe098cb8b769f572b5b8f8e7a34dbcfaca"
        );
        assert_eq!(first.hash.algorithm(), HashAlgorithm::Sha3_256);
        assert!(
            parsed
                .entries
                .iter()
                .all(|e| !BRICKING_IMAGE_TYPES.contains(&e.image_type))
        );
    }

    #[test]
    fn reads_the_real_tradfri_sample() {
        let parsed = parse(TRADFRI, &provenance()).unwrap();
        // 46 items: 2 gateway images skipped, 44 device images, 2 of them refused.
        assert_eq!(parsed.entries.len(), 42);
        assert_eq!(parsed.rejected.len(), 2);
        let outlet = &parsed.entries[0];
        assert_eq!((outlet.manufacturer_code, outlet.image_type), (4476, 4353));
        assert_eq!(outlet.file_version, 8968 << 16 | 38449);
        assert_eq!(outlet.size, ImageSize::HeaderImageSize(209_136));
        assert!(outlet.hash.is_unpinned());
        assert!(parsed.entries.iter().all(|e| matches!(
            &e.locator,
            Locator::Url(url) if url.starts_with("https://fw.ota.homesmart.ikea.net/")
        )));
    }

    #[test]
    fn bad_items_are_named() {
        let parsed = parse(
            br#"[{"fw_image_type":1,"fw_type":2,"fw_sha3_256":"00","fw_binary_url":"https://x/a_v1_.ota"},
                 {"fw_image_type":1,"fw_type":2,"fw_sha3_256":"0000000000000000000000000000000000000000000000000000000000000000","fw_binary_url":"https://x/a.ota"},
                 {"fw_image_type":1,"fw_type":2,"fw_manufacturer_id":4476,"fw_file_version_MSB":70000,
                  "fw_file_version_LSB":1,"fw_filesize":1,"fw_binary_url":"http://x/a"}]"#,
            &provenance(),
        )
        .unwrap();
        assert!(parsed.entries.is_empty());
        assert_eq!(parsed.rejected.len(), 3);
        assert!(matches!(
            parsed.rejected[0],
            EntryError::BadHash { index: 0, .. }
        ));
        assert!(matches!(
            parsed.rejected[1],
            EntryError::WrongType {
                index: 1,
                field: "fw_binary_url",
                ..
            }
        ));
        assert!(matches!(
            parsed.rejected[2],
            EntryError::OutOfRange {
                index: 2,
                field: "fw_file_version_MSB",
                ..
            }
        ));
    }
}
