//! The installer's commands on the running server — approve, apply, cancel, hold, release and
//! install (approve, then apply if the image is already downloaded) — the apply window's
//! releases, and the rolling-update rank. The upgrade command is the unsolicited Upgrade End
//! Response of ZCL8 §11.13.9 with `upgrade_time` 0, sent to a device that was told 0xFFFFFFFF; a
//! sleepy device that misses it gets "now" in answer to its next Upgrade End Request.
//!
//! Every command takes `now` and returns what it did or a [`ControlError`] that names the device
//! and says why; none reads a clock.

use std::time::Instant;

use tracing::{debug, info};

use super::control::{self, ControlState, DownloadedDevice, InstallMode};
use super::pacing::QueueRank;
use super::request::{Message, ReplyTo};
use super::session::{PendingUpgrade, Session, after};
use super::{
    Destination, DeviceAddr, DeviceKey, Ieee, ImageKey, NotifyTarget, OtaServer, ServerEvent,
    TransferProgress, TransferState, WindowCheck, Withheld,
};

/// Why an installer's command did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Never heard from since the daemon started, and nothing recorded for it.
    #[error(
        "{0}: unknown device (not heard from since the daemon started, and nothing recorded for it)"
    )]
    UnknownDevice(Ieee),
    /// No downloaded image waits to be applied.
    #[error("{ieee}: no downloaded image waits to be applied{detail}")]
    NothingToApply {
        /// The device.
        ieee: Ieee,
        /// What it is doing instead, when known.
        detail: String,
    },
    /// Held: `release` it first.
    #[error("{0}: held; `zigbee-otad release` it first")]
    Held(Ieee),
    /// No transfer, downloaded image or available image to cancel.
    #[error("{0}: nothing to cancel (no transfer and no image available for it)")]
    NothingToCancel(Ieee),
    /// `release` of a device that is not held.
    #[error("{0}: not held")]
    NotHeld(Ieee),
}

/// What [`OtaServer::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallOutcome {
    /// The approved version (`None`: nothing was available, nothing approved).
    pub approved_version: Option<u32>,
    /// The downloaded image it was told to apply, if one was waiting.
    pub applied: Option<ImageKey>,
}

impl OtaServer {
    /// The installer's decision on one image for one device.
    pub(super) fn installer_gate(
        &self,
        ieee: Option<Ieee>,
        file_version: u32,
        now: Instant,
    ) -> Result<(), Withheld> {
        self.control.check(
            ieee,
            file_version,
            self.config.install_for(ieee),
            self.unix_at(now),
        )
    }

    /// Unix seconds at `now`, once the wall clock is known.
    pub(super) fn unix_at(&self, now: Instant) -> Option<u64> {
        let (at, unix) = self.wall_clock?;
        Some(if now >= at {
            unix.saturating_add(now.duration_since(at).as_secs())
        } else {
            unix.saturating_sub(at.duration_since(now).as_secs())
        })
    }

    /// Seconds after local midnight at `now`, once the wall clock is known.
    pub(super) fn local_second_of_day(&self, now: Instant) -> Option<u32> {
        self.unix_at(now)
            .map(|unix| control::local_second_of_day(unix, self.utc_offset_seconds))
    }

    /// Where a device goes in the queue for a download slot.
    pub(super) fn queue_rank(&self, ieee: Option<Ieee>) -> QueueRank {
        QueueRank::from_mains_powered(ieee.and_then(|i| self.mains_powered.get(&i).copied()))
    }

    /// Records whether a device is mains-powered (a router) or runs on a battery (a sleepy end
    /// device): routers get download slots first.
    pub fn set_device_power(&mut self, ieee: Ieee, mains_powered: bool) {
        self.mains_powered.insert(ieee, mains_powered);
    }

    /// True when the device's available image may be offered as far as approval goes.
    pub(super) fn is_approved(&self, session: &Session) -> bool {
        let ieee = session.addr.ieee;
        if self.config.install_for(ieee) == InstallMode::Auto {
            return true;
        }
        match (ieee, session.available) {
            (Some(ieee), Some(image)) => self.control.is_approved(ieee, image.file_version),
            (Some(ieee), None) => self.control.approvals.contains_key(&ieee),
            (None, _) => false,
        }
    }

    /// The installer's decisions, to be kept in `state_dir`.
    pub fn control_state(&self) -> &ControlState {
        &self.control
    }

    /// Bumped whenever [`OtaServer::control_state`] changes: save it when this moves.
    pub fn control_revision(&self) -> u64 {
        self.control_revision
    }

