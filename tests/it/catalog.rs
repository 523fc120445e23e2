//! Integration tests for the `catalog` module: the parsers against the real catalogs in
//! `../shared/testdata/catalogs`.

use std::collections::HashSet;

use serde_json::Value;
use zigbee_otad::catalog::model::{ImageSize, Locator, Provenance, SourceKind};
use zigbee_otad::catalog::provider::{ledvance, zigbee_ota_index};

use crate::common::shared_testdata;

const LEDVANCE_URL: &str = "https://api.update.ledvance.com/v1/zigbee/firmwares";
const LEDVANCE_FILES: [&str; 2] = [
    "ledvance-zigpy-tests-firmwares.json",
    "ledvance-zigbee-OTA-cache.json",
];

fn ledvance_source() -> Provenance {
    Provenance {
        source: "ledvance".into(),
        kind: SourceKind::Ledvance,
    }
}

/// Every entry of both real LEDVANCE responses: the packed identity version equals the hex in
/// `fullName`, the URL carries the 4-part version, and nothing is rejected.
#[test]
fn ledvance_real_catalogs_version_mapping() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    for file in LEDVANCE_FILES {
        let bytes = std::fs::read(testdata.join("catalogs").join(file)).unwrap();
        let parsed = ledvance::parse(&bytes, LEDVANCE_URL, &ledvance_source()).unwrap();
        assert!(parsed.rejected.is_empty(), "{file}: {:?}", parsed.rejected);

        // Independent reading of the same document, to compare against.
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let raw_entries = raw["firmwares"].as_array().unwrap();
        assert_eq!(parsed.entries.len(), raw_entries.len(), "{file}");
        let mut expected = HashSet::new();
        for item in raw_entries {
            let v = &item["identity"]["version"];
            let part = |k: &str| v[k].as_u64().unwrap();
            let from_name = u32::from_str_radix(
                item["fullName"]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .nth(1)
                    .unwrap(),
                16,
            )
            .unwrap();
            let packed = (part("major") << 24)
                | (part("minor") << 16)
                | (part("build") << 8)
                | part("revision");
            assert_eq!(u64::from(from_name), packed, "{file}: {item}");
            let dotted = format!(
                "{}.{}.{}.{}",
                part("major"),
                part("minor"),
                part("build"),
                part("revision")
            );
            expected.insert((
                item["identity"]["company"].as_u64().unwrap() as u16,
                item["identity"]["product"].as_u64().unwrap() as u16,
                from_name,
                item["shA256"].as_str().unwrap().to_ascii_lowercase(),
                item["length"].as_u64().unwrap(),
                dotted,
            ));
        }
        let got: HashSet<_> = parsed
            .entries
            .iter()
            .map(|e| {
                let Locator::Url(url) = &e.locator else {
                    panic!("LEDVANCE entries are downloaded by URL")
                };
                let dotted = url.rsplit_once("&Version=").unwrap().1.to_owned();
                assert!(url.starts_with(&format!(
                    "{LEDVANCE_URL}/download?Company={}&Product={}&",
                    e.manufacturer_code, e.image_type
                )));
                let ImageSize::FileLength(length) = e.size else {
                    panic!("LEDVANCE length is the file length")
                };
                (
                    e.manufacturer_code,
                    e.image_type,
                    e.file_version,
                    e.hash.to_hex(),
                    length,
                    dotted,
                )
            })
            .collect();
        assert_eq!(got, expected, "{file}");

        // Sorted by (company, product), newest first, whatever the response's order.
        for pair in parsed.entries.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let key =
                |e: &zigbee_otad::catalog::model::CatalogEntry| (e.manufacturer_code, e.image_type);
            assert!(key(a) < key(b) || (key(a) == key(b) && a.file_version >= b.file_version));
        }
    }
}

