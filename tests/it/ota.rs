//! Integration tests for the `ota` module: synthetic files built with the writer (always run),
//! zigpy's reading of synthetic files (committed vectors), and the real corpus in
//! `../shared/testdata/ota-corpus` (skipped with a note when absent).

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use zigbee_otad::ota::payload::{EblBuilder, GblBuilder};
use zigbee_otad::ota::{
    Container, ContainerCheck, FileVersion, Framing, FramingBreak, HardwareVersion,
    HardwareVersions, ImageType, InspectReport, ManufacturerCode, OtaError, OtaFile,
    OtaFileBuilder, OtaHeader, ParseLimits, PayloadCheck, PayloadDefect, PayloadKind, PayloadNote,
    SecurityCredentialVersion, SubElementQuirk, TagId,
};

use crate::common::{shared_testdata, vectors_dir};

fn header() -> OtaHeader {
    let mut header = OtaHeader::new(
        ManufacturerCode::LEDVANCE,
        ImageType(0x00CD),
        FileVersion(0x0348_3712),
    );
    header.set_header_string("synthetic");
    header
}

fn gbl() -> Vec<u8> {
    GblBuilder::new()
        .tag(
            [0xFE, 0x01, 0x01, 0xFE],
            (0..500u32).map(|i| i as u8).collect(),
        )
        .build()
}

fn ebl() -> Vec<u8> {
    EblBuilder::new()
        .tag([0xFE, 0x01], (0..700u32).map(|i| (i * 3) as u8).collect())
        .build()
}

// ---------------------------------------------------------------------------------------------
// 1. Synthetic fixtures: every optional field, every quirk, every refusal.

#[test]
fn every_optional_field_round_trips() {
    let mut h = header();
    h.security_credential_version = Some(SecurityCredentialVersion::SE_1_2);
    h.upgrade_file_destination = Some(zigbee_otad::zigbee::Ieee(0x000D_6F00_0019_8B36));
    h.hardware_versions = Some(HardwareVersions {
        minimum: HardwareVersion(0x0100),
        maximum: HardwareVersion(0x05FF),
    });
    let builder = OtaFileBuilder::new(h).sub_element(TagId::UPGRADE_IMAGE, gbl());
    let bytes = builder.build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    assert_eq!(*file.header(), builder.final_header());
    assert_eq!(file.header().header_length, 69);
    assert_eq!(file.header().field_control, 0x0007);
    assert_eq!(file.header().image_size as usize, bytes.len());
    assert_eq!(file.image_bytes(), &bytes[..]);
    assert_eq!(file.sub_elements()[0].data_offset, 69 + 6);
    assert_eq!(file.payload().check, PayloadCheck::Valid);

    let report = InspectReport::from(&file);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["security_credential_version"], 3);
    assert_eq!(json["upgrade_file_destination"], "00:0d:6f:00:00:19:8b:36");
    assert_eq!(json["minimum_hardware_version"], 0x0100);
    assert_eq!(json["maximum_hardware_version"], 0x05FF);
    assert_eq!(json["manufacturer_code"], 0x1189);
    assert_eq!(json["header_string"], "synthetic");
    assert_eq!(json["payload"], "gbl");
    assert_eq!(json["payload_check"], "valid");
    assert_eq!(json["sub_elements"][0]["tag"], 0);
    assert_eq!(json["sub_elements"][0]["length"], gbl().len());
    let text = report.to_string();
    assert!(text.contains("0x1189 (LEDVANCE)"), "{text}");
    assert!(text.contains("0x0000 (UPGRADE_IMAGE)"), "{text}");
    assert!(
        text.contains("hardware_versions   0x0100..=0x05FF"),
        "{text}"
    );
}

