//! What a simulated OTA client (ZCL8 §11.13, client side) tells the simulator: a download
//! started, the server had no image, or an upgrade attempt ended, with the counts the fault
//! matrix reports (block requests, retries, WAIT_FOR_DATA answers, protocol violations) and
//! whether the received file was checked byte for byte.

use std::fmt;
use std::time::Duration;

use crate::zcl::ZclStatus;
use crate::zigbee::{Ieee, Nwk};

/// How an upgrade attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The image checked out and the device now runs it.
    Upgraded,
    /// The downloaded image did not match (INVALID_IMAGE was sent).
    InvalidImage,
    /// The server answered a block request with ABORT or another error status.
    Aborted {
        /// The status.
        status: ZclStatus,
    },
    /// Too many requests went unanswered.
    GaveUp,
    /// It ended the download with this failure status in its Upgrade End Request, as its
    /// configuration forced (`DeviceHooks::end_status`).
    EndedWith {
        /// The status.
        status: ZclStatus,
    },
}

/// The end of one upgrade attempt, for the simulator's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    /// The device's network address.
    pub nwk: Nwk,
    /// The device's IEEE address.
    pub ieee: Ieee,
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The version it ran before.
    pub from_version: u32,
    /// The version it was offered.
    pub to_version: u32,
    /// Size of the offered file.
    pub image_size: u32,
    /// True when the received file was checked and matched.
    pub verified: bool,
    /// How it ended.
    pub outcome: UpgradeOutcome,
    /// Image Block Requests sent (retries included).
    pub block_requests: u32,
    /// Requests sent again because no answer came in time.
    pub retries: u32,
    /// WAIT_FOR_DATA answers received.
    pub waits: u32,
    /// Answers that broke the protocol (a block at the wrong offset or larger than asked).
    pub protocol_violations: u32,
    /// From the Query Next Image Response to the end.
    pub elapsed: Duration,
}

impl fmt::Display for UpgradeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device {} ({}) {:04X}:{:04X} 0x{:08X} -> 0x{:08X}: {:?}, {} ({} bytes, {} block requests, {} retries, {} waits, {:.1} s)",
            self.ieee,
            self.nwk,
            self.manufacturer_code,
            self.image_type,
            self.from_version,
            self.to_version,
            self.outcome,
            if self.verified {
                "verified"
            } else {
                "NOT verified"
            },
            self.image_size,
            self.block_requests,
            self.retries,
            self.waits,
            self.elapsed.as_secs_f64()
        )
    }
}

/// What a device tells the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The server offered an image and the download starts.
    DownloadStarted {
        /// Its version.
        file_version: u32,
        /// Its size.
        image_size: u32,
    },
    /// An upgrade attempt ended.
    UpgradeEnded(UpgradeReport),
    /// The server answered a query with NO_IMAGE_AVAILABLE (or another status).
    NoImage {
        /// The version the device reported.
        current_version: u32,
        /// The server's status.
        status: ZclStatus,
    },
}
