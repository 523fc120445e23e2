//! What the OTA server tells the status socket: transfers in progress, every device heard from,
//! and the transfer history (ARCHITECTURE.md, "`status --json`").

use super::OtaServer;
use super::progress::{DeviceStatus, TransferProgress};
use super::transfer::snapshot;

impl OtaServer {
    /// Every transfer in progress (queued, downloading, or waiting for its Upgrade End).
    pub fn progress(&self) -> Vec<TransferProgress> {
        let mut transfers: Vec<TransferProgress> = self
            .sessions
            .values()
            .filter_map(|s| s.transfer.as_ref().map(|t| snapshot(s.addr, t, None, None)))
            .collect();
        transfers.sort_by_key(|t| (t.ieee, t.nwk));
        transfers
    }

    /// Every device heard from (and not yet forgotten), with what it last asked and got.
    pub fn devices(&self) -> Vec<DeviceStatus> {
        let mut devices: Vec<DeviceStatus> = self
            .sessions
            .values()
            .map(|s| DeviceStatus {
                ieee: s.addr.ieee,
                nwk: s.addr.nwk,
                manufacturer_code: s.last_query.map(|q| q.manufacturer_code),
                image_type: s.last_query.map(|q| q.image_type),
                current_file_version: s.last_query.map(|q| q.current_file_version),
                hardware_version: s.last_query.and_then(|q| q.hardware_version),
                offered_file_version: s.last_query.and_then(|q| q.offered).map(|k| k.file_version),
                withheld: s.last_withheld.clone(),
                identity: s
                    .addr
                    .ieee
                    .and_then(|ieee| self.identities.get(&ieee))
                    .cloned(),
                available_file_version: s.available.map(|k| k.file_version),
                approved: self.is_approved(s),
                held: s.addr.ieee.is_some_and(|ieee| {
                    self.control
                        .is_held(ieee, self.wall_clock.map(|(_, unix)| unix))
                }),
                queue_position: self.admission.queue_position(&s.addr.key()),
            })
            .collect();
        devices.sort_by_key(|d| (d.ieee, d.nwk));
        devices
    }

    /// Finished and failed transfers, oldest first (the last [`HISTORY_LEN`](super::HISTORY_LEN)).
    pub fn history(&self) -> impl Iterator<Item = &TransferProgress> {
        self.history.iter()
    }
}
