//! Device identity: what each device's Basic cluster (ZCL8 §3.2) says it is — manufacturer
//! name, model identifier, date code, power source, software build — read with ZCL Read
//! Attributes (§2.5.1) so that catalog entries restricted by `modelId` or `manufacturerName`
//! (CATALOGS.md, zigbee-OTA `index.json`) can be matched. Sans-IO: events and `now` in,
//! [`ZclRequest`]s, events and a deadline out.
//!
//! * A read starts on a device's first Query Next Image Request and again when the file
//!   version it reports changes (a new firmware may report a new model or build). It is sent
//!   right after the query, while a sleepy device is awake and polling its parent.
//! * It is asked of the endpoint the OTA request came from; when that endpoint refuses the
//!   read (a Default Response such as UNSUPPORTED_CLUSTER) or answers with none of the
//!   attributes, endpoint 1 is asked at once, where most devices keep their Basic cluster.
//! * An unanswered read is retried at the device's next query (it sleeps in between), at most
//!   [`IdentityConfig::max_attempts`] times per file version; then [`IdentityEvent::GaveUp`].
//! * The Aqara models whose OTA requests carry a wrong file version get their real one from the
//!   LUMI cluster 0xFCC0 ([`crate::zcl::lumi`]): from the reports they send by themselves, and,
//!   for the E1 thermostat, from a manufacturer-specific read of 0x00EE sent right after it
//!   spoke (at most `max_attempts` per file version). It is kept with the identity.
//! * [`IdentityEvent::Read`] is the "identity read completed" milestone; [`IdentityReader::is_read`]
//!   answers the same question later (other policies use it to treat a device as confirmed).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use zigbee_otad::coordinator::{IncomingMessage, Nwk};
//! use zigbee_otad::identity::{IdentityConfig, IdentityEvent, IdentityReader};
//! use zigbee_otad::zcl::{Ieee, basic::{self, BasicIdentity}};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now();
//! let mut reader = IdentityReader::new(IdentityConfig::default());
//! let ieee = Ieee(0x00124b0000000001);
//! reader.on_ota_query(Nwk(0x1234), ieee, 1, 0x100, now);
//! let request = reader.poll_transmit().unwrap();
//! // The device answers as a Tuya plug would.
//! let identity = BasicIdentity { manufacturer_name: Some("_TZ3000_okaz9tjs".into()),
//!     model_id: Some("TS011F".into()), ..BasicIdentity::default() };
//! let answer = IncomingMessage {
//!     source: Nwk(0x1234), ieee: Some(ieee), src_endpoint: 1, dst_endpoint: 1, profile: 0x0104,
//!     cluster: 0x0000, aps_sequence: 0, lqi: 255, rssi: -40, broadcast: false, read_at: None,
//!     payload: basic::encode_read_response(&request.zcl_frame, &identity).unwrap(),
//! };
//! assert!(reader.on_incoming(&answer, now + Duration::from_millis(50)));
//! assert!(matches!(reader.poll_event(), Some(IdentityEvent::Read { .. })));
//! assert_eq!(reader.identity(ieee), Some(&identity));
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::coordinator::{
    CLUSTER_BASIC, IncomingMessage, Nwk, PROFILE_HOME_AUTOMATION, ZclRequest,
};
use crate::zcl::Ieee;
use crate::zcl::basic::{self, BasicIdentity, BasicReply};
use crate::zcl::lumi;

/// The endpoint asked when the OTA endpoint has no Basic cluster.
pub const FALLBACK_ENDPOINT: u8 = 1;

/// How identities are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Our endpoint (the source of the requests).
    pub our_endpoint: u8,
    /// How long an answer may take (a sleepy device answers within its poll interval).
    pub response_timeout: Duration,
    /// Reads tried per file version before giving up until the version changes.
    pub max_attempts: u32,
}

impl Default for IdentityConfig {
    /// Endpoint 1, 10 s per answer, 3 attempts.
    fn default() -> Self {
        IdentityConfig {
            our_endpoint: 1,
            response_timeout: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}

/// A device's identity as kept in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// The device.
    pub ieee: Ieee,
    /// What its Basic cluster said.
    pub identity: BasicIdentity,
    /// The file version it ran when it said so.
    pub file_version: u32,
}

/// What happened to a device's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityEvent {
    /// The identity was read (the "identity read completed" milestone).
    Read {
        /// The device.
        ieee: Ieee,
        /// What it said.
        identity: BasicIdentity,
    },
    /// Every attempt for this file version went unanswered or was refused.
    GaveUp {
        /// The device.
        ieee: Ieee,
        /// Attempts made.
        attempts: u32,
    },
}