#[test]
fn inspect_json_has_every_architecture_field() {
    let file = OtaFile::parse(
        OtaFileBuilder::new(header())
            .sub_element(TagId::UPGRADE_IMAGE, ebl())
            .build(),
    )
    .unwrap();
    let json = serde_json::to_value(InspectReport::from(&file)).unwrap();
    for field in [
        "manufacturer_code",
        "image_type",
        "file_version",
        "header_version",
        "header_length",
        "field_control",
        "stack_version",
        "header_string",
        "image_size",
        "security_credential_version",
        "upgrade_file_destination",
        "minimum_hardware_version",
        "maximum_hardware_version",
        "sub_elements",
        "magic_offset",
        "trailing_bytes",
        "payload",
        "payload_check",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert!(json["security_credential_version"].is_null());
    assert_eq!(json["payload"], "ebl");
    assert_eq!(json["file_version"], 0x0348_3712);
}

#[test]
fn binary_header_string_is_reported_as_hex() {
    let mut h = header();
    h.header_string = [0xFF; 32];
    h.header_string[..4].copy_from_slice(&[0x53, 0x77, 0x7D, 0x36]);
    let file = OtaFile::parse(
        OtaFileBuilder::new(h)
            .sub_element(TagId(0), vec![1])
            .build(),
    )
    .unwrap();
    let report = InspectReport::from(&file);
    assert_eq!(report.header_string_encoding, "hex");
    assert_eq!(report.header_string, format!("53777d36{}", "ff".repeat(28)));
}

#[test]
fn vendor_tags_anywhere_no_upgrade_image_or_two() {
    let bytes = OtaFileBuilder::new(header())
        .sub_element(TagId(0xF7BD), vec![0; 160])
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .sub_element(TagId::IMAGE_INTEGRITY_CODE, vec![0x41; 16])
        .build();
    let file = OtaFile::parse(bytes).unwrap();
    let tags: Vec<u16> = file.sub_elements().iter().map(|e| e.tag.0).collect();
    assert_eq!(tags, [0xF7BD, 0x0000, 0x0003]);
    assert_eq!(file.payload().check, PayloadCheck::Valid);

    let none = OtaFileBuilder::new(header())
        .sub_element(TagId(0xF001), gbl())
        .build();
    let file = OtaFile::parse(none).unwrap();
    assert_eq!(*file.framing(), Framing::Complete);
    assert_eq!(file.payload().kind, PayloadKind::Unknown);
    assert_eq!(
        file.payload().check,
        PayloadCheck::Unknown,
        "no tag 0: zigpy says UNKNOWN"
    );

    let two = OtaFileBuilder::new(header())
        .sub_element(TagId(0xCDEF), vec![0x10; 17])
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .sub_element(TagId::UPGRADE_IMAGE, ebl())
        .build();
    let file = OtaFile::parse(two).unwrap();
    assert_eq!(file.sub_elements().len(), 3);
    assert_eq!(
        file.payload().kind,
        PayloadKind::Gbl,
        "kind of the first image"
    );
    assert_eq!(
        file.payload().check,
        PayloadCheck::Valid,
        "both images valid"
    );

    let mixed = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, vec![0x12, 0x34, 0x56, 0x78])
        .sub_element(
            TagId::UPGRADE_IMAGE,
            EblBuilder::new().corrupt_crc().build(),
        )
        .build();
    let file = OtaFile::parse(mixed).unwrap();
    assert!(
        matches!(
            file.payload().check,
            PayloadCheck::Invalid(PayloadDefect::CrcMismatch { format: "EBL", .. })
        ),
        "any invalid image makes the file invalid, as in zigpy"
    );
}

#[test]
fn prefix_before_magic_is_served_from_the_magic() {
    let builder = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .prefix(vec![0x03; 100]);
    let bytes = builder.build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    assert_eq!(file.magic_offset(), 100);
    assert_eq!(*file.container(), Container::UnknownPrefix { length: 100 });
    assert_eq!(file.image_bytes(), &bytes[100..]);
    assert_eq!(file.sub_elements()[0].offset, 156);

    let strict = ParseLimits {
        max_prefix_length: 64,
        ..ParseLimits::default()
    };
    assert_eq!(
        OtaFile::parse_with(bytes, &strict).unwrap_err(),
        OtaError::NoMagic {
            searched: 68,
            file_size: 100 + builder.final_header().image_size as usize
        }
    );
}

