//! The LEDVANCE source's modes (`list`, `newer`, `auto`) against a loopback server playing the
//! documented API: `GET /v1/zigbee/firmwares/newer?Company=&Product=&Version=` answering 200
//! (newest first), 204, 400 or 429 per device kind, the undocumented list answering its
//! catalog, 404, 410 or a shape nobody can read, and the downloads. Real HTTP on 127.0.0.1, the
//! real catalog service on a virtual clock, and the daemon's loader reading what it stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use zigbee_otad::catalog::limiter::LimiterConfig;
use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash};
use zigbee_otad::catalog::scheduler::ImageHolds;
use zigbee_otad::catalog::service::{
    CatalogOutcome, CatalogService, Clock, DownloadOutcome, KnownDevice, RefreshReport,
    ServiceOptions, SourceRefresh, VirtualClock,
};
use zigbee_otad::config::Config;

const LEDVANCE: u16 = 4489;
const IKEA: u16 = 0x117C;
/// 0.16.36.40, what the devices run.
const OLD: u32 = 0x0010_2428;
/// 1.2.3.4 and 1.2.3.5, what the API offers for product 25.
const NEW: u32 = 0x0102_0304;
const NEWEST: u32 = 0x0102_0305;

/// How the list endpoint answers.
#[derive(Debug, Clone, Copy)]
enum List {
    Catalog,
    Status(u16),
    Unreadable,
}

/// How the `newer` endpoint answers one device kind.
#[derive(Debug, Clone)]
enum Newer {
    Firmwares(String),
    NoContent,
    BadRequest,
    TooManyRequests,
}

#[derive(Clone)]
struct Api {
    list: Arc<Mutex<List>>,
    catalog: Arc<String>,
    /// "Company/Product/Version" → the `newer` answer.
    newer: Arc<Mutex<HashMap<String, Newer>>>,
    images: Arc<HashMap<String, Vec<u8>>>,
    /// Every request, in order: "list", "newer C/P/V" or "download C/P/V".
    log: Arc<Mutex<Vec<String>>>,
}

impl Api {
    fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

fn key(query: &HashMap<String, String>) -> String {
    // The documented, capitalised parameter names only.
    let get = |name: &str| query.get(name).map_or("?", String::as_str).to_owned();
    format!("{}/{}/{}", get("Company"), get("Product"), get("Version"))
}

fn status(code: u16, body: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from(body))
        .unwrap()
}

async fn list_handler(State(api): State<Api>) -> Response {
    api.log.lock().unwrap().push("list".into());
    let list = *api.list.lock().unwrap();
    match list {
        List::Catalog => Response::builder()
            .body(Body::from(api.catalog.as_bytes().to_vec()))
            .unwrap(),
        List::Status(code) => status(code, "gone"),
        List::Unreadable => status(200, "<html>maintenance</html>"),
    }
}

async fn newer_handler(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = key(&query);
    api.log.lock().unwrap().push(format!("newer {key}"));
    let answer = api.newer.lock().unwrap().get(&key).cloned();
    match answer {
        Some(Newer::Firmwares(body)) => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
        Some(Newer::NoContent) => status(204, ""),
        Some(Newer::TooManyRequests) => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::RETRY_AFTER, "60")
            .body(Body::from(
                "10 calls per 60 seconds or quota 100 MB per month",
            ))
            .unwrap(),
        Some(Newer::BadRequest) | None => status(400, "invalid request"),
    }
}

async fn download_handler(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = key(&query);
    api.log.lock().unwrap().push(format!("download {key}"));
    match api.images.get(&key) {
        Some(image) => Response::builder().body(Body::from(image.clone())).unwrap(),
        None => status(204, ""),
    }
}

async fn serve(api: Api) -> String {
    let app = Router::new()
        .route("/v1/zigbee/firmwares", get(list_handler))
        .route("/v1/zigbee/firmwares/newer", get(newer_handler))
        .route("/v1/zigbee/firmwares/download", get(download_handler))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1/zigbee/firmwares")
}

fn ota_image(image_type: u16, version: u32) -> Vec<u8> {
    crate::vendor_feeds::ota_image(LEDVANCE, image_type, version)
}