/// All 897 entries of the real zigbee-OTA index parse; fields and restrictions match the JSON.
#[test]
fn zigbee_ota_index_real_manifest() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    let bytes = std::fs::read(testdata.join("catalogs/index.json")).unwrap();
    let source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let parsed = zigbee_ota_index::parse(&bytes, &source).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let raw: Value = serde_json::from_slice(&bytes).unwrap();
    let raw_entries = raw.as_array().unwrap();
    assert_eq!(parsed.entries.len(), raw_entries.len());
    assert_eq!(parsed.entries.len(), 897);
    let mut with_restrictions = 0;
    for (entry, item) in parsed.entries.iter().zip(raw_entries) {
        assert_eq!(
            u64::from(entry.manufacturer_code),
            item["manufacturerCode"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(entry.image_type),
            item["imageType"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(entry.file_version),
            item["fileVersion"].as_u64().unwrap()
        );
        assert_eq!(
            entry.size,
            ImageSize::HeaderImageSize(item["fileSize"].as_u64().unwrap())
        );
        assert_eq!(
            entry.hash.to_hex(),
            item["sha512"].as_str().unwrap().to_ascii_lowercase()
        );
        assert_eq!(
            entry.locator,
            Locator::Url(item["url"].as_str().unwrap().to_owned())
        );
        let r = &entry.restrictions;
        let opt = |k: &str| item.get(k).and_then(Value::as_u64);
        assert_eq!(r.min_file_version.map(u64::from), opt("minFileVersion"));
        assert_eq!(r.max_file_version.map(u64::from), opt("maxFileVersion"));
        assert_eq!(
            r.hardware_version_min.map(u64::from),
            opt("hardwareVersionMin")
        );
        assert_eq!(
            r.hardware_version_max.map(u64::from),
            opt("hardwareVersionMax")
        );
        assert_eq!(
            r.model_id.as_deref(),
            item.get("modelId").and_then(Value::as_str)
        );
        let names: Vec<&str> = item
            .get("manufacturerName")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|n| n.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(r.manufacturer_names, names);
        if *r != Default::default() {
            with_restrictions += 1;
        }
    }
    assert!(
        with_restrictions > 200,
        "only {with_restrictions} restricted entries"
    );
}

mod limiter_month {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use zigbee_otad::catalog::limiter::{
        CallOutcome, Ledger, LimitReason, Limiter, LimiterConfig, Month,
    };

    /// xorshift64*: a deterministic stream for the simulation.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[derive(Default, Debug)]
    struct MonthTotals {
        calls: u64,
        bytes: u64,
        refused: u64,
    }

    /// Drives a limiter on a virtual clock through ~six weeks of refresh attempts against a
    /// simulated server (random sizes, 429 + Retry-After, 500s, bodies cut at the allowance),
    /// restarting from the JSON ledger now and then. Returns the per-month totals.
    fn simulate(config: LimiterConfig, seed: u64) -> BTreeMap<Month, MonthTotals> {
        let start = UNIX_EPOCH + Duration::from_secs(1_795_651_200); // 2026-11-26
        let end = start + Duration::from_secs(40 * 86_400);
        let mut rng = Rng(seed);
        let mut now = start;
        let mut limiter = Limiter::new(config, now);
        let mut totals: BTreeMap<Month, MonthTotals> = BTreeMap::new();
        let mut call_starts: Vec<SystemTime> = Vec::new();
        let mut not_before: Option<SystemTime> = None;
        let mut attempts = 0u64;
        while now < end {
            attempts += 1;
            let month = totals.entry(Month::containing(now)).or_default();
            let body_len = 100_000 + rng.below(300_000);
            match limiter.begin_call(now, body_len) {
                Err(retry) => {
                    assert!(retry.at > now, "a refusal must point to the future");
                    month.refused += 1;
                }
                Ok(permit) => {
                    if let Some(t) = not_before {
                        assert!(now >= t, "call at {now:?} before Retry-After {t:?}");
                    }
                    call_starts.push(now);
                    month.calls += 1;
                    let roll = rng.below(100);
                    let outcome = if roll < 5 {
                        let retry_after = Duration::from_secs(1 + rng.below(900));
                        not_before = Some(now + retry_after);
                        limiter.record_bytes(now, 200.min(permit.byte_allowance));
                        month.bytes += 200.min(permit.byte_allowance);
                        CallOutcome::from_status(429, Some(retry_after))
                    } else if roll < 8 {
                        CallOutcome::from_status(500, None)
                    } else {
                        // The edge stops reading at the allowance; a cut body is a failure.
                        let read = body_len.min(permit.byte_allowance);
                        limiter.record_bytes(now, read);
                        month.bytes += read;
                        if read < body_len {
                            CallOutcome::TransportError
                        } else {
                            CallOutcome::Answered
                        }
                    };
                    limiter.record_outcome(now, outcome);
                }
            }
            if attempts.is_multiple_of(500) {
                // A daemon restart: the ledger goes through its JSON form.
                let ledger = Ledger::from_json(limiter.ledger().to_json().as_bytes()).unwrap();
                limiter = Limiter::with_ledger(config, ledger);
            }
            now += Duration::from_millis(500 + rng.below(900_000));
        }
        assert!(attempts > 2000, "only {attempts} attempts");

        // Spacing: consecutive calls at least min_interval apart, so never more than
        // 60 s / min_interval calls in any 60 s window.
        for pair in call_starts.windows(2) {
            let gap = pair[1].duration_since(pair[0]).unwrap();
            assert!(gap >= config.min_interval, "calls only {gap:?} apart");
        }
        for month in totals.values() {
            assert!(month.calls <= config.monthly_calls, "{month:?}");
            assert!(month.bytes <= config.monthly_bytes, "{month:?}");
        }
        totals
    }

    #[test]
    fn a_month_of_attempts_never_exceeds_the_ledvance_budget() {
        let config = LimiterConfig::ledvance();
        let totals = simulate(config, 0x5EED_0001);
        // The byte budget was the binding limit, and it was used almost fully: the limiter is
        // strict, not merely idle.
        let december = &totals[&Month {
            year: 2026,
            month: 12,
        }];
        assert!(december.refused > 0, "{december:?}");
        assert!(
            december.bytes > config.monthly_bytes * 9 / 10,
            "{december:?}"
        );
    }

    #[test]
    fn a_month_of_attempts_never_exceeds_a_call_budget() {
        let config = LimiterConfig {
            monthly_calls: 300,
            monthly_bytes: u64::MAX,
            ..LimiterConfig::ledvance()
        };
        let totals = simulate(config, 0x5EED_0002);
        let december = &totals[&Month {
            year: 2026,
            month: 12,
        }];
        assert_eq!(december.calls, 300, "{december:?}");
        assert!(december.refused > 0);
    }

    #[test]
    fn retry_after_is_honoured_to_the_second() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
        let mut limiter = Limiter::new(LimiterConfig::ledvance(), t0);
        limiter.begin_call(t0, 1000).unwrap();
        limiter.record_outcome(
            t0,
            CallOutcome::from_status(429, Some(Duration::from_secs(3600))),
        );
        let refused = limiter
            .begin_call(t0 + Duration::from_secs(3599), 1000)
            .unwrap_err();
        assert_eq!(refused.reason, LimitReason::Backoff);
        assert_eq!(refused.at, t0 + Duration::from_secs(3600));
        assert!(
            limiter
                .begin_call(t0 + Duration::from_secs(3600), 1000)
                .is_ok()
        );
    }
}

