//! The catalog service end to end: real HTTP on 127.0.0.1 against a server playing the LEDVANCE
//! API (catalog with ETag / 304, downloads by Company/Product/Version, injectable faults per
//! route), a virtual clock for the limiter, and the daemon's image loader reading the result.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use zigbee_otad::catalog::limiter::LimiterConfig;
use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash};
use zigbee_otad::catalog::report;
use zigbee_otad::catalog::scheduler::ImageHolds;
use zigbee_otad::catalog::service::{
    CatalogOutcome, CatalogService, Clock, DownloadOutcome, KnownDevice, RefreshReport,
    ServiceOptions, SourceRefresh, VirtualClock, load_known_devices,
};
use zigbee_otad::config::Config;
use zigbee_otad::daemon::images;
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId, payload::GblBuilder,
};

const LEDVANCE: u16 = 4489;
/// 0.16.36.40
const VERSION_A: u32 = 0x0010_2428;
/// 1.0.0.3
const VERSION_B: u32 = 0x0100_0003;

#[derive(Debug, Clone, Copy)]
enum Fault {
    TooManyRequests { retry_after_secs: u64 },
    ServerError,
    Truncated,
    WrongBytes,
}

#[derive(Clone, Default)]
struct Api {
    /// The catalog body; its ETag is derived from it.
    catalog: Arc<Mutex<Vec<u8>>>,
    /// "Company/Product/Version" → image bytes.
    images: Arc<HashMap<String, Vec<u8>>>,
    catalog_faults: Arc<Mutex<VecDeque<Fault>>>,
    image_faults: Arc<Mutex<VecDeque<Fault>>>,
    catalog_hits: Arc<AtomicUsize>,
    image_hits: Arc<AtomicUsize>,
}

impl Api {
    fn catalog(&self) -> Vec<u8> {
        self.catalog.lock().unwrap().clone()
    }
    fn set_catalog(&self, body: String) {
        *self.catalog.lock().unwrap() = body.into_bytes();
    }
    fn hits(&self) -> (usize, usize) {
        (
            self.catalog_hits.load(Ordering::SeqCst),
            self.image_hits.load(Ordering::SeqCst),
        )
    }
}

fn respond(fault: Option<Fault>, body: &[u8], etag: Option<&str>) -> Response {
    let builder = Response::builder();
    match fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => builder
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::RETRY_AFTER, retry_after_secs.to_string())
            .body(Body::from(
                "10 calls per 60 seconds or quota 100 MB per month",
            ))
            .unwrap(),
        Some(Fault::ServerError) => builder
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::empty())
            .unwrap(),
        Some(Fault::Truncated) => builder
            .header(header::CONTENT_LENGTH, body.len().to_string())
            .body(Body::from(body[..body.len() / 2].to_vec()))
            .unwrap(),
        Some(Fault::WrongBytes) => {
            let mut altered = body.to_vec();
            altered[body.len() / 2] ^= 0x01;
            builder.body(Body::from(altered)).unwrap()
        }
        None => {
            let mut builder = builder.status(StatusCode::OK);
            if let Some(etag) = etag {
                builder = builder.header(header::ETAG, etag);
            }
            builder.body(Body::from(body.to_vec())).unwrap()
        }
    }
}

async fn catalog_handler(State(api): State<Api>, headers: HeaderMap) -> Response {
    api.catalog_hits.fetch_add(1, Ordering::SeqCst);
    let fault = api.catalog_faults.lock().unwrap().pop_front();
    let catalog = api.catalog();
    let etag = format!(
        "\"{}\"",
        ImageHash::compute(HashAlgorithm::Sha256, &catalog).to_hex()
    );
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| *value == *etag);
    if unchanged && fault.is_none() {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap();
    }
    respond(fault, &catalog, Some(&etag))
}

async fn download_handler(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    api.image_hits.fetch_add(1, Ordering::SeqCst);
    let key = format!(
        "{}/{}/{}",
        query.get("Company").map_or("", String::as_str),
        query.get("Product").map_or("", String::as_str),
        query.get("Version").map_or("", String::as_str),
    );
    match api.images.get(&key) {
        Some(image) => {
            let fault = api.image_faults.lock().unwrap().pop_front();
            respond(fault, image, None)
        }
        None => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap(),
    }
}

