//! The built binary run as a user runs it: exit codes, stdout and stderr.

use std::process::{Command, Output};

pub(crate) fn zigbee_otad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zigbee-otad"))
        .args(args)
        .output()
        .expect("run zigbee-otad")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/zigbee-otad.toml");
    let out = zigbee_otad(&["check-config", "--config", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK"));
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("zigbee-otad-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[coordinator]\nport = \"/dev/x\"\n\n[server]\nmax_blok_size = 40\n",
    )
    .unwrap();
    let out = zigbee_otad(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("max_blok_size"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = zigbee_otad(&["check-config", "--config", "/nonexistent/zigbee-otad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/zigbee-otad.toml: cannot read"));
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zigbee-otad-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn inspect_json_reports_a_synthetic_file() {
    use zigbee_otad::ota::{
        FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId,
        payload::GblBuilder,
    };
    let header = OtaHeader::new(
        ManufacturerCode(0x1189),
        ImageType(0x00CD),
        FileVersion(0x0348_3712),
    );
    let gbl = GblBuilder::new()
        .tag([0xFE, 0x01, 0x01, 0xFE], vec![0x5A; 300])
        .build();
    let bytes = OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, gbl)
        .trailing(vec![0xFF; 3])
        .build();
    let dir = scratch_dir("inspect");
    let path = dir.join("synthetic.ota");
    std::fs::write(&path, &bytes).unwrap();

    let out = zigbee_otad(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["manufacturer_code"], 0x1189);
    assert_eq!(json["image_type"], 0x00CD);
    assert_eq!(json["file_version"], 0x0348_3712);
    assert_eq!(json["magic_offset"], 0);
    assert_eq!(json["trailing_bytes"], 3);
    assert_eq!(json["payload"], "gbl");
    assert_eq!(json["payload_check"], "valid");
    assert_eq!(json["sub_elements"][0]["tag"], 0);
    assert_eq!(json["image_size"], bytes.len() - 3);

    let human = zigbee_otad(&["inspect", path.to_str().unwrap()]);
    assert!(human.status.success());
    let human = text(&human.stdout);
    assert!(
        human.contains("0x1189") && human.contains("LEDVANCE"),
        "{human}"
    );

    // Not an OTA file: refused on stderr with exit 1, nothing on stdout.
    let html = dir.join("page.ota");
    std::fs::write(&html, b"<!DOCTYPE html><html><body>Not found</body></html>").unwrap();
    let out = zigbee_otad(&["inspect", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no OTA magic"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn decode_zcl_prints_every_field_and_maps_errors_to_a_status() {
    // A Legrand Query Next Image Request captured in a zigpy log.
    let out = zigbee_otad(&["decode", "zcl", "01 87 01 00 21 10 11 00 ff 43 53 00"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    for expected in ["tsn=135", "0x1021", "Legrand", "0x0011", "0x005343FF"] {
        assert!(line.contains(expected), "{expected} missing in {line}");
    }
    let out = zigbee_otad(&["decode", "zcl", "--json", "0187010021101100ff435300"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.to_string().contains("4129"), "{json}");

    let out = zigbee_otad(&["decode", "zcl", "01 06 03 00"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("MALFORMED_COMMAND"));

    let out = zigbee_otad(&["decode", "zcl", "zz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not hex"));
}

#[test]
fn decode_zcl_shows_out_of_range_values_as_violations() {
    // Upgrade End Request with status NO_IMAGE_AVAILABLE (0x98): not one of the four allowed.
    let out = zigbee_otad(&[
        "decode",
        "zcl",
        "--json",
        "01 10 06 98 89 11 01 00 02 00 00 00",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let end = &json["command"]["UpgradeEndRequest"];
    assert_eq!(end["status"]["value"], 0x98, "{json}");
    assert_eq!(end["status"]["name"], "NO_IMAGE_AVAILABLE", "{json}");
    let violation = &json["violations"][0];
    assert_eq!(violation["field"], "status", "{json}");
    assert_eq!(violation["offset"], 3, "{json}");
    assert_eq!(violation["refused"], true, "{json}");

    // A device-specific file request whose image type (0x0011) is outside 0xFFC0-0xFFFE.
    let out = zigbee_otad(&[
        "decode",
        "zcl",
        "--json",
        "01 11 08 77 66 55 44 33 22 11 00 89 11 11 00 00 00 00 01 02 00",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["violations"][0]["field"], "image_type", "{json}");
    assert_eq!(json["violations"][0]["offset"], 13, "{json}");
    assert_eq!(json["violations"][0]["value"], 0x11, "{json}");

    // Image Notify shows the payload type it carried; a block response shows its status.
    let out = zigbee_otad(&["decode", "zcl", "--json", "19 3b 00 00 64"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["command"]["ImageNotify"]["payload_type"], 0, "{json}");
    assert_eq!(json["violations"], serde_json::json!([]), "{json}");
    let out = zigbee_otad(&["decode", "zcl", "--json", "19 10 05 95"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["command"]["ImageBlockResponse"]["status"]["name"], "ABORT",
        "{json}"
    );

    // The text form names each violation too.
    let out = zigbee_otad(&["decode", "zcl", "01 10 06 98 89 11 01 00 02 00 00 00"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("violation: status 0x98 at offset 3"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn decode_ash_and_ezsp() {
    // UG101's example DATA frame carrying EZSP `version`.
    let out = zigbee_otad(&["decode", "ash", "25 42 21 A8 56 A6 09 7E"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("frm_num: 2"));
    let out = zigbee_otad(&["decode", "ash", "25 42 21 A8 56 A6 0A 7E"]);
    assert_eq!(out.status.code(), Some(1), "a bad CRC must fail");

    let out = zigbee_otad(&["decode", "ezsp", "--ezsp-version", "13", "02 00 01 18 00"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NetworkState"));
    let out = zigbee_otad(&["decode", "ezsp", "--ezsp-version", "8", "02 00 01 18 00"]);
    assert!(
        text(&out.stdout).contains("NetworkState"),
        "{}",
        text(&out.stderr)
    );
    let out = zigbee_otad(&["decode", "ezsp", "--ezsp-version", "7", "02 00 01 18 00"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn decode_znp_finds_frames_in_a_capture_and_reports_damage() {
    // Bootloader-skip bytes, AF.DataConfirm(MAC_NO_ACK), then SYS.Ping's answer.
    let out = zigbee_otad(&[
        "decode",
        "znp",
        "EF EF FE 03 44 80 E9 01 10 3F FE 02 61 01 59 06 3D",
    ]);
    assert_eq!(out.status.code(), Some(1), "the garbage must be reported");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("AF.0x80 AREQ") && stdout.contains("status: 233"),
        "{stdout}"
    );
    assert!(stdout.contains("capabilities: 1625"), "{stdout}");
    assert!(text(&out.stderr).contains("2 bytes of garbage"));

    let out = zigbee_otad(&["decode", "znp", "--json", "FE 00 21 01 20"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["subsystem"], "SYS");
    assert_eq!(json["message"], "SysPing");

    let out = zigbee_otad(&["decode", "znp", "FE 00 21 01 21"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not match"),
        "{}",
        text(&out.stderr)
    );
}

/// Every broken config in tests/vectors/config is refused, and the message (file, line, key,
/// what is allowed) matches the reviewed snapshot in errors.snapshot. Set UPDATE_SNAPSHOTS=1 to
/// rewrite the snapshot after a deliberate change, then review the diff.
#[test]
fn broken_configs_are_refused_with_the_snapshotted_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/config");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let mut rendered = String::new();
    for name in &names {
        // Run from the folder so the messages carry the bare file name, not this machine's path.
        let out = Command::new(env!("CARGO_BIN_EXE_zigbee-otad"))
            .args(["check-config", "--config", name])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} was accepted");
        assert!(out.stdout.is_empty());
        rendered.push_str(&format!("=== {name}\n{}\n", text(&out.stderr).trim_end()));
    }
    let snapshot = dir.join("errors.snapshot");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap();
    assert_eq!(rendered, expected, "config error messages changed");
}

#[test]
fn catalog_verify_rehashes_the_cache_and_removes_what_no_longer_matches() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("cache/images");
    std::fs::create_dir_all(&images).unwrap();
    let hex = |bytes: &[u8]| -> String {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let good = b"an image that still matches its digest".to_vec();
    let good_path = images.join(format!("sha256-{}", hex(&good)));
    std::fs::write(&good_path, &good).unwrap();
    // Same size as what was stored, one byte flipped on disk: trusted by a plain open, caught
    // only by re-hashing.
    let stored = b"an image whose bytes rotted on the card".to_vec();
    let bad_path = images.join(format!("sha256-{}", hex(&stored)));
    let mut rotted = stored.clone();
    rotted[3] ^= 0x01;
    std::fs::write(&bad_path, &rotted).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\n[coordinator]\nport = \"/dev/null\"\n[catalog]\ncache_dir = \"{cache}\"\n[status]\nsocket = \"{socket}\"\n",
            state = dir.path().join("state").display(),
            cache = dir.path().join("cache").display(),
            socket = dir.path().join("none.sock").display(),
        ),
    )
    .unwrap();
    let out = zigbee_otad(&[
        "catalog",
        "verify",
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 1, "{report}");
    assert_eq!(report["image_bytes"], good.len(), "{report}");
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["removed"][0]["reason"], "Corrupt", "{report}");
    assert!(good_path.exists());
    assert!(!bad_path.exists());
}