    /// Takes back the decisions saved before a restart. Devices that were waiting for the
    /// command wait again (and are shown as `downloaded`); `apply` or the window releases them.
    pub fn restore_control(&mut self, state: ControlState, now: Instant) {
        self.control = state;
        let downloaded: Vec<(Ieee, DownloadedDevice)> = self
            .control
            .downloaded
            .iter()
            .map(|(ieee, d)| (*ieee, *d))
            .collect();
        for (ieee, d) in downloaded {
            let addr = DeviceAddr {
                nwk: d.nwk,
                ieee: Some(ieee),
                endpoint: d.endpoint,
            };
            let session = self
                .sessions
                .entry(addr.key())
                .or_insert_with(|| Session::new(addr, now));
            if !d.released {
                session.awaiting_upgrade_command = Some(d.image());
            }
            session.awaiting_confirmation = Some(PendingUpgrade {
                image: d.image(),
                apply_by: None,
            });
            self.history.push_back(downloaded_progress(ieee, &d));
        }
        self.window_check = WindowCheck::Now;
    }

    fn known(&self, ieee: Ieee) -> Result<(), ControlError> {
        if self.sessions.contains_key(&DeviceKey::Ieee(ieee)) || self.control.knows(ieee) {
            Ok(())
        } else {
            Err(ControlError::UnknownDevice(ieee))
        }
    }

    /// Asks a device heard from to query now (unicast Image Notify).
    fn nudge(&mut self, ieee: Ieee, now: Instant) {
        if let Some(addr) = self
            .sessions
            .get(&DeviceKey::Ieee(ieee))
            .filter(|s| s.last_query.is_some())
            .map(|s| s.addr)
        {
            self.notify(NotifyTarget::Device(addr), now);
        }
    }

    /// Approves `version` for a device — by default the version available to it now, or any
    /// version when none is available yet — clears a cancellation and asks the device to
    /// query. Returns the approved version.
    pub fn approve(
        &mut self,
        ieee: Ieee,
        version: Option<u32>,
        now: Instant,
    ) -> Result<Option<u32>, ControlError> {
        self.known(ieee)?;
        let version = version.or_else(|| {
            self.sessions
                .get(&DeviceKey::Ieee(ieee))
                .and_then(|s| s.available)
                .map(|k| k.file_version)
        });
        self.control.approve(ieee, version);
        self.control_revision += 1;
        info!(%ieee, ?version, "approved");
        self.nudge(ieee, now);
        Ok(version)
    }

    /// Approves, for every device with an image available and not yet approved, that image
    /// (only `version`, when given). Returns the devices and versions approved.
    pub fn approve_all(&mut self, version: Option<u32>, now: Instant) -> Vec<(Ieee, u32)> {
        let mut chosen: Vec<(Ieee, u32)> = self
            .sessions
            .values()
            .filter_map(|s| Some((s.addr.ieee?, s.available?.file_version)))
            .filter(|(ieee, available)| {
                version.is_none_or(|v| v == *available)
                    && (!self.control.is_approved(*ieee, *available)
                        || self.control.cancelled.contains_key(ieee))
            })
            .collect();
        chosen.sort();
        for (ieee, available) in &chosen {
            self.control.approve(*ieee, Some(*available));
            info!(%ieee, version = available, "approved");
            self.nudge(*ieee, now);
        }
        if !chosen.is_empty() {
            self.control_revision += 1;
        }
        chosen
    }

    /// Tells a device holding a downloaded image to apply it now (the upgrade command).
    pub fn apply(&mut self, ieee: Ieee, now: Instant) -> Result<ImageKey, ControlError> {
        self.known(ieee)?;
        if self.control.is_held(ieee, self.unix_at(now)) {
            return Err(ControlError::Held(ieee));
        }
        let key = DeviceKey::Ieee(ieee);
        let Some(entry) = self.control.downloaded.get(&ieee).copied() else {
            let detail = self
                .sessions
                .get(&key)
                .and_then(|s| s.transfer.as_ref())
                .map(|t| {
                    format!(
                        " (its transfer is {:?} at {} of {} bytes)",
                        t.state,
                        t.stats.offset,
                        t.image.size()
                    )
                    .to_lowercase()
                })
                .unwrap_or_default();
            return Err(ControlError::NothingToApply { ieee, detail });
        };
        let file = entry.image();
        if let Some(d) = self.control.downloaded.get_mut(&ieee) {
            d.released = true;
        }
        self.control_revision += 1;
        let addr = DeviceAddr {
            nwk: entry.nwk,
            ieee: Some(ieee),
            endpoint: entry.endpoint,
        };
        self.sessions
            .entry(key)
            .or_insert_with(|| Session::new(addr, now));
        self.send_upgrade_command(key, Some(file), now);
        if !entry.released {
            let progress = match self.history.iter_mut().rev().find(|h| {
                h.ieee == Some(ieee)
                    && h.state == TransferState::Downloaded
                    && (h.manufacturer_code, h.image_type, h.file_version)
                        == (file.manufacturer_code, file.image_type, file.file_version)
            }) {
                Some(h) => {
                    h.state = TransferState::Finished;
                    h.clone()
                }
                None => {
                    let mut progress = downloaded_progress(ieee, &entry);
                    progress.state = TransferState::Finished;
                    self.history.push_back(progress.clone());
                    progress
                }
            };
            self.events.push_back(ServerEvent::TransferEnded {
                progress,
                started_at: now,
            });
        }
        Ok(file)
    }