/// Starts the fake API on 127.0.0.1 and returns its catalog URL.
async fn serve(api: Api) -> String {
    let app = Router::new()
        .route("/v1/zigbee/firmwares", get(catalog_handler))
        .route("/v1/zigbee/firmwares/download", get(download_handler))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1/zigbee/firmwares")
}

/// A valid OTA file (the daemon's loader parses what it serves).
fn ota_image(image_type: u16, version: u32, firmware_len: usize) -> Vec<u8> {
    let header = OtaHeader::new(
        ManufacturerCode(LEDVANCE),
        ImageType(image_type),
        FileVersion(version),
    );
    let firmware: Vec<u8> = (0..firmware_len)
        .map(|i| (i * 31) as u8 ^ image_type as u8)
        .collect();
    let gbl = GblBuilder::new()
        .tag([0xFE, 0x01, 0x01, 0xFE], firmware)
        .build();
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, gbl)
        .build()
}

fn ledvance_entry(product: u16, version: u32, image: &[u8]) -> String {
    let [major, minor, build, revision] = version.to_be_bytes();
    format!(
        r#"{{"blob":null,"identity":{{"company":{LEDVANCE},"product":{product},
        "version":{{"major":{major},"minor":{minor},"build":{build},"revision":{revision}}}}},
        "releaseNotes":"synthetic","shA256":"{}","name":"p{product}.ota",
        "productName":"P{product}","fullName":"P{product}/{version:08X}/p{product}.ota",
        "extension":".ota","released":"2026-01-01T00:00:00","salesRegion":"eu",
        "length":{}}}"#,
        ImageHash::compute(HashAlgorithm::Sha256, image).to_hex(),
        image.len()
    )
}

/// A catalog of two products; returns the API and both images.
fn synthetic_api() -> (Api, Vec<u8>, Vec<u8>) {
    let image_a = ota_image(25, VERSION_A, 40_000);
    let image_b = ota_image(26, VERSION_B, 4_000);
    let catalog = format!(
        r#"{{"firmwares":[{},{}]}}"#,
        ledvance_entry(25, VERSION_A, &image_a),
        ledvance_entry(26, VERSION_B, &image_b),
    );
    let images = HashMap::from([
        (format!("{LEDVANCE}/25/0.16.36.40"), image_a.clone()),
        (format!("{LEDVANCE}/26/1.0.0.3"), image_b.clone()),
    ]);
    let api = Api {
        catalog: Arc::new(Mutex::new(catalog.into_bytes())),
        images: Arc::new(images),
        ..Api::default()
    };
    (api, image_a, image_b)
}

fn config(dir: &Path, url: &str) -> Config {
    let text = format!(
        r#"state_dir = "{state}"
[coordinator]
port = "/dev/null"
[catalog]
cache_dir = "{cache}"
[[catalog.source]]
kind = "ledvance"
url = "{url}"
"#,
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
    );
    Config::from_toml_str(&text, "test").unwrap()
}

/// 2026-11-26T00:00:00Z.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_651_200)
}

fn device(product: u16) -> KnownDevice {
    KnownDevice {
        manufacturer_code: LEDVANCE,
        image_type: product,
        current_file_version: 0,
        hardware_version: None,
        ..KnownDevice::default()
    }
}

fn open(config: &Config, clock: &VirtualClock) -> CatalogService {
    CatalogService::open_with(
        config,
        ServiceOptions {
            clock: Clock::Virtual(clock.clone()),
            ..ServiceOptions::default()
        },
    )
    .unwrap()
}

/// Runs a refresh in a spawned task (as the daemon will: this only compiles if the service
/// and its refresh future are `Send`) and hands the service back.
async fn refresh_in_task(
    service: CatalogService,
    devices: Vec<KnownDevice>,
) -> (CatalogService, RefreshReport) {
    refresh_held(service, devices, &mut ImageHolds::default(), UNIX_EPOCH).await
}

