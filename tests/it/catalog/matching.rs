//! Matching over the merged real catalogs: reach, no wrong offers, and agreement with
//! zigbee-herdsman's matcher.

use serde_json::Value;
use zigbee_otad::catalog::model::{Provenance, SourceKind};
use zigbee_otad::catalog::provider::{ledvance, zigbee_ota_index};

use super::{LEDVANCE_URL, ledvance_source};
use crate::common::shared_testdata;

/// The real manifest merged with both real LEDVANCE responses: the ubisys image shipped for two
/// hardware ranges at one version gives each device its own file, and every LEDVANCE product
/// offers its newest version to a device at version 0.
#[test]
fn merged_real_catalogs() {
    use zigbee_otad::catalog::merged::MergedCatalog;
    use zigbee_otad::catalog::model::DeviceQuery;
    use zigbee_otad::catalog::provider::SourceCatalog;

    let Some(testdata) = shared_testdata() else {
        return;
    };
    let index_source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let index = zigbee_ota_index::parse(
        &std::fs::read(testdata.join("catalogs/index.json")).unwrap(),
        &index_source,
    )
    .unwrap();
    let ledvance_bytes =
        std::fs::read(testdata.join("catalogs/ledvance-zigbee-OTA-cache.json")).unwrap();
    let ledvance = ledvance::parse(&ledvance_bytes, LEDVANCE_URL, &ledvance_source()).unwrap();
    let merged = MergedCatalog::new([
        SourceCatalog {
            provenance: ledvance_source(),
            entries: ledvance.entries.clone(),
        },
        SourceCatalog {
            provenance: index_source,
            entries: index.entries,
        },
    ]);

    let mut ubisys = DeviceQuery {
        manufacturer_code: 0x10F2,
        image_type: 0x7B32,
        current_file_version: 0,
        hardware_version: Some(1),
        ..DeviceQuery::default()
    };
    let low = merged.best_image(&ubisys).unwrap();
    ubisys.hardware_version = Some(2);
    let high = merged.best_image(&ubisys).unwrap();
    assert_eq!(low.file_version, high.file_version);
    assert_ne!(low.hash, high.hash);
    assert!(low.display_name.as_deref().unwrap().contains("rev0-1"));

    for entry in &ledvance.entries {
        let device = DeviceQuery {
            manufacturer_code: entry.manufacturer_code,
            image_type: entry.image_type,
            current_file_version: 0,
            ..DeviceQuery::default()
        };
        let newest = ledvance
            .entries
            .iter()
            .filter(|e| {
                (e.manufacturer_code, e.image_type) == (entry.manufacturer_code, entry.image_type)
            })
            .map(|e| e.file_version)
            .max()
            .unwrap();
        match merged.best_image(&device) {
            Ok(chosen) => assert!(chosen.file_version >= newest),
            Err(reason) => panic!("{device:?}: {reason}"),
        }
    }
}

/// The real index as one merged catalog.
fn real_index() -> Option<zigbee_otad::catalog::merged::MergedCatalog> {
    use zigbee_otad::catalog::merged::MergedCatalog;
    use zigbee_otad::catalog::provider::SourceCatalog;
    let testdata = shared_testdata()?;
    let source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let parsed = zigbee_ota_index::parse(
        &std::fs::read(testdata.join("catalogs/index.json")).unwrap(),
        &source,
    )
    .unwrap();
    assert_eq!(parsed.entries.len(), 897);
    Some(MergedCatalog::new([SourceCatalog {
        provenance: source,
        entries: parsed.entries,
    }]))
}

/// A device each entry was written for: its code and type, the lowest version the entry
/// accepts (below the entry's own), the lowest hardware version of its range, its `modelId`
/// and its first `manufacturerName`.
fn device_for(
    entry: &zigbee_otad::catalog::model::CatalogEntry,
) -> zigbee_otad::catalog::model::DeviceQuery<'_> {
    let r = &entry.restrictions;
    zigbee_otad::catalog::model::DeviceQuery {
        manufacturer_code: entry.manufacturer_code,
        image_type: entry.image_type,
        current_file_version: r.min_file_version.unwrap_or(0),
        hardware_version: r.hardware_version_min.or(r.hardware_version_max),
        model_id: r.model_id.as_deref(),
        manufacturer_name: r.manufacturer_names.first().map(String::as_str),
    }
}

/// Reach over the real index: a device built from each of the 897 entries is offered that
/// entry or a newer one whose restrictions it meets. Before devices had an identity, the 309
/// entries restricted by `modelId` or `manufacturerName` could never be offered (588/897).
#[test]
fn reach_over_the_real_index() {
    let Some(merged) = real_index() else {
        return;
    };
    let mut reached = 0;
    let mut missed = Vec::new();
    for entry in merged.entries() {
        let device = device_for(entry);
        match merged.best_image(&device) {
            Ok(offered)
                if offered.file_version >= entry.file_version
                    && offered.restrictions.check(&device).is_ok() =>
            {
                reached += 1
            }
            other => missed.push(format!(
                "{:04x}/{:04x}/{:08x} {:?}: {:?}",
                entry.manufacturer_code,
                entry.image_type,
                entry.file_version,
                entry.display_name,
                other.map(|e| e.file_version)
            )),
        }
    }
    eprintln!("reach over the real index: {reached}/897");
    for miss in &missed {
        eprintln!("  not reached: {miss}");
    }
    assert_eq!(reached, 897, "{missed:#?}");
}

