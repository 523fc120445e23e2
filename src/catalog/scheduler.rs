//! When the catalog service runs (sans-IO policy: events and `now` in, one action at a time and
//! a deadline out; CATALOGS.md, "Consequence for a gateway"). The daemon's driver does the
//! IO: it opens the service and runs it in a task of its own, and tells the scheduler when
//! that is done.
//!
//! The scheduler alone decides:
//! * **the regular refresh**, every `refresh_interval`, the first one as soon as the service is
//!   open;
//! * **the early retry** after a run that failed (a catalog call or a download that failed, or
//!   one still held back after an earlier failure): 1 min, doubling while runs keep failing,
//!   never later than the regular refresh and never before a source's limiter or an image's
//!   hold allows. The limiter stays the only authority on calls: a run it holds back makes no
//!   request, so no schedule can break a rate limit;
//! * **image holds** ([`ImageHolds`]): an image whose download failed (bytes that do not match
//!   the published digest, a full disk, a cut connection) is not downloaded again for 1 min,
//!   doubling per failure up to a day; a catalog that corrects the digest names a new image,
//!   which is not held. Each run is given the holds; the scheduler updates them from its report;
//! * **fetches for new devices**: an images-only run (no catalog call) when a device is heard
//!   from for the first time or its identity was learned;
//! * **reopening** the service when SIGHUP changed the sources (once the running run has handed
//!   the service back), and the new interval at SIGHUP.
//!
//! One run at a time: the service is moved into the run's task and handed back.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use zigbee_otad::catalog::scheduler::{CatalogAction, CatalogScheduler, RunKind};
//!
//! let start = Instant::now();
//! let mut scheduler = CatalogScheduler::new(Duration::from_secs(3600));
//! assert_eq!(scheduler.poll(start), Some(CatalogAction::Open));
//! scheduler.opened(true, start);
//! assert_eq!(scheduler.poll(start), Some(CatalogAction::Run(RunKind::Full)));
//! assert_eq!(scheduler.poll(start), None, "one run at a time");
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::limiter::unix_seconds;
use super::model::CatalogEntry;
use super::service::{CatalogOutcome, Download, DownloadOutcome, RefreshReport};

/// The first retry after a failed run.
pub const FIRST_RETRY: Duration = Duration::from_secs(60);
/// How long an image whose download failed is not downloaded again (doubling per failure).
pub const FAILED_IMAGE_HOLD: Duration = Duration::from_secs(60);
/// The longest such hold.
pub const FAILED_IMAGE_HOLD_MAX: Duration = Duration::from_secs(24 * 3600);
/// Most image holds kept (each image a catalog names can fail; a lying catalog cannot grow this
/// without bound).
const MAX_IMAGE_HOLDS: usize = 4096;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Catalog calls, then the downloads for the known devices (`CatalogService::refresh`).
    Full,
    /// A full refresh that comes early because the last run failed.
    Retry,
    /// Only the downloads, from the cached catalogs (`CatalogService::fetch_images`).
    ImagesOnly,
}

/// What the driver should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogAction {
    /// Drop the service (if any) and open one for the current configuration, then call
    /// [`CatalogScheduler::opened`].
    Open,
    /// Run the service (with [`CatalogScheduler::holds`]), then call
    /// [`CatalogScheduler::finished`].
    Run(RunKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No service: no cloud source, or it could not be opened.
    Closed,
    /// The service is being opened.
    Opening,
    /// The service is idle, with the daemon.
    Idle,
    /// A run holds the service.
    Running(RunKind),
}

/// The catalog schedule (see the module docs).
#[derive(Debug, Clone)]
pub struct CatalogScheduler {
    refresh_interval: Duration,
    state: State,
    /// The configuration asks for a (new) service: acted on when nothing holds the old one.
    reopen: bool,
    next_refresh: Option<Instant>,
    /// The last early-retry delay, while runs keep failing.
    retry_delay: Option<Duration>,
    retry_at: Option<Instant>,
    devices_heard: usize,
    devices_at_run: usize,
    identity_learned: bool,
    holds: ImageHolds,
}