    /// [`OtaServer::apply`] for every device waiting for the command and not held.
    pub fn apply_all(&mut self, now: Instant) -> Vec<(Ieee, ImageKey)> {
        let unix = self.unix_at(now);
        let waiting: Vec<Ieee> = self
            .control
            .waiting_for_command()
            .into_iter()
            .filter(|ieee| !self.control.is_held(*ieee, unix))
            .collect();
        waiting
            .into_iter()
            .filter_map(|ieee| self.apply(ieee, now).ok().map(|file| (ieee, file)))
            .collect()
    }

    /// Sends the unsolicited Upgrade End Response (upgrade time 0) to a device that waits for
    /// it; `file` when the session does not know the image (after a restart).
    pub(super) fn send_upgrade_command(
        &mut self,
        device: DeviceKey,
        file: Option<ImageKey>,
        now: Instant,
    ) -> Option<ImageKey> {
        let confirm_by = after(now, self.config.upgrade_end_timeout);
        let session = self.sessions.get_mut(&device)?;
        let file = session.awaiting_upgrade_command.take().or(file)?;
        session.awaiting_confirmation = Some(PendingUpgrade {
            image: file,
            apply_by: Some(confirm_by),
        });
        let addr = session.addr;
        info!(device = %addr, image = %file, "upgrade command");
        self.events.push_back(ServerEvent::UpgradeScheduled {
            device: addr,
            image: file,
            upgrade_time: 0,
        });
        let tsn = self.take_tsn();
        self.enqueue(
            Some(device),
            Destination::Unicast(addr),
            ReplyTo::Unsolicited { tsn },
            Message::UpgradeEndResponse {
                file,
                upgrade_time: 0,
            },
        );
        Some(file)
    }

    /// Stops a device's transfer (or its waiting download, or the image available to it): its
    /// next block request is answered ABORT and the image is not offered again until it is
    /// approved again. Returns the cancelled image.
    pub fn cancel(&mut self, ieee: Ieee, _now: Instant) -> Result<ImageKey, ControlError> {
        self.known(ieee)?;
        let key = DeviceKey::Ieee(ieee);
        let Some(mut session) = self.sessions.remove(&key) else {
            let file = self.control.downloaded.get(&ieee).map(|d| d.image());
            return match file {
                Some(file) => {
                    self.control.cancel(ieee, file.file_version);
                    self.control_revision += 1;
                    Ok(file)
                }
                None => Err(ControlError::NothingToCancel(ieee)),
            };
        };
        let target = session
            .transfer_key()
            .or(session.awaiting_upgrade_command)
            .or(session.available)
            .or_else(|| self.control.downloaded.get(&ieee).map(|d| d.image()));
        let Some(file) = target else {
            self.sessions.insert(key, session);
            return Err(ControlError::NothingToCancel(ieee));
        };
        self.control.cancel(ieee, file.file_version);
        self.control_revision += 1;
        if session.awaiting_upgrade_command == Some(file) {
            session.awaiting_upgrade_command = None;
            session.awaiting_confirmation = None;
            if let Some(h) = self.history.iter_mut().rev().find(|h| {
                h.ieee == Some(ieee)
                    && h.state == TransferState::Downloaded
                    && h.file_version == file.file_version
            }) {
                h.state = TransferState::Cancelled;
                let progress = h.clone();
                self.events.push_back(ServerEvent::TransferEnded {
                    progress,
                    started_at: _now,
                });
            }
        }
        self.stop_transfer(&mut session, key, Some(file));
        info!(device = %session.addr, image = %file, "cancelled by the installer");
        self.sessions.insert(key, session);
        Ok(file)
    }

