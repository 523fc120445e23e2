//! The server's configuration: block-size caps, pacing, concurrency, timeouts, the upgrade-time
//! policy and the image-choice policy (downgrades, deny list, pins, per-device overrides).
//!
//! Every default is chosen from what the field has taught other servers (FIELD-NOTES.md,
//! PROTOCOLS.md §8 and §10); each field's doc says where its default comes from.

use std::collections::HashMap;
use std::time::Duration;

use super::Ieee;
use super::control::{ApplyWindow, InstallMode};
pub use crate::catalog::model::{DenyRule, VersionPin};

/// Manufacturer codes the built-in tables refer to.
mod manufacturer {
    pub(super) const IKEA: u16 = 0x117C;
    pub(super) const INSTA: u16 = 0x117A;
    pub(super) const DRESDEN_ELEKTRONIK: u16 = 0x1135;
    pub(super) const BUSCH_JAEGER: u16 = 0x112E;
    pub(super) const LEGRAND: u16 = 0x1021;
    pub(super) const BOSCH: u16 = 0x1209;
    /// Shenzhen CoolKit (SONOFF).
    pub(super) const SONOFF: u16 = 0x1286;
}

/// When a device that finished its download may apply the new image (the Upgrade End Response's
/// `upgrade_time`; `current_time` is always 0, which makes `upgrade_time` relative).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeTimePolicy {
    /// `upgrade_time = 0`: apply at once (zigpy, SiLabs default).
    Immediately,
    /// `upgrade_time = delay` in seconds (deCONZ's configurable delay, SiLabs' 120 s policy).
    AfterDelay(Duration),
    /// `upgrade_time = 0xFFFFFFFF`: the device waits for a later Upgrade End Response, sent by
    /// [`OtaServer::upgrade_now`](super::OtaServer::upgrade_now) (the spec's "upgrade command").
    WaitForCommand,
    /// Apply inside a daily window, given in seconds since UTC midnight (`start..end`; a window
    /// may wrap past midnight). Needs [`OtaServer::set_wall_clock`](super::OtaServer::set_wall_clock);
    /// until the wall clock is known the server answers as for [`Self::WaitForCommand`].
    MaintenanceWindow {
        /// Window start, seconds since 00:00 UTC (0..86400).
        start_seconds_utc: u32,
        /// Window end, seconds since 00:00 UTC (0..86400).
        end_seconds_utc: u32,
    },
}

/// The unit devices use for `MinimumBlockPeriod`. The SE 1.x text said milliseconds, later
/// revisions say seconds (a SiLabs code comment, PROTOCOLS.md §8); most devices send 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockPeriodUnit {
    /// Milliseconds (the default: what the devices seen in the field mean).
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl BlockPeriodUnit {
    /// The duration of `value` in this unit.
    pub fn duration(self, value: u16) -> Duration {
        match self {
            BlockPeriodUnit::Milliseconds => Duration::from_millis(u64::from(value)),
            BlockPeriodUnit::Seconds => Duration::from_secs(u64::from(value)),
        }
    }
}

/// Settings for one device (by IEEE address) that take precedence over the global ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceOverride {
    /// Never offer this device anything.
    pub disabled: bool,
    /// The only file version offered to this device.
    pub pinned_version: Option<u32>,
    /// Overrides [`ServerConfig::allow_downgrade`].
    pub allow_downgrade: Option<bool>,
    /// Overrides [`ServerConfig::allow_reinstall`].
    pub allow_reinstall: Option<bool>,
    /// Overrides the block-size caps for this device.
    pub block_size_cap: Option<u8>,
    /// Overrides [`ServerConfig::upgrade_time`].
    pub upgrade_time: Option<UpgradeTimePolicy>,
    /// Overrides the idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Overrides [`ServerConfig::install`].
    pub install: Option<InstallMode>,
}