/// The real manifest merged with both real LEDVANCE responses: the ubisys image shipped for two
/// hardware ranges at one version gives each device its own file, and every LEDVANCE product
/// offers its newest version to a device at version 0.
#[test]
fn merged_real_catalogs() {
    use zigbee_otad::catalog::merged::MergedCatalog;
    use zigbee_otad::catalog::model::DeviceQuery;
    use zigbee_otad::catalog::provider::SourceCatalog;

    let Some(testdata) = shared_testdata() else {
        return;
    };
    let index_source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let index = zigbee_ota_index::parse(
        &std::fs::read(testdata.join("catalogs/index.json")).unwrap(),
        &index_source,
    )
    .unwrap();
    let ledvance_bytes =
        std::fs::read(testdata.join("catalogs/ledvance-zigbee-OTA-cache.json")).unwrap();
    let ledvance = ledvance::parse(&ledvance_bytes, LEDVANCE_URL, &ledvance_source()).unwrap();
    let merged = MergedCatalog::new([
        SourceCatalog {
            provenance: ledvance_source(),
            entries: ledvance.entries.clone(),
        },
        SourceCatalog {
            provenance: index_source,
            entries: index.entries,
        },
    ]);

    let mut ubisys = DeviceQuery {
        manufacturer_code: 0x10F2,
        image_type: 0x7B32,
        current_file_version: 0,
        hardware_version: Some(1),
        ..DeviceQuery::default()
    };
    let low = merged.best_image(&ubisys).unwrap();
    ubisys.hardware_version = Some(2);
    let high = merged.best_image(&ubisys).unwrap();
    assert_eq!(low.file_version, high.file_version);
    assert_ne!(low.hash, high.hash);
    assert!(low.display_name.as_deref().unwrap().contains("rev0-1"));

    for entry in &ledvance.entries {
        let device = DeviceQuery {
            manufacturer_code: entry.manufacturer_code,
            image_type: entry.image_type,
            current_file_version: 0,
            ..DeviceQuery::default()
        };
        let newest = ledvance
            .entries
            .iter()
            .filter(|e| {
                (e.manufacturer_code, e.image_type) == (entry.manufacturer_code, entry.image_type)
            })
            .map(|e| e.file_version)
            .max()
            .unwrap();
        match merged.best_image(&device) {
            Ok(chosen) => assert!(chosen.file_version >= newest),
            Err(reason) => panic!("{device:?}: {reason}"),
        }
    }
}

