//! What a catalog refresh did, source by source: the catalog call, each image download and the
//! month's usage (shown in the log, by `zigbee-otad catalog refresh` and on the status socket).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::catalog::limiter::{LimitReason, Limiter, RetryAt, unix_seconds};
use crate::catalog::model::{CatalogEntry, SourceKind};

pub(super) fn reason_name(reason: LimitReason) -> &'static str {
    match reason {
        LimitReason::MinInterval => "min-interval",
        LimitReason::MonthlyCalls => "monthly-calls",
        LimitReason::MonthlyBytes => "monthly-bytes",
        LimitReason::Backoff => "backoff",
    }
}

/// Calls and bytes used this month against the monthly limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Calls started this month.
    pub calls: u64,
    /// The monthly call limit (`u64::MAX`, `null` in JSON, for none).
    #[serde(serialize_with = "limit_or_null")]
    pub monthly_calls: u64,
    /// Response bytes received this month.
    pub bytes: u64,
    /// The monthly byte limit (`u64::MAX`, `null` in JSON, for none).
    #[serde(serialize_with = "limit_or_null")]
    pub monthly_bytes: u64,
}

fn limit_or_null<S: serde::Serializer>(limit: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    if *limit == u64::MAX {
        serializer.serialize_none()
    } else {
        serializer.serialize_u64(*limit)
    }
}

impl Usage {
    /// A limiter's usage for the month containing `now`.
    pub fn of(limiter: &Limiter, now: SystemTime) -> Self {
        let (calls, bytes) = limiter.usage(now);
        Usage {
            calls,
            monthly_calls: limiter.config().monthly_calls,
            bytes,
            monthly_bytes: limiter.config().monthly_bytes,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |value: u64| {
            if value == u64::MAX {
                "unlimited".to_owned()
            } else {
                value.to_string()
            }
        };
        write!(
            f,
            "{} of {} calls, {} of {} bytes this month",
            self.calls,
            limit(self.monthly_calls),
            self.bytes,
            limit(self.monthly_bytes)
        )
    }
}

/// What became of a source's catalog call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CatalogOutcome {
    /// A new catalog was stored.
    Changed {
        /// Entries the parser refused (each is logged by the parser's error).
        rejected: usize,
    },
    /// 304 Not Modified: the cached catalog stays.
    Unchanged,
    /// The limiter held the call back; no request was made.
    Skipped {
        /// When a call may be made (seconds since the Unix epoch).
        until_unix: u64,
        /// `min-interval`, `backoff`, `monthly-calls` or `monthly-bytes`.
        reason: String,
    },
    /// The call failed; the cached catalog stays.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// No call was asked for ([`CatalogService::fetch_images`]); the cached catalog was used.
    NotRequested,
}

impl CatalogOutcome {
    pub(super) fn skipped(retry: RetryAt) -> Self {
        CatalogOutcome::Skipped {
            until_unix: unix_seconds(retry.at),
            reason: reason_name(retry.reason).to_owned(),
        }
    }
}

impl fmt::Display for CatalogOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogOutcome::Changed { rejected: 0 } => f.write_str("new catalog stored"),
            CatalogOutcome::Changed { rejected } => {
                write!(f, "new catalog stored ({rejected} entries refused)")
            }
            CatalogOutcome::Unchanged => f.write_str("unchanged (304)"),
            CatalogOutcome::Skipped { until_unix, reason } => {
                write!(
                    f,
                    "not called ({reason}) until {}",
                    format_unix(*until_unix)
                )
            }
            CatalogOutcome::Failed { error } => write!(f, "failed: {error}"),
            CatalogOutcome::NotRequested => f.write_str("not requested (cached copy used)"),
        }
    }
}

/// What became of one image download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DownloadOutcome {
    /// Downloaded, verified and stored.
    Stored {
        /// Bytes received.
        bytes: u64,
    },
    /// The limiter held it back; no request was made. A later refresh tries again.
    Deferred {
        /// When a call may be made (seconds since the Unix epoch).
        until_unix: u64,
        /// `min-interval`, `backoff`, `monthly-calls` or `monthly-bytes` (the limiter held it
        /// back), or `failed N time(s) before` (this image's download failed, see
        /// [`CatalogService::refresh`]).
        reason: String,
    },
    /// The download failed or did not verify; nothing was stored.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for DownloadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadOutcome::Stored { bytes } => write!(f, "stored ({bytes} bytes)"),
            DownloadOutcome::Deferred { until_unix, reason } => {
                write!(f, "deferred ({reason}) until {}", format_unix(*until_unix))
            }
            DownloadOutcome::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// One image download attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Download {
    /// The image's manufacturer code.
    pub manufacturer_code: u16,
    /// Its image type.
    pub image_type: u16,
    /// Its file version.
    pub file_version: u32,
    /// Its published digest (hex).
    pub sha: String,
    /// What happened.
    pub outcome: DownloadOutcome,
}

impl Download {
    /// The report line of `entry`'s download and what became of it.
    pub fn of(entry: &CatalogEntry, outcome: DownloadOutcome) -> Self {
        Download {
            manufacturer_code: entry.manufacturer_code,
            image_type: entry.image_type,
            file_version: entry.file_version,
            sha: entry.hash.to_hex(),
            outcome,
        }
    }
}

impl fmt::Display for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "image {:04x}/{:04x}/{:08x}: {}",
            self.manufacturer_code, self.image_type, self.file_version, self.outcome
        )
    }
}