#[test]
fn legrand_wrapper() {
    let builder = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, vec![0x00, 0x10, 0, 0])
        .legrand_wrapper();
    let bytes = builder.build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    let size = builder.final_header().image_size;
    assert_eq!(bytes.len(), size as usize + 21);
    assert_eq!(
        *file.container(),
        Container::LegrandPrefix {
            declared_size: size
        }
    );
    assert_eq!(file.magic_offset(), 4);
    assert_eq!(file.trailing_bytes(), 17);
    assert_eq!(file.unexplained_trailing_bytes(), 0);
    assert_eq!(file.image_bytes(), &bytes[4..4 + size as usize]);
}

#[test]
fn ikea_ngis_container() {
    let builder = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, ebl())
        .sub_element(TagId(0xFFBF), vec![0x34; 64])
        .ikea_ngis_wrapper(vec![0x5A; 512]);
    let bytes = builder.build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    let Container::IkeaNgis {
        image_offset,
        image_size,
        suffix_length,
        ..
    } = *file.container()
    else {
        panic!("expected NGIS, got {:?}", file.container());
    };
    assert_eq!(file.magic_offset(), image_offset as usize);
    assert_eq!(image_size, builder.final_header().image_size);
    assert_eq!(suffix_length, 512);
    assert_eq!(file.trailing_bytes(), 512);
    assert_eq!(file.unexplained_trailing_bytes(), 0);
    assert_eq!(file.payload().check, PayloadCheck::Valid);
    assert_eq!(&file.image_bytes()[..4], &[0x1E, 0xF1, 0xEE, 0x0B]);
}

#[test]
fn ngis_block_hashes_are_verified_before_serving() {
    // Over 16 KiB, so the container holds two block hashes.
    let big_ebl = EblBuilder::new()
        .tag(
            [0xFE, 0x01],
            (0..20_000u32).map(|i| (i * 7) as u8).collect(),
        )
        .build();
    let bytes = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, big_ebl)
        .ikea_ngis_wrapper(vec![0x5A; 512])
        .build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    assert_eq!(
        file.verify_integrity(),
        Ok(ContainerCheck::BlockHashesMatch { blocks: 2 })
    );
    assert!(InspectReport::from(&file).offered);

    // One bit of the second block's hash: the file still parses, but is not offered.
    let mut tampered = bytes.clone();
    tampered[40 + 32 + 5] ^= 0x01;
    let file = OtaFile::parse(tampered).unwrap();
    let refusal = file.verify_integrity().unwrap_err();
    assert_eq!(
        refusal.to_string(),
        format!(
            "IKEA NGIS container: block hash at offset 72: block 1 (image bytes 16384..{}) does not match its SHA-256",
            file.header().image_size
        )
    );
    let report = InspectReport::from(&file);
    assert_eq!(report.container_check, "invalid");
    assert!(!report.offered);

    // A hash table laid out unlike the known IKEA files cannot be checked: offered (as zigpy
    // offers every NGIS file), reported as unverifiable with the field named.
    let mut short_table = bytes;
    short_table[36] = 1;
    let file = OtaFile::parse(short_table).unwrap();
    let Ok(ContainerCheck::Unverifiable { reason }) = file.verify_integrity() else {
        panic!("expected unverifiable, got {:?}", file.verify_integrity());
    };
    assert!(
        reason.starts_with("hash_count (offset 36) is 1"),
        "{reason}"
    );
    let report = InspectReport::from(&file);
    assert_eq!(report.container_check, "unverifiable");
    assert!(report.offered);
}

#[test]
fn a_broken_gbl_is_parsed_and_reported_but_never_offered() {
    let bytes = OtaFileBuilder::new(header())
        .sub_element(
            TagId::UPGRADE_IMAGE,
            GblBuilder::new().corrupt_crc().build(),
        )
        .build();
    let file = OtaFile::parse(bytes).unwrap();
    assert!(matches!(file.payload().check, PayloadCheck::Invalid(_)));
    assert!(matches!(
        file.verify_integrity(),
        Err(OtaError::InvalidPayload(PayloadDefect::CrcMismatch {
            format: "GBL",
            ..
        }))
    ));
    // Unknown payloads (vendor formats) pass, as in zigpy.
    let raw = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, vec![0x2A; 300])
        .build();
    assert_eq!(
        OtaFile::parse(raw).unwrap().verify_integrity(),
        Ok(ContainerCheck::NoIntegrityData)
    );
}

