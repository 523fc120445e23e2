//! The LEDVANCE cloud catalog (`GET /v1/zigbee/firmwares`), as described in CATALOGS.md
//! ("The LEDVANCE API as clients use it"): `{"firmwares":[{identity{company, product,
//! version{major, minor, build, revision}}, shA256, length, fullName, productName, releaseNotes,
//! …}]}`.
//!
//! * File version = `major<<24 | minor<<16 | build<<8 | revision` (each part 0..=255). When
//!   `fullName`'s middle segment is hex, it must equal that packing, or the entry is refused.
//! * Download URL = `{catalog URL}/download?Company=&Product=&Version=major.minor.build.revision`
//!   (the 4-part form; a 3-part version got HTTP 204 after September 2021).
//! * `length` is the exact file length; `shA256` its SHA-256.
//! * The API does not sort its list; [`parse`] sorts by (company, product, newest first).
//! * `productName` is kept as a display name only: device model identifiers differ from it.

use super::json::{EntryFields, MAX_TEXT_BYTES};
use super::{CatalogParseError, EntryError, ParsedCatalog, narrow_u16, parse_entry_list};
use crate::catalog::model::{
    CatalogEntry, HashAlgorithm, ImageSize, Locator, Provenance, Restrictions,
};

/// Largest catalog document accepted (the real one is about 150 KB).
pub const MAX_CATALOG_BYTES: usize = 8 * 1024 * 1024;

/// Largest image a LEDVANCE entry may announce (real ones are under 400 KB).
pub const MAX_IMAGE_BYTES: u64 = 16 * 1024 * 1024;

/// A LEDVANCE version quadruple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedvanceVersion {
    /// `identity.version.major`.
    pub major: u8,
    /// `identity.version.minor`.
    pub minor: u8,
    /// `identity.version.build`.
    pub build: u8,
    /// `identity.version.revision`.
    pub revision: u8,
}

impl LedvanceVersion {
    /// The OTA file version: `major<<24 | minor<<16 | build<<8 | revision`.
    pub fn file_version(self) -> u32 {
        u32::from_be_bytes([self.major, self.minor, self.build, self.revision])
    }

    /// The inverse of [`LedvanceVersion::file_version`].
    pub fn from_file_version(version: u32) -> Self {
        let [major, minor, build, revision] = version.to_be_bytes();
        LedvanceVersion {
            major,
            minor,
            build,
            revision,
        }
    }