/// The server's configuration. [`ServerConfig::default`] is a sane, field-tested starting point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Our endpoint: the source endpoint of every frame we send.
    pub endpoint: u8,
    /// Largest block served to anyone (default 50, as zigpy, herdsman and deCONZ).
    pub block_size_cap: u8,
    /// Smaller (or larger) caps per manufacturer code, from the field: 40 for Insta,
    /// dresden elektronik and Busch-Jaeger; Legrand is left uncapped (255) as zigpy does.
    /// These explicit caps are not reduced by the APS reserves below (see
    /// [`ServerConfig::explicit_block_cap`]).
    pub manufacturer_block_caps: HashMap<u16, u8>,
    /// Bytes kept free in every APS frame for APS encryption (aux header + MIC; 9 as in the
    /// Exegin figures: 66 − 57).
    pub aps_encryption_reserve: u8,
    /// Bytes kept free for a source route (2 + 2 per relay; default 6 = two relays). With the
    /// usual EZSP maximum payload of 82 this leaves exactly the 50-byte default block. The
    /// reserves apply to the default cap, not to explicit per-manufacturer or per-device caps.
    pub source_route_reserve: u8,
    /// Transfers allowed to download at the same time (default 3: a rolling update that keeps
    /// the mesh healthy). Devices over the cap get WAIT_FOR_DATA, never silence.
    pub max_concurrent_transfers: usize,
    /// The `request_time` of a WAIT_FOR_DATA sent to a device over the cap when no running
    /// transfer gives a better estimate of when a slot frees up (default 60 s, as SiLabs).
    pub busy_retry_after: Duration,
    /// Bounds on the estimated `request_time` (default 10 s ..= 10 min).
    pub busy_retry_bounds: (Duration, Duration),
    /// A transfer with no request for this long is ended as abandoned (default 5 min; a
    /// device that comes back later resumes at its offset as a new transfer).
    pub idle_timeout: Duration,
    /// Longer idle timeouts for manufacturers known to be slow (Bosch 1 h: they fetch in the
    /// background over up to two days; Legrand 30 min: newer firmware stalls near the end and
    /// starts again by itself — both as zigbee-herdsman's `ota.ts` decides), chosen by the
    /// manufacturer of the image being downloaded, not the one a device claims.
    pub manufacturer_idle_timeouts: HashMap<u16, Duration>,
    /// Longer idle timeouts for one image type of one manufacturer, before the manufacturer's
    /// (SONOFF image type 8199: 1 h, zigbee-herdsman-converters #6657, devices that pause that
    /// long before their Upgrade End Request).
    pub image_type_idle_timeouts: HashMap<(u16, u16), Duration>,
    /// A transfer silent this long gives up its slot while other devices wait for one (it
    /// keeps its offset and queues again with its next request), so a device sending a block
    /// request once per idle timeout cannot hold a slot (default 60 s).
    pub slot_idle_while_others_wait: Duration,
    /// A transfer that has held its slot this long gives it up while other devices wait (it
    /// keeps its offset and queues again, at the back, with its next request): a device
    /// asking just often enough to stay under `slot_idle_while_others_wait` cannot hold a
    /// slot for ever either (default 15 min, several whole images at normal speed).
    pub max_slot_time_while_others_wait: Duration,
    /// A slot requires progress: while other devices wait, a transfer that moved less than
    /// this many bytes a second since it got its slot (or since its progress was last
    /// checked, at least `slot_progress_window` before) gives it up, keeping its offset
    /// (default 10 B/s, two 50-byte blocks in 10 s; a sleepy device fetching one block per
    /// 7.5 s poll, 6.7 B/s, queues again behind the waiting devices; 0 turns the rule off).
    /// A device that takes a slot and then goes quiet holds it one window, not an idle
    /// timeout.
    pub slot_min_rate_while_others_wait: u32,
    /// How long a slot holder's progress is measured before it is judged (default 10 s).
    pub slot_progress_window: Duration,
    /// How long after the last block the server waits for the Upgrade End Request before it
    /// records the transfer as failed (default 2 h: dual-MCU devices stay silent ~30 min).
    pub upgrade_end_timeout: Duration,
    /// A device unheard of for this long is forgotten (default 24 h).
    pub forget_device_after: Duration,
    /// Devices remembered at most (default 2,000, about 5 MB); beyond it the one heard from
    /// longest ago is forgotten, so hostile traffic from made-up addresses cannot exhaust
    /// memory.
    pub max_sessions: usize,
    /// Extra gap between two block responses to one device (default 0; herdsman uses 250 ms).
    pub min_block_interval: Duration,
    /// Unit of the device's MinimumBlockPeriod.
    pub minimum_block_period_unit: BlockPeriodUnit,
    /// Shortest gap between two blocks of a page stream, whatever the device asks (default
    /// 20 ms, deCONZ's lower clamp): the coordinator cannot accept frames faster.
    pub min_page_spacing: Duration,
    /// A page stream sends its next block only once the coordinator reported the previous
    /// one delivered ([`OtaServer::on_delivery`](super::OtaServer::on_delivery)), or after
    /// [`PAGE_DELIVERY_FALLBACK`](super::PAGE_DELIVERY_FALLBACK) without a report: a page
    /// request of 65,535 bytes at spacing 0 cannot outrun the radio. Off by default (a
    /// driver without delivery reports); the daemon turns it on.
    pub pace_pages_by_delivery: bool,
    /// Pending requests kept per device; beyond this a block request is answered with
    /// WAIT_FOR_DATA instead of being queued (never dropped, never silent).
    pub max_pending_per_device: usize,
    /// How long an answered request is remembered so that a retry (same TSN, same bytes)
    /// gets the identical answer again instead of being served twice.
    pub retry_window: Duration,
    /// When a finished download may be applied.
    pub upgrade_time: UpgradeTimePolicy,
    /// Offer an older version than the device runs.
    pub allow_downgrade: bool,
    /// Offer the version the device already runs.
    pub allow_reinstall: bool,
    /// Images never offered. Default: IKEA image types 0x2200 and 0x2206 (bricking, blocked by
    /// zigpy #1428/#1430).
    pub deny: Vec<DenyRule>,
    /// Version pins per manufacturer and image type.
    pub pins: Vec<VersionPin>,
    /// Per-device settings.
    pub device_overrides: HashMap<Ieee, DeviceOverride>,
    /// A broadcast Image Notify aims for about this many devices querying at once: the query
    /// jitter is `100 · min(target / known devices, 1)` (zigpy uses 15).
    pub notify_target_responders: u32,
    /// When a new image concerns at most this many known devices they get unicast notifies;
    /// more get one broadcast with a scaled jitter.
    pub notify_unicast_limit: usize,
    /// Broadcast Image Notifies are at least this far apart (default 60 s).
    pub min_broadcast_notify_interval: Duration,
    /// Offer available images at once, or only once the installer approves them.
    pub install: InstallMode,
    /// A daily window (local time) in which devices waiting for the command are told to apply
    /// their image; outside it every finished download waits.
    pub apply_window: Option<ApplyWindow>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            endpoint: 1,
            block_size_cap: 50,
            manufacturer_block_caps: HashMap::from([
                (manufacturer::INSTA, 40),
                (manufacturer::DRESDEN_ELEKTRONIK, 40),
                (manufacturer::BUSCH_JAEGER, 40),
                (manufacturer::LEGRAND, u8::MAX),
            ]),
            aps_encryption_reserve: 9,
            source_route_reserve: 6,
            max_concurrent_transfers: 3,
            busy_retry_after: Duration::from_secs(60),
            busy_retry_bounds: (Duration::from_secs(10), Duration::from_secs(600)),
            idle_timeout: Duration::from_secs(300),
            slot_idle_while_others_wait: Duration::from_secs(60),
            pace_pages_by_delivery: false,
            max_slot_time_while_others_wait: Duration::from_secs(15 * 60),
            slot_min_rate_while_others_wait: 10,
            slot_progress_window: Duration::from_secs(10),
            manufacturer_idle_timeouts: HashMap::from([
                (manufacturer::BOSCH, Duration::from_secs(3600)),
                (manufacturer::LEGRAND, Duration::from_secs(1800)),
            ]),
            image_type_idle_timeouts: HashMap::from([(
                (manufacturer::SONOFF, 8199),
                Duration::from_secs(3600),
            )]),
            upgrade_end_timeout: Duration::from_secs(2 * 3600),
            forget_device_after: Duration::from_secs(24 * 3600),
            max_sessions: 2_000,
            min_block_interval: Duration::ZERO,
            minimum_block_period_unit: BlockPeriodUnit::Milliseconds,
            min_page_spacing: Duration::from_millis(20),
            max_pending_per_device: 16,
            retry_window: Duration::from_secs(30),
            upgrade_time: UpgradeTimePolicy::Immediately,
            allow_downgrade: false,
            allow_reinstall: false,
            deny: vec![
                DenyRule {
                    manufacturer_code: manufacturer::IKEA,
                    image_type: Some(0x2200),
                    file_version: None,
                    reason: "IKEA image type 0x2200 bricks devices (zigpy #1428)".into(),
                },
                DenyRule {
                    manufacturer_code: manufacturer::IKEA,
                    image_type: Some(0x2206),
                    file_version: None,
                    reason: "IKEA image type 0x2206 bricks devices (zigpy #1430)".into(),
                },
            ],
            pins: Vec::new(),
            device_overrides: HashMap::new(),
            notify_target_responders: 15,
            notify_unicast_limit: 3,
            min_broadcast_notify_interval: Duration::from_secs(60),
            install: InstallMode::Auto,
            apply_window: None,
        }
    }
}