#[test]
fn trailing_bytes_after_image_size() {
    let bytes = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, ebl())
        .trailing(vec![0x6A, 0xFC, 0xB4, 0xE9])
        .build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    assert_eq!(file.trailing_bytes(), 4);
    assert_eq!(file.image_bytes(), &bytes[..bytes.len() - 4]);
    assert_eq!(*file.framing(), Framing::Complete);
}

#[test]
fn telink_tag_info() {
    let data = vec![0x74; 300];
    let bytes = OtaFileBuilder::new(header())
        .telink_sub_element(3073, data.clone())
        .build();
    let file = OtaFile::parse(bytes.clone()).unwrap();
    assert_eq!(*file.framing(), Framing::Complete);
    let element = file.sub_elements()[0];
    assert_eq!(element.tag, TagId::TELINK_ENCRYPTED);
    assert_eq!(element.length, 300);
    assert_eq!(element.quirk, Some(SubElementQuirk::TelinkTagInfo(3073)));
    assert_eq!(element.data_offset, 56 + 8);
    assert_eq!(file.sub_element_data(&element), &data[..]);
    assert_eq!(file.payload().note, Some(PayloadNote::TelinkEncrypted));
    assert_eq!(file.payload().check, PayloadCheck::Unknown);
    // A standard 0xF000 element (Develco, Sonoff) is not read with tag info.
    let plain = OtaFileBuilder::new(header())
        .sub_element(TagId(0xF000), vec![0; 18])
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .build();
    let file = OtaFile::parse(plain).unwrap();
    assert_eq!(file.sub_elements()[0].quirk, None);
    assert_eq!(file.sub_elements()[1].length as usize, gbl().len());
}

#[test]
fn hue_sbl_raw_payload() {
    let mut h = header();
    h.manufacturer_code = ManufacturerCode::PHILIPS;
    let bytes = OtaFileBuilder::new(h.clone())
        .raw(vec![0x2A, 0x00, 0x01, 0x04, 0x00, 0x66])
        .build();
    let file = OtaFile::parse(bytes).unwrap();
    assert_eq!(*file.framing(), Framing::HueSbl);
    assert!(file.sub_elements().is_empty());
    assert_eq!(file.payload().note, Some(PayloadNote::HueSbl));
    assert_eq!(file.payload().check, PayloadCheck::Unknown);
    // Same bytes from another manufacturer: not Hue, so reported as unframed.
    h.manufacturer_code = ManufacturerCode::IKEA;
    let other = OtaFileBuilder::new(h)
        .raw(vec![0x2A, 0x00, 0x01, 0x04, 0x00, 0x66, 0, 0])
        .build();
    let file = OtaFile::parse(other).unwrap();
    assert_eq!(file.framing().name(), "unframed");
}

