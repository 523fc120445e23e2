//! The HTTP edge of the catalog (IO): fetches catalogs and images with reqwest over rustls
//! (ring provider), within each source's [`Limiter`], and hands only verified bytes to the
//! [`Cache`]. CATALOGS.md "Consequence for a gateway" sets the rules followed here:
//!
//! * HTTPS only; plain `http://` only to loopback addresses (local mirrors, tests), also after
//!   redirects.
//! * Every call asks the limiter first and reports back (bytes, 429/5xx, `Retry-After`); a
//!   refused call makes no request at all.
//! * Response bodies are read chunk by chunk up to a cap (the catalog cap, the image's published
//!   size, and the month's remaining byte budget, whichever is smallest).
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

use super::{CatalogParseError, ParsedCatalog, parse_catalog};
use crate::catalog::cache::{Cache, CacheError, StoredCatalog, Validators};
use crate::catalog::limiter::{CallOutcome, Limiter, RetryAt};
use crate::catalog::model::{CatalogEntry, Locator, Provenance, SourceKind};

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
    /// The URL is not HTTPS (and not plain HTTP to a loopback address).
    #[error("refusing {url:?}: only https, or http to a loopback address, is allowed")]
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
            max_catalog_bytes: 32 * 1024 * 1024,
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
        // Err means a provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if allowed_url(attempt.url()) {
                attempt.follow()
            } else {
                attempt.error("redirect to a non-https, non-loopback URL")
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(redirects)
            .user_agent(concat!("zigbee-otad/", env!("CARGO_PKG_VERSION")))
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
        let permit = limiter
            .begin_call(now, self.settings.max_catalog_bytes)
            .map_err(|retry| CatalogError::RateLimited {
                source_name: name.clone(),
                retry,
            })?;
        let response = self
            .exchange(request, url.as_str(), permit.byte_allowance, limiter, now)
            .await?;
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
            (Exchange::Body { body, headers }, _) => {
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

    /// Makes sure `entry`'s image is in the cache: nothing to do when it already is; otherwise
    /// downloads it (within the limiter), verifies digest and size, and stores it.
    pub async fn ensure_image(
        &self,
        entry: &CatalogEntry,
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
        let url = check_url(url_text)?;
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
        match self
            .exchange(request, url.as_str(), permit.byte_allowance, limiter, now)
            .await?
        {
            Exchange::Body { body, .. } => Ok(cache.store_image(entry, &body)?),
            Exchange::NotModified => Err(CatalogError::Http {
                url: url.to_string(),
                status: 304,
                retry_after: None,
            }),
        }
    }

    /// Sends one request and reads the body up to `byte_limit`, reporting bytes and outcome to
    /// the limiter.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        byte_limit: u64,
        limiter: &mut Limiter,
        now: SystemTime,
    ) -> Result<Exchange, CatalogError> {
        let transport = |error: reqwest::Error| CatalogError::Transport {
            url: url.to_owned(),
            message: error.to_string(),
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
        let mut body = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => {
                    limiter.record_bytes(now, len_u64(&body));
                    limiter.record_outcome(now, CallOutcome::TransportError);
                    return Err(transport(error));
                }
            };
            let room = byte_limit.saturating_sub(len_u64(&body));
            if len_u64(&chunk) > room {
                // The bytes did cross the link, so they count. Content-Length was checked
                // first, so only a server that lies about it gets here.
                limiter.record_bytes(now, len_u64(&body).saturating_add(len_u64(&chunk)));
                limiter.record_outcome(now, CallOutcome::Answered);
                return Err(CatalogError::TooLarge {
                    url: url.to_owned(),
                    limit: byte_limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        limiter.record_bytes(now, len_u64(&body));
        limiter.record_outcome(now, CallOutcome::Answered);
        Ok(Exchange::Body { body, headers })
    }
}

enum Exchange {
    NotModified,
    Body { body: Vec<u8>, headers: HeaderMap },
}

/// Parses a URL and applies the transport rule: https anywhere, plain http only to a loopback
/// address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn check_url(url: &str) -> Result<reqwest::Url, CatalogError> {
    let parsed = reqwest::Url::parse(url).map_err(|error| CatalogError::BadUrl {
        url: url.to_owned(),
        reason: error.to_string(),
    })?;
    if allowed_url(&parsed) {
        Ok(parsed)
    } else {
        Err(CatalogError::InsecureUrl {
            url: url.to_owned(),
        })
    }
}

fn allowed_url(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => url.host_str().is_some_and(|host| {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            match literal.parse::<IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => host.eq_ignore_ascii_case("localhost"),
            }
        }),
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