/// [`refresh_in_task`] under `holds`, which then learn from the report at `now` (as the
/// daemon's scheduler does).
async fn refresh_held(
    mut service: CatalogService,
    devices: Vec<KnownDevice>,
    holds: &mut ImageHolds,
    now: SystemTime,
) -> (CatalogService, RefreshReport) {
    let given = holds.clone();
    let (service, report) = tokio::spawn(async move {
        let report = service.refresh(&devices, &given).await;
        (service, report)
    })
    .await
    .unwrap();
    holds.absorb(&report, now);
    (service, report)
}

fn only_source(report: &RefreshReport) -> &SourceRefresh {
    assert_eq!(report.sources.len(), 1, "{report}");
    &report.sources[0]
}

/// The image files in the cache.
fn cached_image_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cache/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sha256_name(image: &[u8]) -> String {
    ImageHash::compute(HashAlgorithm::Sha256, image).cache_key()
}

/// The image keys the daemon would serve, from disk alone.
pub(crate) fn served_images(config: &Config) -> Vec<(u16, u16, u32)> {
    let library = images::load(config);
    let mut keys: Vec<(u16, u16, u32)> = library
        .images
        .iter()
        .map(|image| {
            let key = image.key();
            (key.manufacturer_code, key.image_type, key.file_version)
        })
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn refresh_stores_the_catalog_and_only_the_image_a_known_device_can_take() {
    let (api, image_a, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    let service = open(&config, &clock);

    // First refresh: catalog fetched, one download (paced 6 s after the catalog call).
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    let line = only_source(&report);
    assert!(report.is_clean(), "{report}");
    assert_eq!(line.catalog, CatalogOutcome::Changed { rejected: 0 });
    assert_eq!(line.entries, 2);
    assert_eq!(line.downloads.len(), 1, "{report}");
    assert_eq!(line.downloads[0].image_type, 25);
    assert_eq!(line.downloads[0].file_version, VERSION_A);
    assert_eq!(
        line.downloads[0].outcome,
        DownloadOutcome::Stored {
            bytes: image_a.len() as u64
        }
    );
    assert_eq!(api.hits(), (1, 1));
    assert_eq!(line.usage.calls, 2);
    assert_eq!(
        line.usage.bytes,
        (api.catalog().len() + image_a.len()) as u64
    );
    assert_eq!(
        line.usage.monthly_bytes,
        LimiterConfig::ledvance().monthly_bytes
    );
    assert!(clock.now() >= start() + LimiterConfig::ledvance().min_interval);
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_a)]);
    assert!(
        report.to_string().contains("new catalog stored"),
        "{report}"
    );

    // Within the interval: no call at all, and the image is not fetched again.
    clock.advance(Duration::from_secs(1));
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    let line = only_source(&report);
    assert!(
        matches!(&line.catalog, CatalogOutcome::Skipped { reason, .. } if reason == "min-interval"),
        "{report}"
    );
    assert!(line.downloads.is_empty());
    assert_eq!(line.entries, 2);
    assert_eq!(api.hits(), (1, 1));

    // After the interval: a conditional request, 304, nothing changes.
    clock.advance(Duration::from_secs(3600));
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    let line = only_source(&report);
    assert_eq!(line.catalog, CatalogOutcome::Unchanged);
    assert!(line.downloads.is_empty());
    assert_eq!(api.hits(), (2, 1));
    assert_eq!(line.usage.calls, 3);
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_a)]);
    drop(service);

    // A restart keeps the month: same usage, and the last call still counts for the interval.
    let restarted = open(&config, &clock);
    let usage = restarted.usage();
    assert_eq!(usage[0].0, "ledvance");
    assert_eq!(usage[0].1.calls, 3);
    let (_, report) = refresh_in_task(restarted, vec![device(25)]).await;
    assert!(
        matches!(
            &only_source(&report).catalog,
            CatalogOutcome::Skipped { .. }
        ),
        "{report}"
    );
    assert_eq!(api.hits(), (2, 1));

    // The daemon's loader serves the downloaded image with no network, and only that one.
    assert_eq!(served_images(&config), [(LEDVANCE, 25, VERSION_A)]);

    // The known devices were kept for the CLI, and `catalog list` shows the picture.
    assert_eq!(load_known_devices(&config.state_dir).unwrap(), [device(25)]);
    let listing = report::list(&config, &[device(25), device(26), device(99)]).unwrap();
    let source = &listing.sources[0];
    assert_eq!(source.entries.len(), 2);
    assert_eq!(
        source
            .entries
            .iter()
            .map(|e| (e.image_type, e.downloaded))
            .collect::<Vec<_>>(),
        [(25, true), (26, false)]
    );
    let offers: Vec<_> = listing
        .devices
        .iter()
        .map(|d| d.offer.as_ref().map(|o| (o.file_version, o.downloaded)))
        .collect();
    assert_eq!(
        offers,
        [Some((VERSION_A, true)), Some((VERSION_B, false)), None]
    );
    assert_eq!(listing.cached_image_bytes, image_a.len() as u64);
    let text = listing.to_string();
    assert!(
        text.contains("ledvance (ledvance): 2 entries, 1 downloaded"),
        "{text}"
    );
    assert!(
        text.contains("00102428 from ledvance (cached, served)"),
        "{text}"
    );
    let json = serde_json::to_value(&listing).unwrap();
    assert_eq!(json["sources"][0]["entries"][1]["downloaded"], false);
    assert_eq!(json["devices"][2]["offer"], serde_json::Value::Null);
}

