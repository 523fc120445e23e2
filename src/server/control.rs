//! The installer's decisions, sans-IO: approvals (`[policy] install = "approve"`), holds,
//! cancellations, devices that hold a downloaded image and wait to be told to apply it (ZCL8
//! §11.13.9: Upgrade End Response with `upgrade_time` 0xFFFFFFFF, later released by an
//! unsolicited one with `upgrade_time` 0), and the daily apply window.
//!
//! [`ControlState`] is plain data: the daemon keeps it in `state_dir` (JSON, written atomically)
//! and hands it back after a restart with [`OtaServer::restore_control`](super::OtaServer::restore_control),
//! so a device left waiting is still released. Nothing here reads a clock: the wall-clock time
//! (`now_unix`, `local_second_of_day`) comes in as an argument.
//!
//! ```
//! use zigbee_otad::server::control::{ApplyWindow, ControlState, InstallMode, Withheld};
//! use zigbee_otad::zcl::Ieee;
//!
//! let mut control = ControlState::default();
//! let lamp = Ieee(0x0011_2233_4455_6677);
//! assert_eq!(control.check(Some(lamp), 2, InstallMode::Approve, None), Err(Withheld::AwaitingApproval));
//! control.approve(lamp, Some(2));
//! assert_eq!(control.check(Some(lamp), 2, InstallMode::Approve, None), Ok(()));
//!
//! let night: ApplyWindow = "23:00-01:30".parse().unwrap();
//! assert!(night.contains(23 * 3600 + 5));
//! assert_eq!(night.seconds_until_open(22 * 3600), 3600);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Ieee;
use super::image::ImageKey;

/// Whether an available image is offered at once or only once someone approves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallMode {
    /// Offer every image the policy allows (the default).
    #[default]
    Auto,
    /// Show the image in `status` but offer it only after `zigbee-otad approve`.
    Approve,
}

/// Why the installer's decisions keep an image from a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Withheld {
    /// `install = "approve"` and no approval for this version.
    AwaitingApproval,
    /// `zigbee-otad hold`, until this Unix time (`None`: until `release`).
    Held {
        /// When the hold ends by itself.
        until_unix: Option<u64>,
    },
    /// `zigbee-otad cancel` stopped this version; it is offered again once approved again.
    Cancelled,
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Withheld::AwaitingApproval => f.write_str("waiting for `zigbee-otad approve`"),
            Withheld::Held { until_unix: None } => f.write_str("held until `zigbee-otad release`"),
            Withheld::Held {
                until_unix: Some(until),
            } => write!(f, "held until {}", format_unix(*until)),
            Withheld::Cancelled => {
                f.write_str("cancelled by `zigbee-otad cancel`; approve it again to offer it")
            }
        }
    }
}

/// `2026-12-07T03:00:00Z`.
pub fn format_unix(unix: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// An approval: one version, or whatever the device is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approved file version; `None` approves any version the policy offers.
    pub version: Option<u32>,
}

/// A hold: the device is offered nothing (and a transfer in progress is aborted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// When it ends by itself (Unix seconds); `None` until `release`.
    pub until_unix: Option<u64>,
}

/// A device that holds a verified image and was told to wait for the command to apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadedDevice {
    /// Manufacturer code of the image.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
    /// Image size in bytes.
    pub image_size: u32,
    /// The version it ran when it downloaded the image, when known.
    #[serde(default)]
    pub from_version: Option<u32>,
    /// Its network address when last heard.
    pub nwk: u16,
    /// Its OTA client endpoint.
    pub endpoint: u8,
    /// When it finished (Unix seconds), when the wall clock was known.
    #[serde(default)]
    pub since_unix: Option<u64>,
    /// Told to apply (`apply` or the window); kept until the device reports its new version,
    /// so its next Upgrade End Request (a sleepy device that missed the command) gets "now".
    #[serde(default)]
    pub released: bool,
}