impl CatalogScheduler {
    /// A scheduler whose first action opens the service.
    pub fn new(refresh_interval: Duration) -> Self {
        CatalogScheduler {
            refresh_interval,
            state: State::Closed,
            reopen: true,
            next_refresh: None,
            retry_delay: None,
            retry_at: None,
            devices_heard: 0,
            devices_at_run: 0,
            identity_learned: false,
            holds: ImageHolds::default(),
        }
    }

    /// What to do at `now`, if anything. Call it after every event and at
    /// [`CatalogScheduler::poll_timeout`].
    pub fn poll(&mut self, now: Instant) -> Option<CatalogAction> {
        match self.state {
            State::Opening | State::Running(_) => None,
            _ if self.reopen => {
                self.reopen = false;
                self.state = State::Opening;
                Some(CatalogAction::Open)
            }
            State::Closed => None,
            State::Idle => {
                let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
                let kind = if due(self.next_refresh) || due(self.retry_at) {
                    let kind = if due(self.next_refresh) {
                        RunKind::Full
                    } else {
                        RunKind::Retry
                    };
                    self.next_refresh = Some(now + self.refresh_interval);
                    self.retry_at = None;
                    kind
                } else if self.devices_heard > self.devices_at_run || self.identity_learned {
                    RunKind::ImagesOnly
                } else {
                    return None;
                };
                self.devices_at_run = self.devices_heard;
                self.identity_learned = false;
                self.state = State::Running(kind);
                Some(CatalogAction::Run(kind))
            }
        }
    }

    /// When [`CatalogScheduler::poll`] has work next without another event.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Idle {
            return None;
        }
        self.next_refresh.into_iter().chain(self.retry_at).min()
    }

    /// The service was opened (`true`), or there is none (no cloud source, or opening failed).
    /// An open service refreshes at once.
    pub fn opened(&mut self, open: bool, now: Instant) {
        self.retry_delay = None;
        self.retry_at = None;
        self.holds = ImageHolds::default();
        if open {
            self.state = State::Idle;
            self.next_refresh = Some(now);
        } else {
            self.state = State::Closed;
            self.next_refresh = None;
        }
    }

    /// The OTA server has heard from `devices` devices: more than at the last run asks for an
    /// images-only run.
    pub fn devices_heard(&mut self, devices: usize) {
        self.devices_heard = devices;
    }

    /// A device's Basic-cluster identity was learned: restricted images may now be wanted.
    pub fn identity_learned(&mut self) {
        self.identity_learned = true;
    }

    /// The holds to give the next run.
    pub fn holds(&self) -> &ImageHolds {
        &self.holds
    }

    /// A run ended with `report` (`now` for the schedule, `wall` to compare with the report's
    /// hold times). Returns the early retry's delay when one was armed.
    pub fn finished(
        &mut self,
        report: &RefreshReport,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Duration> {
        let State::Running(kind) = self.state else {
            return None;
        };
        self.state = State::Idle;
        self.holds.absorb(report, wall);
        let failed = needs_retry(report);
        // An images-only run leaves a pending retry alone: that retry covers its images too and
        // must not be pushed later.
        if kind == RunKind::ImagesOnly && (self.retry_at.is_some() || !failed) {
            return None;
        }
        if !failed {
            self.retry_delay = None;
            self.retry_at = None;
            return None;
        }
        let doubled = self
            .retry_delay
            .map_or(FIRST_RETRY, |delay| delay.saturating_mul(2));
        let now_unix = unix_seconds(wall);
        let held = held_after_failures(report)
            .map(|until_unix| Duration::from_secs(until_unix.saturating_sub(now_unix)))
            .min()
            .unwrap_or_default();
        let delay = doubled.max(held);
        self.retry_delay = Some(delay.min(self.refresh_interval));
        self.retry_at = (delay < self.refresh_interval).then(|| now + delay);
        self.retry_at.map(|_| delay)
    }

    /// SIGHUP applied a configuration: a new interval counts from `now`; changed sources reopen
    /// the service (after the running run) and forget the retry and the holds.
    pub fn configured(&mut self, refresh_interval: Duration, sources_changed: bool, now: Instant) {
        if refresh_interval != self.refresh_interval {
            self.refresh_interval = refresh_interval;
            if self.next_refresh.is_some() {
                self.next_refresh = Some(now + refresh_interval);
            }
        }
        if sources_changed {
            self.reopen = true;
        }
    }

    /// True while a run or an open holds the service.
    pub fn busy(&self) -> bool {
        matches!(self.state, State::Opening | State::Running(_))
    }
}