#[tokio::test]
async fn failures_keep_the_previous_cache_and_are_reported() {
    let (api, image_a, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    let (service, report) = refresh_in_task(open(&config, &clock), vec![device(25)]).await;
    assert!(report.is_clean(), "{report}");
    let baseline = vec![(LEDVANCE, 25, VERSION_A)];
    assert_eq!(served_images(&config), baseline);

    // 429 with Retry-After: reported, the cache stays, and no call before the time is up.
    clock.advance(Duration::from_secs(3600));
    let refused_at = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    api.catalog_faults
        .lock()
        .unwrap()
        .push_back(Fault::TooManyRequests {
            retry_after_secs: 600,
        });
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    let line = only_source(&report);
    assert!(
        matches!(&line.catalog, CatalogOutcome::Failed { error } if error.contains("429")),
        "{report}"
    );
    assert_eq!(line.entries, 2);
    assert!(!report.is_clean());
    assert_eq!(served_images(&config), baseline);
    clock.advance(Duration::from_secs(599));
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    assert!(
        matches!(&only_source(&report).catalog, CatalogOutcome::Skipped { reason, until_unix }
            if reason == "backoff" && *until_unix == refused_at + 600),
        "{report}"
    );
    assert_eq!(api.hits().0, 2);

    // 500: reported, cache stays.
    clock.advance(Duration::from_secs(1));
    api.catalog_faults
        .lock()
        .unwrap()
        .push_back(Fault::ServerError);
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    assert!(
        matches!(&only_source(&report).catalog, CatalogOutcome::Failed { error } if error.contains("500")),
        "{report}"
    );
    assert_eq!(api.hits().0, 3);
    assert_eq!(served_images(&config), baseline);

    // A truncated catalog body: the stored catalog is untouched.
    clock.advance(Duration::from_secs(24 * 3600));
    let stored_before = std::fs::read(dir.path().join("cache/catalogs/ledvance.json")).unwrap();
    api.catalog_faults
        .lock()
        .unwrap()
        .push_back(Fault::Truncated);
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    assert!(
        matches!(&only_source(&report).catalog, CatalogOutcome::Failed { .. }),
        "{report}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("cache/catalogs/ledvance.json")).unwrap(),
        stored_before
    );

    // A new device appears; its image arrives with a wrong hash, then truncated: nothing
    // unverified is stored, both are reported, and the next good answer is stored.
    clock.advance(Duration::from_secs(24 * 3600));
    api.image_faults
        .lock()
        .unwrap()
        .push_back(Fault::WrongBytes);
    let (service, report) = refresh_in_task(service, vec![device(25), device(26)]).await;
    let line = only_source(&report);
    assert_eq!(line.catalog, CatalogOutcome::Unchanged, "{report}");
    assert_eq!(line.downloads.len(), 1);
    assert!(
        matches!(&line.downloads[0].outcome, DownloadOutcome::Failed { error } if error.contains("digest")),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("image 1189/001a/01000003: failed"), "{text}");
    // Named once, on the download's own line.
    assert_eq!(text.matches("digest").count(), 1, "{text}");
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_a)]);

    clock.advance(Duration::from_secs(24 * 3600));
    api.image_faults.lock().unwrap().push_back(Fault::Truncated);
    let (service, report) = refresh_in_task(service, vec![device(25), device(26)]).await;
    let line = only_source(&report);
    assert!(
        matches!(&line.downloads[0].outcome, DownloadOutcome::Failed { .. }),
        "{report}"
    );
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_a)]);
    assert_eq!(served_images(&config), baseline);

    // The transport failure backs off; once it has passed, the clean answer is stored.
    clock.advance(Duration::from_secs(24 * 3600));
    let (_, report) = refresh_in_task(service, vec![device(25), device(26)]).await;
    let line = only_source(&report);
    assert!(
        matches!(line.downloads[0].outcome, DownloadOutcome::Stored { .. }),
        "{report}"
    );
    assert_eq!(
        served_images(&config),
        [(LEDVANCE, 25, VERSION_A), (LEDVANCE, 26, VERSION_B)]
    );
}

