//! The vendor feeds end to end (issue 13, item 4): real HTTP on 127.0.0.1 serving a Sonoff
//! `upgrade.json` (no digests: verified by the OTA header, then pinned) and an IKEA DIRIGERA
//! `version_info.json` (SHA3-256), the catalog service on a virtual clock, and the daemon's
//! image loader reading what was stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash};
use zigbee_otad::catalog::scheduler::ImageHolds;
use zigbee_otad::catalog::service::{
    CatalogOutcome, CatalogService, Clock, DownloadOutcome, KnownDevice, ServiceOptions,
    VirtualClock,
};
use zigbee_otad::config::Config;
use zigbee_otad::daemon::images;
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId, payload::GblBuilder,
};

const SONOFF: u16 = 4742;
const IKEA: u16 = 0x117C;

/// Files by path under the server's root.
type Files = Arc<HashMap<String, Vec<u8>>>;

async fn file(State(files): State<Files>, UrlPath(path): UrlPath<String>) -> Response {
    match files.get(&path) {
        Some(body) => body.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `files` on a listener already bound (so the feeds can name its address).
fn serve(listener: tokio::net::TcpListener, files: HashMap<String, Vec<u8>>) {
    let app = Router::new()
        .route("/{*path}", get(file))
        .with_state(Arc::new(files));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// A small valid OTA file (a GBL payload) with this header identity.
pub(crate) fn ota_image(manufacturer: u16, image_type: u16, version: u32) -> Vec<u8> {
    let header = OtaHeader::new(
        ManufacturerCode(manufacturer),
        ImageType(image_type),
        FileVersion(version),
    );
    let firmware: Vec<u8> = (0..3000)
        .map(|i| (i * 7) as u8 ^ image_type as u8)
        .collect();
    let gbl = GblBuilder::new()
        .tag([0xFE, 0x01, 0x01, 0xFE], firmware)
        .build();
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, gbl)
        .build()
}

fn device(manufacturer_code: u16, image_type: u16, model: &str) -> KnownDevice {
    KnownDevice {
        manufacturer_code,
        image_type,
        current_file_version: 1,
        model_id: Some(model.to_owned()),
        ..KnownDevice::default()
    }
}

fn config(dir: &Path, base: &str) -> Config {
    let text = format!(
        r#"state_dir = "{state}"
[coordinator]
port = "/dev/null"
[catalog]
cache_dir = "{cache}"
[[catalog.source]]
kind = "sonoff"
url = "{base}/releases/upgrade.json"
[[catalog.source]]
kind = "ikea"
url = "{base}/DIRIGERA/version_info.json"
"#,
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
    );
    Config::from_toml_str(&text, "test").unwrap()
}

fn served(config: &Config) -> Vec<(u16, u16, u32, Vec<String>)> {
    let library = images::load(config);
    let mut keys: Vec<_> = library
        .images
        .iter()
        .map(|image| {
            let key = image.key();
            (
                key.manufacturer_code,
                key.image_type,
                key.file_version,
                image.restrictions().models.clone(),
            )
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn sonoff_images_are_pinned_after_their_header_checks_out_and_ikea_by_sha3() {
    let good = ota_image(SONOFF, 1, 4353);
    // The feed says 4354 for this one, but the file's header says 4000: never stored.
    let lying = ota_image(SONOFF, 4, 4000);
    let bulb = ota_image(IKEA, 0x2801, 268_572_245);
    let mut files = HashMap::from([
        ("releases/zbmini-l.ota".to_owned(), good.clone()),
        ("releases/zbminil2.ota".to_owned(), lying.clone()),
        (
            "files/bulb_release_prod_v268572245_abc.ota".to_owned(),
            bulb.clone(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sonoff_feed = format!(
        r#"[{{"fw_binary_url":"{base}/releases/zbmini-l.ota","fw_file_version":4353,
            "fw_filesize":{},"fw_image_type":1,"fw_manufacturer_id":{SONOFF},"model_id":"ZBMINI-L"}},
           {{"fw_binary_url":"{base}/releases/zbminil2.ota","fw_file_version":4354,
            "fw_filesize":{},"fw_image_type":4,"fw_manufacturer_id":{SONOFF},"model_id":"ZBMINIL2"}}]"#,
        good.len(),
        lying.len()
    );
    let ikea_feed = format!(
        r#"[{{"fw_image_type":10241,"fw_type":2,"fw_sha3_256":"{}",
             "fw_binary_url":"{base}/files/bulb_release_prod_v268572245_abc.ota"}},
           {{"fw_update_prio":5,"fw_filesize":1,"fw_type":3,"fw_hotfix_version":2,
             "fw_major_version":2,"fw_binary_checksum":"00","fw_minor_version":505,
             "fw_sha3_256":"{}","fw_binary_url":"{base}/files/DIRIGERA.raucb"}}]"#,
        ImageHash::compute(HashAlgorithm::Sha3_256, &bulb).to_hex(),
        "0".repeat(64)
    );
    files.insert("releases/upgrade.json".into(), sonoff_feed.into_bytes());
    files.insert("DIRIGERA/version_info.json".into(), ikea_feed.into_bytes());
    serve(listener, files);
    let config = config(dir.path(), &base);
    let clock = VirtualClock::new(UNIX_EPOCH + Duration::from_secs(1_795_651_200));
    let open = |config: &Config| {
        CatalogService::open_with(
            config,
            ServiceOptions {
                clock: Clock::Virtual(clock.clone()),
                ..ServiceOptions::default()
            },
        )
        .unwrap()
    };
    let devices = vec![
        device(SONOFF, 1, "ZBMINI-L"),
        device(SONOFF, 4, "ZBMINIL2"),
        device(IKEA, 10241, "TRADFRI bulb"),
    ];
    let mut service = open(&config);
    let report = service.refresh(&devices, &ImageHolds::default()).await;
    let [sonoff, ikea] = &report.sources[..] else {
        panic!("{report}")
    };
    assert_eq!(sonoff.kind, "sonoff");
    assert_eq!(sonoff.catalog, CatalogOutcome::Changed { rejected: 0 });
    assert_eq!(ikea.kind, "ikea");
    assert_eq!(ikea.catalog, CatalogOutcome::Changed { rejected: 0 });
    assert_eq!(ikea.entries, 1, "the hub's own image is not a device image");
    let outcome = |image_type: u16| {
        report
            .sources
            .iter()
            .flat_map(|s| &s.downloads)
            .find(|d| d.image_type == image_type)
            .map(|d| d.outcome.clone())
    };
    assert!(
        matches!(outcome(1), Some(DownloadOutcome::Stored { .. })),
        "{report}"
    );
    assert!(
        matches!(outcome(10241), Some(DownloadOutcome::Stored { .. })),
        "{report}"
    );
    let refused = format!("{:?}", outcome(4));
    assert!(
        refused.contains("the file's header 1286/0004/00000fa0"),
        "{refused}\n{report}"
    );

    // On disk: the accepted Sonoff file under its SHA-512, the IKEA one under its SHA3-256,
    // and the pin; nothing for the lying entry.
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("cache/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        ImageHash::compute(HashAlgorithm::Sha512, &good).cache_key(),
        ImageHash::compute(HashAlgorithm::Sha3_256, &bulb).cache_key(),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let pins = std::fs::read_to_string(dir.path().join("cache/pins.json")).unwrap();
    assert!(pins.contains(&ImageHash::compute(HashAlgorithm::Sha512, &good).to_hex()));

    // The daemon serves both, the Sonoff one restricted to its model, from disk alone.
    let expected_served = vec![
        (IKEA, 10241, 268_572_245, vec![]),
        (SONOFF, 1, 4353, vec!["ZBMINI-L".to_owned()]),
    ];
    assert_eq!(served(&config), expected_served);
    drop(service);
    // A restart (cache reopened, pins read back) still serves them.
    let _service = open(&config);
    assert_eq!(served(&config), expected_served);
}
