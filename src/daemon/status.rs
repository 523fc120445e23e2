//! The status snapshot (ARCHITECTURE.md, "`status --json`") and its human rendering.
//!
//! The daemon publishes one [`StatusSnapshot`] whenever something changes; the status socket
//! serves it as JSON and `zigbee-otad status` renders it with a progress bar per transfer. The
//! JSON field names are a stable interface.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::catalog::service::{CatalogOutcome, RefreshReport};
use crate::coordinator::latency::{AnswerLatency, LatencySummary};
use crate::daemon::loop_lag::LoopLagStatus;

/// Everything `zigbee-otad status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The coordinator and its network.
    pub coordinator: CoordinatorStatus,
    /// Catalog sources, the cache and the cloud budget.
    pub catalog: CatalogStatus,
    /// Devices that have asked for firmware.
    pub devices: Vec<DeviceStatus>,
    /// Transfers in progress and recently ended.
    pub transfers: Vec<TransferStatus>,
    /// The coordinator driver's answer latency, microseconds (absent when the driver does not
    /// measure it).
    #[serde(default)]
    pub latency_us: Option<AnswerLatency>,
    /// How late the daemon's main loop runs (absent from older daemons).
    #[serde(default)]
    pub main_loop: Option<LoopLagStatus>,
}

/// Coordinator state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    /// Serial port path.
    pub port: String,
    /// `starting`, `up`, `resetting`, `down`.
    pub state: String,
    /// `ezsp` or `znp` (absent when the driver does not say).
    #[serde(default)]
    pub protocol: Option<String>,
    /// The firmware as the stick describes itself ("EZSP v13", "Z-Stack 3.x.0 2.7.1 (build
    /// 20230507)"), once start-up has read it.
    #[serde(default)]
    pub firmware: Option<String>,
    /// Negotiated EZSP protocol version (EZSP only; `null` for ZNP).
    pub ezsp_version: Option<u8>,
    /// 802.15.4 channel.
    pub channel: Option<u8>,
    /// PAN id.
    pub pan_id: Option<u16>,
    /// Extended PAN id, colon hex.
    pub extended_pan_id: Option<String>,
    /// The coordinator's largest APS payload.
    pub max_aps_payload: Option<u8>,
}

/// Catalog state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogStatus {
    /// One entry per configured source.
    pub sources: Vec<SourceStatus>,
    /// Verified images held in the cache.
    pub cached_images: usize,
}

/// One catalog source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// `ledvance`, `zigbee-ota-index`, `directory`.
    pub kind: String,
    /// Entries the source offers.
    pub entries: usize,
    /// Seconds since the Unix epoch of the last successful refresh.
    pub last_refresh_unix: Option<u64>,
    /// Calls used this month, and the monthly limit.
    pub calls_this_month: Option<(u64, u64)>,
    /// Bytes used this month, and the monthly limit.
    pub bytes_this_month: Option<(u64, u64)>,
    /// The last error, if the last refresh failed.
    pub last_error: Option<String>,
    /// Files or entries of this source that are not offered, with the reason (the first
    /// [`MAX_SKIPPED_SHOWN`]; every one is also logged).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// How many were not offered in all.
    #[serde(default)]
    pub skipped_count: usize,
}

impl SourceStatus {
    /// Takes in a catalog refresh's outcome for this source (matched by name): the month's
    /// usage, the time of the last successful catalog call, the last error.
    pub fn absorb(&mut self, report: &RefreshReport) {
        let Some(line) = report.sources.iter().find(|line| line.name == self.name) else {
            return;
        };
        self.calls_this_month = Some((line.usage.calls, line.usage.monthly_calls));
        self.bytes_this_month = Some((line.usage.bytes, line.usage.monthly_bytes));
        if matches!(
            line.catalog,
            CatalogOutcome::Changed { .. } | CatalogOutcome::Unchanged
        ) {
            self.last_refresh_unix = Some(report.finished_unix);
        }
        self.last_error = line.errors.last().cloned();
    }
}