#[derive(Debug, Clone)]
struct Waiting {
    request: ZclRequest,
    deadline: Instant,
}

#[derive(Debug, Clone, Default)]
struct Device {
    identity: Option<BasicIdentity>,
    /// The version the identity was read at.
    read_at_version: Option<u32>,
    /// The version of the last query.
    version: u32,
    attempts: u32,
    gave_up: bool,
    waiting: Option<Waiting>,
    /// The running version its LUMI cluster reported, held until its identity is read.
    vendor_file_version: Option<u32>,
    /// LUMI version reads sent at this file version.
    vendor_reads: u32,
}

/// Reads and keeps device identities. See the module docs.
#[derive(Debug, Default)]
pub struct IdentityReader {
    config: IdentityConfig,
    devices: HashMap<Ieee, Device>,
    transmit: VecDeque<ZclRequest>,
    events: VecDeque<IdentityEvent>,
    next_tsn: u8,
}

impl IdentityReader {
    /// A reader that knows no device yet.
    pub fn new(config: IdentityConfig) -> Self {
        IdentityReader {
            config,
            ..IdentityReader::default()
        }
    }

    /// Takes identities read before (from the state directory).
    pub fn load(&mut self, stored: impl IntoIterator<Item = StoredIdentity>) {
        for entry in stored {
            let device = self.devices.entry(entry.ieee).or_default();
            device.identity = Some(entry.identity);
            device.read_at_version = Some(entry.file_version);
            device.version = entry.file_version;
        }
    }

    /// Every identity read, for the state directory.
    pub fn stored(&self) -> Vec<StoredIdentity> {
        let mut out: Vec<StoredIdentity> = self
            .devices
            .iter()
            .filter_map(|(ieee, d)| {
                Some(StoredIdentity {
                    ieee: *ieee,
                    identity: d.identity.clone()?,
                    file_version: d.read_at_version?,
                })
            })
            .collect();
        out.sort_by_key(|s| s.ieee);
        out
    }

    /// What a device's Basic cluster said, once read (kept across a version change until the
    /// new read answers).
    pub fn identity(&self, ieee: Ieee) -> Option<&BasicIdentity> {
        self.devices.get(&ieee)?.identity.as_ref()
    }

    /// True once an identity read of this device completed.
    pub fn is_read(&self, ieee: Ieee) -> bool {
        self.identity(ieee).is_some()
    }

    /// A Query Next Image Request came from the device: it is awake now. Starts a read when
    /// its identity is unknown or was read at another file version.
    pub fn on_ota_query(
        &mut self,
        nwk: Nwk,
        ieee: Ieee,
        endpoint: u8,
        file_version: u32,
        now: Instant,
    ) {
        let max_attempts = self.config.max_attempts;
        let device = self.devices.entry(ieee).or_default();
        if device.version != file_version {
            device.version = file_version;
            device.attempts = 0;
            device.gave_up = false;
            // A vendor-reported version is stale once the device runs other firmware: it is
            // forgotten until the vendor cluster reports again.
            device.vendor_file_version = None;
            device.vendor_reads = 0;
            if let Some(identity) = device.identity.as_mut()
                && identity.vendor_file_version.take().is_some()
            {
                self.events.push_back(IdentityEvent::Read {
                    ieee,
                    identity: identity.clone(),
                });
            }
        }
        let current = device.identity.is_some() && device.read_at_version == Some(file_version);
        if current {
            self.read_vendor_version(ieee, nwk, endpoint);
        }
        let Some(device) = self.devices.get_mut(&ieee) else {
            return;
        };
        if current || device.gave_up || device.waiting.is_some() {
            return;
        }
        if device.attempts >= max_attempts {
            device.gave_up = true;
            return;
        }
        self.send_read(ieee, nwk, endpoint, now);
    }