mod cache_on_disk {
    use std::fs;
    use std::time::{Duration, UNIX_EPOCH};

    use zigbee_otad::catalog::cache::{Cache, RemovalReason, StoredCatalog, Validators, Verify};
    use zigbee_otad::catalog::model::{
        CatalogEntry, HashAlgorithm, ImageHash, ImageSize, Locator, Provenance, Restrictions,
        SourceKind,
    };

    fn entry_for(bytes: &[u8]) -> CatalogEntry {
        CatalogEntry {
            provenance: Provenance {
                source: "ledvance".into(),
                kind: SourceKind::Ledvance,
            },
            manufacturer_code: 0x1189,
            image_type: 25,
            file_version: 0x0010_2428,
            size: ImageSize::FileLength(bytes.len() as u64),
            hash: ImageHash::compute(HashAlgorithm::Sha256, bytes),
            locator: Locator::Url("https://example.org/download".into()),
            restrictions: Restrictions::default(),
            display_name: None,
            release_notes: None,
        }
    }

    /// A crash mid-write leaves a temp file with part of an image: it is never taken for the
    /// image, and the next open removes it. Corrupt and foreign files go too.
    #[test]
    fn half_written_and_corrupt_files_are_never_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let image: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let entry = entry_for(&image);
        let key = entry.hash.cache_key();
        let images = dir.path().join("images");
        let catalogs = dir.path().join("catalogs");
        fs::create_dir_all(&images).unwrap();
        fs::create_dir_all(&catalogs).unwrap();
        // What an interrupted write leaves: the temp name, half the bytes.
        fs::write(images.join(format!(".tmp-{key}-1-0")), &image[..5000]).unwrap();
        // Even a complete temp file is not trusted: only a rename publishes.
        fs::write(images.join(format!(".tmp-{key}-1-1")), &image).unwrap();
        // Rot: the right name with the wrong bytes.
        let other = entry_for(b"other image");
        fs::write(images.join(other.hash.cache_key()), b"other imagX").unwrap();
        // A name this cache never writes (e.g. a catalog's file name).
        fs::write(
            images.join("A19_RGBW_IMG0019_00102428-encrypted.ota"),
            &image,
        )
        .unwrap();
        // A truncated catalog envelope.
        fs::write(catalogs.join("ledvance.json"), b"{\"source\":\"ledv").unwrap();
        fs::write(catalogs.join(".tmp-ledvance.json-1-2"), b"{}").unwrap();