/// Skipped files listed per source in the status (the log has every one).
pub const MAX_SKIPPED_SHOWN: usize = 8;

/// A device the server knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// IEEE address, colon hex.
    pub ieee: String,
    /// Network address.
    pub nwk: u16,
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The version the device last reported.
    pub current_version: u32,
    /// The version it could get, if any (offered, or waiting for approval or a hold's end).
    pub available_version: Option<u32>,
    /// Whether the installer approved `available_version` (always true with
    /// `install = "auto"`).
    #[serde(default)]
    pub approved: bool,
    /// True while `zigbee-otad hold` keeps it at its version.
    #[serde(default)]
    pub held: bool,
    /// Its place in the queue for a download slot (1 = next), while it waits for one.
    #[serde(default)]
    pub queue_position: Option<usize>,
    /// Why nothing is offered to it, when nothing is.
    #[serde(default)]
    pub withheld: Option<String>,
    /// Its Basic cluster model identifier, once read.
    #[serde(default)]
    pub model_id: Option<String>,
    /// Its Basic cluster manufacturer name, once read.
    #[serde(default)]
    pub manufacturer_name: Option<String>,
    /// Its Basic cluster power source in words (`battery`, `mains (single phase)`, …).
    #[serde(default)]
    pub power_source: Option<String>,
}

/// A transfer's state: the server's own type, which serialises as the snapshot's `state`.
pub use crate::server::TransferState;

/// One transfer's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferStatus {
    /// IEEE address, colon hex.
    pub ieee: String,
    /// Network address.
    pub nwk: u16,
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The version being transferred.
    pub file_version: u32,
    /// Bytes the device has confirmed by asking past them.
    pub offset: u32,
    /// The image's size.
    pub image_size: u32,
    /// Where it stands.
    pub state: TransferState,
    /// Recent rate.
    pub bytes_per_second: f64,
    /// Estimated seconds to completion.
    pub eta_seconds: Option<u64>,
}

impl TransferStatus {
    /// Completion in percent (0.0..=100.0).
    pub fn percent(&self) -> f64 {
        if self.image_size == 0 {
            return 0.0;
        }
        (f64::from(self.offset) * 100.0 / f64::from(self.image_size)).clamp(0.0, 100.0)
    }
}

/// A text progress bar of `width` cells: `[#########.........]`.
pub fn progress_bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    let filled = filled.min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// `1h02m`, `4m05s`, `12s`.
pub fn format_eta(seconds: u64) -> String {
    if seconds >= 3600 {
        format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60)
    } else if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

/// One line for a transfer, as `status` and `demo` print it.
pub fn render_transfer(transfer: &TransferStatus) -> String {
    let eta = transfer
        .eta_seconds
        .map(format_eta)
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{ieee} {mfr:04X}/{ty:04X} v{ver:08X} {bar} {pct:5.1}% {off}/{size} B {rate:7.0} B/s eta {eta:>6} {state:?}",
        ieee = transfer.ieee,
        mfr = transfer.manufacturer_code,
        ty = transfer.image_type,
        ver = transfer.file_version,
        bar = progress_bar(transfer.percent(), 24),
        pct = transfer.percent(),
        off = transfer.offset,
        size = transfer.image_size,
        rate = transfer.bytes_per_second,
        state = transfer.state,
    )
}

/// `p50 80 us, p99 130 us, max 2100 us` (`-` without samples).
fn render_latency(summary: &LatencySummary) -> String {
    if summary.count == 0 {
        return "-".to_owned();
    }
    format!(
        "p50 {} us, p99 {} us, max {} us",
        summary.p50_us, summary.p99_us, summary.max_us
    )
}

/// "EZSP 13", or the firmware a ZNP stick reported ("Z-Stack 3.x.0 2.7.1 (build 20230507)").
fn firmware_text(c: &CoordinatorStatus) -> String {
    match (c.protocol.as_deref(), &c.firmware, c.ezsp_version) {
        (Some("znp"), Some(firmware), _) => firmware.clone(),
        (Some("znp"), None, _) => "ZNP".to_owned(),
        (_, _, version) => format!("EZSP {}", version.map_or("-".to_owned(), |v| v.to_string())),
    }
}