impl ServerConfig {
    /// The override for `ieee`, if any.
    pub fn device_override(&self, ieee: Option<Ieee>) -> Option<&DeviceOverride> {
        ieee.and_then(|ieee| self.device_overrides.get(&ieee))
    }

    /// The explicit block-size cap for a device, if any: its override, else its manufacturer's.
    /// An explicit cap is a size proven in the field, honoured up to the hard APS limit without
    /// the reserves (Legrand asks for 64-byte blocks, which zigpy and herdsman send over
    /// EZSP's 82-byte payload).
    pub fn explicit_block_cap(&self, manufacturer_code: u16, ieee: Option<Ieee>) -> Option<u8> {
        self.device_override(ieee)
            .and_then(|o| o.block_size_cap)
            .or_else(|| {
                self.manufacturer_block_caps
                    .get(&manufacturer_code)
                    .copied()
            })
    }

    /// The idle timeout for a device: its override, else its image type's, else its
    /// manufacturer's, else the global one.
    pub fn idle_timeout_for(
        &self,
        manufacturer_code: u16,
        image_type: u16,
        ieee: Option<Ieee>,
    ) -> Duration {
        self.device_override(ieee)
            .and_then(|o| o.idle_timeout)
            .or_else(|| {
                self.image_type_idle_timeouts
                    .get(&(manufacturer_code, image_type))
                    .copied()
            })
            .or_else(|| {
                self.manufacturer_idle_timeouts
                    .get(&manufacturer_code)
                    .copied()
            })
            .unwrap_or(self.idle_timeout)
    }

