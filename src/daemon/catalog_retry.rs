//! When to try the cloud catalogs again after a refresh that failed (sans-IO policy; the main
//! loop in `service.rs` arms the timer). CATALOGS.md, "rate limits".
//!
//! The scheduled refresh runs every `refresh_interval` (an hour or more). A gateway that boots
//! with the network down, or whose catalog server answers 500 once, would otherwise wait that long
//! for its catalogs. After a refresh with a failure the next attempt comes sooner: 1 minute, then
//! doubling, never later than the regular refresh and never before the limiter's own backoff for
//! a source ends. The limiter stays the only authority on calls: an attempt it holds back makes
//! no request, so retrying can never break a rate limit.

use std::time::Duration;

use crate::catalog::service::{CatalogOutcome, DownloadOutcome, RefreshReport};

/// The first retry after a failed refresh.
pub const FIRST_RETRY: Duration = Duration::from_secs(60);

/// The retry schedule: the delay grows while refreshes keep failing and resets on a clean one.
#[derive(Debug, Default, Clone)]
pub struct CatalogRetry {
    delay: Option<Duration>,
}

impl CatalogRetry {
    /// Called after each full refresh, and after an image fetch that failed while no retry was
    /// pending. Returns how long until the next attempt when that is
    /// sooner than `refresh_interval`, or `None` when the regular schedule is enough (nothing
    /// failed, or the backoff has grown to the interval). `now_unix` is the wall clock in
    /// seconds, to compare with the limiter's hold times in the report.
    pub fn after_refresh(
        &mut self,
        report: &RefreshReport,
        now_unix: u64,
        refresh_interval: Duration,
    ) -> Option<Duration> {
        if !needs_retry(report) {
            self.delay = None;
            return None;
        }
        let doubled = self
            .delay
            .map_or(FIRST_RETRY, |delay| delay.saturating_mul(2));
        let held_until = held_after_failures(report)
            .map(|until_unix| Duration::from_secs(until_unix.saturating_sub(now_unix)))
            .min()
            .unwrap_or_default();
        let delay = doubled.max(held_until);
        self.delay = Some(delay.min(refresh_interval));
        (delay < refresh_interval).then_some(delay)
    }
}

/// A refresh needs a retry when a catalog call or an image download failed, or when either is
/// still held back after an earlier failure (the source's backoff, or the image's own hold). A
/// call held back by the minimum interval or a spent monthly quota is not a failure: the regular
/// schedule handles those.
pub fn needs_retry(report: &RefreshReport) -> bool {
    !report.errors.is_empty()
        || report.sources.iter().any(|source| {
            !source.errors.is_empty()
                || matches!(source.catalog, CatalogOutcome::Failed { .. })
                || source
                    .downloads
                    .iter()
                    .any(|download| matches!(download.outcome, DownloadOutcome::Failed { .. }))
        })
        || held_after_failures(report).next().is_some()
}