/// The whole snapshot as `zigbee-otad status` prints it.
pub fn render_snapshot(snapshot: &StatusSnapshot) -> String {
    let mut out = String::new();
    let c = &snapshot.coordinator;
    let _ = writeln!(
        out,
        "coordinator  {} ({}), {}, channel {}, PAN {}, max APS payload {}",
        c.port,
        c.state,
        firmware_text(c),
        c.channel.map_or("-".to_owned(), |v| v.to_string()),
        c.pan_id.map_or("-".to_owned(), |v| format!("0x{v:04X}")),
        c.max_aps_payload
            .map_or("-".to_owned(), |v| format!("{v} B")),
    );
    let _ = writeln!(
        out,
        "catalog      {} cached image(s)",
        snapshot.catalog.cached_images
    );
    for source in &snapshot.catalog.sources {
        let budget = |used: Option<(u64, u64)>, unit: &str| {
            used.map_or(String::new(), |(n, limit)| {
                format!(", {n}/{limit} {unit} this month")
            })
        };
        let _ = writeln!(
            out,
            "  {:<20} {:<17} {} entries{}{}{}",
            source.name,
            source.kind,
            source.entries,
            budget(source.calls_this_month, "calls"),
            budget(source.bytes_this_month, "bytes"),
            source
                .last_error
                .as_deref()
                .map_or(String::new(), |e| format!(", last error: {e}")),
        );
        if source.skipped_count > source.skipped.len() {
            let _ = writeln!(
                out,
                "    {} not offered; the first {} (the log has all):",
                source.skipped_count,
                source.skipped.len()
            );
        } else if source.skipped_count > 0 {
            let _ = writeln!(out, "    {} not offered:", source.skipped_count);
        }
        for reason in &source.skipped {
            let _ = writeln!(out, "      {reason}");
        }
    }
    let _ = writeln!(out, "devices      {}", snapshot.devices.len());
    for d in &snapshot.devices {
        let mut notes = Vec::new();
        if d.available_version.is_some() && !d.approved {
            notes.push("awaiting approval".to_owned());
        }
        if d.held {
            notes.push("held".to_owned());
        }
        if let Some(position) = d.queue_position {
            notes.push(format!("queue position {position}"));
        }
        let _ = writeln!(
            out,
            "  {} nwk 0x{:04X} mfr {} type 0x{:04X} v{:08X} -> {}{}",
            d.ieee,
            d.nwk,
            crate::zigbee::ManufacturerCode(d.manufacturer_code),
            d.image_type,
            d.current_version,
            d.available_version
                .map_or("up to date".to_owned(), |v| format!("v{v:08X}")),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            },
        );
        if d.model_id.is_some() || d.manufacturer_name.is_some() || d.power_source.is_some() {
            let _ = writeln!(
                out,
                "    model {} manufacturer {} power {}",
                d.model_id.as_deref().unwrap_or("?"),
                d.manufacturer_name.as_deref().unwrap_or("?"),
                d.power_source.as_deref().unwrap_or("?"),
            );
        }
    }
    if let Some(latency) = &snapshot.latency_us {
        let _ = writeln!(
            out,
            "latency      {} answers: host {}; serial in->out {}",
            latency.host.count,
            render_latency(&latency.host),
            render_latency(&latency.serial_in_to_out),
        );
    }
    if let Some(lag) = &snapshot.main_loop {
        let _ = writeln!(
            out,
            "main loop    deadline late by at most {:.1} ms ({} over 200 ms); longest turn {:.1} ms",
            lag.max_timer_late_us as f64 / 1000.0,
            lag.timer_late_over_200ms,
            lag.max_turn_us as f64 / 1000.0,
        );
    }
    let _ = writeln!(out, "transfers    {}", snapshot.transfers.len());
    for t in &snapshot.transfers {
        let _ = writeln!(out, "  {}", render_transfer(t));
    }
    out
}