    /// The install mode for a device: its override, else the global one.
    pub fn install_for(&self, ieee: Option<Ieee>) -> InstallMode {
        self.device_override(ieee)
            .and_then(|o| o.install)
            .unwrap_or(self.install)
    }

    /// The upgrade-time policy for a device.
    pub fn upgrade_time_for(&self, ieee: Option<Ieee>) -> &UpgradeTimePolicy {
        self.device_override(ieee)
            .and_then(|o| o.upgrade_time.as_ref())
            .unwrap_or(&self.upgrade_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-vendor timeouts other servers apply: Bosch 1 h, Legrand 30 min, SONOFF image
    /// type 8199 1 h (zigbee-herdsman `ota.ts`); every other device the global 5 min; a
    /// per-device override wins over all of them.
    #[test]
    fn vendor_idle_timeouts() {
        let mut config = ServerConfig::default();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(config.idle_timeout_for(0x1209, 0x3050, None), minutes(60));
        assert_eq!(config.idle_timeout_for(0x1021, 0x0012, None), minutes(30));
        assert_eq!(config.idle_timeout_for(0x1286, 8199, None), minutes(60));
        assert_eq!(config.idle_timeout_for(0x1286, 8198, None), minutes(5));
        assert_eq!(config.idle_timeout_for(0x1189, 8199, None), minutes(5));
        let ieee = Ieee(1);
        config.device_overrides.insert(
            ieee,
            DeviceOverride {
                idle_timeout: Some(minutes(2)),
                ..DeviceOverride::default()
            },
        );
        assert_eq!(
            config.idle_timeout_for(0x1286, 8199, Some(ieee)),
            minutes(2)
        );
    }
}
