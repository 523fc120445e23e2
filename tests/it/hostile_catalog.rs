//! A hostile catalog (issue 18, "Prove it" 3 at the HTTP edge): a real HTTP server on
//! 127.0.0.1 serves oversized `[0,0,…]` indexes, entries declaring 4 GiB or sending forever,
//! and a public source's entries point at loopback. Each is refused early, and nothing is left
//! in the cache.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use http_body::Frame;

use zigbee_otad::catalog::cache::Cache;
use zigbee_otad::catalog::limiter::{Limiter, LimiterConfig};
use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash, Provenance, SourceKind};
use zigbee_otad::catalog::provider::CatalogParseError;
use zigbee_otad::catalog::provider::http::{CatalogClient, CatalogError, HttpSettings, SourceSpec};

use crate::common::zigbee_ota_index;

/// A body sent in 64 KiB frames without a Content-Length, so the client cannot refuse it up
/// front; `None` is endless zeros.
struct Chunked(Option<Vec<u8>>, usize);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(bytes) = &this.0 else {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[0u8; 65_536])))));
        };
        if this.1 >= bytes.len() {
            return Poll::Ready(None);
        }
        let end = (this.1 + 65_536).min(bytes.len());
        let chunk = Bytes::copy_from_slice(&bytes[this.1..end]);
        this.1 = end;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// `[0,0,0,…]`, about `len` bytes of it.
async fn zeros(Path(len): Path<usize>) -> Response {
    let mut text = Vec::with_capacity(len);
    text.push(b'[');
    while text.len() + 2 < len {
        text.extend_from_slice(b"0,");
    }
    text.extend_from_slice(b"0]");
    Response::new(Body::new(Chunked(Some(text), 0)))
}

async fn endless(State(hits): State<Hits>) -> Response {
    hits.0.fetch_add(1, Ordering::SeqCst);
    Response::new(Body::new(Chunked(None, 0)))
}

async fn serve(index: String, hits: Hits) -> String {
    let app = Router::new()
        .route("/zeros/{len}", get(zeros))
        .route("/index.json", get(move || async move { index.clone() }))
        .route("/endless.ota", get(endless))
        .with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn source(url: &str) -> SourceSpec {
    SourceSpec {
        provenance: Provenance {
            source: "index".into(),
            kind: SourceKind::ZigbeeOtaIndex,
        },
        url: url.to_owned(),
    }
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_651_200)
}

fn leftovers(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("images")).unwrap().count()
}

#[tokio::test]
async fn oversized_and_absurd_catalogs_are_refused_while_reading() {
    let base = serve(String::new(), Hits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(dir.path(), 1 << 30).unwrap().0;
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::static_host(), start());
    let mut now = start();
    // 32 MiB: cut off at the 8 MiB catalog cap while it streams in.
    let huge = client
        .refresh_source(
            &source(&format!("{base}/zeros/33554432")),
            &mut cache,
            &mut limiter,
            now,
        )
        .await;
    assert!(
        matches!(huge, Err(CatalogError::TooLarge { limit, .. }) if limit == 8 * 1024 * 1024),
        "{huge:?}"
    );
    // 4 MiB fits the cap, but its 2 million items stop the parse at item 20,001.
    now += Duration::from_secs(3600);
    let many = client
        .refresh_source(
            &source(&format!("{base}/zeros/4194304")),
            &mut cache,
            &mut limiter,
            now,
        )
        .await;
    assert!(
        matches!(
            many,
            Err(CatalogError::Decode {
                error: CatalogParseError::TooManyEntries { max: 20_000, .. },
                ..
            })
        ),
        "{many:?}"
    );
    assert!(cache.catalog("index").is_none(), "nothing stored");
}

#[tokio::test]
async fn a_4_gib_entry_is_refused_before_any_request_and_an_endless_body_at_its_size() {
    let hits = Hits::default();
    // The index is served by the same server; its entries point at the endless body.
    let placeholder = serve(String::new(), hits.clone()).await;
    let endless_url = format!("{placeholder}/endless.ota");
    let small = vec![0u8; 100_000];
    let sha = ImageHash::compute(HashAlgorithm::Sha512, &small).to_hex();
    let declared_4_gib = zigbee_ota_index(&endless_url, &small, 1, 2, &sha)
        .replace("\"fileSize\":100000", "\"fileSize\":4294967295");
    let honest_size = zigbee_ota_index(&endless_url, &small, 2, 2, &sha);
    let index = format!(
        "[{},{}]",
        declared_4_gib.trim_start_matches('[').trim_end_matches(']'),
        honest_size.trim_start_matches('[').trim_end_matches(']')
    );
    let base = serve(index, hits.clone()).await;
    let url = format!("{base}/index.json");
    let dir = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(dir.path(), 1 << 30).unwrap().0;
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::static_host(), start());
    let refreshed = client
        .refresh_source(&source(&url), &mut cache, &mut limiter, start())
        .await
        .unwrap();
    let entries = &refreshed.catalog.entries;
    assert_eq!(entries.len(), 2, "{:?}", refreshed.catalog.rejected);
    let giant = entries.iter().find(|e| e.image_type == 1).unwrap();
    let endless = entries.iter().find(|e| e.image_type == 2).unwrap();

    let mut now = start() + Duration::from_secs(60);
    let refused = client
        .ensure_image(giant, &url, &mut cache, &mut limiter, now)
        .await;
    assert!(
        matches!(refused, Err(CatalogError::TooLarge { limit, .. }) if limit == 16 * 1024 * 1024),
        "{refused:?}"
    );
    assert_eq!(hits.count(), 0, "no request for a 4 GiB image");

    now += Duration::from_secs(60);
    let cut = client
        .ensure_image(endless, &url, &mut cache, &mut limiter, now)
        .await;
    assert!(
        // fileSize is the header's image size: the download may carry 64 KiB of wrapper more.
        matches!(cut, Err(CatalogError::TooLarge { limit: 165_536, .. })),
        "{cut:?}"
    );
    assert_eq!(hits.count(), 1);
    assert!(!cache.has_image(&endless.hash));
    assert_eq!(leftovers(dir.path()), 0, "the temporary file is gone");
}

#[tokio::test]
async fn a_public_sources_entry_may_not_reach_loopback() {
    let hits = Hits::default();
    let base = serve(String::new(), hits.clone()).await;
    let small = vec![0u8; 1000];
    let sha = ImageHash::compute(HashAlgorithm::Sha512, &small).to_hex();
    let index = zigbee_ota_index(&format!("{base}/endless.ota"), &small, 3, 2, &sha);
    let parsed = zigbee_otad::catalog::provider::zigbee_ota_index::parse(
        index.as_bytes(),
        &source("https://ota.example.org/index.json").provenance,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(dir.path(), 1 << 30).unwrap().0;
    let client = CatalogClient::new(HttpSettings::default()).unwrap();
    let mut limiter = Limiter::new(LimiterConfig::static_host(), start());
    let refused = client
        .ensure_image(
            &parsed.entries[0],
            "https://ota.example.org/index.json",
            &mut cache,
            &mut limiter,
            start(),
        )
        .await;
    assert!(
        matches!(refused, Err(CatalogError::InsecureUrl { .. })),
        "{refused:?}"
    );
    assert_eq!(hits.count(), 0);
}