        // A plain open trusts the digest-named file (hashed when stored); asked to re-verify,
        // the open finds the rot.
        let (trusting, mut removed) = Cache::open(dir.path(), 1 << 30).unwrap();
        assert!(trusting.has_image(&other.hash));
        let (mut cache, rot) = Cache::open_with(dir.path(), 1 << 30, Verify::Rehash).unwrap();
        assert_eq!(rot.len(), 1);
        removed.extend(rot);
        assert!(!cache.has_image(&entry.hash));
        assert!(cache.image_path(&entry).is_none());
        assert!(!cache.has_image(&other.hash));
        assert!(cache.catalog("ledvance").is_none());
        let mut reasons: Vec<RemovalReason> = removed.iter().map(|r| r.reason).collect();
        reasons.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            reasons,
            vec![
                RemovalReason::Corrupt,
                RemovalReason::Corrupt,
                RemovalReason::Foreign,
                RemovalReason::PartialWrite,
                RemovalReason::PartialWrite,
                RemovalReason::PartialWrite,
            ]
        );
        assert_eq!(fs::read_dir(&images).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&catalogs).unwrap().count(), 0);

        // A proper store then works and leaves no temp file behind.
        cache.store_image(&entry, &image).unwrap();
        let names: Vec<String> = fs::read_dir(&images)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![key]);
    }

    /// A catalog whose body was altered on disk fails its digest and is dropped.
    #[test]
    fn tampered_catalog_body_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
        cache
            .store_catalog(StoredCatalog {
                source: "ledvance".into(),
                kind: SourceKind::Ledvance,
                url: "https://example.org/firmwares".into(),
                validators: Validators::default(),
                fetched_at: UNIX_EPOCH + Duration::from_secs(1_795_651_200),
                body: b"{\"firmwares\":[]}".to_vec(),
            })
            .unwrap();
        let path = dir.path().join("catalogs/ledvance.json");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("firmwares\\\":[]", "firmwares\\\":[1]")).unwrap();
        let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
        assert!(cache.catalog("ledvance").is_none());
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].reason, RemovalReason::Corrupt);
    }
}

/// The HTTP edge against a real HTTP server on 127.0.0.1 that plays the LEDVANCE API, with
/// injectable faults: 429 + Retry-After, 500, truncated bodies, wrong bytes, oversize bodies.
mod http_edge {
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
    use zigbee_otad::catalog::model::{
        DeviceQuery, HashAlgorithm, ImageHash, Provenance, SourceKind,
    };
    use zigbee_otad::catalog::provider::SourceCatalog;
    use zigbee_otad::catalog::provider::http::{
        CatalogClient, CatalogError, HttpSettings, SourceSpec,
    };

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
        let catalog =
            std::fs::read(testdata.join("catalogs/ledvance-zigbee-OTA-cache.json")).unwrap();
        let image = std::fs::read(
            testdata.join("ota-corpus/images/A19_RGBW_IMG0019_00102428-encrypted.ota"),
        )
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
}

/// The real index as one merged catalog.
fn real_index() -> Option<zigbee_otad::catalog::merged::MergedCatalog> {
    use zigbee_otad::catalog::merged::MergedCatalog;
    use zigbee_otad::catalog::provider::SourceCatalog;
    let testdata = shared_testdata()?;
    let source = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let parsed = zigbee_ota_index::parse(
        &std::fs::read(testdata.join("catalogs/index.json")).unwrap(),
        &source,
    )
    .unwrap();
    assert_eq!(parsed.entries.len(), 897);
    Some(MergedCatalog::new([SourceCatalog {
        provenance: source,
        entries: parsed.entries,
    }]))
}

