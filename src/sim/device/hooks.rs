//! How a simulated OTA client (ZCL8 §11.13, client side) may differ from the default one, and
//! what it keeps a log of: the behaviours real clients differ in (Image Page Requests,
//! ZCL8 §11.13.7; a sleepy device's poll period between requests; dropping off the network
//! mid-download; the status its Upgrade End Request carries, §11.13.9; whether it resends a
//! lost request with the same TSN; whether it reminds the server while told to wait for the
//! upgrade command), all off by default, so the simulator's devices stay as they are. The
//! server scenario tests (`tests/it/server`) turn them on and read the [`DeviceLog`].

use std::time::{Duration, Instant};

use crate::zcl::ZclStatus;

/// How a device fetches its image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fetch {
    /// One Image Block Request per block.
    #[default]
    Blocks,
    /// Image Page Requests of `page_size` bytes with `response_spacing_ms` between the blocks;
    /// a block lost from a page is asked for with an Image Block Request once the page ends
    /// (or goes quiet for the answer timeout).
    Pages {
        /// Bytes per page.
        page_size: u16,
        /// Milliseconds the server leaves between the blocks of a page.
        response_spacing_ms: u16,
    },
}

/// Dropping off the network mid-download: once the device holds `after_bytes` bytes it hears
/// and sends nothing for `away`, then carries on where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vanish {
    /// Bytes held when it goes.
    pub after_bytes: u32,
    /// How long it stays away.
    pub away: Duration,
}

/// Behaviours beyond the default client; [`Default`] is the default client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceHooks {
    /// Blocks or pages.
    pub fetch: Fetch,
    /// Pause before each request after an offer or a received block (a sleepy device's poll
    /// period); the device also waits at least this long for an answer.
    pub request_delay: Duration,
    /// Drops off the network once, mid-download.
    pub vanish: Option<Vanish>,
    /// Sends this status in its Upgrade End Request instead of the result of its own check
    /// (the image is then not checked, and the report says so).
    pub end_status: Option<ZclStatus>,
    /// Sends an unanswered Image Block Request again as it was, with the same TSN.
    pub resend_same_tsn: bool,
    /// The TSN of its first frame.
    pub first_tsn: u8,
    /// Told to wait for the upgrade command, it waits silently instead of asking again with an
    /// Upgrade End Request every query interval.
    pub silent_while_awaiting_command: bool,
    /// Keeps the lists of [`DeviceLog`] (every block, wait, upgrade time, Default Response and
    /// the image it applied); off by default, as simulated devices may download megabytes.
    pub keep_log: bool,
}

/// One Image Block Response the device received while downloading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// When it arrived.
    pub at: Instant,
    /// Its file offset.
    pub offset: u32,
    /// Its data length.
    pub len: usize,
}

/// What the device has done over its whole life (not one attempt, as [`super::UpgradeReport`]):
/// the counts always, the lists only with [`DeviceHooks::keep_log`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLog {
    /// Image Block Requests sent, resends included.
    pub block_requests: u32,
    /// Image Page Requests sent.
    pub page_requests: u32,
    /// Requests sent again because no answer came in time (or a page went quiet).
    pub retries: u32,
    /// Every Image Block Response with data received while downloading.
    pub blocks: Vec<BlockRecord>,
    /// The request time of every WAIT_FOR_DATA answer, as sent.
    pub wait_for_data: Vec<u32>,
    /// The upgrade time of every Upgrade End Response, as sent.
    pub upgrade_times: Vec<u32>,
    /// The status of every Default Response.
    pub default_responses: Vec<ZclStatus>,
    /// The last image it applied.
    pub installed: Vec<u8>,
}
