//! The HTTP edge against a real HTTP server on 127.0.0.1 that plays the LEDVANCE API, with
//! injectable faults: 429 + Retry-After, 500, truncated bodies, wrong bytes, oversize bodies.

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

use zigbee_otad::catalog::cache::Cache;
use zigbee_otad::catalog::limiter::{LimitReason, Limiter, LimiterConfig};
use zigbee_otad::catalog::merged::MergedCatalog;
use zigbee_otad::catalog::model::{DeviceQuery, HashAlgorithm, ImageHash, Provenance, SourceKind};
use zigbee_otad::catalog::provider::SourceCatalog;
use zigbee_otad::catalog::provider::http::{CatalogClient, CatalogError, HttpSettings, SourceSpec};

use crate::common::shared_testdata;

const ETAG: &str = "\"catalog-v1\"";

#[derive(Debug, Clone, Copy)]
enum Fault {
    TooManyRequests { retry_after_secs: u64 },
    ServerError,
    Truncated,
    WrongBytes,
}

#[derive(Clone)]
struct Api {
    catalog: Arc<Vec<u8>>,
    /// "Company/Product/Version" → image bytes.
    images: Arc<HashMap<String, Vec<u8>>>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    hits: Arc<AtomicUsize>,
}

impl Api {
    fn inject(&self, fault: Fault) {
        self.faults.lock().unwrap().push_back(fault);
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    /// Applies the next queued fault, if any, to a response carrying `body`.
    fn respond(&self, body: &[u8], etag: Option<&str>) -> Response {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let fault = self.faults.lock().unwrap().pop_front();
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
}

async fn catalog_handler(State(api): State<Api>, headers: HeaderMap) -> Response {
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value == ETAG);
    if unchanged && api.faults.lock().unwrap().is_empty() {
        api.hits.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap();
    }
    api.respond(&api.catalog.clone(), Some(ETAG))
}

async fn download_handler(
    State(api): State<Api>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = format!(
        "{}/{}/{}",
        query.get("Company").map_or("", String::as_str),
        query.get("Product").map_or("", String::as_str),
        query.get("Version").map_or("", String::as_str),
    );
    match api.images.get(&key) {
        Some(image) => api.respond(image, None),
        None => {
            api.hits.fetch_add(1, Ordering::SeqCst);
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::empty())
                .unwrap()
        }
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

fn synthetic_image(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn ledvance_entry(product: u16, version: [u8; 4], image: &[u8]) -> String {
    let hex: String = version.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        r#"{{"blob":null,"identity":{{"company":4489,"product":{product},
            "version":{{"major":{},"minor":{},"build":{},"revision":{}}}}},
            "releaseNotes":"synthetic","shA256":"{}","name":"p{product}.ota",
            "productName":"P{product}","fullName":"P{product}/{hex}/p{product}.ota",
            "extension":".ota","released":"2026-01-01T00:00:00","salesRegion":"eu",
            "length":{}}}"#,
        version[0],
        version[1],
        version[2],
        version[3],
        ImageHash::compute(HashAlgorithm::Sha256, image).to_hex(),
        image.len()
    )
}

fn synthetic_api() -> (Api, Vec<u8>, Vec<u8>) {
    let image_a = synthetic_image(1, 180_052);
    let image_b = synthetic_image(2, 4_000);
    let catalog = format!(
        r#"{{"firmwares":[{},{}]}}"#,
        ledvance_entry(25, [0, 16, 36, 40], &image_a),
        ledvance_entry(26, [1, 0, 0, 3], &image_b),
    );
    let images = HashMap::from([
        ("4489/25/0.16.36.40".to_owned(), image_a.clone()),
        ("4489/26/1.0.0.3".to_owned(), image_b.clone()),
    ]);
    let api = Api {
        catalog: Arc::new(catalog.into_bytes()),
        images: Arc::new(images),
        faults: Arc::default(),
        hits: Arc::default(),
    };
    (api, image_a, image_b)
}

fn source(url: &str) -> SourceSpec {
    SourceSpec {
        provenance: Provenance {
            source: "ledvance".into(),
            kind: SourceKind::Ledvance,
        },
        url: url.to_owned(),
    }
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_651_200)
}

fn device(product: u16) -> DeviceQuery<'static> {
    DeviceQuery {
        manufacturer_code: 4489,
        image_type: product,
        current_file_version: 0,
        ..DeviceQuery::default()
    }
}

fn open_cache(dir: &Path) -> Cache {
    Cache::open(dir, 1 << 30).unwrap().0
}