    fn send_read(&mut self, ieee: Ieee, nwk: Nwk, endpoint: u8, now: Instant) {
        let tsn = self.next_tsn;
        self.next_tsn = self.next_tsn.wrapping_add(1);
        let request = ZclRequest {
            destination: nwk,
            src_endpoint: self.config.our_endpoint,
            dst_endpoint: endpoint,
            profile: PROFILE_HOME_AUTOMATION,
            cluster: CLUSTER_BASIC,
            zcl_frame: basic::read_identity_request(tsn),
        };
        let Some(device) = self.devices.get_mut(&ieee) else {
            return;
        };
        device.attempts = device.attempts.saturating_add(1);
        tracing::debug!(%ieee, %nwk, endpoint, attempt = device.attempts, "reading the Basic cluster identity");
        device.waiting = Some(Waiting {
            request: request.clone(),
            deadline: now + self.config.response_timeout,
        });
        self.transmit.push_back(request);
    }

    /// A message from a device. True when it answered one of our reads (whatever it said).
    /// A LUMI cluster (0xFCC0) report of the running file version updates the device's
    /// identity too (see [`crate::zcl::lumi`]); true when it carried one.
    pub fn on_incoming(&mut self, message: &IncomingMessage, now: Instant) -> bool {
        if message.cluster == lumi::CLUSTER_ID {
            return self.on_lumi_frame(message);
        }
        if message.cluster != CLUSTER_BASIC {
            return false;
        }
        let found = self.devices.iter().find_map(|(ieee, d)| {
            d.waiting
                .as_ref()
                .filter(|w| w.request.is_answered_by(message))
                .map(|w| (*ieee, w.request.clone()))
        });
        let Some((ieee, request)) = found else {
            return false;
        };
        let reply = basic::decode_reply(&message.payload);
        let Some(device) = self.devices.get_mut(&ieee) else {
            return false;
        };
        device.waiting = None;
        let (nwk, endpoint) = (request.destination, request.dst_endpoint);
        let identity = match reply {
            Ok((_, BasicReply::Attributes(identity))) if identity != BasicIdentity::default() => {
                identity
            }
            other => {
                tracing::debug!(%ieee, endpoint = request.dst_endpoint, answer = ?other.map(|(_, r)| r), "no identity from this endpoint");
                if request.dst_endpoint != FALLBACK_ENDPOINT {
                    // Still awake: it just answered. Ask where Basic usually lives.
                    self.send_read(ieee, request.destination, FALLBACK_ENDPOINT, now);
                } else {
                    self.note_failure(ieee);
                }
                return true;
            }
        };
        let mut merged = device.identity.take().unwrap_or_default();
        // A new read replaces the old one, field by field where it says something.
        merged.merge(identity);
        merged.vendor_file_version = merged
            .vendor_file_version
            .or(device.vendor_file_version.take());
        device.identity = Some(merged.clone());
        device.read_at_version = Some(device.version);
        device.attempts = 0;
        tracing::info!(
            %ieee,
            model = merged.model_id.as_deref().unwrap_or("?"),
            manufacturer = merged.manufacturer_name.as_deref().unwrap_or("?"),
            "device identity read"
        );
        self.events.push_back(IdentityEvent::Read {
            ieee,
            identity: merged,
        });
        // Still awake: a model that keeps its real version in a readable attribute is asked.
        self.read_vendor_version(ieee, nwk, endpoint);
        true
    }

    /// Asks an Aqara model whose OTA requests carry a wrong version for its real one (LUMI
    /// attribute 0x00EE, [`lumi::read_file_version_request`]) when it is not known yet: right
    /// after it spoke, at most `max_attempts` times per file version. The answer comes back as
    /// a LUMI frame (see [`IdentityReader::on_incoming`]); nothing waits for it.
    fn read_vendor_version(&mut self, ieee: Ieee, nwk: Nwk, endpoint: u8) {
        let max = self.config.max_attempts;
        let Some(device) = self.devices.get_mut(&ieee) else {
            return;
        };
        let Some(identity) = device.identity.as_ref() else {
            return;
        };
        let readable = identity
            .model_id
            .as_deref()
            .is_some_and(|model| lumi::READABLE_VERSION_MODELS.contains(&model));
        let known = identity.vendor_file_version.is_some() || device.vendor_file_version.is_some();
        if !readable || known || device.vendor_reads >= max {
            return;
        }
        device.vendor_reads = device.vendor_reads.saturating_add(1);
        let tsn = self.next_tsn;
        self.next_tsn = self.next_tsn.wrapping_add(1);
        tracing::debug!(%ieee, %nwk, endpoint, "reading the LUMI file version (0xFCC0/0x00EE)");
        self.transmit.push_back(ZclRequest {
            destination: nwk,
            src_endpoint: self.config.our_endpoint,
            dst_endpoint: endpoint,
            profile: PROFILE_HOME_AUTOMATION,
            cluster: lumi::CLUSTER_ID,
            zcl_frame: lumi::read_file_version_request(tsn),
        });
    }

