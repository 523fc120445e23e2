//! The end of a transfer (ZCL8 §11.13.9 Upgrade End, §11.13.6.4 upgrade time): the Upgrade End
//! Response under the upgrade-time policy and the apply window, and the transfer's move to the
//! history (failed, finished, later confirmed when the device comes back on the new version).

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::control::{DownloadedDevice, Withheld};
use super::request::{Message, RequestHeader};
use super::session::{PendingUpgrade, Session, Transfer, after};
use super::transfer::snapshot;
use super::{
    DeviceAddr, DeviceKey, FailureReason, HISTORY_LEN, Ieee, ImageKey, OtaServer, ServerEvent,
    TransferState, UPGRADE_TIME_WAIT_FOR_COMMAND, UpgradeTimePolicy, WindowCheck, ZclStatus,
};

impl OtaServer {
    pub(super) fn answer_upgrade_end(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: RequestHeader,
        status: ZclStatus,
        file: ImageKey,
        now: Instant,
    ) -> Option<Message> {
        session.page = None;
        if status != ZclStatus::SUCCESS {
            let reason = FailureReason::DeviceReported(status);
            match session.transfer.take() {
                Some(transfer) => {
                    self.end_transfer(session, key, transfer, TransferState::Failed, Some(reason))
                }
                None => {
                    warn!(device = %session.addr, image = %file, ?status, "upgrade failed on the device");
                    self.events.push_back(ServerEvent::TransferFailed {
                        device: session.addr,
                        image: file,
                        reason,
                    });
                }
            }
            self.admission.release(&key);
            // ZCL8 §11.13.9: a non-SUCCESS Upgrade End Request gets a Default Response
            // (SUCCESS), and the device starts over by itself.
            return (!header.disable_default_response).then_some(Message::DefaultResponse {
                command_id: header.command_id,
                status: ZclStatus::SUCCESS,
            });
        }
        if self.resolve_file(session, file).is_none() {
            info!(device = %session.addr, image = %file, "Upgrade End for an image we do not hold or may not give: ABORT");
            return Some(Message::DefaultResponse {
                command_id: header.command_id,
                status: ZclStatus::ABORT,
            });
        };
        let ieee = session.addr.ieee;
        let held = match self.installer_gate(ieee, file.file_version, now) {
            Ok(()) => false,
            Err(Withheld::Held { .. }) => true,
            Err(withheld) => {
                info!(device = %session.addr, image = %file, %withheld, "Upgrade End for a withheld image: ABORT");
                return Some(Message::DefaultResponse {
                    command_id: header.command_id,
                    status: ZclStatus::ABORT,
                });
            }
        };
        let recorded = ieee
            .and_then(|ieee| self.control.downloaded.get(&ieee))
            .filter(|d| d.image() == file)
            .copied();
        let upgrade_time = match recorded {
            Some(d) if d.released => 0,
            _ if held => UPGRADE_TIME_WAIT_FOR_COMMAND,
            _ => self.upgrade_time(ieee, now),
        };
        let wait = upgrade_time == UPGRADE_TIME_WAIT_FOR_COMMAND;
        session.awaiting_upgrade_command = wait.then_some(file);
        session.awaiting_confirmation = Some(PendingUpgrade {
            image: file,
            apply_by: (!wait).then(|| after(now, Duration::from_secs(u64::from(upgrade_time)))),
        });
        if recorded.is_some() && session.transfer_key() != Some(file) {
            // The device asks again (a waiting device re-sends its Upgrade End Request; a
            // released one that slept through the command): answer, but record nothing new.
            if let (Some(ieee), Some(entry)) =
                (ieee, ieee.and_then(|i| self.control.downloaded.get_mut(&i)))
                && (entry.nwk, entry.endpoint) != (session.addr.nwk, session.addr.endpoint)
            {
                entry.nwk = session.addr.nwk;
                entry.endpoint = session.addr.endpoint;
                self.control_revision += 1;
                debug!(%ieee, "waiting device has a new address");
            }
            debug!(device = %session.addr, image = %file, upgrade_time, "Upgrade End again");
            return Some(Message::UpgradeEndResponse { file, upgrade_time });
        }
        let transfer = match session.transfer.take() {
            Some(transfer)
                if transfer.image.key() == file && transfer.state == TransferState::Waiting =>
            {
                transfer
            }
            other => {
                // Not every byte of this image was served in this run: a daemon restart
                // between the last block and the Upgrade End, or a device claiming a download
                // it never made. The device is answered (it holds the image, or will find out
                // it does not), but nothing is recorded as finished or awaited (issue 18).
                session.transfer = other;
                session.awaiting_confirmation = None;
                info!(device = %session.addr, image = %file, upgrade_time, "Upgrade End: SUCCESS for a download not served in this run; answered, not recorded");
                return Some(Message::UpgradeEndResponse { file, upgrade_time });
            }
        };
        {
            let _entered = transfer.span.enter();
            info!(upgrade_time, "Upgrade End: SUCCESS; upgrade scheduled");
        }
        self.events.push_back(ServerEvent::UpgradeScheduled {
            device: session.addr,
            image: file,
            upgrade_time,
        });
        if wait && let Some(ieee) = ieee {
            self.control.downloaded.insert(
                ieee,
                DownloadedDevice {
                    manufacturer_code: file.manufacturer_code,
                    image_type: file.image_type,
                    file_version: file.file_version,
                    image_size: transfer.image.size(),
                    from_version: transfer.from_version,
                    nwk: session.addr.nwk,
                    endpoint: session.addr.endpoint,
                    since_unix: self.unix_at(now),
                    released: false,
                },
            );
            self.control_revision += 1;
            self.window_check = WindowCheck::Now;
        }
        let state = if wait {
            TransferState::Downloaded
        } else {
            TransferState::Finished
        };
        self.end_transfer(session, key, transfer, state, None);
        Some(Message::UpgradeEndResponse { file, upgrade_time })
    }

