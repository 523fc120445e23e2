//! The real corpus (../shared/testdata), field by field against zigpy.

use super::*;

fn corpus() -> Option<(std::path::PathBuf, Vec<Value>)> {
    let dir = shared_testdata()?.join("ota-corpus");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let files = expected["files"].as_array().unwrap().clone();
    Some((dir.join("images"), files))
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn corpus_files_zigpy_parses_agree_field_by_field() {
    let Some((dir, files)) = corpus() else {
        return;
    };
    let mut compared = 0;
    for entry in files.iter().filter(|f| f["zigpy_parse"] == "ok") {
        let name = entry["file"].as_str().unwrap();
        let bytes = read(&dir, name);
        let file = OtaFile::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            file.magic_offset() as u64,
            entry["magic_offset"].as_u64().unwrap(),
            "{name}"
        );
        compare_with_zigpy(name, &file, entry);
        assert_eq!(
            file.verify_integrity().is_ok(),
            entry["validation"] != "INVALID",
            "{name}: offered exactly when zigpy would offer it ({:?})",
            file.verify_integrity()
        );
        // Every sub-element's first bytes match what zigpy saw.
        if let Some(elements) = entry["subelements"].as_array() {
            for (ours, theirs) in file.sub_elements().iter().zip(elements) {
                let prefix = theirs["data_prefix_hex"].as_str().unwrap();
                let data = file.sub_element_data(ours);
                assert_eq!(
                    zigbee_otad::wire::hex_spaced(&data[..data.len().min(8)])
                        .replace(' ', "")
                        .to_ascii_lowercase(),
                    prefix,
                    "{name}"
                );
            }
        }
        compared += 1;
    }
    assert_eq!(compared, 30, "expected.json lists 30 files zigpy parses");
}

#[test]
fn corpus_quirky_containers() {
    let Some((dir, _)) = corpus() else {
        return;
    };
    let ikea = OtaFile::parse(read(
        &dir,
        "10035515-TRADFRI-bulb-cws-2.3.093.ota.ota.signed",
    ))
    .unwrap();
    assert_eq!(
        *ikea.container(),
        Container::IkeaNgis {
            image_offset: 488,
            image_size: 227_500,
            block_size: 16_384,
            hash_count: 14,
            suffix_length: 512
        }
    );
    assert_eq!(ikea.trailing_bytes(), 512);
    assert_eq!(
        ikea.verify_integrity(),
        Ok(ContainerCheck::BlockHashesMatch { blocks: 14 }),
        "all 14 SHA-256 block hashes of the real IKEA file match"
    );
    let raw = read(&dir, "10035515-TRADFRI-bulb-cws-2.3.093.ota.ota.signed");
    assert_eq!(
        ikea.image_bytes(),
        &raw[488..488 + 227_500],
        "served: the OTA file inside"
    );

    let legrand = OtaFile::parse(read(&dir, "1021-000f-004745ff-NLL.zigbee")).unwrap();
    assert_eq!(
        *legrand.container(),
        Container::LegrandPrefix {
            declared_size: 255_143
        }
    );
    assert_eq!(legrand.trailing_bytes(), 17);
    let raw = read(&dir, "1021-000f-004745ff-NLL.zigbee");
    assert_eq!(legrand.image_bytes(), &raw[4..4 + 255_143]);

    // Hue .sbl-ota: a valid header, then Hue's own block format. Hue bulbs take these files
    // from the Hue bridge and from zigpy, so we serve them as they are and report "hue_sbl".
    let raw = read(&dir, "ConnectedLamp-Atmel-Target_0012.sbl-ota");
    let hue = OtaFile::parse(raw.clone()).unwrap();
    assert_eq!(*hue.framing(), Framing::HueSbl);
    assert_eq!(hue.image_bytes(), &raw[..]);
    assert_eq!(
        InspectReport::from(&hue).payload_check_detail.as_deref(),
        Some("hue_sbl")
    );
    assert_eq!(
        InspectReport::from(&legrand).header_string,
        " ".repeat(32),
        "Legrand's header string is 32 spaces, printable"
    );

    let dresden =
        OtaFile::parse(read(&dir, "1135-0000-201000F8-FLS-PP3_RGBW_16Mhz.zigbee")).unwrap();
    let report = InspectReport::from(&dresden);
    assert_eq!(report.header_string_encoding, "hex");
    assert!(report.header_string.starts_with("53777d3640"));

    let encrypted = OtaFile::parse(read(&dir, "A19_RGBW_IMG0019_00102428-encrypted.ota")).unwrap();
    assert_eq!(encrypted.payload().note, Some(PayloadNote::EncryptedEbl));

    let ultron_like_raw = OtaFile::parse(read(&dir, "702plug46_h0xD3B4_b0xD3BD.ota")).unwrap();
    let element = ultron_like_raw.sub_elements()[0];
    assert_eq!(
        zigbee_otad::ota::payload::classify(ultron_like_raw.sub_element_data(&element)).1,
        Some(PayloadNote::Xz)
    );
    assert_eq!(
        ultron_like_raw.header().hardware_versions,
        Some(HardwareVersions {
            minimum: HardwareVersion(0),
            maximum: HardwareVersion(0xFFF0)
        })
    );

    let sdevices = OtaFile::parse(read(
        &dir,
        "152F_SBDV-00196_switch1gang_r_6_48fb8e55_06000000.ota.zigbee",
    ))
    .unwrap();
    let signature = sdevices.sub_elements()[2];
    assert_eq!(signature.tag, TagId::ECDSA_SIGNATURE_CS2);
    assert_eq!(
        &sdevices.sub_element_data(&signature)[..8],
        &0x000D_6F00_0019_8B36u64.to_le_bytes()
    );
}