impl DownloadedDevice {
    /// The image it holds.
    pub fn image(&self) -> ImageKey {
        ImageKey {
            manufacturer_code: self.manufacturer_code,
            image_type: self.image_type,
            file_version: self.file_version,
        }
    }
}

/// Everything the installer decided, as kept in `state_dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlState {
    /// Approved devices.
    #[serde(default)]
    pub approvals: BTreeMap<Ieee, Approval>,
    /// Held devices.
    #[serde(default)]
    pub holds: BTreeMap<Ieee, Hold>,
    /// Cancelled versions per device.
    #[serde(default)]
    pub cancelled: BTreeMap<Ieee, u32>,
    /// Devices that hold a downloaded image and wait for the command to apply it.
    #[serde(default)]
    pub downloaded: BTreeMap<Ieee, DownloadedDevice>,
}

impl ControlState {
    /// May `file_version` be offered to (or served to) this device? A device whose IEEE
    /// address is unknown can be neither approved nor held.
    pub fn check(
        &self,
        ieee: Option<Ieee>,
        file_version: u32,
        mode: InstallMode,
        now_unix: Option<u64>,
    ) -> Result<(), Withheld> {
        let Some(ieee) = ieee else {
            return match mode {
                InstallMode::Auto => Ok(()),
                InstallMode::Approve => Err(Withheld::AwaitingApproval),
            };
        };
        if let Some(hold) = self.holds.get(&ieee)
            && hold_in_force(hold, now_unix)
        {
            return Err(Withheld::Held {
                until_unix: hold.until_unix,
            });
        }
        if self.cancelled.get(&ieee) == Some(&file_version) {
            return Err(Withheld::Cancelled);
        }
        if mode == InstallMode::Approve && !self.is_approved(ieee, file_version) {
            return Err(Withheld::AwaitingApproval);
        }
        Ok(())
    }

    /// True when this version is approved for the device.
    pub fn is_approved(&self, ieee: Ieee, file_version: u32) -> bool {
        self.approvals
            .get(&ieee)
            .is_some_and(|a| a.version.is_none_or(|v| v == file_version))
    }

    /// Approves `version` (or any version) for the device; clears a cancellation.
    pub fn approve(&mut self, ieee: Ieee, version: Option<u32>) {
        self.approvals.insert(ieee, Approval { version });
        self.cancelled.remove(&ieee);
    }

    /// Cancels `version` for the device: not offered again until approved again.
    pub fn cancel(&mut self, ieee: Ieee, version: u32) {
        self.approvals.remove(&ieee);
        self.cancelled.insert(ieee, version);
        if self
            .downloaded
            .get(&ieee)
            .is_some_and(|d| d.file_version == version)
        {
            self.downloaded.remove(&ieee);
        }
    }

    /// Holds the device at its version.
    pub fn hold(&mut self, ieee: Ieee, until_unix: Option<u64>) {
        self.holds.insert(ieee, Hold { until_unix });
    }

    /// Ends a hold; false when there was none.
    pub fn release(&mut self, ieee: Ieee) -> bool {
        self.holds.remove(&ieee).is_some()
    }

    /// True while a hold keeps the device at its version.
    pub fn is_held(&self, ieee: Ieee, now_unix: Option<u64>) -> bool {
        self.holds
            .get(&ieee)
            .is_some_and(|h| hold_in_force(h, now_unix))
    }

    /// Drops holds that have ended; true when any did.
    pub fn expire_holds(&mut self, now_unix: u64) -> bool {
        let before = self.holds.len();
        self.holds
            .retain(|_, hold| hold.until_unix.is_none_or(|until| now_unix < until));
        before != self.holds.len()
    }

    /// True when anything is recorded for the device.
    pub fn knows(&self, ieee: Ieee) -> bool {
        self.approvals.contains_key(&ieee)
            || self.holds.contains_key(&ieee)
            || self.cancelled.contains_key(&ieee)
            || self.downloaded.contains_key(&ieee)
    }

