//! The HTTP edge of the catalog (IO): fetches catalogs and images with reqwest over rustls
//! (ring provider), within each source's [`Limiter`], and hands only verified bytes to the
//! [`Cache`]. CATALOGS.md "Consequence for a gateway" sets the rules followed here:
//!
//! * HTTPS only; plain `http://` only when the configured source itself is on a loopback
//!   address (local mirrors, tests), and then only to loopback addresses. A source on a public
//!   host never reaches a loopback or private address literal, nor `localhost`, not even over
//!   https: the rule holds for the source URL, every redirect and every catalog entry's URL.
//! * Every call asks the limiter first and reports back (bytes, 429/5xx, `Retry-After`); a
//!   refused call makes no request at all.
//! * Response bodies are read chunk by chunk up to a cap (the catalog cap, the image's published
//!   size, and the month's remaining byte budget, whichever is smallest). Images stream to a
//!   temporary file in the cache while they are hashed, never into memory, and no image may
//!   pass 16 MiB: an entry declaring more is refused before any request.
//! * Conditional catalog requests (`If-None-Match` / `If-Modified-Since`) with the validators
//!   kept per source in the cache.
//! * Images are checked against the published digest and size before they are stored.
//!
//! `now` is an argument here too: the daemon passes the wall clock, tests a virtual one.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use reqwest::header::{
    ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};

use super::ledvance_newer::{self, NewerAnswer, NewerQuery};
use super::{CatalogParseError, ParsedCatalog, parse_catalog};
use crate::catalog::cache::{Cache, CacheError, StoredCatalog, Validators};
use crate::catalog::limiter::{CallOutcome, Limiter, RetryAt};
use crate::catalog::model::ImageSize;
use crate::catalog::model::{CatalogEntry, Locator, Provenance, SourceKind};
use crate::catalog::partial_image::{MAX_IMAGE_DOWNLOAD_BYTES, PartialWriteError};

/// Longest header value kept as a validator.
const MAX_VALIDATOR_BYTES: usize = 1024;
/// Most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// A catalog or image could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The limiter refused the call; no request was made.
    #[error("source {source_name:?}: {retry}")]
    RateLimited {
        /// The source.
        source_name: String,
        /// When a call may be made.
        retry: RetryAt,
    },
    /// The URL is not HTTPS, or reaches further than its source may (see the module docs).
    #[error(
        "refusing {url:?}: only https is allowed, to public hosts unless the configured source is itself local; plain http only when the source is on a loopback address"
    )]
    InsecureUrl {
        /// The URL.
        url: String,
    },
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{url}: HTTP {status}")]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Connection, TLS, timeout or a body cut short.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The body is larger than allowed (size cap or the month's remaining byte budget).
    #[error("{url}: response exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit that was hit.
        limit: u64,
    },
    /// The catalog does not parse.
    #[error("source {source_name:?}: {error}")]
    Decode {
        /// The source.
        source_name: String,
        /// What was wrong.
        error: CatalogParseError,
    },
    /// The cache refused the bytes (digest or size mismatch) or could not write.
    #[error("{0}")]
    Cache(#[from] CacheError),
    /// An entry listed as cached is not in the cache, and has no URL to fetch it from.
    #[error("image {0} is not in the cache and has no download URL")]
    NotDownloadable(String),
    /// This source kind is not fetched over HTTP.
    #[error("source kind {0} is not fetched over HTTP")]
    NotHttp(SourceKind),
    /// The HTTP client could not be built.
    #[error("HTTP client setup failed: {0}")]
    Setup(String),
    /// The source's ledger could not be saved with the call counted, so the call was not
    /// made (a restart would not have known about it).
    #[error("call not made: {0}")]
    LedgerNotSaved(String),
}

/// Timeouts and caps for the HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// TCP + TLS connection timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (including the body).
    pub request_timeout: Duration,
    /// Largest catalog body read.
    pub max_catalog_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_catalog_bytes: 8 * 1024 * 1024,
        }
    }
}

/// One configured HTTP catalog source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source's provenance (name and kind).
    pub provenance: Provenance,
    /// The catalog URL.
    pub url: String,
}

