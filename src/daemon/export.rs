//! The index export: a read-only HTTP/1.1 server (hyper) that offers the verified images we
//! hold to the OTA stack the user already runs — `GET /index.json` (zigbee-OTA format, for
//! Zigbee2MQTT's `zigbee_ota_override_index_location` and zigpy's `z2m` provider),
//! `GET /zigpy.json` (zigpy's `zigpy_remote` provider) and `GET /images/<sha512>.ota`.
//!
//! The content is decided in [`super::export_index`]; this is the glue. It listens where
//! `[export] listen` says (loopback by default), bounds its connections, times out slow clients,
//! answers GET and HEAD with an ETag, honours `If-None-Match` and single `Range` requests, and
//! looks images up by digest in memory: no request path is ever turned into a file path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::export_index::{self, ExportCatalog, RangeAnswer};
use super::images::LibraryView;
use crate::config::ExportSection;

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 32;
/// A client must send a request's headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection lives longer than this (an image is a few hundred KB on a LAN).
const MAX_CONNECTION_TIME: Duration = Duration::from_secs(300);
/// Longest `Host` accepted for building URLs.
const MAX_HOST_LEN: usize = 255;

/// A bound export server.
#[derive(Debug)]
pub struct ExportServer {
    listener: TcpListener,
    base_url: Option<String>,
}

struct Shared {
    catalog: watch::Receiver<Arc<ExportCatalog>>,
    base_url: Option<String>,
    local_addr: SocketAddr,
}

impl ExportServer {
    /// Binds `section.listen`.
    pub async fn bind(section: &ExportSection) -> std::io::Result<ExportServer> {
        let listener = TcpListener::bind(section.listen).await?;
        Ok(ExportServer {
            listener,
            base_url: section.base_url.clone(),
        })
    }

    /// The address actually bound (port 0 picks one).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped, rebuilding what it offers whenever `library` changes.
    pub async fn serve(self, mut library: watch::Receiver<Arc<LibraryView>>) {
        let local_addr = match self.listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => {
                tracing::error!(%error, "index export: no local address");
                return;
            }
        };
        tracing::info!(%local_addr, "index export listening (/index.json, /zigpy.json)");
        let (catalog_tx, catalog_rx) = watch::channel(Arc::new(ExportCatalog::default()));
        tokio::spawn(async move {
            loop {
                let view = library.borrow_and_update().clone();
                // Hashing every image is CPU work: keep it off the runtime's threads.
                match tokio::task::spawn_blocking(move || ExportCatalog::build(&view)).await {
                    Ok(built) => {
                        for reason in &built.left_out {
                            tracing::debug!("index export: {reason}");
                        }
                        tracing::info!(images = built.len(), "index export updated");
                        catalog_tx.send_replace(Arc::new(built));
                    }
                    Err(error) => tracing::error!(%error, "index export: building failed"),
                }
                if library.changed().await.is_err() {
                    return;
                }
            }
        });
        let shared = Arc::new(Shared {
            catalog: catalog_rx,
            base_url: self.base_url,
            local_addr,
        });
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "index export: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(answer(&shared, &request)) }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT);
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                if let Ok(Err(error)) = tokio::time::timeout(MAX_CONNECTION_TIME, connection).await
                {
                    tracing::debug!(%error, "index export: connection ended");
                }
            });
        }
    }
}

fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    if !head && request.method() != Method::GET {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET and HEAD\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let catalog = shared.catalog.borrow().clone();
    let path = request.uri().path();
    let response = match path {
        "/index.json" => index(
            request,
            catalog.zigbee_ota_index(&base_url(shared, request)),
        ),
        "/zigpy.json" => index(request, catalog.zigpy_index(&base_url(shared, request))),
        _ => match image_digest(path).and_then(|digest| catalog.image(digest)) {
            Some(image) => match image.image.read_all() {
                Ok(bytes) => image_body(request, &bytes, &image.sha512),
                Err(error) => {
                    tracing::warn!(%error, image = %image.image.key(), "index export: image unreadable");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "image unreadable\n")
                }
            },
            None => plain(StatusCode::NOT_FOUND, "no such image\n"),
        },
    };
    if head { strip_body(response) } else { response }
}

/// `/images/<128 lowercase hex>.ota` → the digest.
fn image_digest(path: &str) -> Option<&str> {
    let digest = path.strip_prefix("/images/")?.strip_suffix(".ota")?;
    (digest.len() == 128
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(digest)
}

/// `base_url` from the config, else `http://<Host>` when the Host header is a plain
/// `host[:port]`, else the bound address.
fn base_url(shared: &Shared, request: &Request<Incoming>) -> String {
    if let Some(base) = &shared.base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_HOST_LEN
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        });
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{}", shared.local_addr),
    }
}

fn index(request: &Request<Incoming>, body: Vec<u8>) -> Response<Full<Bytes>> {
    let etag = export_index::etag(&export_index::body_digest(&body));
    if not_modified(request, &etag) {
        return with_etag(empty(StatusCode::NOT_MODIFIED), &etag);
    }
    let len = body.len();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    with_etag(response, &etag)
}

fn image_body(request: &Request<Incoming>, bytes: &Bytes, sha512: &str) -> Response<Full<Bytes>> {
    let etag = export_index::etag(sha512);
    if not_modified(request, &etag) {
        return with_etag(empty(StatusCode::NOT_MODIFIED), &etag);
    }
    let len = bytes.len() as u64;
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .filter(|_| if_range_holds(request, &etag))
        .map_or(RangeAnswer::Whole, |h| export_index::parse_range(h, len));
    let mut response = match range {
        RangeAnswer::Whole => {
            let mut r = Response::new(Full::new(bytes.clone()));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
        RangeAnswer::Partial { start, end } => {
            let slice = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .and_then(|(s, e)| bytes.get(s..=e).map(|_| bytes.slice(s..=e)))
                .unwrap_or_default();
            let mut r = Response::new(Full::new(slice));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = r.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            r
        }
        RangeAnswer::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            r
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Named by digest: the bytes behind a URL never change.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    with_etag(response, &etag)
}

fn not_modified(request: &Request<Incoming>, etag: &str) -> bool {
    request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| export_index::if_none_match(h, etag))
}

/// `If-Range` with our entity tag (or absent) lets a range through; anything else (a date, an
/// old tag) gets the whole body.
fn if_range_holds(request: &Request<Incoming>, etag: &str) -> bool {
    match request.headers().get(header::IF_RANGE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| v.trim() == etag),
    }
}

fn with_etag(mut response: Response<Full<Bytes>>, etag: &str) -> Response<Full<Bytes>> {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// HEAD: the GET answer's status and headers (Content-Length included), no body.
fn strip_body(response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, Full::new(Bytes::new()))
}