fn item(product: u16, version: u32, image: &[u8]) -> String {
    let [major, minor, build, revision] = version.to_be_bytes();
    format!(
        r#"{{"blob":null,"identity":{{"company":{LEDVANCE},"product":{product},
        "version":{{"major":{major},"minor":{minor},"build":{build},"revision":{revision}}}}},
        "releaseNotes":"synthetic","shA256":"{}","name":"p{product}.ota",
        "productName":"P{product}","fullName":"P{product}/{version:08X}/p{product}.ota",
        "extension":".ota","released":"2026-01-01T00:00:00","salesRegion":"eu","length":{}}}"#,
        ImageHash::compute(HashAlgorithm::Sha256, image).to_hex(),
        image.len()
    )
}

fn dotted(version: u32) -> String {
    let [a, b, c, d] = version.to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}

/// Product 25 has two newer images (newest first in `newer`); 26 has nothing newer (204); 27
/// is refused (400).
fn api() -> (Api, Vec<u8>) {
    let newest = ota_image(25, NEWEST);
    let new = ota_image(25, NEW);
    let firmwares = format!(
        r#"{{"firmwares":[{},{}]}}"#,
        item(25, NEWEST, &newest),
        item(25, NEW, &new)
    );
    let old = dotted(OLD);
    let newer = HashMap::from([
        (format!("{LEDVANCE}/25/{old}"), Newer::Firmwares(firmwares)),
        (format!("{LEDVANCE}/26/{old}"), Newer::NoContent),
        (format!("{LEDVANCE}/27/{old}"), Newer::BadRequest),
    ]);
    let api = Api {
        list: Arc::new(Mutex::new(List::Catalog)),
        catalog: Arc::new(format!(r#"{{"firmwares":[{}]}}"#, item(25, NEW, &new))),
        newer: Arc::new(Mutex::new(newer)),
        images: Arc::new(HashMap::from([
            (format!("{LEDVANCE}/25/{}", dotted(NEWEST)), newest.clone()),
            (format!("{LEDVANCE}/25/{}", dotted(NEW)), new),
        ])),
        log: Arc::default(),
    };
    (api, newest)
}

fn config(dir: &Path, url: &str, mode: &str) -> Config {
    let text = format!(
        r#"state_dir = "{state}"
[coordinator]
port = "/dev/null"
[catalog]
cache_dir = "{cache}"
[[catalog.source]]
kind = "ledvance"
url = "{url}"
{mode}
"#,
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
    );
    Config::from_toml_str(&text, "test").unwrap()
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_651_200)
}

fn device(manufacturer_code: u16, product: u16) -> KnownDevice {
    KnownDevice {
        manufacturer_code,
        image_type: product,
        current_file_version: OLD,
        ..KnownDevice::default()
    }
}

/// Two devices of one kind, one each of 26 and 27, and an IKEA device LEDVANCE is not asked
/// about.
fn devices() -> Vec<KnownDevice> {
    vec![
        device(LEDVANCE, 25),
        device(LEDVANCE, 25),
        device(LEDVANCE, 26),
        device(LEDVANCE, 27),
        device(IKEA, 25),
    ]
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

async fn refresh(service: &mut CatalogService, devices: &[KnownDevice]) -> RefreshReport {
    service.refresh(devices, &ImageHolds::default()).await
}

fn line(report: &RefreshReport) -> &SourceRefresh {
    assert_eq!(report.sources.len(), 1, "{report}");
    &report.sources[0]
}

fn served(config: &Config) -> Vec<(u16, u16, u32)> {
    crate::catalog_service::served_images(config)
}

#[tokio::test]
async fn newer_mode_asks_once_per_device_kind_and_handles_204_400_and_429() {
    let (api, newest) = api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &url, "mode = \"newer\"");
    let clock = VirtualClock::new(start());
    let mut service = open(&config, &clock);

    let report = refresh(&mut service, &devices()).await;
    let line = line(&report);
    let old = dotted(OLD);
    // One call per distinct LEDVANCE (company, product, version); never the list, never IKEA.
    assert_eq!(
        api.calls(),
        [
            format!("newer {LEDVANCE}/25/{old}"),
            format!("newer {LEDVANCE}/26/{old}"),
            format!("newer {LEDVANCE}/27/{old}"),
            format!("download {LEDVANCE}/25/{}", dotted(NEWEST)),
        ]
    );
    assert_eq!(line.catalog, CatalogOutcome::Changed { rejected: 0 });
    // 200: both newer images listed; 204: nothing; 400: named and skipped, a note and not a
    // failure of the refresh.
    assert_eq!(line.entries, 2, "{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(line.notes.len(), 1, "{report}");
    assert!(
        line.notes[0].contains(&format!("Company={LEDVANCE}&Product=27&Version={old}"))
            && line.notes[0].contains("400"),
        "{report}"
    );
    // Only the newest is downloaded, and each call (3 newer, 1 download) is in the ledger,
    // paced by the documented minimum interval.
    assert_eq!(
        line.downloads[0].outcome,
        DownloadOutcome::Stored {
            bytes: newest.len() as u64
        }
    );
    assert_eq!(line.usage.calls, 4);
    assert!(clock.now() >= start() + 3 * LimiterConfig::ledvance().min_interval);
    assert_eq!(served(&config), [(LEDVANCE, 25, NEWEST)]);

    // A 429 ends the round: the source backs off, the catalog stays as it was.
    api.newer
        .lock()
        .unwrap()
        .insert(format!("{LEDVANCE}/25/{old}"), Newer::TooManyRequests);
    clock.advance(Duration::from_secs(3600));
    let report = refresh(&mut service, &devices()).await;
    let line = &report.sources[0];
    assert!(
        matches!(&line.catalog, CatalogOutcome::Failed { error } if error.contains("429")),
        "{report}"
    );
    assert_eq!(line.entries, 2, "{report}");
    assert_eq!(api.count("newer"), 4);
    assert_eq!(line.usage.calls, 5);

    // Within the 429's backoff nothing is called.
    let report = refresh(&mut service, &devices()).await;
    assert!(
        matches!(&report.sources[0].catalog, CatalogOutcome::Skipped { .. }),
        "{report}"
    );
    assert_eq!(api.count("newer"), 4);
    assert_eq!(served(&config), [(LEDVANCE, 25, NEWEST)]);
}

#[tokio::test]
async fn auto_uses_the_list_while_it_works() {
    let (api, _) = api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // No `mode`: auto.
    let config = config(dir.path(), &url, "");
    let clock = VirtualClock::new(start());
    let mut service = open(&config, &clock);
    let report = refresh(&mut service, &devices()).await;
    assert_eq!(
        line(&report).catalog,
        CatalogOutcome::Changed { rejected: 0 }
    );
    assert_eq!(api.count("list"), 1);
    assert_eq!(api.count("newer"), 0);
    assert_eq!(served(&config), [(LEDVANCE, 25, NEW)]);
}

#[tokio::test]
async fn auto_falls_back_to_newer_calls_on_404_410_and_an_unreadable_list() {
    for list in [List::Status(404), List::Status(410), List::Unreadable] {
        let (api, _) = api();
        *api.list.lock().unwrap() = list;
        let url = serve(api.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &url, "mode = \"auto\"");
        let clock = VirtualClock::new(start());
        let mut service = open(&config, &clock);
        let report = refresh(&mut service, &devices()).await;
        let line = line(&report);
        assert_eq!(
            line.catalog,
            CatalogOutcome::Changed { rejected: 0 },
            "{list:?}: {report}"
        );
        assert_eq!(api.count("list"), 1, "{list:?}");
        assert_eq!(api.count("newer"), 3, "{list:?}");
        // Said, but not a failure: the catalog is there.
        assert!(
            line.notes
                .iter()
                .any(|e| e.contains("the list is unusable")),
            "{list:?}: {report}"
        );
        assert!(report.is_clean(), "{list:?}: {report}");
        // The list call and the three newer calls, then the download: one ledger.
        assert_eq!(line.usage.calls, 5, "{list:?}: {report}");
        assert_eq!(served(&config), [(LEDVANCE, 25, NEWEST)], "{list:?}");
    }
}

#[tokio::test]
async fn list_mode_and_auto_without_ledvance_devices_report_the_list_failure() {
    for (mode, devices) in [
        ("mode = \"list\"", devices()),
        ("mode = \"auto\"", vec![device(IKEA, 25)]),
    ] {
        let (api, _) = api();
        *api.list.lock().unwrap() = List::Status(404);
        let url = serve(api.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &url, mode);
        let clock = VirtualClock::new(start());
        let mut service = open(&config, &clock);
        let report = refresh(&mut service, &devices).await;
        assert!(
            matches!(&line(&report).catalog, CatalogOutcome::Failed { error } if error.contains("404")),
            "{mode}: {report}"
        );
        assert_eq!(api.calls(), ["list"], "{mode}");
    }
}