    /// `major.minor.build.revision` in decimal, as the download endpoint wants it.
    pub fn dotted(self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

/// The download URL for one image: `{catalog_url}/download?Company=…&Product=…&Version=a.b.c.d`.
pub fn download_url(
    catalog_url: &str,
    company: u16,
    product: u16,
    version: LedvanceVersion,
) -> String {
    format!(
        "{}/download?Company={company}&Product={product}&Version={}",
        catalog_url.trim_end_matches('/'),
        version.dotted()
    )
}

/// Parses a LEDVANCE catalog response. `catalog_url` is the URL it was fetched from (download
/// URLs are built on it); `provenance` is stamped on every entry.
pub fn parse(
    input: &[u8],
    catalog_url: &str,
    provenance: &Provenance,
) -> Result<ParsedCatalog, CatalogParseError> {
    let mut parsed = parse_entry_list(
        input,
        MAX_CATALOG_BYTES,
        Some("firmwares"),
        "an object with a \"firmwares\" array",
        |fields| parse_entry(fields, catalog_url, provenance),
    )?;
    parsed.entries.sort_by(|a, b| {
        (a.manufacturer_code, a.image_type)
            .cmp(&(b.manufacturer_code, b.image_type))
            .then(b.file_version.cmp(&a.file_version))
    });
    Ok(parsed)
}

fn parse_entry(
    fields: &EntryFields<'_>,
    catalog_url: &str,
    provenance: &Provenance,
) -> Result<CatalogEntry, EntryError> {
    let index = fields.index;
    let identity = fields.object("identity")?;
    let company = identity.unsigned("company", "identity.company", u16::MAX.into())?;
    let product = identity.unsigned("product", "identity.product", u16::MAX.into())?;
    let version_fields = identity.object("version")?;
    let part = |name: &'static str, path: &'static str| -> Result<u8, EntryError> {
        let value = version_fields.unsigned(name, path, u8::MAX.into())?;
        u8::try_from(value).map_err(|_| version_fields.wrong_type(path, "a number 0..=255"))
    };
    let version = LedvanceVersion {
        major: part("major", "identity.version.major")?,
        minor: part("minor", "identity.version.minor")?,
        build: part("build", "identity.version.build")?,
        revision: part("revision", "identity.version.revision")?,
    };
    let file_version = version.file_version();

    if let Some(full_name) = fields.optional_text("fullName", MAX_TEXT_BYTES)?
        && let Some(named) = full_name_version(full_name)
        && named != file_version
    {
        return Err(EntryError::VersionMismatch {
            index,
            full_name: named,
            identity: file_version,
        });
    }

    let hash = fields.digest("shA256", HashAlgorithm::Sha256)?;
    let length = fields.unsigned("length", "length", MAX_IMAGE_BYTES)?;
    let (company, product) = (narrow_u16(company), narrow_u16(product));

    Ok(CatalogEntry {
        provenance: provenance.clone(),
        manufacturer_code: company,
        image_type: product,
        file_version,
        size: ImageSize::FileLength(length),
        hash,
        locator: Locator::Url(download_url(catalog_url, company, product, version)),
        restrictions: Restrictions::default(),
        display_name: fields.optional_string("productName")?,
        release_notes: fields.optional_string("releaseNotes")?,
    })
}

/// The hex version in `fullName`'s middle segment (`"A19 RGBW/00102428/…"` → 0x00102428), or
/// `None` when the name has no such segment.
pub fn full_name_version(full_name: &str) -> Option<u32> {
    let segment = full_name.split('/').nth(1)?;
    if segment.is_empty() || segment.len() > 8 {
        return None;
    }
    u32::from_str_radix(segment, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::SourceKind;
    use proptest::prelude::*;

    const URL: &str = "https://api.update.ledvance.com/v1/zigbee/firmwares";

    fn provenance() -> Provenance {
        Provenance {
            source: "ledvance".into(),
            kind: SourceKind::Ledvance,
        }
    }

    fn entry_json(product: u16, version: [u8; 4], full_hex: &str) -> String {
        format!(
            r#"{{"blob":null,"identity":{{"company":4489,"product":{product},
            "version":{{"major":{},"minor":{},"build":{},"revision":{}}}}},
            "releaseNotes":"notes","shA256":"{}","name":"x.ota","productName":"P{product}",
            "fullName":"P{product}/{full_hex}/x.ota","extension":".ota","released":null,
            "salesRegion":null,"length":1234}}"#,
            version[0],
            version[1],
            version[2],
            version[3],
            "ab".repeat(32)
        )
    }

    #[test]
    fn packs_version_and_builds_four_part_url() {
        let body = format!(
            r#"{{"firmwares":[{}]}}"#,
            entry_json(25, [0, 16, 36, 40], "00102428")
        );
        let parsed = parse(body.as_bytes(), URL, &provenance()).unwrap();
        assert!(parsed.rejected.is_empty());
        let entry = &parsed.entries[0];
        assert_eq!(entry.file_version, 0x0010_2428);
        assert_eq!(entry.manufacturer_code, 4489);
        assert_eq!(entry.image_type, 25);
        assert_eq!(entry.size, ImageSize::FileLength(1234));
        assert_eq!(
            entry.locator,
            Locator::Url(format!(
                "{URL}/download?Company=4489&Product=25&Version=0.16.36.40"
            ))
        );
    }

    #[test]
    fn sorts_newest_first_within_a_product() {
        let body = format!(
            r#"{{"firmwares":[{},{},{}]}}"#,
            entry_json(7, [1, 0, 0, 1], "01000001"),
            entry_json(7, [2, 0, 0, 0], "02000000"),
            entry_json(3, [1, 0, 0, 0], "01000000"),
        );
        let parsed = parse(body.as_bytes(), URL, &provenance()).unwrap();
        let order: Vec<(u16, u32)> = parsed
            .entries
            .iter()
            .map(|e| (e.image_type, e.file_version))
            .collect();
        assert_eq!(
            order,
            vec![(3, 0x0100_0000), (7, 0x0200_0000), (7, 0x0100_0001)]
        );
    }

    #[test]
    fn bad_entries_are_named_and_skipped() {
        let good = entry_json(1, [1, 2, 3, 4], "01020304");
        let mismatch = entry_json(2, [1, 2, 3, 4], "01020305");
        let bad_major = good.replace(r#""major":1"#, r#""major":256"#);
        let bad_hash = good.replace(&"ab".repeat(32), "abcd");
        let no_identity = r#"{"shA256":"00","length":1}"#;
        let body = format!(
            r#"{{"firmwares":[{good},{mismatch},{bad_major},{bad_hash},{no_identity},7]}}"#
        );
        let parsed = parse(body.as_bytes(), URL, &provenance()).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(
            parsed.rejected,
            vec![
                EntryError::VersionMismatch {
                    index: 1,
                    full_name: 0x0102_0305,
                    identity: 0x0102_0304
                },
                EntryError::OutOfRange {
                    index: 2,
                    field: "identity.version.major",
                    value: "256".into(),
                    max: 255
                },
                EntryError::BadHash {
                    index: 3,
                    field: "shA256",
                    algorithm: "sha256",
                    hex_len: 64
                },
                EntryError::Missing {
                    index: 4,
                    field: "identity"
                },
                EntryError::WrongType {
                    index: 5,
                    field: "(entry)",
                    expected: "an object"
                },
            ]
        );
        assert_eq!(
            parsed.rejected[1].to_string(),
            "entry 2: field `identity.version.major` = 256 is outside 0..=255"
        );
    }

    #[test]
    fn document_errors() {
        assert!(matches!(
            parse(b"[]", URL, &provenance()),
            Err(CatalogParseError::Shape { .. })
        ));
        assert!(matches!(
            parse(b"{\"firmwares\":", URL, &provenance()),
            Err(CatalogParseError::Json { line: 1, .. })
        ));
        let huge = vec![b' '; MAX_CATALOG_BYTES + 1];
        assert!(matches!(
            parse(&huge, URL, &provenance()),
            Err(CatalogParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn full_name_segments() {
        assert_eq!(full_name_version("A/00102428/x.ota"), Some(0x0010_2428));
        assert_eq!(full_name_version("A/0010242a/x"), Some(0x0010_242A));
        assert_eq!(full_name_version("no-slash"), None);
        assert_eq!(full_name_version("A/123456789/x"), None);
        assert_eq!(full_name_version("A/zz/x"), None);
    }

    proptest! {
        #[test]
        fn version_packing_round_trips(version in any::<u32>()) {
            prop_assert_eq!(LedvanceVersion::from_file_version(version).file_version(), version);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&data, URL, &provenance());
        }
    }
}