    /// A frame of the LUMI cluster from a device heard before: its running file version, when
    /// the frame carries one.
    fn on_lumi_frame(&mut self, message: &IncomingMessage) -> bool {
        let Some(ieee) = message.ieee else {
            return false;
        };
        let Some(device) = self.devices.get_mut(&ieee) else {
            return false;
        };
        let version = match lumi::reported_file_version(&message.payload) {
            Ok(Some(version)) => version,
            Ok(None) => return false,
            Err(error) => {
                tracing::debug!(%ieee, %error, "unreadable LUMI cluster frame");
                return false;
            }
        };
        match device.identity.as_mut() {
            Some(identity) if identity.vendor_file_version != Some(version) => {
                identity.vendor_file_version = Some(version);
                tracing::info!(%ieee, version = %format_args!("{version:#010x}"), "the LUMI cluster reports the running file version");
                self.events.push_back(IdentityEvent::Read {
                    ieee,
                    identity: identity.clone(),
                });
            }
            Some(_) => {}
            None => device.vendor_file_version = Some(version),
        }
        true
    }

    fn note_failure(&mut self, ieee: Ieee) {
        let max = self.config.max_attempts;
        let Some(device) = self.devices.get_mut(&ieee) else {
            return;
        };
        if device.attempts >= max && !device.gave_up {
            device.gave_up = true;
            tracing::info!(%ieee, attempts = device.attempts, "device identity not read; trying again after its next version change");
            self.events.push_back(IdentityEvent::GaveUp {
                ieee,
                attempts: device.attempts,
            });
        }
    }