    /// Devices waiting for the command, not yet released, oldest first.
    pub fn waiting_for_command(&self) -> Vec<Ieee> {
        let mut waiting: Vec<(Option<u64>, Ieee)> = self
            .downloaded
            .iter()
            .filter(|(_, d)| !d.released)
            .map(|(ieee, d)| (d.since_unix, *ieee))
            .collect();
        waiting.sort();
        waiting.into_iter().map(|(_, ieee)| ieee).collect()
    }
}

fn hold_in_force(hold: &Hold, now_unix: Option<u64>) -> bool {
    match (hold.until_unix, now_unix) {
        (None, _) => true,
        // Without a wall clock a timed hold stays in force: holding too long is the safe side.
        (Some(_), None) => true,
        (Some(until), Some(now)) => now < until,
    }
}

/// A daily window, local time, `start..end` (may cross midnight): `"02:00-05:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyWindow {
    /// Start, seconds after local midnight.
    pub start: u32,
    /// End, seconds after local midnight (before `start` when the window crosses midnight).
    pub end: u32,
}

/// Text that is not a window like `02:00-05:00`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a window like \"02:00-05:00\" (HH:MM-HH:MM, local time; may cross midnight; start and end differ)"
)]
pub struct ParseWindowError(pub String);

impl std::str::FromStr for ApplyWindow {
    type Err = ParseWindowError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseWindowError(text.to_owned());
        let (start, end) = text.split_once('-').ok_or_else(error)?;
        let clock = |part: &str| -> Option<u32> {
            let (h, m) = part.trim().split_once(':')?;
            if h.is_empty() || h.len() > 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 3600 + m * 60)
        };
        let (start, end) = (
            clock(start).ok_or_else(error)?,
            clock(end).ok_or_else(error)?,
        );
        if start == end {
            return Err(error());
        }
        Ok(ApplyWindow { start, end })
    }
}

impl fmt::Display for ApplyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 3600,
            self.start % 3600 / 60,
            self.end / 3600,
            self.end % 3600 / 60
        )
    }
}

/// Seconds in a day.
const DAY: u32 = 86_400;