/// One source's part of a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRefresh {
    /// The source name (as in the cache, the logs and the status).
    pub name: String,
    /// `ledvance` or `zigbee-ota-index`.
    pub kind: String,
    /// The catalog call.
    pub catalog: CatalogOutcome,
    /// Entries in the catalog now cached for this source.
    pub entries: usize,
    /// Image downloads attempted.
    pub downloads: Vec<Download>,
    /// Every failure, in order.
    pub errors: Vec<String>,
    /// What the installer may want to know that is no failure (a LEDVANCE list answered 410
    /// and the `newer` calls served; one device kind the service called invalid), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// This month's usage after the refresh.
    pub usage: Usage,
}

impl SourceRefresh {
    pub(super) fn new(name: &str, kind: SourceKind) -> Self {
        SourceRefresh {
            name: name.to_owned(),
            kind: kind.config_name().to_owned(),
            catalog: CatalogOutcome::Unchanged,
            entries: 0,
            downloads: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// Bytes of images stored by this refresh.
    pub fn downloaded_bytes(&self) -> u64 {
        self.downloads
            .iter()
            .map(|d| match d.outcome {
                DownloadOutcome::Stored { bytes } => bytes,
                _ => 0,
            })
            .sum()
    }
}

/// What one refresh did (the log, `catalog refresh`, and the status socket show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// When it started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// When it finished.
    pub finished_unix: u64,
    /// One line per cloud source, in config order.
    pub sources: Vec<SourceRefresh>,
    /// Cache files removed by pruning.
    pub pruned: Vec<String>,
    /// Bytes the cache is still over its cap (referenced images are never pruned).
    pub cache_over_cap_by: u64,
    /// Failures not tied to one source.
    pub errors: Vec<String>,
}

impl RefreshReport {
    /// A run that could not start: no source line, one general error.
    pub fn failed(error: String) -> Self {
        RefreshReport {
            started_unix: 0,
            finished_unix: 0,
            sources: Vec::new(),
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: vec![error],
        }
    }

    /// True when nothing failed (skips and deferrals are not failures).
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.sources.iter().all(|s| s.errors.is_empty())
    }
}

impl fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.sources {
            writeln!(f, "{} ({}): catalog {}", line.name, line.kind, line.catalog)?;
            writeln!(f, "  {} entries cached; {}", line.entries, line.usage)?;
            for download in &line.downloads {
                writeln!(f, "  {download}")?;
            }
            let downloaded = line.downloaded_bytes();
            if downloaded > 0 {
                writeln!(f, "  {downloaded} image bytes downloaded")?;
            }
            // Failed downloads already named their error on their own line.
            let shown = |error: &String| {
                line.downloads.iter().any(
                    |d| matches!(&d.outcome, DownloadOutcome::Failed { error: e } if e == error),
                )
            };
            for error in line.errors.iter().filter(|error| !shown(error)) {
                writeln!(f, "  error: {error}")?;
            }
            for note in &line.notes {
                writeln!(f, "  note: {note}")?;
            }
        }
        if !self.pruned.is_empty() {
            writeln!(
                f,
                "pruned {} images to keep the cache under its cap",
                self.pruned.len()
            )?;
        }
        if self.cache_over_cap_by > 0 {
            writeln!(
                f,
                "cache is {} bytes over its cap (all referenced)",
                self.cache_over_cap_by
            )?;
        }
        for error in &self.errors {
            writeln!(f, "error: {error}")?;
        }
        Ok(())
    }
}

/// A step of a refresh, for a progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A source's catalog call ended (or was skipped).
    Catalog {
        /// The source.
        source: String,
        /// What happened.
        outcome: CatalogOutcome,
    },
    /// An image download ended (or was deferred).
    Download {
        /// The source.
        source: String,
        /// What happened.
        download: Download,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Catalog { source, outcome } => write!(f, "{source}: catalog {outcome}"),
            Progress::Download { source, download } => write!(f, "{source}: {download}"),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub(crate) fn format_unix(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_names_every_outcome() {
        let report = RefreshReport {
            started_unix: 1_795_651_200,
            finished_unix: 1_795_651_206,
            sources: vec![SourceRefresh {
                name: "ledvance".into(),
                kind: "ledvance".into(),
                catalog: CatalogOutcome::Skipped {
                    until_unix: 1_795_651_260,
                    reason: "backoff".into(),
                },
                entries: 2,
                downloads: vec![Download {
                    manufacturer_code: 0x1189,
                    image_type: 0x19,
                    file_version: 0x0010_2428,
                    sha: "ab".into(),
                    outcome: DownloadOutcome::Stored { bytes: 180_052 },
                }],
                errors: vec!["boom".into()],
                notes: vec!["the list answered 410".into()],
                usage: Usage {
                    calls: 2,
                    monthly_calls: 100_000,
                    bytes: 180_100,
                    monthly_bytes: 100_000_000,
                },
            }],
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: Vec::new(),
        };
        let text = report.to_string();
        for expected in [
            "not called (backoff) until 2026-11-26T00:01:00Z",
            "image 1189/0019/00102428: stored (180052 bytes)",
            "2 of 100000 calls, 180100 of 100000000 bytes this month",
            "error: boom",
            "note: the list answered 410",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        assert!(!report.is_clean());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["sources"][0]["catalog"]["state"], "skipped");
        assert_eq!(json["sources"][0]["notes"][0], "the list answered 410");
        assert_eq!(json["sources"][0]["usage"]["monthly_calls"], 100_000);
        assert_eq!(
            json["sources"][0]["downloads"][0]["outcome"]["bytes"],
            180_052
        );
    }
}