    /// The `upgrade_time` (relative seconds) for a device under the upgrade-time policy.
    fn policy_upgrade_time(&self, ieee: Option<Ieee>, now: Instant) -> u32 {
        match self.config.upgrade_time_for(ieee) {
            UpgradeTimePolicy::Immediately => 0,
            UpgradeTimePolicy::AfterDelay(delay) => {
                u32::try_from(delay.as_secs()).unwrap_or(UPGRADE_TIME_WAIT_FOR_COMMAND - 1)
            }
            UpgradeTimePolicy::WaitForCommand => UPGRADE_TIME_WAIT_FOR_COMMAND,
            UpgradeTimePolicy::MaintenanceWindow {
                start_seconds_utc,
                end_seconds_utc,
            } => match self.wall_clock {
                None => UPGRADE_TIME_WAIT_FOR_COMMAND,
                Some((at, unix)) => {
                    let elapsed = if now >= at {
                        now.duration_since(at).as_secs()
                    } else {
                        0
                    };
                    let second_of_day = unix.saturating_add(elapsed) % 86_400;
                    seconds_until_window(second_of_day, *start_seconds_utc, *end_seconds_utc)
                }
            },
        }
    }

    /// The `upgrade_time` for a device: its policy, inside the apply window if one is set
    /// (outside it, or before the wall clock is known, the device waits for the command and
    /// the window releases it).
    pub(super) fn upgrade_time(&self, ieee: Option<Ieee>, now: Instant) -> u32 {
        let policy = self.policy_upgrade_time(ieee, now);
        let Some(window) = self.config.apply_window else {
            return policy;
        };
        match self.local_second_of_day(now) {
            Some(t) if window.contains(t) => {
                if policy == UPGRADE_TIME_WAIT_FOR_COMMAND {
                    0
                } else {
                    policy
                }
            }
            _ => UPGRADE_TIME_WAIT_FOR_COMMAND,
        }
    }

    /// Moves a transfer to the history.
    pub(super) fn end_transfer(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        mut transfer: Transfer,
        state: TransferState,
        failure: Option<FailureReason>,
    ) {
        transfer.state = state;
        if let Some(reason) = &failure {
            let _entered = transfer.span.enter();
            warn!(%reason, offset = transfer.stats.offset, "transfer failed");
            self.events.push_back(ServerEvent::TransferFailed {
                device: session.addr,
                image: transfer.image.key(),
                reason: reason.clone(),
            });
        }
        if session
            .page
            .as_ref()
            .is_some_and(|p| p.image.key() == transfer.image.key())
        {
            session.page = None;
        }
        self.admission.release(&key);
        let progress = snapshot(session.addr, &transfer, failure, None);
        self.events.push_back(ServerEvent::TransferEnded {
            progress: progress.clone(),
            started_at: transfer.stats.started_at,
        });
        self.history.push_back(progress);
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
    }

    pub(super) fn confirm_in_history(
        &mut self,
        device: DeviceAddr,
        image: ImageKey,
        confirmed: bool,
    ) {
        if let Some(entry) = self.history.iter_mut().rev().find(|entry| {
            entry.ieee == device.ieee
                && (device.ieee.is_some() || entry.nwk == device.nwk)
                && entry.manufacturer_code == image.manufacturer_code
                && entry.image_type == image.image_type
                && entry.file_version == image.file_version
                && entry.state == TransferState::Finished
        }) {
            entry.confirmed = Some(confirmed);
        }
    }
}

/// Seconds from `second_of_day` until the window `start..end` opens (0 inside it).
fn seconds_until_window(second_of_day: u64, start: u32, end: u32) -> u32 {
    let (start, end) = (u64::from(start) % 86_400, u64::from(end) % 86_400);
    let inside = if start <= end {
        (start..end).contains(&second_of_day)
    } else {
        second_of_day >= start || second_of_day < end
    };
    if inside {
        return 0;
    }
    let wait = (start + 86_400 - second_of_day) % 86_400;
    u32::try_from(wait).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_window_wait() {
        let (three, four) = (3 * 3600, 4 * 3600);
        assert_eq!(seconds_until_window(3600, three, four), 7200);
        assert_eq!(seconds_until_window(3 * 3600 + 5, three, four), 0);
        assert_eq!(seconds_until_window(4 * 3600, three, four), 23 * 3600);
        // A window across midnight: 23:00-01:00.
        let (eleven_pm, one_am) = (23 * 3600, 3600);
        assert_eq!(seconds_until_window(30, eleven_pm, one_am), 0);
        assert_eq!(seconds_until_window(23 * 3600 + 30, eleven_pm, one_am), 0);
        assert_eq!(seconds_until_window(2 * 3600, eleven_pm, one_am), 21 * 3600);
    }
}
