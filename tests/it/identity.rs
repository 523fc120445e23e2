//! Device identity end to end: `zigbee-otad run` against `zigbee-otad simulate` devices that carry
//! Tuya-style identities, with a local zigbee-OTA index whose entry is restricted by
//! `manufacturerName` and `modelId` and whose image is served by a loopback HTTP server. The
//! daemon reads each device's Basic cluster, downloads the image only for the device it is
//! meant for, serves it byte-exact, gives the other device (same code and type, another
//! manufacturer name) nothing, and `catalog match` says why.
#![allow(clippy::disallowed_methods)]

use std::process::Command;
use std::time::{Duration, Instant};

use crate::daemon::{
    log_text, notify_listener, start_daemon, start_simulator, status_json, synthetic_ota,
    wait_line, wait_notify,
};

const BIN: &str = env!("CARGO_BIN_EXE_zigbee-otad");
const TUYA: u16 = 0x1141;
const TYPE: u16 = 0xD3A3;
const MATCHING: &str = "00:12:4b:00:00:00:00:01";
const OTHER: &str = "00:12:4b:00:00:00:00:02";

#[test]
fn restricted_index_entry_reaches_only_the_device_it_names() {
    use axum::Router;
    use axum::routing::get;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let image = synthetic_ota(TUYA, TYPE, 2, 8_000);
    std::fs::write(root.join("expected.ota"), &image).unwrap();
    let sha512 = zigbee_otad::catalog::model::ImageHash::compute(
        zigbee_otad::catalog::model::HashAlgorithm::Sha512,
        &image,
    )
    .to_hex();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let downloads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = downloads.clone();
    let served = image.clone();
    let app = Router::new().route(
        "/tuya.ota",
        get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = served.clone();
            async move { body }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let index = root.join("index.json");
    std::fs::write(
        &index,
        format!(
            r#"[{{"fileName":"tuya.ota","fileVersion":2,"fileSize":{size},"url":"{base}/tuya.ota",
                "imageType":{TYPE},"manufacturerCode":{TUYA},"sha512":"{sha512}",
                "modelId":"TS0505B","manufacturerName":["_TZ3210_match","_TZ3210_also"],
                "releaseNotes":"a fix for the matching bulb only"}}]"#,
            size = image.len(),
        ),
    )
    .unwrap();

    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1141:0xD3A3:1,model=TS0505B,manufacturer_name=_TZ3210_match,power=mains",
            "--device",
            "0x1141:0xD3A3:1,model=TS0505B,manufacturer_name=_TZ3210_other,power=battery",
            "--image",
            root.join("expected.ota").to_str().unwrap(),
            "--radio-delay-ms",
            "2",
            "--query-interval",
            "2",
        ],
        &root.join("sim.log"),
    );
    let socket = root.join("status.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nport = \"{pty}\"\nflow_control = \"none\"\n\
             [catalog]\ncache_dir = \"{root}/cache\"\n\
             [[catalog.source]]\nkind = \"zigbee-ota-index\"\nname = \"tuya-index\"\npath = \"{index}\"\n\
             [status]\nsocket = \"{socket}\"\n",
            root = root.display(),
            index = index.display(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));

    // The matching device upgrades; the simulator checks the received file byte for byte
    // against expected.ota ("verified").
    let line = wait_line(&lines, MATCHING, Duration::from_secs(90));
    assert!(
        line.contains("0x00000001 -> 0x00000002") && line.contains("Upgraded, verified"),
        "{line}\n{}",
        log_text(root)
    );

    // Both identities were read and are shown; the other device is offered nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = status_json(&socket).unwrap_or_default();
        let devices = status["devices"].as_array().cloned().unwrap_or_default();
        let named = devices
            .iter()
            .filter(|d| d["manufacturer_name"].is_string())
            .count();
        if named == 2 {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "identities not shown: {status}\n{}",
            log_text(root)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let device = |ieee: &str| {
        status["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ieee"] == ieee)
            .cloned()
            .unwrap_or_else(|| panic!("{ieee} not in {status}"))
    };
    let other = device(OTHER);
    assert_eq!(other["manufacturer_name"], "_TZ3210_other", "{status}");
    assert_eq!(other["model_id"], "TS0505B", "{status}");
    assert_eq!(other["power_source"], "battery", "{status}");
    assert!(other["available_version"].is_null(), "{status}");
    assert_eq!(device(MATCHING)["power_source"], "mains (single phase)");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lines.try_iter().all(|l| !l.contains(OTHER)),
        "the other device was offered the restricted image"
    );
    assert_eq!(
        downloads.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the image is downloaded once, for the device it is meant for"
    );
    // The identities are kept in the state directory.
    let stored = std::fs::read_to_string(root.join("state/identities.json")).unwrap();
    assert!(stored.contains("_TZ3210_other") && stored.contains("_TZ3210_match"));

    // `catalog match` says why the other device gets nothing, and what the matching one gets.
    let ask = |name: &str| {
        let out = Command::new(BIN)
            .args([
                "catalog",
                "match",
                "--config",
                config.to_str().unwrap(),
                "--manufacturer-code",
                "0x1141",
                "--image-type",
                "0xD3A3",
                "--file-version",
                "1",
                "--model-id",
                "TS0505B",
                "--manufacturer-name",
                name,
                "--json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let refused = ask("_TZ3210_other");
    assert!(refused["offer"].is_null(), "{refused}");
    let reason = refused["reasons"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("wrong manufacturer name"), "{refused}");
    let offered = ask("_TZ3210_also");
    assert_eq!(offered["offer"]["file_version"], 2, "{offered}");
    assert_eq!(offered["offer"]["sha512"], sha512.as_str(), "{offered}");
    assert_eq!(offered["offer"]["url"], format!("{base}/tuya.ota"));
    assert_eq!(offered["offer"]["file_name"], "tuya.ota");
    assert_eq!(offered["offer"]["source"], "tuya-index");
    assert_eq!(
        offered["offer"]["release_notes"],
        "a fix for the matching bulb only"
    );
}

/// `catalog match` refuses bad arguments and a bad config with a non-zero exit.
#[test]
fn catalog_match_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::offline_config(dir.path(), dir.path(), "");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["catalog", "match", "--config"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "--manufacturer-code",
        "0x1141",
        "--image-type",
        "1",
        "--file-version",
        "1",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("offer: nothing"));
    let out = run(&[
        "--manufacturer-code",
        "0x10000",
        "--image-type",
        "1",
        "--file-version",
        "1",
    ]);
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args([
            "catalog",
            "match",
            "--config",
            "/nonexistent/zigbee-otad.toml",
            "--manufacturer-code",
            "1",
            "--image-type",
            "1",
            "--file-version",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