    /// Ends reads whose answer is overdue; the next query from the device tries again.
    pub fn handle_timeout(&mut self, now: Instant) {
        let overdue: Vec<Ieee> = self
            .devices
            .iter()
            .filter(|(_, d)| d.waiting.as_ref().is_some_and(|w| now >= w.deadline))
            .map(|(ieee, _)| *ieee)
            .collect();
        for ieee in overdue {
            if let Some(device) = self.devices.get_mut(&ieee) {
                device.waiting = None;
            }
            self.note_failure(ieee);
        }
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<ZclRequest> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IdentityEvent> {
        self.events.pop_front()
    }

    /// When [`IdentityReader::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.devices
            .values()
            .filter_map(|d| d.waiting.as_ref().map(|w| w.deadline))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IEEE: Ieee = Ieee(0x0012_4B00_0000_0001);
    const NWK: Nwk = Nwk(0x2222);

    fn origin() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn answer(request: &ZclRequest, identity: &BasicIdentity) -> IncomingMessage {
        IncomingMessage {
            source: request.destination,
            ieee: Some(IEEE),
            src_endpoint: request.dst_endpoint,
            dst_endpoint: request.src_endpoint,
            profile: request.profile,
            cluster: request.cluster,
            aps_sequence: 0,
            payload: basic::encode_read_response(&request.zcl_frame, identity).unwrap_or_default(),
            lqi: 255,
            rssi: -40,
            broadcast: false,
            read_at: None,
        }
    }

    fn lumi() -> BasicIdentity {
        BasicIdentity {
            manufacturer_name: Some("LUMI".into()),
            model_id: Some("lumi.motion.ac01".into()),
            power_source: Some(3),
            ..BasicIdentity::default()
        }
    }

    #[test]
    fn read_once_per_version_and_again_after_a_change() {
        let t0 = origin();
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.on_ota_query(NWK, IEEE, 2, 10, t0);
        let request = reader.poll_transmit().unwrap();
        assert_eq!(request.dst_endpoint, 2);
        assert!(reader.poll_transmit().is_none());
        // A second query while the read is out sends nothing more.
        reader.on_ota_query(NWK, IEEE, 2, 10, t0);
        assert!(reader.poll_transmit().is_none());
        assert!(reader.on_incoming(&answer(&request, &lumi()), t0));
        assert_eq!(
            reader.poll_event(),
            Some(IdentityEvent::Read {
                ieee: IEEE,
                identity: lumi()
            })
        );
        assert!(reader.is_read(IEEE));
        reader.on_ota_query(NWK, IEEE, 2, 10, t0 + Duration::from_secs(60));
        assert!(reader.poll_transmit().is_none(), "same version: no read");
        // After an upgrade the device is read again; the old identity stays until then.
        reader.on_ota_query(NWK, IEEE, 2, 11, t0 + Duration::from_secs(120));
        assert!(reader.poll_transmit().is_some());
        assert_eq!(reader.identity(IEEE), Some(&lumi()));
        assert_eq!(reader.stored()[0].file_version, 10);
    }

    #[test]
    fn an_endpoint_without_basic_falls_back_to_endpoint_1() {
        let t0 = origin();
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.on_ota_query(NWK, IEEE, 11, 1, t0);
        let first = reader.poll_transmit().unwrap();
        let mut refusal = answer(&first, &lumi());
        // Default Response UNSUPPORTED_CLUSTER (0xC3) to command 0x00.
        refusal.payload = vec![0x18, first.tsn().unwrap(), 0x0B, 0x00, 0xC3];
        assert!(reader.on_incoming(&refusal, t0));
        let second = reader.poll_transmit().unwrap();
        assert_eq!(second.dst_endpoint, FALLBACK_ENDPOINT);
        assert_ne!(second.tsn(), first.tsn());
        // A late answer to the first request is not taken for the second.
        assert!(!reader.on_incoming(&answer(&first, &lumi()), t0));
        assert!(reader.on_incoming(&answer(&second, &lumi()), t0));
        assert_eq!(reader.identity(IEEE), Some(&lumi()));
    }

    #[test]
    fn unanswered_reads_retry_at_the_next_query_and_stop_after_the_limit() {
        let t0 = origin();
        let config = IdentityConfig::default();
        let mut reader = IdentityReader::new(config);
        let mut now = t0;
        let mut sent = 0;
        for _ in 0..10 {
            reader.on_ota_query(NWK, IEEE, 1, 5, now);
            while reader.poll_transmit().is_some() {
                sent += 1;
            }
            // A sleeping device: nothing comes back.
            let deadline = reader.poll_timeout();
            if let Some(deadline) = deadline {
                assert_eq!(deadline, now + config.response_timeout);
                reader.handle_timeout(deadline);
            }
            now += Duration::from_secs(300);
        }
        assert_eq!(sent, config.max_attempts);
        assert_eq!(
            reader.poll_event(),
            Some(IdentityEvent::GaveUp {
                ieee: IEEE,
                attempts: config.max_attempts
            })
        );
        assert!(reader.poll_timeout().is_none());
        // A new version starts afresh.
        reader.on_ota_query(NWK, IEEE, 1, 6, now);
        assert!(reader.poll_transmit().is_some());
    }

    #[test]
    fn answers_from_another_device_or_cluster_are_ignored() {
        let t0 = origin();
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.on_ota_query(NWK, IEEE, 1, 5, t0);
        let request = reader.poll_transmit().unwrap();
        let mut stranger = answer(&request, &lumi());
        stranger.source = Nwk(0x3333);
        assert!(!reader.on_incoming(&stranger, t0));
        let mut broadcast = answer(&request, &lumi());
        broadcast.broadcast = true;
        assert!(!reader.on_incoming(&broadcast, t0));
        let mut garbage = answer(&request, &lumi());
        garbage.payload.truncate(6);
        // A truncated answer is an answer that told us nothing: endpoint 1 is asked... it was
        // endpoint 1 already, so it counts as a failed attempt.
        assert!(reader.on_incoming(&garbage, t0));
        assert!(!reader.is_read(IEEE));
    }

    #[test]
    fn stored_identities_survive_a_reload() {
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.load([StoredIdentity {
            ieee: IEEE,
            identity: lumi(),
            file_version: 9,
        }]);
        reader.on_ota_query(NWK, IEEE, 1, 9, origin());
        assert!(reader.poll_transmit().is_none());
        assert!(reader.is_read(IEEE));
        let json = serde_json::to_string(&reader.stored()).unwrap();
        let back: Vec<StoredIdentity> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reader.stored());
    }

    /// A LUMI heartbeat (0xFCC0 attribute 0x00F7, key 13 = file version 0x1B).
    fn lumi_report(version: u8) -> IncomingMessage {
        let mut message = answer(&reader_request(), &lumi());
        message.cluster = lumi::CLUSTER_ID;
        message.payload = vec![
            0x1C, 0x5F, 0x11, 0x07, 0x0A, 0xF7, 0x00, 0x41, 0x09, 0x03, 0x28, 0x2A, 0x0D, 0x23,
            version, 0x00, 0x00, 0x00,
        ];
        message
    }