/// The five files zigpy refuses, and what we decided for each.
#[test]
fn corpus_files_zigpy_refuses_have_a_stated_decision() {
    let Some((dir, files)) = corpus() else {
        return;
    };
    let entry = |name: &str| {
        files
            .iter()
            .find(|f| f["file"] == name)
            .unwrap_or_else(|| panic!("{name} not in expected.json"))
            .clone()
    };
    let header_matches = |name: &str, file: &OtaFile| {
        let mut zigpy = entry(name);
        zigpy["header"] = zigpy["header_at_magic"].clone();
        let h = file.header();
        assert_eq!(
            u64::from(h.image_size),
            zigpy["header"]["image_size"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(h.file_version.0),
            zigpy["header"]["file_version"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(h.manufacturer_code.0),
            zigpy["header"]["manufacturer_id"].as_u64().unwrap()
        );
    };

    // An HTML page saved as .ota: refused, there is no OTA file in it.
    let html = read(&dir, "60G_Radar_OTA_V17_v1.00.17.ota");
    assert!(matches!(
        OtaFile::parse(html),
        Err(OtaError::NoMagic {
            file_size: 169_823,
            ..
        })
    ));

    // Truncated download: refused, because a device would stall at byte 92,222 of 278,830.
    // (The index sha512 matches the truncated file, so a hash check alone would not catch it.)
    let truncated = read(&dir, "tcl-1-zb-s_hw1.x_fw0.6.1_ota20.ota");
    assert_eq!(
        OtaFile::parse(truncated).unwrap_err(),
        OtaError::ImageTruncated {
            magic_offset: 0,
            image_size: 278_830,
            available: 92_222,
            file_size: 92_222
        }
    );

    // Sonoff 100-byte prefix: zigpy refuses (wrong magic at offset 0), zigbee-herdsman serves
    // from the magic. We serve from the magic: the image inside is complete and well framed.
    let name = "swvzfe_v1.0.8.ota";
    let sonoff = OtaFile::parse(read(&dir, name)).unwrap();
    assert_eq!(sonoff.magic_offset(), 100);
    assert_eq!(
        *sonoff.container(),
        Container::UnknownPrefix { length: 100 }
    );
    assert_eq!(*sonoff.framing(), Framing::Complete);
    assert_eq!(sonoff.trailing_bytes(), 0);
    header_matches(name, &sonoff);

    // UltronSMART: raw firmware right after the header. We serve magic..image_size as is (as
    // zigbee-herdsman does; the device's bootloader reads its own format) and report "unframed".
    let name = "ultron_colortemp_1_12_01.ota";
    let ultron = OtaFile::parse(read(&dir, name)).unwrap();
    header_matches(name, &ultron);
    assert!(matches!(
        ultron.framing(),
        Framing::Unframed(FramingBreak { offset: 56, .. })
    ));
    assert_eq!(ultron.payload().note, Some(PayloadNote::Raw));
    assert_eq!(ultron.payload().check, PayloadCheck::Unknown);
    assert_eq!(ultron.image_bytes().len(), 679_720);

    // Datek "combined": tag 0 holds a complete GBL, then an AVR firmware without framing. We
    // serve the whole image_size (the device expects both parts) and report where framing broke.
    let name = "dimmerpille_v2_0_v_4_combined_OTA.ota";
    let datek = OtaFile::parse(read(&dir, name)).unwrap();
    header_matches(name, &datek);
    let Framing::Broken(point) = *datek.framing() else {
        panic!("expected broken framing, got {:?}", datek.framing());
    };
    let gbl = datek.sub_elements()[0];
    assert_eq!(gbl.tag, TagId::UPGRADE_IMAGE);
    assert_eq!(point.offset, gbl.data_offset + gbl.length as usize);
    assert_eq!(datek.payload().kind, PayloadKind::Gbl);
    assert_eq!(
        datek.payload().check,
        PayloadCheck::Valid,
        "the GBL part checks out"
    );
    assert_eq!(datek.image_bytes().len(), 297_862);
}

#[test]
fn corpus_inspect_reports_render() {
    let Some((dir, files)) = corpus() else {
        return;
    };
    for entry in &files {
        let name = entry["file"].as_str().unwrap();
        let Ok(file) = OtaFile::parse(read(&dir, name)) else {
            continue;
        };
        let report = InspectReport::from(&file);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["file_size"], entry["size"], "{name}");
        assert!(report.to_string().contains("manufacturer_code"));
    }
}