#[tokio::test]
async fn a_corrupt_ledger_holds_the_source_back_for_a_day() {
    let (api, _, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    std::fs::create_dir_all(&config.state_dir).unwrap();
    std::fs::write(
        config.state_dir.join("ledger-ledvance.json"),
        b"\x00garbage",
    )
    .unwrap();
    let clock = VirtualClock::new(start());
    let (service, report) = refresh_in_task(open(&config, &clock), vec![device(25)]).await;
    let line = only_source(&report);
    assert!(
        matches!(&line.catalog, CatalogOutcome::Skipped { reason, until_unix }
            if reason == "backoff" && *until_unix == 1_795_651_200 + 24 * 3600),
        "{report}"
    );
    assert!(line.errors[0].contains("unreadable"), "{report}");
    assert!(
        config
            .state_dir
            .join("ledger-ledvance.json.corrupt")
            .exists()
    );
    assert_eq!(api.hits(), (0, 0));
    // The held-back ledger was saved: a restart does not lift the hold.
    drop(service);
    let (_, report) = refresh_in_task(open(&config, &clock), vec![device(25)]).await;
    assert!(
        matches!(
            &only_source(&report).catalog,
            CatalogOutcome::Skipped { .. }
        ),
        "{report}"
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(api.hits(), (0, 0));
}

#[tokio::test]
async fn refresh_once_uses_the_saved_devices_and_reports_progress() {
    let (api, image_a, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    std::fs::create_dir_all(&config.state_dir).unwrap();
    std::fs::write(
        config.state_dir.join("known-devices.json"),
        serde_json::to_vec(&serde_json::json!({ "devices": [device(25)] })).unwrap(),
    )
    .unwrap();
    let mut lines = Vec::new();
    // Calls counted in the ledger on disk as each step is reported: saved after every call.
    let mut saved_calls = Vec::new();
    let ledger = config.state_dir.join("ledger-ledvance.json");
    // The wall clock: one catalog call, then a download 6 s later (min interval).
    let report = report::refresh_once(&config, |progress| {
        lines.push(progress.to_string());
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
        saved_calls.push(saved["calls"].as_u64().unwrap());
    })
    .await
    .unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(saved_calls, [1, 2]);
    assert!(
        lines[0].starts_with("ledvance: catalog new catalog stored"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        format!(
            "ledvance: image 1189/0019/00102428: stored ({} bytes)",
            image_a.len()
        )
    );
    assert_eq!(api.hits(), (1, 1));
}

#[tokio::test]
async fn a_local_index_file_is_read_and_its_images_downloaded() {
    let (api, image_a, image_b) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("index.json");
    let download_b = url.replace("/firmwares", "/firmwares/download")
        + "?Company=4489&Product=26&Version=1.0.0.3";
    let index = serde_json::json!([{
        "fileName": "p26.ota",
        "fileVersion": VERSION_B,
        "fileSize": image_b.len(),
        "url": download_b,
        "imageType": 26,
        "manufacturerCode": LEDVANCE,
        "sha512": ImageHash::compute(HashAlgorithm::Sha512, &image_b).to_hex(),
        "otaHeaderString": "",
    }]);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let text = format!(
        r#"state_dir = "{state}"
[coordinator]
port = "/dev/null"
[catalog]
cache_dir = "{cache}"
[[catalog.source]]
kind = "zigbee-ota-index"
name = "local-index"
path = "{index}"
[[catalog.source]]
kind = "ledvance"
url = "{url}"
"#,
        state = dir.path().join("state").display(),
        cache = dir.path().join("cache").display(),
        index = index_path.display(),
    );
    let config = Config::from_toml_str(&text, "test").unwrap();
    let clock = VirtualClock::new(start());
    let devices = vec![device(25), device(26)];
    let (service, report) = refresh_in_task(open(&config, &clock), devices.clone()).await;
    assert!(report.is_clean(), "{report}");
    let [local, ledvance] = &report.sources[..] else {
        panic!("{report}")
    };
    assert_eq!(local.name, "local-index");
    assert_eq!(local.kind, "zigbee-ota-index");
    assert_eq!(local.catalog, CatalogOutcome::Changed { rejected: 0 });
    assert_eq!(local.entries, 1);
    // Both sources list product 26; digests of different algorithms cannot be compared, so
    // the earlier-configured source (the local index) gives it, through its own limiter.
    assert_eq!(local.downloads.len(), 1, "{report}");
    assert_eq!(local.downloads[0].image_type, 26);
    assert_eq!(local.usage.calls, 1);
    assert_eq!(local.usage.bytes, image_b.len() as u64);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["sources"][0]["usage"]["monthly_bytes"],
        serde_json::Value::Null
    );
    assert_eq!(json["sources"][1]["usage"]["monthly_bytes"], 100_000_000);
    assert_eq!(ledvance.downloads.len(), 1, "{report}");
    assert_eq!(ledvance.downloads[0].image_type, 25);
    let mut expected = vec![
        sha256_name(&image_a),
        ImageHash::compute(HashAlgorithm::Sha512, &image_b).cache_key(),
    ];
    expected.sort();
    assert_eq!(cached_image_files(dir.path()), expected);
    assert_eq!(
        served_images(&config),
        [(LEDVANCE, 25, VERSION_A), (LEDVANCE, 26, VERSION_B)]
    );

    // Reading the unchanged file again changes nothing and calls nothing.
    clock.advance(Duration::from_secs(3600));
    let (_, report) = refresh_in_task(service, devices).await;
    assert_eq!(
        report.sources[0].catalog,
        CatalogOutcome::Unchanged,
        "{report}"
    );
    assert_eq!(api.hits(), (2, 2));
}

#[tokio::test]
async fn images_no_known_device_wants_are_pruned_down_to_the_cap() {
    let (api, image_a, image_b) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    // Room for image A (40 kB) or for A's catalog neighbour B (4 kB) beside nothing big.
    let cap = image_a.len() as u64 + 100;
    let options = ServiceOptions {
        clock: Clock::Virtual(clock.clone()),
        cache_cap_bytes: cap,
        ..ServiceOptions::default()
    };
    let service = CatalogService::open_with(&config, options).unwrap();
    let (service, report) = refresh_in_task(service, vec![device(25)]).await;
    assert!(report.pruned.is_empty(), "{report}");
    assert_eq!(report.cache_over_cap_by, 0);
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_a)]);

    // Product 25 is gone from the devices (the catalog still lists it): a catalog entry does
    // not keep an image, so A goes once B arrives and the cache is over its cap.
    clock.advance(Duration::from_secs(3600));
    let (_, report) = refresh_in_task(service, vec![device(26)]).await;
    assert_eq!(report.pruned.len(), 1, "{report}");
    assert!(report.pruned[0].ends_with(&sha256_name(&image_a)));
    assert_eq!(report.cache_over_cap_by, 0);
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_b)]);
    assert_eq!(served_images(&config), [(LEDVANCE, 26, VERSION_B)]);
}