/// A run needs a retry when a catalog call or an image download failed, or when either is
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
/// failed before: a source's backoff, or an image's hold.
fn held_after_failures(report: &RefreshReport) -> impl Iterator<Item = u64> + '_ {
    let after_failure = |reason: &str| reason == "backoff" || reason.starts_with(HOLD_REASON);
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

/// How a held image's deferral reason starts (`failed N time(s) before`).
const HOLD_REASON: &str = "failed ";

/// A failed image download's hold: until when, after how many failures in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHold {
    /// Not downloaded before this time.
    pub until: SystemTime,
    /// Failures in a row.
    pub failures: u32,
}

impl ImageHold {
    /// The hold after one more failure at `now`: [`FAILED_IMAGE_HOLD`], doubled for each
    /// failure before, at most [`FAILED_IMAGE_HOLD_MAX`].
    fn after_failure(previous: Option<ImageHold>, now: SystemTime) -> Self {
        let failures = previous.map_or(0, |hold| hold.failures).saturating_add(1);
        let doublings = failures.saturating_sub(1).min(16);
        let hold = FAILED_IMAGE_HOLD
            .saturating_mul(1u32 << doublings)
            .min(FAILED_IMAGE_HOLD_MAX);
        ImageHold {
            until: now + hold,
            failures,
        }
    }
}

/// The images whose download failed, by published digest (hex, as in the report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageHolds(HashMap<String, ImageHold>);

impl ImageHolds {
    /// The hold on `entry` at `now`, if one is still running.
    pub fn active(&self, entry: &CatalogEntry, now: SystemTime) -> Option<ImageHold> {
        self.0
            .get(&entry.hash.to_hex())
            .copied()
            .filter(|hold| hold.until > now)
    }

    /// The report line of a download not tried because of `hold`.
    pub fn deferral(entry: &CatalogEntry, hold: ImageHold) -> Download {
        Download::of(
            entry,
            DownloadOutcome::Deferred {
                until_unix: unix_seconds(hold.until),
                reason: format!("{HOLD_REASON}{} time(s) before", hold.failures),
            },
        )
    }

