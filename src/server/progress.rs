//! What the server reports: per-transfer progress (device, image, offset, bytes/s, %, ETA) for
//! the status socket, the events the daemon logs and acts on, and the kept history of finished
//! and failed transfers. Field names follow ARCHITECTURE.md's `status --json` `transfers[]`.

use std::time::{Duration, Instant};

use super::image::ImageKey;
use super::policy::NoImageReason;
use super::{DeviceAddr, Ieee, ZclStatus};

/// Where a transfer stands (`status --json` `state`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    /// Over the concurrency cap: told WAIT_FOR_DATA, waiting for a slot.
    #[default]
    Queued,
    /// Every byte served; waiting for the device's Upgrade End Request.
    Waiting,
    /// Holding a slot and downloading.
    Downloading,
    /// Received and verified by the device (Upgrade End Request SUCCESS), which was told to
    /// wait for the command to apply it (`apply`, the apply window).
    Downloaded,
    /// Told to apply the image (Upgrade End Response with an upgrade time).
    Finished,
    /// Ended without an upgrade.
    Failed,
    /// Stopped by the installer (`cancel`, `hold`).
    Cancelled,
}

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// The device sent an Upgrade End Request with this status (INVALID_IMAGE, ABORT,
    /// REQUIRE_MORE_IMAGE, ...).
    DeviceReported(ZclStatus),
    /// No request for the idle timeout: the device is gone or gave up.
    IdleTimeout,
    /// The whole image was served but no Upgrade End Request came in time.
    NoUpgradeEnd,
    /// The device moved on to another image before finishing this one.
    Superseded,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureReason::DeviceReported(status) => {
                write!(f, "device reported {status:?} in its Upgrade End Request")
            }
            FailureReason::IdleTimeout => f.write_str("no request within the idle timeout"),
            FailureReason::NoUpgradeEnd => {
                f.write_str("image served but no Upgrade End Request came")
            }
            FailureReason::Superseded => f.write_str("the device moved on to another image"),
        }
    }
}

fn serialize_ieee<S: serde::Serializer>(ieee: &Option<Ieee>, s: S) -> Result<S::Ok, S::Error> {
    match ieee {
        Some(ieee) => s.collect_str(ieee),
        None => s.serialize_none(),
    }
}

fn serialize_failure<S: serde::Serializer>(
    failure: &Option<FailureReason>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match failure {
        Some(failure) => s.collect_str(failure),
        None => s.serialize_none(),
    }
}

/// A snapshot of one transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransferProgress {
    /// The device's IEEE address, when known.
    #[serde(serialize_with = "serialize_ieee")]
    pub ieee: Option<Ieee>,
    /// Its network address when last heard.
    pub nwk: u16,
    /// The image's manufacturer code.
    pub manufacturer_code: u16,
    /// The image type.
    pub image_type: u16,
    /// The image's file version.
    pub file_version: u32,
    /// The highest offset served so far (bytes the device has, if it kept them all).
    pub offset: u32,
    /// The image size.
    pub image_size: u32,
    /// Where the transfer stands.
    pub state: TransferState,
    /// Average rate since the transfer started (or resumed), when measurable.
    pub bytes_per_second: Option<u32>,
    /// Seconds left at that rate, while downloading.
    pub eta_seconds: Option<u64>,
    /// `offset` as a whole percentage of `image_size`.
    pub percent: u8,
    /// Why it failed, for failed transfers.
    #[serde(serialize_with = "serialize_failure")]
    pub failure: Option<FailureReason>,
    /// Whether the device later reported the new version (`None` until it queries again).
    pub confirmed: Option<bool>,
    /// The version the device ran when the transfer started, when known.
    #[serde(default)]
    pub from_version: Option<u32>,
}

/// What the server knows of one device (`status --json` `devices[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceStatus {
    /// Its IEEE address, when known.
    #[serde(serialize_with = "serialize_ieee")]
    pub ieee: Option<Ieee>,
    /// Its network address when last heard.
    pub nwk: u16,
    /// Manufacturer code from its last Query Next Image Request.
    pub manufacturer_code: Option<u16>,
    /// Image type from that query.
    pub image_type: Option<u16>,
    /// The file version it reported running.
    pub current_file_version: Option<u32>,
    /// Its hardware version, if it sent one.
    pub hardware_version: Option<u16>,
    /// The version it was offered in answer, if any.
    pub offered_file_version: Option<u32>,
    /// Why nothing was offered, when nothing was.
    pub withheld: Option<String>,
    /// What its Basic cluster says it is, once read.
    pub identity: Option<crate::zcl::basic::BasicIdentity>,
    /// The version the policy would give it, offered or not (approval, hold, cancel).
    pub available_file_version: Option<u32>,
    /// True when the installer approved the available version (always true with
    /// `install = "auto"`).
    pub approved: bool,
    /// True while `hold` keeps it at its version.
    pub held: bool,
    /// Its place in the queue for a download slot (1 = next), while it waits for one.
    pub queue_position: Option<usize>,
}

/// Bytes per second and ETA from what was served over `elapsed`.
pub(crate) fn rate_and_eta(
    served: u64,
    elapsed: Duration,
    remaining: u32,
) -> (Option<u32>, Option<u64>) {
    let millis = elapsed.as_millis();
    if served == 0 || millis == 0 {
        return (None, None);
    }
    let rate = u128::from(served) * 1000 / millis;
    let rate = u32::try_from(rate).unwrap_or(u32::MAX);
    let eta = (rate > 0).then(|| u64::from(remaining).div_ceil(u64::from(rate)));
    (Some(rate).filter(|r| *r > 0), eta)
}