/// No wrong offers: a device that differs from a restricted entry only in its model or its
/// manufacturer name (or does not know them) is never offered an entry it does not meet.
#[test]
fn restricted_entries_never_reach_other_models_or_manufacturers() {
    use zigbee_otad::catalog::model::DeviceQuery;
    let Some(merged) = real_index() else {
        return;
    };
    let mut checked = 0;
    for entry in merged.entries() {
        let r = &entry.restrictions;
        if r.model_id.is_none() && r.manufacturer_names.is_empty() {
            continue;
        }
        let right = device_for(entry);
        let variants: [DeviceQuery<'_>; 4] = [
            DeviceQuery {
                model_id: r.model_id.as_ref().map(|_| "another-model"),
                ..right
            },
            DeviceQuery {
                manufacturer_name: (!r.manufacturer_names.is_empty()).then_some("_TZ0000_other"),
                ..right
            },
            DeviceQuery {
                model_id: None,
                ..right
            },
            DeviceQuery {
                manufacturer_name: None,
                ..right
            },
        ];
        for device in variants {
            if device == right {
                continue;
            }
            checked += 1;
            if let Ok(offered) = merged.best_image(&device) {
                assert!(
                    offered.restrictions.check(&device).is_ok(),
                    "{device:?} was offered {offered:?}"
                );
                assert_ne!(offered, entry, "{device:?} got the entry it does not meet");
            }
        }
    }
    assert!(checked > 300, "only {checked} variants checked");
}

/// A differential test against zigbee-herdsman 10.9.5's own matcher (`findMatchingOtaImage`,
/// run in node from the npm package `.ci/run` installs) over random identities drawn around the
/// real index. Herdsman is asked for every entry its predicate accepts for each device; we agree
/// on whether any of them is an update, and we offer the newest of them. (Herdsman itself takes
/// the first match in index order and offers it only when it is newer; where the index lists an
/// older matching entry before a newer one, herdsman offers nothing or the older one. Those
/// cases are counted and printed.)
#[test]
fn matching_agrees_with_zigbee_herdsman() {
    use zigbee_otad::catalog::model::DeviceQuery;
    let Some(merged) = real_index() else {
        return;
    };
    let Some(herdsman) = crate::common::herdsman_dir() else {
        eprintln!(
            "SKIPPED: zigbee-herdsman is not installed (.ci/run installs it from npm); \
             the differential test against its matcher did not run"
        );
        return;
    };
    let index = shared_testdata().unwrap().join("catalogs/index.json");
    // xorshift64*: deterministic identities.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    };
    let entries = merged.entries();
    let mut devices = Vec::new();
    for _ in 0..600 {
        let entry = &entries[next(entries.len() as u64) as usize];
        let r = &entry.restrictions;
        let other = &entries[next(entries.len() as u64) as usize];
        let version = match next(4) {
            0 => 0,
            1 => entry.file_version.saturating_sub(1),
            2 => entry.file_version,
            _ => next(u64::from(u32::MAX)) as u32,
        };
        let hardware = match next(3) {
            0 => None,
            1 => r.hardware_version_min.or(Some(1)),
            _ => Some(next(64) as u16),
        };
        let model = match next(3) {
            0 => None,
            1 => r.model_id.clone(),
            _ => other.restrictions.model_id.clone(),
        };
        let name = match next(3) {
            0 => None,
            1 => r.manufacturer_names.first().cloned(),
            _ => other.restrictions.manufacturer_names.first().cloned(),
        };
        devices.push((
            entry.manufacturer_code,
            entry.image_type,
            version,
            hardware,
            model,
            name,
        ));
    }
    let request: Vec<Value> = devices
        .iter()
        .map(|(code, image_type, version, hardware, model, name)| {
            serde_json::json!({
                "manufacturerCode": code, "imageType": image_type, "fileVersion": version,
                "hardwareVersion": hardware, "modelId": model, "manufacturerName": name,
            })
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/herdsman_match.js");
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .arg(&index)
        .env("NODE_PATH", herdsman.join("node_modules"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&request).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed: {out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["herdsman"], "10.9.5");
    let answers = answer["answers"].as_array().unwrap();
    assert_eq!(answers.len(), devices.len());
    let mut updates = 0;
    let mut first_match_differs = 0;
    for ((code, image_type, version, hardware, model, name), theirs) in devices.iter().zip(answers)
    {
        let query = DeviceQuery {
            manufacturer_code: *code,
            image_type: *image_type,
            current_file_version: *version,
            hardware_version: *hardware,
            model_id: model.as_deref(),
            manufacturer_name: name.as_deref(),
        };
        let ours = merged.best_image(&query).ok();
        let matches = theirs["matches"].as_array().unwrap();
        let newest = matches
            .iter()
            .filter_map(|m| m["fileVersion"].as_u64())
            .max()
            .filter(|&v| v > u64::from(*version));
        assert_eq!(
            ours.map(|e| u64::from(e.file_version)),
            newest,
            "{query:?}: herdsman's matches {matches:?}"
        );
        if let Some(entry) = ours {
            updates += 1;
            let hash = entry.hash.to_hex();
            assert!(
                matches
                    .iter()
                    .any(|m| m["fileVersion"] == entry.file_version
                        && m["sha512"].as_str().unwrap().eq_ignore_ascii_case(&hash)),
                "{query:?}: we offer {hash}, not among {matches:?}"
            );
        }
        if theirs["available"].as_bool().unwrap() != ours.is_some()
            || (ours.is_some() && matches[0]["fileVersion"].as_u64() != newest)
        {
            first_match_differs += 1;
        }
    }
    eprintln!(
        "herdsman's predicate agrees on {} identities ({updates} with an update); herdsman's \
         first-match choice differs from the newest match for {first_match_differs}",
        devices.len()
    );
    assert!(
        updates > 100,
        "too few identities with an update ({updates})"
    );
}