/// Until when (Unix seconds) catalog calls and image downloads are held back because they
/// failed before.
fn held_after_failures(report: &RefreshReport) -> impl Iterator<Item = u64> + '_ {
    let after_failure = |reason: &str| reason == "backoff" || reason.starts_with("failed ");
    report.sources.iter().flat_map(move |source| {
        let catalog = match &source.catalog {
            CatalogOutcome::Skipped { until_unix, reason } if after_failure(reason) => {
                Some(*until_unix)
            }
            _ => None,
        };
        let downloads =
            source
                .downloads
                .iter()
                .filter_map(move |download| match &download.outcome {
                    DownloadOutcome::Deferred { until_unix, reason } if after_failure(reason) => {
                        Some(*until_unix)
                    }
                    _ => None,
                });
        catalog.into_iter().chain(downloads)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::service::{Download, SourceRefresh, Usage};

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: u64 = 1_795_000_000;

    fn report(catalog: CatalogOutcome, errors: &[&str]) -> RefreshReport {
        let source = SourceRefresh {
            name: "ledvance".to_owned(),
            kind: "ledvance".to_owned(),
            catalog,
            entries: 0,
            downloads: Vec::new(),
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            usage: Usage::default(),
        };
        RefreshReport {
            started_unix: NOW,
            finished_unix: NOW,
            sources: vec![source],
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: Vec::new(),
        }
    }

    fn failed() -> RefreshReport {
        let error = "connection refused";
        report(
            CatalogOutcome::Failed {
                error: error.to_owned(),
            },
            &[error],
        )
    }

    #[test]
    fn a_clean_refresh_needs_no_early_retry() {
        let mut retry = CatalogRetry::default();
        let clean = report(CatalogOutcome::Changed { rejected: 0 }, &[]);
        assert_eq!(retry.after_refresh(&clean, NOW, HOUR), None);
        let unchanged = report(CatalogOutcome::Unchanged, &[]);
        assert_eq!(retry.after_refresh(&unchanged, NOW, HOUR), None);
    }

    #[test]
    fn failures_retry_after_a_minute_doubling_up_to_the_interval_then_reset() {
        let mut retry = CatalogRetry::default();
        let delays: Vec<_> = (0..8)
            .map(|_| retry.after_refresh(&failed(), NOW, HOUR))
            .collect();
        let minutes = |m: u64| Some(Duration::from_secs(60 * m));
        assert_eq!(
            delays,
            [
                minutes(1),
                minutes(2),
                minutes(4),
                minutes(8),
                minutes(16),
                minutes(32),
                None, // 64 minutes: the hourly refresh comes first
                None,
            ]
        );
        let clean = report(CatalogOutcome::Unchanged, &[]);
        assert_eq!(retry.after_refresh(&clean, NOW, HOUR), None);
        assert_eq!(retry.after_refresh(&failed(), NOW, HOUR), minutes(1));
    }

    #[test]
    fn never_before_the_limiter_backoff_ends() {
        let mut retry = CatalogRetry::default();
        let held = report(
            CatalogOutcome::Skipped {
                until_unix: NOW + 300,
                reason: "backoff".to_owned(),
            },
            &[],
        );
        assert_eq!(
            retry.after_refresh(&held, NOW, HOUR),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn a_spent_quota_or_the_minimum_interval_is_not_a_failure() {
        let mut retry = CatalogRetry::default();
        for reason in ["min-interval", "monthly-calls", "monthly-bytes"] {
            let held = report(
                CatalogOutcome::Skipped {
                    until_unix: NOW + 600,
                    reason: reason.to_owned(),
                },
                &[],
            );
            assert_eq!(retry.after_refresh(&held, NOW, HOUR), None, "{reason}");
        }
    }

    #[test]
    fn a_held_image_is_retried_when_its_hold_ends() {
        let mut retry = CatalogRetry::default();
        let mut held = report(CatalogOutcome::Unchanged, &[]);
        held.sources[0].downloads.push(Download {
            manufacturer_code: 0x1189,
            image_type: 0x0042,
            file_version: 2,
            sha: "ab".repeat(64),
            outcome: DownloadOutcome::Deferred {
                until_unix: NOW + 90,
                reason: "failed 1 time(s) before".to_owned(),
            },
        });
        assert_eq!(
            retry.after_refresh(&held, NOW, HOUR),
            Some(Duration::from_secs(90))
        );
        held.sources[0].downloads[0].outcome = DownloadOutcome::Failed {
            error: "No space left on device (os error 28)".to_owned(),
        };
        assert_eq!(
            retry.after_refresh(&held, NOW, HOUR),
            Some(Duration::from_secs(180)),
            "a failed download (recorded only as its outcome) doubles the delay"
        );
    }

    #[test]
    fn a_failed_download_alone_is_retried() {
        let mut retry = CatalogRetry::default();
        let download_failed = report(
            CatalogOutcome::Unchanged,
            &["image: No space left on device"],
        );
        assert_eq!(
            retry.after_refresh(&download_failed, NOW, HOUR),
            Some(FIRST_RETRY)
        );
    }
}