#[tokio::test]
async fn refresh_conditional_then_lazy_download() {
    let (api, image_a, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), start());
    let spec = source(&url);

    let first = client
        .refresh_source(&spec, &mut cache, &mut limiter, start())
        .await
        .unwrap();
    assert!(first.changed);
    assert_eq!(first.catalog.entries.len(), 2);
    assert_eq!(
        cache
            .catalog("ledvance")
            .unwrap()
            .validators
            .etag
            .as_deref(),
        Some(ETAG)
    );

    // Within the minimum interval: refused without a request.
    let too_soon = client
        .refresh_source(
            &spec,
            &mut cache,
            &mut limiter,
            start() + Duration::from_secs(1),
        )
        .await;
    assert!(matches!(too_soon, Err(CatalogError::RateLimited { .. })));
    assert_eq!(api.hits(), 1);

    // Conditional request: 304, the cached catalog stays.
    let later = start() + Duration::from_secs(3600);
    let second = client
        .refresh_source(&spec, &mut cache, &mut limiter, later)
        .await
        .unwrap();
    assert!(!second.changed);
    assert_eq!(second.catalog, first.catalog);
    assert_eq!(api.hits(), 2);

    // Only the image a known device would take is downloaded, once.
    let merged = MergedCatalog::new([SourceCatalog {
        provenance: spec.provenance.clone(),
        entries: second.catalog.entries,
    }]);
    let devices = [device(25)];
    let wanted = merged.images_for(devices.iter());
    assert_eq!(wanted.len(), 1);
    let mut now = later;
    for _ in 0..2 {
        now += Duration::from_secs(10);
        client
            .ensure_image(wanted[0], &url, &mut cache, &mut limiter, now)
            .await
            .unwrap();
    }
    assert_eq!(api.hits(), 3);
    assert_eq!(cache.read_image(&wanted[0].hash).unwrap(), image_a);
    // The ledger counted every call and every body byte.
    let (calls, bytes) = limiter.usage(now);
    assert_eq!(calls, 3);
    assert_eq!(bytes, api.catalog.len() as u64 + image_a.len() as u64);

    // After a restart the cache serves with no network at all.
    drop(cache);
    let reopened = open_cache(dir.path());
    assert!(reopened.image_path(wanted[0]).is_some());
    let from_disk = reopened
        .catalog("ledvance")
        .unwrap()
        .source_catalog()
        .unwrap();
    let offline = MergedCatalog::new([from_disk]);
    assert_eq!(
        offline.best_image(&device(25)),
        merged.best_image(&device(25))
    );
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_honoured() {
    let (api, _, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), start());
    let spec = source(&url);

    api.inject(Fault::TooManyRequests {
        retry_after_secs: 300,
    });
    let refused = client
        .refresh_source(&spec, &mut cache, &mut limiter, start())
        .await;
    assert!(matches!(
        refused,
        Err(CatalogError::Http {
            status: 429,
            retry_after: Some(d),
            ..
        }) if d == Duration::from_secs(300)
    ));
    // Every attempt before the Retry-After ends stays local.
    for seconds in [10, 100, 299] {
        let attempt = client
            .refresh_source(
                &spec,
                &mut cache,
                &mut limiter,
                start() + Duration::from_secs(seconds),
            )
            .await;
        match attempt {
            Err(CatalogError::RateLimited { retry, .. }) => {
                assert_eq!(retry.reason, LimitReason::Backoff);
                assert_eq!(retry.at, start() + Duration::from_secs(300));
            }
            other => panic!("expected a local refusal, got {other:?}"),
        }
    }
    assert_eq!(api.hits(), 1);
    let after = client
        .refresh_source(
            &spec,
            &mut cache,
            &mut limiter,
            start() + Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert!(after.changed);
    assert_eq!(api.hits(), 2);
}