/// A wanted image that would not fit under the cap beside the other wanted ones is not
/// downloaded at all (no quota spent, nothing cached): referenced images cannot grow the
/// cache past its cap.
#[tokio::test]
async fn an_image_that_would_not_fit_the_cap_is_not_downloaded() {
    let (api, image_a, image_b) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    let options = ServiceOptions {
        clock: Clock::Virtual(clock.clone()),
        cache_cap_bytes: image_b.len() as u64 + 100,
        ..ServiceOptions::default()
    };
    let service = CatalogService::open_with(&config, options).unwrap();
    let (_, report) = refresh_in_task(service, vec![device(25), device(26)]).await;
    let line = only_source(&report);
    let outcomes: Vec<(u16, &DownloadOutcome)> = line
        .downloads
        .iter()
        .map(|d| (d.image_type, &d.outcome))
        .collect();
    assert!(
        outcomes.iter().any(|(t, o)| *t == 25
            && matches!(o, DownloadOutcome::Deferred { reason, .. } if reason.contains("cache is full"))),
        "{report}"
    );
    assert!(image_a.len() > image_b.len());
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image_b)]);
    assert_eq!(api.hits().1, 1, "only B was fetched");
    assert_eq!(report.cache_over_cap_by, 0);
}

#[tokio::test]
async fn an_unreachable_server_is_reported_and_backed_off() {
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &format!("http://{address}/v1/zigbee/firmwares"));
    let clock = VirtualClock::new(start());
    let (service, report) = refresh_in_task(open(&config, &clock), vec![device(25)]).await;
    let line = only_source(&report);
    assert!(
        matches!(&line.catalog, CatalogOutcome::Failed { error } if error.contains(&address.to_string())),
        "{report}"
    );
    assert_eq!(line.entries, 0);
    assert_eq!(line.errors.len(), 1);
    clock.advance(Duration::from_secs(30));
    let (_, report) = refresh_in_task(service, vec![device(25)]).await;
    assert!(
        matches!(&only_source(&report).catalog, CatalogOutcome::Skipped { reason, .. } if reason == "backoff"),
        "{report}"
    );
    assert!(served_images(&config).is_empty());
}