#[test]
fn unframed_and_broken_framing_are_served_and_reported() {
    // Raw firmware after the header (UltronSMART): the first "length" runs far past the end.
    let raw = OtaFileBuilder::new(header())
        .raw(vec![0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4])
        .build();
    let file = OtaFile::parse(raw.clone()).unwrap();
    assert_eq!(
        *file.framing(),
        Framing::Unframed(FramingBreak {
            offset: 56,
            tag: Some(TagId(0)),
            length: Some(0x7FFF_FFFF),
            available: 10
        })
    );
    assert_eq!(file.payload().note, Some(PayloadNote::Raw));
    assert_eq!(file.image_bytes(), &raw[..]);
    let report = InspectReport::from(&file);
    assert_eq!(
        report.framing_detail.as_deref(),
        Some(
            "sub-element at offset 56 (tag 0x0000 (UPGRADE_IMAGE), length 2147483647) runs past the end of the image: 10 bytes left"
        )
    );

    // Datek "combined": a framed GBL, then a second firmware without framing.
    let combined = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .raw(vec![0x0C, 0x94, 0x5C, 0x00, 0x0C, 0x94, 0x79, 0x00, 0x0C])
        .build();
    let file = OtaFile::parse(combined.clone()).unwrap();
    let offset = 56 + 6 + gbl().len();
    assert_eq!(
        *file.framing(),
        Framing::Broken(FramingBreak {
            offset,
            tag: Some(TagId(0x940C)),
            length: Some(0x940C_005C),
            available: 9
        })
    );
    assert_eq!(file.sub_elements().len(), 1);
    assert_eq!(
        file.payload().check,
        PayloadCheck::Valid,
        "the GBL itself is intact"
    );
    assert_eq!(file.image_bytes(), &combined[..]);

    // Stray bytes too short for a sub-element header.
    let stray = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .raw(vec![1, 2, 3])
        .build();
    let file = OtaFile::parse(stray.clone()).unwrap();
    assert_eq!(
        file.framing().break_point().unwrap().to_string(),
        format!(
            "3 stray bytes at offset {}: too short for a 6-byte sub-element header",
            stray.len() - 3
        )
    );

    // Callers that want the strict reading get a refusal naming the same place.
    let strict = ParseLimits {
        require_framing: true,
        ..ParseLimits::default()
    };
    assert_eq!(
        OtaFile::parse_with(combined, &strict).unwrap_err(),
        OtaError::Framing(FramingBreak {
            offset,
            tag: Some(TagId(0x940C)),
            length: Some(0x940C_005C),
            available: 9
        })
    );
}

#[test]
fn invalid_payloads_say_why() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            GblBuilder::new().corrupt_crc().build(),
            "GBL CRC-32 over bytes 0..28 is wrong",
        ),
        (
            EblBuilder::new().unaligned().build(),
            "EBL size 152 is not a multiple of 64 bytes",
        ),
        (
            EblBuilder::new().padding_byte(0).build(),
            "EBL padding at offset 152 holds 0x00, only 0xFF is allowed",
        ),
    ];
    for (payload, expected) in cases {
        let file = OtaFile::parse(
            OtaFileBuilder::new(header())
                .sub_element(TagId::UPGRADE_IMAGE, payload)
                .build(),
        )
        .unwrap();
        let report = InspectReport::from(&file);
        assert_eq!(report.payload_check, "invalid");
        let detail = report.payload_check_detail.unwrap();
        assert!(detail.starts_with(expected), "{detail}");
    }
}

#[test]
fn refusals_name_what_and_where() {
    let good = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .build();

    let html = b"\n\n\n<!DOCTYPE html><html>not an OTA file</html>".to_vec();
    assert_eq!(
        OtaFile::parse(html.clone()).unwrap_err().to_string(),
        format!(
            "no OTA magic 1E F1 EE 0B in the first {0} bytes (file is {0} bytes)",
            html.len()
        )
    );

    let truncated = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, vec![0; 92_222 - 62])
        .image_size(278_830)
        .build();
    assert_eq!(truncated.len(), 92_222);
    assert_eq!(
        OtaFile::parse(truncated).unwrap_err().to_string(),
        "file truncated: header at offset 0 says image_size 278830, but only 92222 bytes follow the magic (file is 92222 bytes)"
    );

    let absurd = OtaFileBuilder::new(header())
        .image_size(0xFFFF_FFF0)
        .build();
    assert_eq!(
        OtaFile::parse(absurd).unwrap_err(),
        OtaError::ImageSizeTooLarge {
            offset: 52,
            image_size: 0xFFFF_FFF0,
            max: 16 * 1024 * 1024
        }
    );

    let too_small = OtaFileBuilder::new(header()).image_size(40).build();
    assert_eq!(
        OtaFile::parse(too_small).unwrap_err().to_string(),
        "image_size at offset 52 is 40, smaller than header_length 56"
    );

    let mut long_header = good.clone();
    long_header[6..8].copy_from_slice(&1000u16.to_le_bytes());
    assert_eq!(
        OtaFile::parse(long_header).unwrap_err(),
        OtaError::HeaderLengthTooLarge {
            offset: 6,
            header_length: 1000,
            max: 256
        }
    );

    let mut short_header = good.clone();
    short_header[8] = 0x02; // destination present, but header_length stays 56
    assert_eq!(
        OtaFile::parse(short_header).unwrap_err().to_string(),
        "header_length at offset 6 is 56, but field_control 0x0002 needs 64 bytes of header fields"
    );

    let mut prefixed = vec![0u8; 10];
    prefixed.extend_from_slice(&good[..40]);
    assert_eq!(
        OtaFile::parse(prefixed).unwrap_err(),
        OtaError::HeaderTruncated {
            field: "header_string",
            offset: 30,
            needed: 32,
            available: 20
        }
    );
}