    /// Learns from a run's downloads at `now`: a failure holds the image (longer each time), a
    /// stored image is released.
    pub fn absorb(&mut self, report: &RefreshReport, now: SystemTime) {
        for download in report.sources.iter().flat_map(|s| &s.downloads) {
            match download.outcome {
                DownloadOutcome::Failed { .. } => {
                    let previous = self.0.get(&download.sha).copied();
                    if previous.is_none() && self.0.len() >= MAX_IMAGE_HOLDS {
                        self.0.retain(|_, hold| hold.until > now);
                    }
                    if previous.is_some() || self.0.len() < MAX_IMAGE_HOLDS {
                        self.0.insert(
                            download.sha.clone(),
                            ImageHold::after_failure(previous, now),
                        );
                    }
                }
                DownloadOutcome::Stored { .. } => {
                    self.0.remove(&download.sha);
                }
                DownloadOutcome::Deferred { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::catalog::service::{SourceRefresh, Usage};

    const HOUR: Duration = Duration::from_secs(3600);
    const MINUTE: Duration = Duration::from_secs(60);

    /// The virtual clock: a monotonic start and the wall time it stands for.
    struct Clock {
        start: Instant,
        wall: SystemTime,
        elapsed: Duration,
    }

    impl Clock {
        #[allow(clippy::disallowed_methods)] // any base will do: only durations from it count
        fn new() -> Self {
            Clock {
                start: Instant::now(),
                wall: UNIX_EPOCH + Duration::from_secs(1_795_651_200),
                elapsed: Duration::ZERO,
            }
        }
        fn now(&self) -> Instant {
            self.start + self.elapsed
        }
        fn wall(&self) -> SystemTime {
            self.wall + self.elapsed
        }
        fn unix(&self) -> u64 {
            unix_seconds(self.wall())
        }
        fn advance(&mut self, by: Duration) {
            self.elapsed += by;
        }
        /// Jumps to the scheduler's deadline.
        fn jump_to_deadline(&mut self, scheduler: &CatalogScheduler) {
            let at = scheduler.poll_timeout().expect("a deadline");
            self.elapsed = at.duration_since(self.start);
        }
    }

    fn entry() -> CatalogEntry {
        use crate::catalog::model::{
            HashAlgorithm, ImageHash, ImageSize, Locator, Provenance, Restrictions, SourceKind,
        };
        CatalogEntry {
            provenance: Provenance {
                source: "ledvance".into(),
                kind: SourceKind::Ledvance,
            },
            manufacturer_code: 0x1189,
            image_type: 0x19,
            file_version: 2,
            size: ImageSize::FileLength(3),
            hash: ImageHash::compute(HashAlgorithm::Sha256, b"abc"),
            locator: Locator::Url("https://example.org/a.ota".into()),
            restrictions: Restrictions::default(),
            display_name: None,
            release_notes: None,
        }
    }

    fn source(catalog: CatalogOutcome, downloads: Vec<Download>) -> SourceRefresh {
        SourceRefresh {
            name: "ledvance".into(),
            kind: "ledvance".into(),
            catalog,
            entries: 1,
            downloads,
            errors: Vec::new(),
            notes: Vec::new(),
            usage: Usage::default(),
        }
    }

    fn report(sources: Vec<SourceRefresh>) -> RefreshReport {
        RefreshReport {
            started_unix: 0,
            finished_unix: 0,
            sources,
            pruned: Vec::new(),
            cache_over_cap_by: 0,
            errors: Vec::new(),
        }
    }

    fn clean() -> RefreshReport {
        report(vec![source(CatalogOutcome::Unchanged, Vec::new())])
    }

    fn failed_call() -> RefreshReport {
        report(vec![source(
            CatalogOutcome::Failed {
                error: "connection refused".into(),
            },
            Vec::new(),
        )])
    }

    fn download(sha: &str, outcome: DownloadOutcome) -> Download {
        Download {
            manufacturer_code: 0x1189,
            image_type: 0x19,
            file_version: 2,
            sha: sha.into(),
            outcome,
        }
    }

    fn failed_download(sha: &str) -> RefreshReport {
        report(vec![source(
            CatalogOutcome::Unchanged,
            vec![download(
                sha,
                DownloadOutcome::Failed {
                    error: "digest".into(),
                },
            )],
        )])
    }

    /// A scheduler with its service open at `clock`, its first run started.
    fn open(clock: &Clock) -> CatalogScheduler {
        let mut scheduler = CatalogScheduler::new(HOUR);
        assert_eq!(scheduler.poll(clock.now()), Some(CatalogAction::Open));
        assert_eq!(scheduler.poll(clock.now()), None, "opening");
        scheduler.opened(true, clock.now());
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::Full))
        );
        scheduler
    }

    #[test]
    fn the_regular_refresh_runs_every_interval_counted_from_its_start() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        clock.advance(Duration::from_secs(20));
        assert_eq!(
            scheduler.finished(&clean(), clock.now(), clock.wall()),
            None
        );
        assert_eq!(scheduler.poll_timeout(), Some(clock.start + HOUR));
        clock.advance(HOUR - Duration::from_secs(21));
        assert_eq!(scheduler.poll(clock.now()), None);
        clock.jump_to_deadline(&scheduler);
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::Full))
        );
        assert_eq!(scheduler.poll_timeout(), None, "nothing while it runs");
    }

    #[test]
    fn failures_retry_after_one_minute_doubling_up_to_the_interval_and_reset_when_clean() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        let mut delays = Vec::new();
        for _ in 0..8 {
            let delay = scheduler.finished(&failed_call(), clock.now(), clock.wall());
            delays.push(delay);
            clock.jump_to_deadline(&scheduler);
            // Early while the delay is shorter than the interval; then the regular refresh.
            let kind = if delay.is_some() {
                RunKind::Retry
            } else {
                RunKind::Full
            };
            assert_eq!(scheduler.poll(clock.now()), Some(CatalogAction::Run(kind)));
        }
        let minutes: Vec<Option<u64>> =
            delays.iter().map(|d| d.map(|d| d.as_secs() / 60)).collect();
        // 1, 2, 4, 8, 16, 32 minutes, then the hourly refresh takes over.
        assert_eq!(
            minutes[..7],
            [Some(1), Some(2), Some(4), Some(8), Some(16), Some(32), None]
        );
        // A clean run resets the delay: the next failure waits a minute again.
        assert_eq!(
            scheduler.finished(&clean(), clock.now(), clock.wall()),
            None
        );
        clock.jump_to_deadline(&scheduler);
        scheduler.poll(clock.now());
        assert_eq!(
            scheduler.finished(&failed_call(), clock.now(), clock.wall()),
            Some(MINUTE)
        );
    }

    #[test]
    fn a_retry_never_comes_before_the_limiter_allows() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        let until = clock.unix() + 600;
        let backoff = report(vec![source(
            CatalogOutcome::Skipped {
                until_unix: until,
                reason: "backoff".into(),
            },
            Vec::new(),
        )]);
        assert_eq!(
            scheduler.finished(&backoff, clock.now(), clock.wall()),
            Some(Duration::from_secs(600))
        );
        // A call held back by the minimum interval or the quota is not a failure.
        clock.jump_to_deadline(&scheduler);
        scheduler.poll(clock.now());
        let quota = report(vec![source(
            CatalogOutcome::Skipped {
                until_unix: clock.unix() + 86_400,
                reason: "monthly-calls".into(),
            },
            Vec::new(),
        )]);
        assert_eq!(scheduler.finished(&quota, clock.now(), clock.wall()), None);
    }

    #[test]
    fn a_failed_image_is_held_one_minute_doubling_and_released_once_stored() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        let entry = entry();
        let sha = entry.hash.to_hex();
        scheduler.finished(&failed_download(&sha), clock.now(), clock.wall());
        let hold = scheduler.holds().active(&entry, clock.wall()).unwrap();
        assert_eq!((hold.failures, hold.until), (1, clock.wall() + MINUTE));
        let deferral = ImageHolds::deferral(&entry, hold);
        let held = report(vec![source(CatalogOutcome::Unchanged, vec![deferral])]);
        assert!(
            needs_retry(&held),
            "a held image is retried once its hold ends"
        );

        clock.jump_to_deadline(&scheduler);
        assert!(scheduler.holds().active(&entry, clock.wall()).is_none());
        scheduler.poll(clock.now());
        scheduler.finished(&failed_download(&sha), clock.now(), clock.wall());
        let hold = scheduler.holds().active(&entry, clock.wall()).unwrap();
        assert_eq!((hold.failures, hold.until), (2, clock.wall() + 2 * MINUTE));

        clock.jump_to_deadline(&scheduler);
        scheduler.poll(clock.now());
        let stored = report(vec![source(
            CatalogOutcome::Unchanged,
            vec![download(&sha, DownloadOutcome::Stored { bytes: 10 })],
        )]);
        assert_eq!(scheduler.finished(&stored, clock.now(), clock.wall()), None);
        assert!(scheduler.holds().0.is_empty());
    }

    #[test]
    fn holds_grow_to_a_day_at_most() {
        let now = UNIX_EPOCH;
        let mut hold = None;
        for _ in 0..40 {
            hold = Some(ImageHold::after_failure(hold, now));
        }
        assert_eq!(hold.unwrap().until, now + FAILED_IMAGE_HOLD_MAX);
    }

    #[test]
    fn a_new_device_or_identity_fetches_images_between_refreshes() {
        let clock = Clock::new();
        let mut scheduler = open(&clock);
        scheduler.devices_heard(2);
        assert_eq!(scheduler.poll(clock.now()), None, "a run is going on");
        scheduler.finished(&clean(), clock.now(), clock.wall());
        // Heard during the first run (which saw none): fetched after it.
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::ImagesOnly))
        );
        scheduler.finished(&clean(), clock.now(), clock.wall());
        assert_eq!(scheduler.poll(clock.now()), None);
        scheduler.devices_heard(2);
        assert_eq!(scheduler.poll(clock.now()), None, "no new device");
        scheduler.identity_learned();
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::ImagesOnly))
        );
        // An images-only run that fails arms the retry; one that ends clean leaves it alone.
        assert_eq!(
            scheduler.finished(&failed_call(), clock.now(), clock.wall()),
            Some(MINUTE)
        );
        scheduler.devices_heard(3);
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::ImagesOnly))
        );
        assert_eq!(
            scheduler.finished(&clean(), clock.now(), clock.wall()),
            None
        );
        assert_eq!(scheduler.poll_timeout(), Some(clock.now() + MINUTE));
    }

    #[test]
    fn changed_sources_reopen_after_the_running_run_and_forget_retry_and_holds() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        let entry = entry();
        scheduler.configured(HOUR, true, clock.now());
        assert_eq!(
            scheduler.poll(clock.now()),
            None,
            "the run holds the service"
        );
        scheduler.finished(
            &failed_download(&entry.hash.to_hex()),
            clock.now(),
            clock.wall(),
        );
        assert_eq!(scheduler.poll(clock.now()), Some(CatalogAction::Open));
        clock.advance(Duration::from_secs(5));
        scheduler.opened(true, clock.now());
        assert!(scheduler.holds().active(&entry, clock.wall()).is_none());
        assert_eq!(scheduler.poll_timeout(), Some(clock.now()));
        assert_eq!(
            scheduler.poll(clock.now()),
            Some(CatalogAction::Run(RunKind::Full))
        );

        // No cloud source any more: closed, nothing scheduled.
        scheduler.finished(&clean(), clock.now(), clock.wall());
        scheduler.configured(HOUR, true, clock.now());
        assert_eq!(scheduler.poll(clock.now()), Some(CatalogAction::Open));
        scheduler.opened(false, clock.now());
        assert_eq!(scheduler.poll(clock.now()), None);
        assert_eq!(scheduler.poll_timeout(), None);
    }

    #[test]
    fn a_new_interval_at_sighup_counts_from_then() {
        let mut clock = Clock::new();
        let mut scheduler = open(&clock);
        scheduler.finished(&clean(), clock.now(), clock.wall());
        clock.advance(10 * MINUTE);
        scheduler.configured(2 * HOUR, false, clock.now());
        assert_eq!(scheduler.poll_timeout(), Some(clock.now() + 2 * HOUR));
        assert_eq!(scheduler.poll(clock.now()), None, "no reopen");
    }
}