    /// Ends the session's transfer (of `file`, or any) as cancelled.
    fn stop_transfer(&mut self, session: &mut Session, key: DeviceKey, file: Option<ImageKey>) {
        session.page = None;
        if let Some(transfer) = session.transfer.take() {
            if file.is_none_or(|f| f == transfer.image.key()) {
                self.end_transfer(session, key, transfer, TransferState::Cancelled, None);
            } else {
                session.transfer = Some(transfer);
            }
        }
    }

    /// Holds a device at its version (until `until_unix`, or until `release`): nothing is
    /// offered, a transfer in progress is stopped, a downloaded image is not applied.
    pub fn hold(
        &mut self,
        ieee: Ieee,
        until_unix: Option<u64>,
        _now: Instant,
    ) -> Result<Option<ImageKey>, ControlError> {
        self.known(ieee)?;
        self.control.hold(ieee, until_unix);
        self.control_revision += 1;
        let key = DeviceKey::Ieee(ieee);
        let Some(mut session) = self.sessions.remove(&key) else {
            return Ok(None);
        };
        let stopped = session.transfer_key();
        self.stop_transfer(&mut session, key, None);
        info!(device = %session.addr, until_unix, "held");
        self.sessions.insert(key, session);
        Ok(stopped)
    }

    /// Ends a hold and asks the device to query.
    pub fn release(&mut self, ieee: Ieee, now: Instant) -> Result<(), ControlError> {
        self.known(ieee)?;
        if !self.control.release(ieee) {
            return Err(ControlError::NotHeld(ieee));
        }
        self.control_revision += 1;
        self.window_check = WindowCheck::Now;
        info!(%ieee, "hold released");
        self.nudge(ieee, now);
        Ok(())
    }

    /// The Home Assistant "Install" button: approves the image available to the device and, if
    /// it already holds it downloaded, tells it to apply it now.
    pub fn install(&mut self, ieee: Ieee, now: Instant) -> Result<InstallOutcome, ControlError> {
        self.known(ieee)?;
        let available = self
            .sessions
            .get(&DeviceKey::Ieee(ieee))
            .and_then(|s| s.available);
        // Nothing available yet: no open-ended approval, just ask the device to query.
        let approved_version = match available {
            Some(image) => self.approve(ieee, Some(image.file_version), now)?,
            None => {
                self.nudge(ieee, now);
                None
            }
        };
        let applied = if self.control.downloaded.contains_key(&ieee) {
            Some(self.apply(ieee, now)?)
        } else {
            None
        };
        Ok(InstallOutcome {
            approved_version,
            applied,
        })
    }

    /// Drops ended holds and, inside the apply window, releases every device waiting for the
    /// command; outside it, schedules the next look for when the window opens.
    pub(super) fn check_window_and_holds(&mut self, now: Instant) {
        if let Some(unix) = self.unix_at(now)
            && self.control.expire_holds(unix)
        {
            self.control_revision += 1;
        }
        let Some(window) = self.config.apply_window else {
            self.window_check = WindowCheck::Idle;
            return;
        };
        let Some(second_of_day) = self.local_second_of_day(now) else {
            return;
        };
        if self.control.waiting_for_command().is_empty() {
            self.window_check = WindowCheck::Idle;
            return;
        }
        let wait = window.seconds_until_open(second_of_day);
        if wait > 0 {
            debug!(seconds = wait, "devices wait for the apply window");
            self.window_check =
                WindowCheck::At(after(now, std::time::Duration::from_secs(u64::from(wait))));
            return;
        }
        for (ieee, file) in self.apply_all(now) {
            info!(%ieee, image = %file, %window, "apply window open: upgrade command");
        }
        // Held devices stay; look again in a minute (a hold may end inside the window).
        self.window_check = if self.control.waiting_for_command().is_empty() {
            WindowCheck::Idle
        } else {
            WindowCheck::At(after(now, std::time::Duration::from_secs(60)))
        };
    }
}

/// The history entry of a device found waiting after a restart.
fn downloaded_progress(ieee: Ieee, d: &DownloadedDevice) -> TransferProgress {
    TransferProgress {
        ieee: Some(ieee),
        nwk: d.nwk,
        manufacturer_code: d.manufacturer_code,
        image_type: d.image_type,
        file_version: d.file_version,
        offset: d.image_size,
        image_size: d.image_size,
        state: if d.released {
            TransferState::Finished
        } else {
            TransferState::Downloaded
        },
        bytes_per_second: None,
        eta_seconds: None,
        percent: 100,
        failure: None,
        confirmed: None,
        from_version: d.from_version,
    }
}
