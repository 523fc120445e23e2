//! The parsers against the real catalogs: every LEDVANCE entry and every zigbee-OTA index entry.

use std::collections::HashSet;

use serde_json::Value;
use zigbee_otad::catalog::model::{ImageSize, Locator, Provenance, SourceKind};
use zigbee_otad::catalog::provider::{ledvance, zigbee_ota_index};

use super::{LEDVANCE_FILES, LEDVANCE_URL, ledvance_source};
use crate::common::shared_testdata;

/// Every entry of both real LEDVANCE responses: the packed identity version equals the hex in
/// `fullName`, the URL carries the 4-part version, and nothing is rejected.
#[test]
fn ledvance_real_catalogs_version_mapping() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    for file in LEDVANCE_FILES {
        let bytes = std::fs::read(testdata.join("catalogs").join(file)).unwrap();
        let parsed = ledvance::parse(&bytes, LEDVANCE_URL, &ledvance_source()).unwrap();
        assert!(parsed.rejected.is_empty(), "{file}: {:?}", parsed.rejected);

        // Independent reading of the same document, to compare against.
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let raw_entries = raw["firmwares"].as_array().unwrap();
        assert_eq!(parsed.entries.len(), raw_entries.len(), "{file}");
        let mut expected = HashSet::new();
        for item in raw_entries {
            let v = &item["identity"]["version"];
            let part = |k: &str| v[k].as_u64().unwrap();
            let from_name = u32::from_str_radix(
                item["fullName"]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .nth(1)
                    .unwrap(),
                16,
            )
            .unwrap();
            let packed = (part("major") << 24)
                | (part("minor") << 16)
                | (part("build") << 8)
                | part("revision");
            assert_eq!(u64::from(from_name), packed, "{file}: {item}");
            let dotted = format!(
                "{}.{}.{}.{}",
                part("major"),
                part("minor"),
                part("build"),
                part("revision")
            );
            expected.insert((
                item["identity"]["company"].as_u64().unwrap() as u16,
                item["identity"]["product"].as_u64().unwrap() as u16,
                from_name,
                item["shA256"].as_str().unwrap().to_ascii_lowercase(),
                item["length"].as_u64().unwrap(),
                dotted,
            ));
        }
        let got: HashSet<_> = parsed
            .entries
            .iter()
            .map(|e| {
                let Locator::Url(url) = &e.locator else {
                    panic!("LEDVANCE entries are downloaded by URL")
                };
                let dotted = url.rsplit_once("&Version=").unwrap().1.to_owned();
                assert!(url.starts_with(&format!(
                    "{LEDVANCE_URL}/download?Company={}&Product={}&",
                    e.manufacturer_code, e.image_type
                )));
                let ImageSize::FileLength(length) = e.size else {
                    panic!("LEDVANCE length is the file length")
                };
                (
                    e.manufacturer_code,
                    e.image_type,
                    e.file_version,
                    e.hash.to_hex(),
                    length,
                    dotted,
                )
            })
            .collect();
        assert_eq!(got, expected, "{file}");

        // Sorted by (company, product), newest first, whatever the response's order.
        for pair in parsed.entries.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let key =
                |e: &zigbee_otad::catalog::model::CatalogEntry| (e.manufacturer_code, e.image_type);
            assert!(key(a) < key(b) || (key(a) == key(b) && a.file_version >= b.file_version));
        }
    }
}

/// All 897 entries of the real zigbee-OTA index parse; fields and restrictions match the JSON.
#[test]
fn zigbee_ota_index_real_manifest() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    let bytes = std::fs::read(testdata.join("catalogs/index.json")).unwrap();
    let source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let parsed = zigbee_ota_index::parse(&bytes, &source).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let raw: Value = serde_json::from_slice(&bytes).unwrap();
    let raw_entries = raw.as_array().unwrap();
    assert_eq!(parsed.entries.len(), raw_entries.len());
    assert_eq!(parsed.entries.len(), 897);
    let mut with_restrictions = 0;
    for (entry, item) in parsed.entries.iter().zip(raw_entries) {
        assert_eq!(
            u64::from(entry.manufacturer_code),
            item["manufacturerCode"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(entry.image_type),
            item["imageType"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(entry.file_version),
            item["fileVersion"].as_u64().unwrap()
        );
        assert_eq!(
            entry.size,
            ImageSize::HeaderImageSize(item["fileSize"].as_u64().unwrap())
        );
        assert_eq!(
            entry.hash.to_hex(),
            item["sha512"].as_str().unwrap().to_ascii_lowercase()
        );
        assert_eq!(
            entry.locator,
            Locator::Url(item["url"].as_str().unwrap().to_owned())
        );
        let r = &entry.restrictions;
        let opt = |k: &str| item.get(k).and_then(Value::as_u64);
        assert_eq!(r.min_file_version.map(u64::from), opt("minFileVersion"));
        assert_eq!(r.max_file_version.map(u64::from), opt("maxFileVersion"));
        assert_eq!(
            r.hardware_version_min.map(u64::from),
            opt("hardwareVersionMin")
        );
        assert_eq!(
            r.hardware_version_max.map(u64::from),
            opt("hardwareVersionMax")
        );
        assert_eq!(
            r.model_id.as_deref(),
            item.get("modelId").and_then(Value::as_str)
        );
        let names: Vec<&str> = item
            .get("manufacturerName")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|n| n.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(r.manufacturer_names, names);
        if *r != Default::default() {
            with_restrictions += 1;
        }
    }
    assert!(
        with_restrictions > 200,
        "only {with_restrictions} restricted entries"
    );
}