/// A device each entry was written for: its code and type, the lowest version the entry
/// accepts (below the entry's own), the lowest hardware version of its range, its `modelId`
/// and its first `manufacturerName`.
fn device_for(
    entry: &zigbee_otad::catalog::model::CatalogEntry,
) -> zigbee_otad::catalog::model::DeviceQuery<'_> {
    let r = &entry.restrictions;
    zigbee_otad::catalog::model::DeviceQuery {
        manufacturer_code: entry.manufacturer_code,
        image_type: entry.image_type,
        current_file_version: r.min_file_version.unwrap_or(0),
        hardware_version: r.hardware_version_min.or(r.hardware_version_max),
        model_id: r.model_id.as_deref(),
        manufacturer_name: r.manufacturer_names.first().map(String::as_str),
    }
}

/// Reach over the real index: a device built from each of the 897 entries is offered that
/// entry or a newer one whose restrictions it meets. Before devices had an identity, the 309
/// entries restricted by `modelId` or `manufacturerName` could never be offered (588/897).
#[test]
fn reach_over_the_real_index() {
    let Some(merged) = real_index() else {
        return;
    };
    let mut reached = 0;
    let mut missed = Vec::new();
    for entry in merged.entries() {
        let device = device_for(entry);
        match merged.best_image(&device) {
            Ok(offered)
                if offered.file_version >= entry.file_version
                    && offered.restrictions.check(&device).is_ok() =>
            {
                reached += 1
            }
            other => missed.push(format!(
                "{:04x}/{:04x}/{:08x} {:?}: {:?}",
                entry.manufacturer_code,
                entry.image_type,
                entry.file_version,
                entry.display_name,
                other.map(|e| e.file_version)
            )),
        }
    }
    eprintln!("reach over the real index: {reached}/897");
    for miss in &missed {
        eprintln!("  not reached: {miss}");
    }
    assert_eq!(reached, 897, "{missed:#?}");
}

/// No wrong offers: a device that differs from a restricted entry only in its model or its
/// manufacturer name (or does not know them) is never offered an entry it does not meet.
#[test]
fn restricted_entries_never_reach_other_models_or_manufacturers() {
    use zigbee_otad::catalog::model::DeviceQuery;
    let Some(merged) = real_index() else {
        return;
    };
    let mut checked = 0;
    for entry in merged.entries() {
        let r = &entry.restrictions;
        if r.model_id.is_none() && r.manufacturer_names.is_empty() {
            continue;
        }
        let right = device_for(entry);
        let variants: [DeviceQuery<'_>; 4] = [
            DeviceQuery {
                model_id: r.model_id.as_ref().map(|_| "another-model"),
                ..right
            },
            DeviceQuery {
                manufacturer_name: (!r.manufacturer_names.is_empty()).then_some("_TZ0000_other"),
                ..right
            },
            DeviceQuery {
                model_id: None,
                ..right
            },
            DeviceQuery {
                manufacturer_name: None,
                ..right
            },
        ];
        for device in variants {
            if device == right {
                continue;
            }
            checked += 1;
            if let Ok(offered) = merged.best_image(&device) {
                assert!(
                    offered.restrictions.check(&device).is_ok(),
                    "{device:?} was offered {offered:?}"
                );
                assert_ne!(offered, entry, "{device:?} got the entry it does not meet");
            }
        }
    }
    assert!(checked > 300, "only {checked} variants checked");
}

