//! The daemon's side of device identities: the sans-IO [`IdentityReader`] driven from the main
//! loop, its reads sent through the coordinator's general ZCL request path, and the identities
//! kept in `state_dir/identities.json` (written atomically) so that they survive a restart.

use std::collections::VecDeque;
use std::path::Path;

use crate::atomic_file;
use crate::catalog::service::read_capped;
use crate::coordinator::{
    CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Coordinator, IncomingMessage, SendError, ZclRequest,
};
use crate::identity::{IdentityConfig, IdentityEvent, IdentityReader, StoredIdentity};
use crate::server::OtaServer;
use crate::zcl::lumi;
use crate::zcl::ota::{OtaCommand, OtaFrame};

/// The file in the state directory.
pub const IDENTITIES_FILE: &str = "identities.json";
/// Largest identities file read (a few hundred bytes per device).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Reads held while the coordinator cannot take them.
const MAX_HELD: usize = 64;

/// Reads `state_dir/identities.json`; empty when absent, unreadable ones are logged and skipped.
pub fn load(state_dir: &Path) -> Vec<StoredIdentity> {
    let path = state_dir.join(IDENTITIES_FILE);
    match read_capped(&path, MAX_FILE_BYTES) {
        Ok(None) => Vec::new(),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error, "device identities unreadable; they will be read again");
            Vec::new()
        }),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "device identities unreadable; they will be read again");
            Vec::new()
        }
    }
}

/// Writes `state_dir/identities.json` atomically.
pub fn save(state_dir: &Path, identities: &[StoredIdentity]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(identities).map_err(std::io::Error::other)?;
    atomic_file::write(
        &state_dir.join(IDENTITIES_FILE),
        &bytes,
        atomic_file::OWNER_ONLY,
    )
    .map_err(std::io::Error::other)
}

/// The identity reader with its IO: loads and saves the file, sends reads, hands what it
/// learns to the OTA server.
#[derive(Debug)]
pub struct Identities {
    reader: IdentityReader,
    held: VecDeque<ZclRequest>,
}

impl Identities {
    /// Loads the stored identities and gives them to `server`.
    pub fn open(state_dir: &Path, our_endpoint: u8, server: &mut OtaServer) -> Self {
        let mut reader = IdentityReader::new(IdentityConfig {
            our_endpoint,
            ..IdentityConfig::default()
        });
        let stored = load(state_dir);
        if !stored.is_empty() {
            tracing::info!(devices = stored.len(), "device identities loaded");
        }
        for entry in &stored {
            server.set_device_identity(entry.ieee, entry.identity.clone());
        }
        reader.load(stored);
        Identities {
            reader,
            held: VecDeque::new(),
        }
    }

    /// The reader (for "is this device's identity read?").
    pub fn reader(&self) -> &IdentityReader {
        &self.reader
    }

    /// A message from a device: a Query Next Image Request starts a read when needed (after
    /// the server has answered it), a Basic cluster answer completes one, a LUMI cluster
    /// report of the running file version updates one. True when the message was one of these
    /// answers or reports.
    pub fn on_incoming(&mut self, message: &IncomingMessage, now: std::time::Instant) -> bool {
        if message.cluster == CLUSTER_BASIC || message.cluster == lumi::CLUSTER_ID {
            return self.reader.on_incoming(message, now);
        }
        if message.cluster == CLUSTER_OTA_UPGRADE
            && !message.broadcast
            && let Some(ieee) = message.ieee
            && let Ok(frame) = OtaFrame::decode(&message.payload)
            && let OtaCommand::QueryNextImageRequest(query) = frame.command
        {
            self.reader.on_ota_query(
                message.source,
                ieee,
                message.src_endpoint,
                query.current_file_version,
                now,
            );
        }
        false
    }

    /// Ends overdue reads.
    pub fn handle_timeout(&mut self, now: std::time::Instant) {
        self.reader.handle_timeout(now);
    }

    /// When [`Identities::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.reader.poll_timeout()
    }

    /// Sends the reads waiting; those the coordinator cannot take now wait (bounded).
    pub fn flush(&mut self, coordinator: &dyn Coordinator) {
        while let Some(request) = self.reader.poll_transmit() {
            if self.held.len() >= MAX_HELD {
                self.held.pop_front();
            }
            self.held.push_back(request);
        }
        while let Some(request) = self.held.pop_front() {
            match coordinator.send_zcl_request(&request) {
                Ok(_) => {}
                Err(SendError::QueueFull | SendError::NotUp(_)) => {
                    self.held.push_front(request);
                    break;
                }
                Err(error) => tracing::debug!(%error, "identity read not sent"),
            }
        }
    }

    /// Hands completed reads to the server. True when an identity was learned (a restricted
    /// image may now be wanted, and [`Identities::stored`] should be saved).
    pub fn drain_events(&mut self, server: &mut OtaServer) -> bool {
        let mut learned = false;
        while let Some(event) = self.reader.poll_event() {
            if let IdentityEvent::Read { ieee, identity } = event {
                server.set_device_identity(ieee, identity);
                learned = true;
            }
        }
        learned
    }

    /// The identities read so far, to save (the persistence thread writes them).
    pub fn stored(&self) -> Vec<StoredIdentity> {
        self.reader.stored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcl::Ieee;
    use crate::zcl::basic::BasicIdentity;

    #[test]
    fn file_round_trips_and_garbage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        let stored = vec![StoredIdentity {
            ieee: Ieee(0x0012_4B00_0000_0001),
            identity: BasicIdentity {
                model_id: Some("TS011F".into()),
                ..BasicIdentity::default()
            },
            file_version: 3,
        }];
        save(dir.path(), &stored).unwrap();
        assert_eq!(load(dir.path()), stored);
        std::fs::write(dir.path().join(IDENTITIES_FILE), b"{not json").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