#[tokio::test]
async fn server_errors_back_off_and_keep_the_cached_catalog() {
    let (api, _, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let config = LimiterConfig::ledvance();
    let mut limiter = Limiter::new(config, start());
    let spec = source(&url);
    client
        .refresh_source(&spec, &mut cache, &mut limiter, start())
        .await
        .unwrap();
    let stored = cache.catalog("ledvance").unwrap().clone();

    api.inject(Fault::ServerError);
    let t1 = start() + Duration::from_secs(3600);
    let failed = client
        .refresh_source(&spec, &mut cache, &mut limiter, t1)
        .await;
    assert!(matches!(
        failed,
        Err(CatalogError::Http { status: 500, .. })
    ));
    assert_eq!(cache.catalog("ledvance"), Some(&stored));
    let retry = limiter.check(t1).unwrap_err();
    assert_eq!(retry.at, t1 + config.backoff_initial);

    // A body cut short is a transport failure: backoff doubles, cache untouched.
    api.inject(Fault::Truncated);
    let t2 = retry.at;
    // With a fault queued the server ignores the ETag and sends a body, cut in half.
    let failed = client
        .refresh_source(&spec, &mut cache, &mut limiter, t2)
        .await;
    assert!(
        matches!(failed, Err(CatalogError::Transport { .. })),
        "{failed:?}"
    );
    assert_eq!(cache.catalog("ledvance"), Some(&stored));
    assert_eq!(
        limiter.check(t2).unwrap_err().at,
        t2 + config.backoff_initial * 2
    );
}

#[tokio::test]
async fn bad_image_bytes_are_never_stored() {
    let (api, _, image_b) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), start());
    let refreshed = client
        .refresh_source(&source(&url), &mut cache, &mut limiter, start())
        .await
        .unwrap();
    let entry = refreshed
        .catalog
        .entries
        .iter()
        .find(|e| e.image_type == 26)
        .unwrap();
    let mut now = start();
    let mut next = |limiter: &Limiter| {
        now = limiter.poll_timeout(now + Duration::from_secs(1));
        now
    };

    api.inject(Fault::WrongBytes);
    let t = next(&limiter);
    let wrong = client
        .ensure_image(entry, &url, &mut cache, &mut limiter, t)
        .await;
    assert!(
        matches!(
            wrong,
            Err(CatalogError::Cache(
                zigbee_otad::catalog::cache::CacheError::HashMismatch { .. }
            ))
        ),
        "{wrong:?}"
    );
    assert!(!cache.has_image(&entry.hash));

    api.inject(Fault::Truncated);
    let t = next(&limiter);
    let cut = client
        .ensure_image(entry, &url, &mut cache, &mut limiter, t)
        .await;
    assert!(
        matches!(cut, Err(CatalogError::Transport { .. })),
        "{cut:?}"
    );
    assert!(!cache.has_image(&entry.hash));

    // An entry that announces fewer bytes than the server sends is cut at its size.
    let mut smaller = entry.clone();
    smaller.size = zigbee_otad::catalog::model::ImageSize::FileLength(100);
    let t = next(&limiter);
    let large = client
        .ensure_image(&smaller, &url, &mut cache, &mut limiter, t)
        .await;
    assert!(
        matches!(large, Err(CatalogError::TooLarge { limit: 100, .. })),
        "{large:?}"
    );

    // Nothing partial was left in the cache directory.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("images"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty());

    let t = next(&limiter);
    client
        .ensure_image(entry, &url, &mut cache, &mut limiter, t)
        .await
        .unwrap();
    assert_eq!(cache.read_image(&entry.hash).unwrap(), image_b);
}

/// A download that the month's byte budget could only cut short is not started.
#[tokio::test]
async fn download_that_would_not_fit_the_budget_is_not_started() {
    let (api, image_a, _) = synthetic_api();
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let config = LimiterConfig {
        monthly_bytes: api.catalog.len() as u64 + image_a.len() as u64 - 1,
        ..LimiterConfig::ledvance()
    };
    let mut limiter = Limiter::new(config, start());
    let refreshed = client
        .refresh_source(&source(&url), &mut cache, &mut limiter, start())
        .await
        .unwrap();
    let entry = refreshed
        .catalog
        .entries
        .iter()
        .find(|e| e.image_type == 25)
        .unwrap();
    let later = start() + Duration::from_secs(60);
    let refused = client
        .ensure_image(entry, &url, &mut cache, &mut limiter, later)
        .await;
    match refused {
        Err(CatalogError::RateLimited { retry, .. }) => {
            assert_eq!(retry.reason, LimitReason::MonthlyBytes)
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
    assert_eq!(api.hits(), 1);
    assert_eq!(limiter.usage(later).0, 1);
}

#[tokio::test]
async fn insecure_urls_make_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), start());
    let refused = client
        .refresh_source(
            &source("http://example.org/v1/zigbee/firmwares"),
            &mut cache,
            &mut limiter,
            start(),
        )
        .await;
    assert!(matches!(refused, Err(CatalogError::InsecureUrl { .. })));
    assert_eq!(limiter.usage(start()), (0, 0));
}

/// The real LEDVANCE response served as the API, and the real A19 RGBW image behind its
/// download URL: the 4-part version URL reaches it and the published sha256 and length
/// accept it.
#[tokio::test]
async fn real_ledvance_catalog_and_image() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    let catalog = std::fs::read(testdata.join("catalogs/ledvance-zigbee-OTA-cache.json")).unwrap();
    let image =
        std::fs::read(testdata.join("ota-corpus/images/A19_RGBW_IMG0019_00102428-encrypted.ota"))
            .unwrap();
    let api = Api {
        catalog: Arc::new(catalog),
        images: Arc::new(HashMap::from([(
            "4489/25/0.16.36.40".to_owned(),
            image.clone(),
        )])),
        faults: Arc::default(),
        hits: Arc::default(),
    };
    let url = serve(api.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = open_cache(dir.path());
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), start());
    let spec = source(&url);
    let refreshed = client
        .refresh_source(&spec, &mut cache, &mut limiter, start())
        .await
        .unwrap();
    assert_eq!(refreshed.catalog.entries.len(), 238);
    let merged = MergedCatalog::new([SourceCatalog {
        provenance: spec.provenance.clone(),
        entries: refreshed.catalog.entries,
    }]);
    let a19 = DeviceQuery {
        current_file_version: 0x0010_2427,
        ..device(25)
    };
    let entry = merged.best_image(&a19).unwrap();
    assert_eq!(entry.file_version, 0x0010_2428);
    client
        .ensure_image(
            entry,
            &url,
            &mut cache,
            &mut limiter,
            start() + Duration::from_secs(6),
        )
        .await
        .unwrap();
    assert_eq!(cache.read_image(&entry.hash).unwrap(), image);
}