/// A differential test against zigbee-herdsman 10.9.5's own matcher (`findMatchingOtaImage`,
/// run in node from the npm package `.ci/run` installs) over random identities drawn around the
/// real index. Herdsman is asked for every entry its predicate accepts for each device; we agree
/// on whether any of them is an update, and we offer the newest of them. (Herdsman itself takes
/// the first match in index order and offers it only when it is newer; where the index lists an
/// older matching entry before a newer one, herdsman offers nothing or the older one. Those
/// cases are counted and printed.)
#[test]
fn matching_agrees_with_zigbee_herdsman() {
    use zigbee_otad::catalog::model::DeviceQuery;
    let Some(merged) = real_index() else {
        return;
    };
    let Some(herdsman) = crate::common::herdsman_dir() else {
        eprintln!(
            "SKIPPED: zigbee-herdsman is not installed (.ci/run installs it from npm); \
             the differential test against its matcher did not run"
        );
        return;
    };
    let index = shared_testdata().unwrap().join("catalogs/index.json");
    // xorshift64*: deterministic identities.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    };
    let entries = merged.entries();
    let mut devices = Vec::new();
    for _ in 0..600 {
        let entry = &entries[next(entries.len() as u64) as usize];
        let r = &entry.restrictions;
        let other = &entries[next(entries.len() as u64) as usize];
        let version = match next(4) {
            0 => 0,
            1 => entry.file_version.saturating_sub(1),
            2 => entry.file_version,
            _ => next(u64::from(u32::MAX)) as u32,
        };
        let hardware = match next(3) {
            0 => None,
            1 => r.hardware_version_min.or(Some(1)),
            _ => Some(next(64) as u16),
        };
        let model = match next(3) {
            0 => None,
            1 => r.model_id.clone(),
            _ => other.restrictions.model_id.clone(),
        };
        let name = match next(3) {
            0 => None,
            1 => r.manufacturer_names.first().cloned(),
            _ => other.restrictions.manufacturer_names.first().cloned(),
        };
        devices.push((
            entry.manufacturer_code,
            entry.image_type,
            version,
            hardware,
            model,
            name,
        ));
    }
    let request: Vec<Value> = devices
        .iter()
        .map(|(code, image_type, version, hardware, model, name)| {
            serde_json::json!({
                "manufacturerCode": code, "imageType": image_type, "fileVersion": version,
                "hardwareVersion": hardware, "modelId": model, "manufacturerName": name,
            })
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/herdsman_match.js");
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .arg(&index)
        .env("NODE_PATH", herdsman.join("node_modules"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&request).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed: {out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["herdsman"], "10.9.5");
    let answers = answer["answers"].as_array().unwrap();
    assert_eq!(answers.len(), devices.len());
    let mut updates = 0;
    let mut first_match_differs = 0;
    for ((code, image_type, version, hardware, model, name), theirs) in devices.iter().zip(answers)
    {
        let query = DeviceQuery {
            manufacturer_code: *code,
            image_type: *image_type,
            current_file_version: *version,
            hardware_version: *hardware,
            model_id: model.as_deref(),
            manufacturer_name: name.as_deref(),
        };
        let ours = merged.best_image(&query).ok();
        let matches = theirs["matches"].as_array().unwrap();
        let newest = matches
            .iter()
            .filter_map(|m| m["fileVersion"].as_u64())
            .max()
            .filter(|&v| v > u64::from(*version));
        assert_eq!(
            ours.map(|e| u64::from(e.file_version)),
            newest,
            "{query:?}: herdsman's matches {matches:?}"
        );
        if let Some(entry) = ours {
            updates += 1;
            let hash = entry.hash.to_hex();
            assert!(
                matches
                    .iter()
                    .any(|m| m["fileVersion"] == entry.file_version
                        && m["sha512"].as_str().unwrap().eq_ignore_ascii_case(&hash)),
                "{query:?}: we offer {hash}, not among {matches:?}"
            );
        }
        if theirs["available"].as_bool().unwrap() != ours.is_some()
            || (ours.is_some() && matches[0]["fileVersion"].as_u64() != newest)
        {
            first_match_differs += 1;
        }
    }
    eprintln!(
        "herdsman's predicate agrees on {} identities ({updates} with an update); herdsman's \
         first-match choice differs from the newest match for {first_match_differs}",
        devices.len()
    );
    assert!(
        updates > 100,
        "too few identities with an update ({updates})"
    );
}
