//! Synthetic fixtures: every optional field, every quirk, every refusal.

use super::*;

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