#[tokio::test]
async fn real_ledvance_catalog_one_real_image_served_from_the_cache() {
    let Some(testdata) = crate::common::shared_testdata() else {
        return;
    };
    let catalog = std::fs::read(testdata.join("catalogs/ledvance-zigbee-OTA-cache.json")).unwrap();
    let image =
        std::fs::read(testdata.join("ota-corpus/images/A19_RGBW_IMG0019_00102428-encrypted.ota"))
            .unwrap();
    let api = Api {
        catalog: Arc::new(Mutex::new(catalog)),
        images: Arc::new(HashMap::from([(
            format!("{LEDVANCE}/25/0.16.36.40"),
            image.clone(),
        )])),
        ..Api::default()
    };
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    let a19 = KnownDevice {
        current_file_version: 0x0010_2427,
        ..device(25)
    };
    let (_, report) = refresh_in_task(open(&config, &clock), vec![a19.clone()]).await;
    assert!(report.is_clean(), "{report}");
    let line = only_source(&report);
    assert_eq!(line.entries, 238);
    assert_eq!(line.downloads.len(), 1, "{report}");
    assert_eq!(line.downloads[0].file_version, 0x0010_2428);
    assert_eq!(api.hits(), (1, 1));
    assert_eq!(cached_image_files(dir.path()), [sha256_name(&image)]);
    assert_eq!(served_images(&config), [(LEDVANCE, 25, 0x0010_2428)]);
    let listing = report::list(&config, &[a19]).unwrap();
    let entries = &listing.sources[0].entries;
    assert_eq!(entries.len(), 238);
    assert_eq!(entries.iter().filter(|e| e.downloaded).count(), 1);
    let offer = listing.devices[0].offer.as_ref().unwrap();
    assert_eq!((offer.file_version, offer.downloaded), (0x0010_2428, true));
}