impl From<&crate::server::TransferProgress> for TransferStatus {
    /// A transfer as the server tracks it, in the snapshot's terms.
    fn from(t: &crate::server::TransferProgress) -> Self {
        TransferStatus {
            ieee: t.ieee.map(|i| i.to_string()).unwrap_or_default(),
            nwk: t.nwk,
            manufacturer_code: t.manufacturer_code,
            image_type: t.image_type,
            file_version: t.file_version,
            offset: t.offset,
            image_size: t.image_size,
            state: t.state,
            bytes_per_second: t.bytes_per_second.map_or(0.0, f64::from),
            eta_seconds: t.eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_edges() {
        assert_eq!(progress_bar(0.0, 4), "[....]");
        assert_eq!(progress_bar(50.0, 4), "[##..]");
        assert_eq!(progress_bar(100.0, 4), "[####]");
        assert_eq!(progress_bar(250.0, 4), "[####]");
        assert_eq!(progress_bar(f64::NAN, 4).len(), 6);
    }

    #[test]
    fn eta_formats() {
        assert_eq!(format_eta(12), "12s");
        assert_eq!(format_eta(245), "4m05s");
        assert_eq!(format_eta(3720), "1h02m");
    }

    #[test]
    fn json_field_names_are_the_documented_ones() {
        let snapshot = StatusSnapshot {
            transfers: vec![TransferStatus {
                ieee: "00:11:22:33:44:55:66:77".into(),
                nwk: 0x1234,
                state: TransferState::Downloading,
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&snapshot).unwrap();
        for key in [
            "coordinator",
            "catalog",
            "devices",
            "transfers",
            "latency_us",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let t = &json["transfers"][0];
        for key in [
            "ieee",
            "nwk",
            "manufacturer_code",
            "image_type",
            "file_version",
            "offset",
            "image_size",
            "state",
            "bytes_per_second",
            "eta_seconds",
        ] {
            assert!(t.get(key).is_some(), "{key}");
        }
        assert_eq!(t["state"], "downloading");
        let back: StatusSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snapshot);
    }

    #[test]
    fn latency_is_shown_in_json_and_text() {
        let summary = LatencySummary {
            count: 13_140,
            p50_us: 55,
            p99_us: 131,
            max_us: 4_800,
        };
        let snapshot = StatusSnapshot {
            latency_us: Some(AnswerLatency {
                host: summary,
                serial_in_to_out: LatencySummary {
                    p99_us: 2_000,
                    ..summary
                },
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&snapshot).unwrap();
        let host = &json["latency_us"]["host"];
        assert_eq!(
            (&host["count"], &host["p50"], &host["p99"], &host["max"]),
            (
                &serde_json::json!(13_140),
                &serde_json::json!(55),
                &serde_json::json!(131),
                &serde_json::json!(4_800)
            )
        );
        assert_eq!(json["latency_us"]["serial_in_to_out"]["p99"], 2_000);
        let text = render_snapshot(&snapshot);
        assert!(
            text.contains(
                "latency      13140 answers: host p50 55 us, p99 131 us, max 4800 us; \
                 serial in->out p50 55 us, p99 2000 us, max 4800 us"
            ),
            "{text}"
        );
        // Without the object (an older daemon), the snapshot still parses.
        let mut older = json.clone();
        older.as_object_mut().unwrap().remove("latency_us");
        let back: StatusSnapshot = serde_json::from_value(older).unwrap();
        assert_eq!(back.latency_us, None);
    }

    #[test]
    fn percent_is_bounded() {
        let t = TransferStatus {
            offset: 150,
            image_size: 100,
            ..Default::default()
        };
        assert_eq!(t.percent(), 100.0);
        let t = TransferStatus::default();
        assert_eq!(t.percent(), 0.0);
    }
}