#[test]
fn image_is_a_slice_of_the_original_buffer() {
    let bytes = bytes::Bytes::from(
        OtaFileBuilder::new(header())
            .sub_element(TagId::UPGRADE_IMAGE, gbl())
            .prefix(vec![7; 9])
            .trailing(vec![1; 5])
            .build(),
    );
    let file = OtaFile::parse(bytes.clone()).unwrap();
    let image = file.image();
    assert_eq!(image.as_ptr(), bytes[9..].as_ptr(), "no copy");
    assert_eq!(image.len(), bytes.len() - 14);
}

// ---------------------------------------------------------------------------------------------
// 2. zigpy's reading of synthetic files (tests/vectors/ota/zigpy_vectors.json).

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

// ---------------------------------------------------------------------------------------------
// 3. The real corpus.

/// Compares our parse with what zigpy reported (`expected.json` entry or vector).
fn compare_with_zigpy(name: &str, file: &OtaFile, zigpy: &Value) {
    let h = file.header();
    let expected = &zigpy["header"];
    let num = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("{name}: {v}"));
    let opt = |v: &Value| v.as_u64();
    assert_eq!(
        u64::from(h.header_version.0),
        num(&expected["header_version"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.header_length),
        num(&expected["header_length"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.field_control),
        num(&expected["field_control"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.manufacturer_code.0),
        num(&expected["manufacturer_id"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.image_type.0),
        num(&expected["image_type"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.file_version.0),
        num(&expected["file_version"]),
        "{name}"
    );
    assert_eq!(
        u64::from(h.stack_version.0),
        num(&expected["stack_version"]),
        "{name}"
    );
    assert_eq!(
        zigbee_otad::wire::parse_hex(expected["header_string_hex"].as_str().unwrap()).unwrap(),
        h.header_string,
        "{name}"
    );
    assert_eq!(
        u64::from(h.image_size),
        num(&expected["image_size"]),
        "{name}"
    );
    assert_eq!(
        h.security_credential_version.map(|v| u64::from(v.0)),
        opt(&expected["security_credential_version"]),
        "{name}"
    );
    assert_eq!(
        h.upgrade_file_destination.map(|v| v.to_string()),
        expected["upgrade_file_destination"]
            .as_str()
            .map(str::to_owned),
        "{name}"
    );
    assert_eq!(
        h.hardware_versions.map(|v| u64::from(v.minimum.0)),
        opt(&expected["minimum_hardware_version"]),
        "{name}"
    );
    assert_eq!(
        h.hardware_versions.map(|v| u64::from(v.maximum.0)),
        opt(&expected["maximum_hardware_version"]),
        "{name}"
    );

    match zigpy["subelements"].as_array() {
        Some(elements) => {
            let ours: Vec<(u64, u64, Option<u64>)> = file
                .sub_elements()
                .iter()
                .map(|e| {
                    (
                        u64::from(e.tag.0),
                        u64::from(e.length),
                        e.telink_tag_info().map(u64::from),
                    )
                })
                .collect();
            let theirs: Vec<(u64, u64, Option<u64>)> = elements
                .iter()
                .map(|e| {
                    (
                        num(&e["tag_id"]),
                        num(&e["length"]),
                        e["telink_tag_info"].as_u64(),
                    )
                })
                .collect();
            assert_eq!(ours, theirs, "{name}: sub-elements");
            assert_eq!(*file.framing(), Framing::Complete, "{name}");
        }
        None => {
            // zigpy's HueSBLOTAImage: no sub-elements, raw Hue data after the header.
            assert_eq!(zigpy["zigpy_class"], "HueSBLOTAImage", "{name}");
            assert_eq!(*file.framing(), Framing::HueSbl, "{name}");
            assert!(file.sub_elements().is_empty(), "{name}");
        }
    }
    assert_eq!(
        file.unexplained_trailing_bytes() as u64,
        num(&zigpy["trailing_bytes_after_image"]),
        "{name}: trailing bytes"
    );
    let validation = zigpy["validation"].as_str().unwrap();
    assert_eq!(
        file.payload().check.as_str(),
        validation.to_ascii_lowercase(),
        "{name}: payload check ({:?})",
        file.payload().check
    );
    if let PayloadCheck::Invalid(defect) = &file.payload().check {
        let reason = zigpy["validation_error"].as_str().unwrap();
        // Same fault as zigpy, in our words.
        match defect {
            PayloadDefect::EblSizeNotAligned { size } => {
                assert!(reason.contains(&format!("({size}) must be a multiple of 64")))
            }
            PayloadDefect::CrcMismatch { .. } => assert!(reason.contains("CRC-32")),
            PayloadDefect::EblPaddingNotFf { .. } => assert!(reason.contains("padding")),
            other => assert!(reason.contains("truncated"), "{name}: {other} vs {reason}"),
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// 4. Properties.

fn arb_file() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)),
            0..4,
        ),
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(elements, prefix, trailing, hardware)| {
            let mut h = header();
            if hardware {
                h.hardware_versions = Some(HardwareVersions {
                    minimum: HardwareVersion(1),
                    maximum: HardwareVersion(2),
                });
            }
            let mut builder = OtaFileBuilder::new(h).trailing(trailing);
            if !prefix.is_empty() {
                builder = builder.prefix(prefix);
            }
            for (tag, data) in elements {
                builder = builder.sub_element(TagId(tag), data);
            }
            builder.build()
        })
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = OtaFile::parse(bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_files(
        file in arb_file(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut bytes = file;
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(file) = OtaFile::parse(bytes.clone()) {
            prop_assert_eq!(file.image_bytes().len(), file.header().image_size as usize);
            let _ = InspectReport::from(&file).to_string();
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = OtaFile::parse(bytes[..cut].to_vec());
    }

    #[test]
    fn built_files_parse_back(file in arb_file()) {
        let parsed = OtaFile::parse(file.clone()).unwrap();
        prop_assert_eq!(*parsed.framing(), Framing::Complete);
        let end = parsed.magic_offset() + parsed.header().image_size as usize;
        prop_assert_eq!(parsed.image_bytes(), &file[parsed.magic_offset()..end]);
    }
}

#[test]
fn the_daemon_library_never_offers_a_file_that_fails_verification() {
    use zigbee_otad::config::Config;
    use zigbee_otad::daemon::images;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    let good = OtaFileBuilder::new(header())
        .sub_element(TagId::UPGRADE_IMAGE, gbl())
        .build();
    let mut other = header();
    other.image_type = ImageType(0x00CE);
    let broken = OtaFileBuilder::new(other)
        .sub_element(
            TagId::UPGRADE_IMAGE,
            GblBuilder::new().corrupt_crc().build(),
        )
        .build();
    std::fs::write(folder.join("good.ota"), &good).unwrap();
    std::fs::write(folder.join("broken.ota"), &broken).unwrap();
    let path = crate::common::offline_config(
        dir.path(),
        dir.path(),
        &format!(
            "[[catalog.source]]\nkind = \"directory\"\npath = \"{}\"\n",
            folder.display()
        ),
    );
    let library = images::load(&Config::load(&path).unwrap());
    assert_eq!(library.images.len(), 1, "{:?}", library.skipped);
    assert_eq!(
        library.images[0].read_all().unwrap().as_ref(),
        good.as_slice()
    );
    assert_eq!(library.skipped.len(), 1);
    assert!(
        library.skipped[0].contains("broken.ota: not offered: upgrade image payload is invalid"),
        "the reason names the file and the defect: {}",
        library.skipped[0]
    );
    // The status socket shows it under its source.
    assert_eq!(library.sources[0].skipped_count, 1);
    assert_eq!(library.sources[0].skipped, library.skipped);
}