impl ApplyWindow {
    /// True when `local_second_of_day` is inside the window.
    pub fn contains(&self, local_second_of_day: u32) -> bool {
        let t = local_second_of_day % DAY;
        if self.start < self.end {
            (self.start..self.end).contains(&t)
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Seconds until the window next opens (0 inside it).
    pub fn seconds_until_open(&self, local_second_of_day: u32) -> u32 {
        if self.contains(local_second_of_day) {
            return 0;
        }
        (self.start + DAY - local_second_of_day % DAY) % DAY
    }
}

/// The local second of the day for a Unix time and a UTC offset (seconds east of UTC).
pub fn local_second_of_day(unix: u64, utc_offset_seconds: i32) -> u32 {
    let local = i128::from(unix) + i128::from(utc_offset_seconds);
    u32::try_from(local.rem_euclid(i128::from(DAY))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAMP: Ieee = Ieee(0x0011_2233_4455_6677);

    #[test]
    fn approvals_are_per_version_and_cancel_needs_a_new_approval() {
        let mut c = ControlState::default();
        assert_eq!(c.check(Some(LAMP), 5, InstallMode::Auto, None), Ok(()));
        assert_eq!(
            c.check(Some(LAMP), 5, InstallMode::Approve, None),
            Err(Withheld::AwaitingApproval)
        );
        assert_eq!(
            c.check(None, 5, InstallMode::Approve, None),
            Err(Withheld::AwaitingApproval)
        );
        c.approve(LAMP, Some(5));
        assert_eq!(c.check(Some(LAMP), 5, InstallMode::Approve, None), Ok(()));
        assert_eq!(
            c.check(Some(LAMP), 6, InstallMode::Approve, None),
            Err(Withheld::AwaitingApproval)
        );
        c.cancel(LAMP, 5);
        assert_eq!(
            c.check(Some(LAMP), 5, InstallMode::Auto, None),
            Err(Withheld::Cancelled)
        );
        // A newer version is not the cancelled one.
        assert_eq!(c.check(Some(LAMP), 6, InstallMode::Auto, None), Ok(()));
        c.approve(LAMP, None);
        assert_eq!(c.check(Some(LAMP), 5, InstallMode::Approve, None), Ok(()));
        assert_eq!(c.check(Some(LAMP), 9, InstallMode::Approve, None), Ok(()));
    }

    #[test]
    fn holds_end_at_their_time_or_on_release() {
        let mut c = ControlState::default();
        c.hold(LAMP, Some(1_000));
        let held = Err(Withheld::Held {
            until_unix: Some(1_000),
        });
        assert_eq!(c.check(Some(LAMP), 5, InstallMode::Auto, Some(999)), held);
        assert_eq!(c.check(Some(LAMP), 5, InstallMode::Auto, None), held);
        assert_eq!(
            c.check(Some(LAMP), 5, InstallMode::Auto, Some(1_000)),
            Ok(())
        );
        assert!(!c.expire_holds(999));
        assert!(c.expire_holds(1_000));
        assert!(!c.knows(LAMP));
        c.hold(LAMP, None);
        assert!(c.is_held(LAMP, Some(u64::MAX)));
        assert!(c.release(LAMP));
        assert!(!c.release(LAMP));
    }

    #[test]
    fn the_state_round_trips_through_json_with_ieee_keys() {
        let mut c = ControlState::default();
        c.approve(LAMP, Some(2));
        c.hold(Ieee(1), Some(7));
        c.downloaded.insert(
            Ieee(2),
            DownloadedDevice {
                manufacturer_code: 0x1189,
                image_type: 1,
                file_version: 2,
                image_size: 100,
                from_version: Some(1),
                nwk: 0x1234,
                endpoint: 1,
                since_unix: Some(5),
                released: false,
            },
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"00:11:22:33:44:55:66:77\""), "{json}");
        let back: ControlState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.waiting_for_command(), vec![Ieee(2)]);
        assert!(serde_json::from_str::<ControlState>(r#"{"holds":{"nonsense":{}}}"#).is_err());
    }

    #[test]
    fn windows_parse_and_cross_midnight() {
        let w: ApplyWindow = "02:00-05:00".parse().unwrap();
        assert_eq!(w.to_string(), "02:00-05:00");
        assert!(!w.contains(2 * 3600 - 1));
        assert!(w.contains(2 * 3600));
        assert!(!w.contains(5 * 3600));
        assert_eq!(w.seconds_until_open(3600), 3600);
        assert_eq!(w.seconds_until_open(5 * 3600), 21 * 3600);
        let night: ApplyWindow = "23:30-00:15".parse().unwrap();
        assert!(night.contains(23 * 3600 + 1800));
        assert!(night.contains(600));
        assert!(!night.contains(900));
        assert_eq!(night.seconds_until_open(900), 23 * 3600 + 1800 - 900);
        for bad in [
            "",
            "2-5",
            "02:00",
            "24:00-01:00",
            "02:60-03:00",
            "02:00-02:00",
            "1:2-3:4",
        ] {
            assert!(bad.parse::<ApplyWindow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn local_time_follows_the_offset() {
        // 2026-12-07 00:30 UTC is 01:30 in UTC+1 and 19:30 the day before in UTC-5.
        let unix = 1_796_603_400;
        assert_eq!(local_second_of_day(unix, 0), 1800);
        assert_eq!(local_second_of_day(unix, 3600), 5400);
        assert_eq!(local_second_of_day(unix, -5 * 3600), 19 * 3600 + 1800);
    }
}