/// How many CA certificates `pem` holds (PEM blocks; text around them is ignored).
pub fn count_certificates(pem: &[u8]) -> Result<usize, CatalogError> {
    reqwest::Certificate::from_pem_bundle(pem)
        .map(|roots| roots.len())
        .map_err(|error| CatalogError::Setup(format!("CA certificates: {error}")))
}

/// The result of a catalog refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// False when the server answered 304 Not Modified and the cached catalog was kept.
    pub changed: bool,
    /// The catalog now in the cache, parsed.
    pub catalog: ParsedCatalog,
}

/// The HTTP client for catalogs and images.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl CatalogClient {
    /// Builds the client: rustls with the ring provider (installed process-wide if no provider
    /// is yet), the timeouts, and a redirect policy that keeps the https-or-loopback rule.
    pub fn new(settings: HttpSettings) -> Result<Self, CatalogError> {
        Self::build(settings, Vec::new())
    }

    /// [`CatalogClient::new`], also trusting the CA certificates in `pem` (one or more PEM
    /// blocks; text around them is ignored) beside the system roots: for a source whose
    /// server a private CA signed (IKEA's firmware host; a local mirror).
    pub fn with_extra_roots(settings: HttpSettings, pem: &[u8]) -> Result<Self, CatalogError> {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|error| CatalogError::Setup(format!("CA certificates: {error}")))?;
        if roots.is_empty() {
            return Err(CatalogError::Setup(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned(),
            ));
        }
        Self::build(settings, roots)
    }

    fn build(
        settings: HttpSettings,
        extra_roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, CatalogError> {
        // Err means a provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The chain's first URL was checked against its configured source, so it stands for
        // the source's reach.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let reach = attempt.previous().first().map_or(Reach::Public, reach_of);
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if allowed_url(attempt.url(), reach) {
                attempt.follow()
            } else {
                attempt.error("redirect to a URL its source may not reach")
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(redirects)
            .user_agent(concat!("zigbee-otad/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(extra_roots)
            .build()
            .map_err(|error| CatalogError::Setup(error.to_string()))?;
        Ok(CatalogClient { client, settings })
    }

    /// Fetches a source's catalog (conditionally, when the cache holds validators), parses it,
    /// and stores it in the cache. A 304 keeps the cached catalog. A catalog that does not
    /// parse is not stored: the previous one stays in service.
    pub async fn refresh_source(
        &self,
        source: &SourceSpec,
        cache: &mut Cache,
        limiter: &mut Limiter,
        now: SystemTime,
    ) -> Result<Refreshed, CatalogError> {
        let name = &source.provenance.source;
        let kind = source.provenance.kind;
        if kind == SourceKind::Directory {
            return Err(CatalogError::NotHttp(kind));
        }
        let url = check_url(&source.url)?;
        let cached = cache
            .catalog(name)
            .filter(|stored| stored.kind == kind && stored.url == source.url)
            .cloned();
        let mut request = self.client.get(url.clone());
        if let Some(stored) = &cached {
            if let Some(etag) = &stored.validators.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = &stored.validators.last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        let (response, body) = self.fetch_document(request, &url, name, limiter, now).await;
        let response = response?;
        let parse = |body: &[u8]| {
            parse_catalog(kind, body, &source.url, &source.provenance).map_err(|error| {
                CatalogError::Decode {
                    source_name: name.clone(),
                    error,
                }
            })
        };
        match (response, cached) {
            (Exchange::NotModified, Some(mut stored)) => {
                let catalog = parse(&stored.body)?;
                stored.fetched_at = now;
                cache.store_catalog(stored)?;
                Ok(Refreshed {
                    changed: false,
                    catalog,
                })
            }
            (Exchange::NotModified, None) => Err(CatalogError::Http {
                url: url.to_string(),
                status: 304,
                retry_after: None,
            }),
            (Exchange::Body { headers }, _) => {
                let catalog = parse(&body)?;
                cache.store_catalog(StoredCatalog {
                    source: name.clone(),
                    kind,
                    url: source.url.clone(),
                    validators: Validators {
                        etag: header_text(&headers, ETAG),
                        last_modified: header_text(&headers, LAST_MODIFIED),
                    },
                    fetched_at: now,
                    body,
                })?;
                Ok(Refreshed {
                    changed: true,
                    catalog,
                })
            }
        }
    }

    /// One documented LEDVANCE `newer` call (see [`ledvance_newer`]) within the source's
    /// limiter: 200 is read as the newer firmwares, 204 is nothing newer, 400 an invalid
    /// request (both counted as answered calls, with no backoff); 429 and 5xx back the source
    /// off as any call does, and come back as [`CatalogError::Http`].
    pub async fn ledvance_newer(
        &self,
        source: &SourceSpec,
        query: NewerQuery,
        limiter: &mut Limiter,
        now: SystemTime,
    ) -> Result<NewerAnswer, CatalogError> {
        let name = &source.provenance.source;
        let text = query.url(&source.url);
        let url = check_url_within(&text, source_reach(&source.url)?)?;
        let request = self.client.get(url.clone());
        let (response, body) = self.fetch_document(request, &url, name, limiter, now).await;
        match response {
            Ok(Exchange::Body { .. }) => ledvance_newer::read_answer(&body)
                .map(NewerAnswer::Newer)
                .map_err(|error| CatalogError::Decode {
                    source_name: name.clone(),
                    error,
                }),
            Err(CatalogError::Http { status: 204, .. }) => Ok(NewerAnswer::NoneNewer),
            Err(CatalogError::Http { status: 400, .. }) => Ok(NewerAnswer::Invalid),
            Err(error) => Err(error),
            Ok(Exchange::NotModified) => Err(CatalogError::Http {
                url: url.to_string(),
                status: 304,
                retry_after: None,
            }),
        }
    }

    /// Makes sure `entry`'s image is in the cache: nothing to do when it already is; otherwise
    /// downloads it (within the limiter) to a temporary file while hashing it, verifies digest
    /// and size, and stores it. `source_url` is the configured URL of the entry's source: the
    /// entry's URL may reach no further than it (see the module docs).
    pub async fn ensure_image(
        &self,
        entry: &CatalogEntry,
        source_url: &str,
        cache: &mut Cache,
        limiter: &mut Limiter,
        now: SystemTime,
    ) -> Result<(), CatalogError> {
        if cache.image_path(entry).is_some() {
            return Ok(());
        }
        let url_text = match &entry.locator {
            Locator::Url(url) => url,
            Locator::CacheKey(hash) => return Err(CatalogError::NotDownloadable(hash.to_string())),
        };
        let url = check_url_within(url_text, source_reach(source_url)?)?;
        if entry.size.download_limit()
            > MAX_IMAGE_DOWNLOAD_BYTES.saturating_add(ImageSize::WRAPPER_ALLOWANCE)
            || entry.size.bytes() > MAX_IMAGE_DOWNLOAD_BYTES
        {
            return Err(CatalogError::TooLarge {
                url: url.to_string(),
                limit: MAX_IMAGE_DOWNLOAD_BYTES,
            });
        }
        let rate_limited = |retry| CatalogError::RateLimited {
            source_name: entry.provenance.source.clone(),
            retry,
        };
        limiter
            .check_budget(now, entry.size.bytes())
            .map_err(rate_limited)?;
        let permit = limiter
            .begin_call(now, entry.size.download_limit())
            .map_err(rate_limited)?;
        let request = self.client.get(url.clone());
        let mut partial = cache.begin_image(entry)?;
        let limit = permit.byte_allowance.min(partial.limit());
        let mut write_failure = None;
        let exchange = self
            .exchange(
                request,
                url.as_str(),
                limit,
                limiter,
                now,
                &mut |chunk: &[u8]| match partial.write(chunk) {
                    Ok(()) => Ok(()),
                    Err(PartialWriteError::OverCap(_)) => Err(SinkFull),
                    Err(PartialWriteError::Io(error)) => {
                        write_failure = Some(error);
                        Err(SinkFull)
                    }
                },
            )
            .await;
        if let Some(source) = write_failure {
            return Err(CatalogError::Cache(CacheError::Io {
                operation: "write",
                path: partial.path().to_owned(),
                source,
            }));
        }
        match exchange? {
            Exchange::Body { .. } => Ok(cache.commit_image(partial)?),
            Exchange::NotModified => Err(CatalogError::Http {
                url: url.to_string(),
                status: 304,
                retry_after: None,
            }),
        }
    }

    /// One call for a catalog document (at most the catalog cap) within the limiter: the
    /// exchange's outcome and the body read into memory.
    async fn fetch_document(
        &self,
        request: reqwest::RequestBuilder,
        url: &reqwest::Url,
        source_name: &str,
        limiter: &mut Limiter,
        now: SystemTime,
    ) -> (Result<Exchange, CatalogError>, Vec<u8>) {
        let mut body = Vec::new();
        let permit = match limiter.begin_call(now, self.settings.max_catalog_bytes) {
            Ok(permit) => permit,
            Err(retry) => {
                let refused = CatalogError::RateLimited {
                    source_name: source_name.to_owned(),
                    retry,
                };
                return (Err(refused), body);
            }
        };
        let response = self
            .exchange(
                request,
                url.as_str(),
                permit.byte_allowance,
                limiter,
                now,
                &mut |chunk: &[u8]| {
                    body.extend_from_slice(chunk);
                    Ok(())
                },
            )
            .await;
        (response, body)
    }

    /// Sends one request and hands the body, chunk by chunk, to `sink` up to `byte_limit`,
    /// reporting bytes and outcome to the limiter. A sink that refuses a chunk ends the
    /// exchange as [`CatalogError::TooLarge`].
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        byte_limit: u64,
        limiter: &mut Limiter,
        now: SystemTime,
        sink: &mut (dyn FnMut(&[u8]) -> Result<(), SinkFull> + Send),
    ) -> Result<Exchange, CatalogError> {
        let transport = |error: reqwest::Error| CatalogError::Transport {
            url: url.to_owned(),
            message: with_causes(&error),
        };
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                limiter.record_outcome(now, CallOutcome::TransportError);
                return Err(transport(error));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now));
        if status == 304 {
            limiter.record_outcome(now, CallOutcome::Answered);
            return Ok(Exchange::NotModified);
        }
        if status != 200 {
            limiter.record_outcome(now, CallOutcome::from_status(status, retry_after));
            return Err(CatalogError::Http {
                url: url.to_owned(),
                status,
                retry_after,
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > byte_limit)
        {
            limiter.record_outcome(now, CallOutcome::Answered);
            return Err(CatalogError::TooLarge {
                url: url.to_owned(),
                limit: byte_limit,
            });
        }
        let headers = response.headers().clone();
        let mut received: u64 = 0;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => {
                    limiter.record_bytes(now, received);
                    limiter.record_outcome(now, CallOutcome::TransportError);
                    return Err(transport(error));
                }
            };
            let room = byte_limit.saturating_sub(received);
            received = received.saturating_add(len_u64(&chunk));
            if len_u64(&chunk) > room || sink(&chunk).is_err() {
                // The bytes did cross the link, so they count. Content-Length was checked
                // first, so only a server that lies about it (or sends forever) gets here.
                limiter.record_bytes(now, received);
                limiter.record_outcome(now, CallOutcome::Answered);
                return Err(CatalogError::TooLarge {
                    url: url.to_owned(),
                    limit: byte_limit,
                });
            }
        }
        limiter.record_bytes(now, received);
        limiter.record_outcome(now, CallOutcome::Answered);
        Ok(Exchange::Body { headers })
    }
}

/// A body sink refused a chunk (over its cap, or it could not write).
struct SinkFull;

enum Exchange {
    NotModified,
    Body { headers: HeaderMap },
}

/// Where a URL's host is, as far as its text says: a loopback address (`127.0.0.0/8`, `::1`,
/// `localhost`), a private or link-local address literal, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// A public host name or address.
    Public,
    /// A private (RFC 1918, unique local) or link-local address literal.
    Private,
    /// The machine itself.
    Loopback,
}