    fn reader_request() -> ZclRequest {
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.on_ota_query(NWK, IEEE, 1, 10, origin());
        reader.poll_transmit().unwrap()
    }

    #[test]
    fn the_lumi_cluster_report_gives_the_running_version() {
        let t0 = origin();
        let mut reader = IdentityReader::new(IdentityConfig::default());
        // From a device never heard: ignored (no state for made-up senders).
        assert!(!reader.on_incoming(&lumi_report(0x1B), t0));
        reader.on_ota_query(NWK, IEEE, 1, 10, t0);
        let request = reader.poll_transmit().unwrap();
        // Reported before the identity is read: held, then part of the identity.
        assert!(reader.on_incoming(&lumi_report(0x1B), t0));
        assert!(reader.poll_event().is_none());
        assert!(reader.on_incoming(&answer(&request, &lumi()), t0));
        let expected = BasicIdentity {
            vendor_file_version: Some(0x1B),
            ..lumi()
        };
        assert_eq!(
            reader.poll_event(),
            Some(IdentityEvent::Read {
                ieee: IEEE,
                identity: expected.clone()
            })
        );
        // The same version again: nothing new; a new one: an event.
        assert!(reader.on_incoming(&lumi_report(0x1B), t0));
        assert!(reader.poll_event().is_none());
        assert!(reader.on_incoming(&lumi_report(0x1C), t0));
        assert!(matches!(
            reader.poll_event(),
            Some(IdentityEvent::Read { identity, .. }) if identity.vendor_file_version == Some(0x1C)
        ));
        // New firmware (its OTA version changed): the vendor version is stale and forgotten.
        reader.on_ota_query(NWK, IEEE, 1, 11, t0 + Duration::from_secs(60));
        assert!(matches!(
            reader.poll_event(),
            Some(IdentityEvent::Read { identity, .. }) if identity.vendor_file_version.is_none()
        ));
    }

    #[test]
    fn the_e1_thermostat_is_asked_for_its_lumi_version_while_awake() {
        let t0 = origin();
        let trv = BasicIdentity {
            model_id: Some("lumi.airrtc.agl001".into()),
            ..lumi()
        };
        let mut reader = IdentityReader::new(IdentityConfig::default());
        reader.on_ota_query(NWK, IEEE, 1, 10, t0);
        let request = reader.poll_transmit().unwrap();
        assert!(reader.on_incoming(&answer(&request, &trv), t0));
        // Right after its Basic answer: the manufacturer-specific read of 0x00EE.
        let read = reader.poll_transmit().unwrap();
        assert_eq!(read.cluster, lumi::CLUSTER_ID);
        assert_eq!(read.destination, NWK);
        assert_eq!(
            read.zcl_frame[0], 0x14,
            "manufacturer-specific, no default response"
        );
        assert_eq!(read.zcl_frame[1..3], [0x5F, 0x11]);
        // Unanswered: asked again at its next queries, up to the attempt limit.
        for _ in 1..IdentityConfig::default().max_attempts {
            reader.on_ota_query(NWK, IEEE, 1, 10, t0);
            assert_eq!(reader.poll_transmit().unwrap().cluster, lumi::CLUSTER_ID);
        }
        reader.on_ota_query(NWK, IEEE, 1, 10, t0);
        assert!(reader.poll_transmit().is_none());
        // Its answer (Read Attributes Response, 0x00EE = 0x0819) makes the version known.
        let mut response = answer(&read, &trv);
        response.payload = vec![
            0x18,
            read.zcl_frame[3],
            0x01,
            0xEE,
            0x00,
            0x00,
            0x23,
            0x19,
            0x08,
            0,
            0,
        ];
        assert!(reader.on_incoming(&response, t0));
        let _ = reader.poll_event();
        assert_eq!(
            reader.identity(IEEE).and_then(|i| i.vendor_file_version),
            Some(0x0819)
        );
        // Another model is never asked.
        let mut other = IdentityReader::new(IdentityConfig::default());
        other.on_ota_query(NWK, IEEE, 1, 10, t0);
        let request = other.poll_transmit().unwrap();
        assert!(other.on_incoming(&answer(&request, &lumi()), t0));
        assert!(other.poll_transmit().is_none());
    }
}
