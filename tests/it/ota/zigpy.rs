//! zigpy's reading of synthetic files (tests/vectors/ota/zigpy_vectors.json).

use super::*;

#[test]
fn zigpy_vectors_agree() {
    let path = vectors_dir().join("ota/zigpy_vectors.json");
    let vectors: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bytes = zigbee_otad::wire::parse_hex(case["file_hex"].as_str().unwrap()).unwrap();
        match case["zigpy"]["parse"].as_str().unwrap() {
            "ok" => {
                let file = OtaFile::parse(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
                compare_with_zigpy(name, &file, &case["zigpy"]);
                // Our writer produces zigpy's bytes from the same description.
                if let Some(serialized) = case["zigpy"]["serialized_hex"].as_str() {
                    let serialized = zigbee_otad::wire::parse_hex(serialized).unwrap();
                    assert_eq!(file.image_bytes(), &serialized[..], "{name}: image bytes");
                }
            }
            _ => {
                let ours = OtaFile::parse(bytes);
                let expected = case["ours"].as_str().unwrap();
                match ours {
                    Err(e) => assert!(e.to_string().contains(expected), "{name}: {e}"),
                    Ok(file) => assert_eq!(file.framing().name(), expected, "{name}"),
                }
            }
        }
    }
}

#[test]
fn writer_matches_zigpy_serialisation() {
    let path = vectors_dir().join("ota/zigpy_vectors.json");
    let vectors: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let Some(spec) = case.get("build") else {
            continue;
        };
        let mut h = OtaHeader::new(
            ManufacturerCode(spec["manufacturer_code"].as_u64().unwrap() as u16),
            ImageType(spec["image_type"].as_u64().unwrap() as u16),
            FileVersion(spec["file_version"].as_u64().unwrap() as u32),
        );
        h.set_header_string(spec["header_string"].as_str().unwrap());
        if let Some(v) = spec["security_credential_version"].as_u64() {
            h.security_credential_version = Some(SecurityCredentialVersion(v as u8));
        }
        if let Some(v) = spec["upgrade_file_destination"].as_u64() {
            h.upgrade_file_destination = Some(zigbee_otad::zigbee::Ieee(v));
        }
        if let (Some(min), Some(max)) = (
            spec["minimum_hardware_version"].as_u64(),
            spec["maximum_hardware_version"].as_u64(),
        ) {
            h.hardware_versions = Some(HardwareVersions {
                minimum: HardwareVersion(min as u16),
                maximum: HardwareVersion(max as u16),
            });
        }
        let mut builder = OtaFileBuilder::new(h);
        for element in spec["sub_elements"].as_array().unwrap() {
            let data = zigbee_otad::wire::parse_hex(element["data_hex"].as_str().unwrap()).unwrap();
            builder = match element["telink_tag_info"].as_u64() {
                Some(info) => builder.telink_sub_element(info as u16, data),
                None => builder.sub_element(TagId(element["tag"].as_u64().unwrap() as u16), data),
            };
        }
        let expected =
            zigbee_otad::wire::parse_hex(case["zigpy"]["serialized_hex"].as_str().unwrap())
                .unwrap();
        assert_eq!(builder.build(), expected, "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} buildable vectors");
}
