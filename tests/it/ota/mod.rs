//! Integration tests for the `ota` module: synthetic files built with the writer (always run),
//! zigpy's reading of synthetic files (committed vectors), and the real corpus in
//! `../shared/testdata/ota-corpus` (skipped with a note when absent).

mod corpus;
mod properties;
mod synthetic;
mod zigpy;

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