#[tokio::test]
async fn a_new_device_gets_its_image_without_a_catalog_call_and_a_restart_remembers_devices() {
    let (api, image_a, image_b) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    let (service, _) = refresh_in_task(open(&config, &clock), vec![device(25)]).await;
    assert_eq!(api.hits(), (1, 1));

    // Device 26 is heard between two scheduled refreshes: images only, no catalog call.
    clock.advance(Duration::from_secs(60));
    let mut service = service;
    let report = service
        .fetch_images(&[device(25), device(26)], &ImageHolds::default())
        .await;
    let line = only_source(&report);
    assert_eq!(line.catalog, CatalogOutcome::NotRequested, "{report}");
    assert_eq!(line.downloads.len(), 1, "{report}");
    assert_eq!(line.downloads[0].image_type, 26);
    assert_eq!(api.hits(), (1, 2));
    drop(service);

    // A restart: the first refresh has no devices yet and uses the saved ones, which shows in
    // the image for device 26, removed from the cache here, being fetched again.
    let mut expected = vec![sha256_name(&image_a), sha256_name(&image_b)];
    expected.sort();
    assert_eq!(cached_image_files(dir.path()), expected);
    std::fs::remove_file(
        dir.path()
            .join(format!("cache/images/{}", sha256_name(&image_b))),
    )
    .unwrap();
    clock.advance(Duration::from_secs(3600));
    let (_, report) = refresh_in_task(open(&config, &clock), Vec::new()).await;
    let line = only_source(&report);
    assert_eq!(line.catalog, CatalogOutcome::Unchanged, "{report}");
    assert_eq!(line.downloads.len(), 1, "{report}");
    assert_eq!(line.downloads[0].image_type, 26);
    assert_eq!(cached_image_files(dir.path()), expected);
}

/// An image whose bytes do not match the published digest is not downloaded again at every
/// refresh: it is held for 1 min, then 2 min (doubling per failure), while the limiter itself
/// stays open for the catalog; once the server sends the right bytes it is stored.
#[tokio::test]
async fn an_image_that_failed_verification_is_held_back_doubling() {
    let (api, _, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url);
    let clock = VirtualClock::new(start());
    for _ in 0..2 {
        api.image_faults
            .lock()
            .unwrap()
            .push_back(Fault::WrongBytes);
    }
    let mut holds = ImageHolds::default();
    let outcome = |report: &RefreshReport| only_source(report).downloads[0].outcome.clone();
    let (service, report) = refresh_held(
        open(&config, &clock),
        vec![device(26)],
        &mut holds,
        clock.now(),
    )
    .await;
    assert!(
        matches!(outcome(&report), DownloadOutcome::Failed { error } if error.contains("digest")),
        "{report}"
    );
    assert_eq!(api.hits().1, 1);

    // Within the minute: the catalog is asked again, the image is not.
    clock.advance(Duration::from_secs(30));
    let (service, report) = refresh_held(service, vec![device(26)], &mut holds, clock.now()).await;
    assert!(
        matches!(outcome(&report), DownloadOutcome::Deferred { reason, .. } if reason == "failed 1 time(s) before"),
        "{report}"
    );
    assert_eq!(api.hits(), (2, 1));

    // After it: fetched, wrong again, now held for two minutes.
    clock.advance(Duration::from_secs(31));
    let (service, report) = refresh_held(service, vec![device(26)], &mut holds, clock.now()).await;
    assert!(
        matches!(outcome(&report), DownloadOutcome::Failed { .. }),
        "{report}"
    );
    assert_eq!(api.hits().1, 2);
    clock.advance(Duration::from_secs(90));
    let (service, report) = refresh_held(service, vec![device(26)], &mut holds, clock.now()).await;
    assert!(
        matches!(outcome(&report), DownloadOutcome::Deferred { reason, .. } if reason == "failed 2 time(s) before"),
        "{report}"
    );
    assert_eq!(api.hits().1, 2);

    clock.advance(Duration::from_secs(31));
    let (_, report) = refresh_held(service, vec![device(26)], &mut holds, clock.now()).await;
    assert!(
        matches!(outcome(&report), DownloadOutcome::Stored { .. }),
        "{report}"
    );
    assert_eq!(api.hits().1, 3);
}