/// The reach of `url`'s host.
pub fn reach_of(url: &reqwest::Url) -> Reach {
    let Some(host) = url.host_str() else {
        return Reach::Public;
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Reach::Loopback,
        Ok(IpAddr::V4(v4)) if v4.is_private() || v4.is_link_local() || v4.is_unspecified() => {
            Reach::Private
        }
        Ok(IpAddr::V6(v6))
            if (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified() =>
        {
            Reach::Private
        }
        Ok(_) => Reach::Public,
        Err(_) if host.eq_ignore_ascii_case("localhost") => Reach::Loopback,
        Err(_) => Reach::Public,
    }
}

/// Parses a configured source URL and applies the transport rule: https anywhere, plain http
/// only to a loopback address.
pub fn check_url(url: &str) -> Result<reqwest::Url, CatalogError> {
    let parsed = parse_url(url)?;
    let reach = reach_of(&parsed);
    check_parsed(url, parsed, reach)
}

/// The reach of a configured source: its URL's ([`check_url`] applies), or
/// [`Reach::Loopback`] for a local index file (an absolute path).
pub fn source_reach(source: &str) -> Result<Reach, CatalogError> {
    if source.starts_with('/') {
        return Ok(Reach::Loopback);
    }
    check_url(source).map(|url| reach_of(&url))
}

/// Parses a URL found in a catalog (or a redirect) of a source of reach `source`: it may reach
/// no further than its source.
pub fn check_url_within(url: &str, source: Reach) -> Result<reqwest::Url, CatalogError> {
    let parsed = parse_url(url)?;
    check_parsed(url, parsed, source)
}

fn parse_url(url: &str) -> Result<reqwest::Url, CatalogError> {
    reqwest::Url::parse(url).map_err(|error| CatalogError::BadUrl {
        url: url.to_owned(),
        reason: error.to_string(),
    })
}

fn check_parsed(
    text: &str,
    url: reqwest::Url,
    source: Reach,
) -> Result<reqwest::Url, CatalogError> {
    if allowed_url(&url, source) {
        Ok(url)
    } else {
        Err(CatalogError::InsecureUrl {
            url: text.to_owned(),
        })
    }
}

fn allowed_url(url: &reqwest::Url, source: Reach) -> bool {
    let target = reach_of(url);
    match url.scheme() {
        "https" => url.host().is_some() && target <= source,
        "http" => target == Reach::Loopback && source == Reach::Loopback,
        _ => false,
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|text| text.len() <= MAX_VALIDATOR_BYTES)
        .map(str::to_owned)
}

/// An error with its causes ("error sending request: …: invalid peer certificate:
/// UnknownIssuer"): reqwest's own text names none of them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_url("https://api.update.ledvance.com/v1/zigbee/firmwares").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://[::1]:8080/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        for refused in [
            "http://example.org/x",
            "http://10.0.0.1/x",
            "http://127.0.0.1.example.org/x",
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(check_url(refused), Err(CatalogError::InsecureUrl { .. })),
                "{refused}"
            );
        }
        // Entries and redirects of a public source reach no loopback or LAN address, and no
        // plain http at all; a loopback source's may.
        for refused in [
            "http://127.0.0.1:8080/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://[::1]/x",
            "https://192.168.1.5/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/x",
        ] {
            assert!(
                matches!(
                    check_url_within(refused, Reach::Public),
                    Err(CatalogError::InsecureUrl { .. })
                ),
                "{refused}"
            );
        }
        assert!(check_url_within("https://cdn.example.org/fw.ota", Reach::Public).is_ok());
        assert!(check_url_within("https://192.168.1.5/x", Reach::Private).is_ok());
        assert!(check_url_within("http://192.168.1.5/x", Reach::Private).is_err());
        assert!(check_url_within("http://127.0.0.1:9/x", Reach::Loopback).is_ok());
        assert!(check_url_within("http://127.0.0.1:9/x", Reach::Private).is_err());
        assert!(matches!(
            check_url("not a url"),
            Err(CatalogError::BadUrl { .. })
        ));
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(now + Duration::from_secs(90)), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(now - Duration::from_secs(90)), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