/// `part` of `whole` as a whole percentage.
pub(crate) fn percent(part: u32, whole: u32) -> u8 {
    if whole == 0 {
        return 100;
    }
    let p = u64::from(part.min(whole)) * 100 / u64::from(whole);
    u8::try_from(p).unwrap_or(100)
}

/// Something the daemon should log, show or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A device was offered an image (first time, or a different one than before).
    ImageOffered {
        /// The device.
        device: DeviceAddr,
        /// The image.
        image: ImageKey,
        /// Its size.
        image_size: u32,
    },
    /// A device was told NO_IMAGE_AVAILABLE for a reason other than "nothing for it" (emitted
    /// when the reason changes, not on every query).
    ImageWithheld {
        /// The device.
        device: DeviceAddr,
        /// Why.
        reason: NoImageReason,
    },
    /// A device over the concurrency cap was told to come back later (once per transfer; later
    /// refusals are only logged, at debug).
    TransferQueued {
        /// The device.
        device: DeviceAddr,
        /// The image it wants.
        image: ImageKey,
        /// The `request_time` it was given.
        retry_after: Duration,
    },
    /// A device got a slot and its first block.
    TransferStarted {
        /// The device.
        device: DeviceAddr,
        /// The image.
        image: ImageKey,
        /// Where it started (non-zero when it resumes).
        offset: u32,
    },
    /// Progress, at most every 10 %.
    Progress(TransferProgress),
    /// Every byte of the image has been served.
    DownloadComplete {
        /// The device.
        device: DeviceAddr,
        /// The image.
        image: ImageKey,
    },
    /// An Upgrade End Response was sent (the transfer is finished).
    UpgradeScheduled {
        /// The device.
        device: DeviceAddr,
        /// The image.
        image: ImageKey,
        /// Seconds until the device applies it (0 = now, `u32::MAX` = wait for a command).
        upgrade_time: u32,
    },
    /// A transfer ended without an upgrade.
    TransferFailed {
        /// The device.
        device: DeviceAddr,
        /// The image.
        image: ImageKey,
        /// Why.
        reason: FailureReason,
    },
    /// The device's next Query Next Image reported the new version.
    UpgradeConfirmed {
        /// The device.
        device: DeviceAddr,
        /// The image it now runs.
        image: ImageKey,
    },
    /// A transfer reached an end state (downloaded, finished, failed, cancelled): one record
    /// for the persisted history.
    TransferEnded {
        /// The transfer as it ended.
        progress: TransferProgress,
        /// When it started (its first block, or when it was first seen this run).
        started_at: Instant,
    },
    /// The device's next Query Next Image reported another version than the one it got.
    UpgradeNotApplied {
        /// The device.
        device: DeviceAddr,
        /// The image it was given.
        image: ImageKey,
        /// The version it reports.
        running_version: u32,
    },
}

/// The transfer bookkeeping kept per session.
#[derive(Debug)]
pub(crate) struct TransferStats {
    pub(crate) started_at: Instant,
    pub(crate) start_offset: u32,
    pub(crate) offset: u32,
    pub(crate) served: u64,
    pub(crate) last_block_at: Instant,
    pub(crate) next_report_percent: u8,
}

impl TransferStats {
    pub(crate) fn new(now: Instant, offset: u32) -> Self {
        TransferStats {
            started_at: now,
            start_offset: offset,
            offset,
            served: 0,
            last_block_at: now,
            next_report_percent: 10,
        }
    }

    /// Records a served block ending at `end`; returns true when a 10 % milestone was crossed.
    pub(crate) fn record_block(&mut self, now: Instant, len: u32, end: u32, size: u32) -> bool {
        if self.served == 0 {
            // The rate is measured from the first block on: the time before it (a query, a
            // wait for a slot) says nothing about the link.
            self.started_at = now;
            self.start_offset = end;
        }
        self.served += u64::from(len);
        self.offset = self.offset.max(end);
        self.last_block_at = now;
        let p = percent(self.offset, size);
        if p >= self.next_report_percent {
            self.next_report_percent = (p / 10 + 1).saturating_mul(10);
            true
        } else {
            false
        }
    }

    pub(crate) fn rate_and_eta(&self, size: u32) -> (Option<u32>, Option<u64>) {
        let progressed = self.offset.saturating_sub(self.start_offset);
        rate_and_eta(
            u64::from(progressed),
            self.last_block_at
                .saturating_duration_since(self.started_at),
            size.saturating_sub(self.offset),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_from_served_bytes() {
        assert_eq!(rate_and_eta(0, Duration::from_secs(1), 100), (None, None));
        assert_eq!(
            rate_and_eta(1000, Duration::from_secs(10), 1000),
            (Some(100), Some(10))
        );
        assert_eq!(
            rate_and_eta(150, Duration::from_secs(1), 301),
            (Some(150), Some(3))
        );
    }

    #[test]
    fn percent_is_whole_and_capped() {
        assert_eq!(percent(0, 100), 0);
        assert_eq!(percent(99, 100), 99);
        assert_eq!(percent(150, 100), 100);
        assert_eq!(percent(0, 0), 100);
    }
}
