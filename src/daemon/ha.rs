//! Home Assistant over MQTT, without any IO: what to publish, given status snapshots, the
//! connection's ups and downs and `now` (home-assistant/core `components/mqtt/update.py` and
//! the MQTT discovery docs).
//!
//! * One retained `update` discovery config per known device (`device_class: firmware`), whose
//!   device registry entry carries the IEEE address (as an identifier and as a `zigbee`
//!   connection, so Home Assistant files it under the same device ZHA shows) and, where known,
//!   the manufacturer and model; a device that disappears gets an empty retained config.
//! * A retained JSON state per device: `installed_version`, `latest_version`, `title`,
//!   `release_summary`, `release_url`, `in_progress`, `update_percentage`. Progress alone is
//!   published at most once per 1 % or 5 s per device, never per block.
//! * `command_topic` + `payload_install`: [`HaPublisher::on_message`] turns a press into an
//!   [`InstallCommand`].
//! * Availability through the client's last will (`<base>/availability`, `online`/`offline`).
//! * A daemon device with three sensors: coordinator state, last catalog refresh, active
//!   transfers.
//!
//! The outgoing queue is keyed by topic, so it holds at most one message per topic (the newest
//! state per device) and stays bounded by the number of devices; configs and removals are never
//! dropped, only replaced by a newer message for the same topic. After every (re)connection
//! everything is queued again: a broker restarted without persistence has lost its retained
//! messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::status::{StatusSnapshot, TransferState, TransferStatus};
use crate::server::{Ieee, ImageKey};

/// The payload Home Assistant sends on the command topic when Install is pressed.
pub const PAYLOAD_INSTALL: &str = "install";
/// A progress-only change waits for this much movement...
const PROGRESS_STEP_PERCENT: f64 = 1.0;
/// ...or this much time since the last state of that device.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Devices given an entity; beyond this a warning and no entity (keeps the queue bounded).
pub const MAX_DEVICES: usize = 2048;
/// Home Assistant shows at most 255 characters of a release summary.
const MAX_SUMMARY_CHARS: usize = 255;

/// Names and prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// `[mqtt] base_topic`.
    pub base_topic: String,
    /// `[mqtt] discovery_prefix`.
    pub discovery_prefix: String,
    /// Our version, shown on the daemon device.
    pub sw_version: String,
}

/// One MQTT message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Topic.
    pub topic: String,
    /// Payload (empty clears a retained message).
    pub payload: Vec<u8>,
    /// Retained.
    pub retain: bool,
}

/// What the catalogs say about an image, for the state's `title` and release fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// A file or product name.
    pub title: Option<String>,
    /// Release notes: text, or a URL.
    pub notes: Option<String>,
}

/// Install was pressed for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallCommand {
    /// The device.
    pub ieee: Ieee,
}

/// The state published for one device.
#[derive(Debug, Clone, PartialEq)]
struct DeviceState {
    installed_version: String,
    latest_version: String,
    title: Option<String>,
    release_summary: Option<String>,
    release_url: Option<String>,
    in_progress: bool,
    update_percentage: Option<f64>,
}

impl DeviceState {
    fn to_json(&self) -> String {
        let percentage = self.update_percentage.map(|p| (p * 10.0).round() / 10.0);
        let body = json!({
            "installed_version": self.installed_version,
            "latest_version": self.latest_version,
            "title": self.title,
            "release_summary": self.release_summary,
            "release_url": self.release_url,
            "in_progress": self.in_progress,
            "update_percentage": percentage,
        });
        body.to_string()
    }

    /// Only the percentage moved.
    fn differs_only_in_progress(&self, other: &DeviceState) -> bool {
        let mut same = other.clone();
        same.update_percentage = self.update_percentage;
        &same == self && self.update_percentage != other.update_percentage
    }
}

/// What we know about a device's entity.
#[derive(Debug, Clone)]
struct DeviceEntity {
    config: Value,
    state: DeviceState,
    /// The last state queued, and when.
    published: Option<(DeviceState, Instant)>,
}

/// The sans-IO publisher.
#[derive(Debug)]
pub struct HaPublisher {
    settings: HaSettings,
    devices: BTreeMap<u64, DeviceEntity>,
    daemon_state: Option<Value>,
    pending: BTreeMap<String, Publication>,
    /// Configs go out before states (Home Assistant subscribes to a state topic when it reads
    /// the config).
    pending_configs: BTreeSet<String>,
    installs: Vec<InstallCommand>,
    connected: bool,
    too_many_warned: bool,
}

impl HaPublisher {
    /// A publisher with nothing known yet.
    pub fn new(settings: HaSettings) -> Self {
        HaPublisher {
            settings,
            devices: BTreeMap::new(),
            daemon_state: None,
            pending: BTreeMap::new(),
            pending_configs: BTreeSet::new(),
            installs: Vec::new(),
            connected: false,
            too_many_warned: false,
        }
    }

    /// The availability topic (the last will says `offline` there).
    pub fn availability_topic(&self) -> String {
        format!("{}/availability", self.settings.base_topic)
    }

    /// The filter to subscribe to for Install presses.
    pub fn command_filter(&self) -> String {
        format!("{}/device/+/install", self.settings.base_topic)
    }

    fn node_id(&self) -> String {
        sanitize_object_id(&self.settings.base_topic)
    }

    fn device_topic(&self, ieee: u64, leaf: &str) -> String {
        format!("{}/device/{ieee:016x}/{leaf}", self.settings.base_topic)
    }

    fn update_config_topic(&self, ieee: u64) -> String {
        format!(
            "{}/update/{}/{ieee:016x}/config",
            self.settings.discovery_prefix,
            self.node_id()
        )
    }

    fn daemon_state_topic(&self) -> String {
        format!("{}/daemon/state", self.settings.base_topic)
    }

    /// The connection is up: queue everything again (a restarted broker may have lost every
    /// retained message), availability first.
    pub fn on_connected(&mut self) {
        self.connected = true;
        self.queue(Publication {
            topic: self.availability_topic(),
            payload: b"online".to_vec(),
            retain: true,
        });
        for publication in self.daemon_configs() {
            self.queue_config(publication);
        }
        if let Some(state) = self.daemon_state.clone() {
            self.queue(retained(self.daemon_state_topic(), state.to_string()));
        }
        let ieees: Vec<u64> = self.devices.keys().copied().collect();
        for ieee in ieees {
            let topic = self.update_config_topic(ieee);
            let state_topic = self.device_topic(ieee, "state");
            let Some(entity) = self.devices.get_mut(&ieee) else {
                continue;
            };
            let config = entity.config.to_string();
            let state = entity.state.to_json();
            // The republished state counts as published now for the progress limit.
            entity.published = entity
                .published
                .take()
                .map(|(_, at)| (entity.state.clone(), at));
            self.queue_config(retained(topic, config));
            self.queue(retained(state_topic, state));
        }
    }

    /// The connection is down: nothing goes out until [`Self::on_connected`].
    pub fn on_disconnected(&mut self) {
        self.connected = false;
    }

    /// A new snapshot, with what the catalogs say about each image, at `now`.
    pub fn on_snapshot(
        &mut self,
        snapshot: &StatusSnapshot,
        releases: &HashMap<ImageKey, ReleaseInfo>,
        now: Instant,
    ) {
        self.update_daemon_state(snapshot);
        let mut seen = BTreeSet::new();
        for device in &snapshot.devices {
            let Ok(ieee) = device.ieee.parse::<Ieee>() else {
                continue;
            };
            if !self.devices.contains_key(&ieee.0) && self.devices.len() >= MAX_DEVICES {
                if !self.too_many_warned {
                    self.too_many_warned = true;
                    tracing::warn!(
                        "more than {MAX_DEVICES} devices: the rest get no Home Assistant entity"
                    );
                }
                continue;
            }
            seen.insert(ieee.0);
            let transfer = snapshot.transfers.iter().find(|t| t.ieee == device.ieee);
            let latest = device.available_version.unwrap_or(device.current_version);
            let release = releases.get(&ImageKey {
                manufacturer_code: device.manufacturer_code,
                image_type: device.image_type,
                file_version: latest,
            });
            let in_progress = transfer.is_some_and(is_active);
            let (release_summary, release_url) =
                split_notes(release.and_then(|r| r.notes.as_deref()));
            let state = DeviceState {
                installed_version: version_text(device.current_version),
                latest_version: version_text(latest),
                title: release.and_then(|r| r.title.clone()),
                release_summary,
                release_url,
                in_progress,
                update_percentage: transfer
                    .filter(|_| in_progress)
                    .map(TransferStatus::percent),
            };
            let config = self.update_config(ieee, device.manufacturer_code, &device.ieee);
            self.update_device(ieee.0, config, state, now);
        }
        let forgotten: Vec<u64> = self
            .devices
            .keys()
            .filter(|ieee| !seen.contains(ieee))
            .copied()
            .collect();
        for ieee in forgotten {
            self.devices.remove(&ieee);
            // An empty retained config removes the entity; an empty state clears the retained one.
            self.queue_config(retained(self.update_config_topic(ieee), String::new()));
            self.queue(retained(self.device_topic(ieee, "state"), String::new()));
        }
    }

    fn update_device(&mut self, ieee: u64, config: Value, state: DeviceState, now: Instant) {
        let config_topic = self.update_config_topic(ieee);
        let state_topic = self.device_topic(ieee, "state");
        let entity = self.devices.entry(ieee).or_insert_with(|| DeviceEntity {
            config: Value::Null,
            state: state.clone(),
            published: None,
        });
        let mut queue_config = None;
        if entity.config != config {
            entity.config = config;
            queue_config = Some(retained(config_topic, entity.config.to_string()));
        }
        entity.state = state;
        let due = match &entity.published {
            None => true,
            Some((last, _)) if last == &entity.state => false,
            Some((last, at)) => {
                !entity.state.differs_only_in_progress(last)
                    || progress_moved(last, &entity.state)
                    || now.saturating_duration_since(*at) >= PROGRESS_INTERVAL
            }
        };
        let queue_state = due.then(|| {
            entity.published = Some((entity.state.clone(), now));
            retained(state_topic, entity.state.to_json())
        });
        if let Some(config) = queue_config {
            self.queue_config(config);
        }
        if let Some(state) = queue_state {
            self.queue(state);
        }
    }

    /// When a held-back progress state falls due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.devices
            .values()
            .filter_map(|e| match &e.published {
                Some((last, at)) if last != &e.state => Some(*at + PROGRESS_INTERVAL),
                _ => None,
            })
            .min()
    }

    /// Queues the held-back progress states that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .devices
            .iter()
            .filter(|(_, e)| match &e.published {
                Some((last, at)) => last != &e.state && now >= *at + PROGRESS_INTERVAL,
                None => false,
            })
            .map(|(ieee, _)| *ieee)
            .collect();
        for ieee in due {
            let topic = self.device_topic(ieee, "state");
            if let Some(entity) = self.devices.get_mut(&ieee) {
                entity.published = Some((entity.state.clone(), now));
                let payload = entity.state.to_json();
                self.queue(retained(topic, payload));
            }
        }
    }

    /// The next message to send, configs first; `None` while disconnected or when all is sent.
    pub fn poll_publication(&mut self) -> Option<Publication> {
        if !self.connected {
            return None;
        }
        let topic = match self.pending_configs.pop_first() {
            Some(topic) => topic,
            None => self.pending.keys().next()?.clone(),
        };
        self.pending.remove(&topic)
    }

    /// A message the client could not take: it goes back unless a newer one for its topic came.
    pub fn requeue(&mut self, publication: Publication) {
        if publication
            .topic
            .starts_with(&self.settings.discovery_prefix)
        {
            self.pending_configs.insert(publication.topic.clone());
        }
        self.pending
            .entry(publication.topic.clone())
            .or_insert(publication);
    }

    /// Messages waiting (at most one per topic).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// An incoming message: an Install press becomes an [`InstallCommand`] (queued once per
    /// device until taken, so none is lost and the queue stays bounded).
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Option<InstallCommand> {
        let prefix = format!("{}/device/", self.settings.base_topic);
        let hex = topic.strip_prefix(&prefix)?.strip_suffix("/install")?;
        if hex.len() != 16 || payload != PAYLOAD_INSTALL.as_bytes() {
            return None;
        }
        let ieee = Ieee(u64::from_str_radix(hex, 16).ok()?);
        let command = InstallCommand { ieee };
        if !self.installs.contains(&command) {
            self.installs.push(command);
        }
        Some(command)
    }

    /// The next Install press to carry out.
    pub fn poll_install(&mut self) -> Option<InstallCommand> {
        (!self.installs.is_empty()).then(|| self.installs.remove(0))
    }

    fn queue(&mut self, publication: Publication) {
        self.pending.insert(publication.topic.clone(), publication);
    }

    fn queue_config(&mut self, publication: Publication) {
        self.pending_configs.insert(publication.topic.clone());
        self.queue(publication);
    }

    fn update_config(&self, ieee: Ieee, manufacturer_code: u16, ieee_text: &str) -> Value {
        let id = format!("{:016x}", ieee.0);
        let manufacturer = crate::zcl::manufacturer_name(manufacturer_code)
            .map_or_else(|| format!("0x{manufacturer_code:04X}"), str::to_owned);
        json!({
            "name": "Firmware",
            "unique_id": format!("{}_{id}_firmware", self.node_id()),
            "device_class": "firmware",
            "entity_category": "config",
            "state_topic": self.device_topic(ieee.0, "state"),
            "command_topic": self.device_topic(ieee.0, "install"),
            "payload_install": PAYLOAD_INSTALL,
            "availability_topic": self.availability_topic(),
            "qos": 1,
            "device": {
                "identifiers": [ieee_text],
                "connections": [["zigbee", ieee_text]],
                "name": format!("Zigbee {ieee_text}"),
                "manufacturer": manufacturer,
                "via_device": self.daemon_identifier(),
            },
            "origin": self.origin(),
        })
    }

    fn daemon_identifier(&self) -> String {
        format!("{}_daemon", self.node_id())
    }

    fn origin(&self) -> Value {
        json!({ "name": "zigbee-otad", "sw_version": self.settings.sw_version })
    }

    fn daemon_configs(&self) -> Vec<Publication> {
        let node = self.node_id();
        let device = json!({
            "identifiers": [self.daemon_identifier()],
            "name": "zigbee-otad",
            "manufacturer": "zigbee-otad",
            "model": "Zigbee OTA upgrade server",
            "sw_version": self.settings.sw_version,
        });
        let sensors = [
            ("coordinator_state", "Coordinator state", None, None),
            (
                "last_catalog_refresh",
                "Last catalog refresh",
                Some("timestamp"),
                None,
            ),
            (
                "active_transfers",
                "Active transfers",
                None,
                Some("measurement"),
            ),
        ];
        sensors
            .into_iter()
            .map(|(key, name, device_class, state_class)| {
                let mut config = json!({
                    "name": name,
                    "unique_id": format!("{node}_{key}"),
                    "state_topic": self.daemon_state_topic(),
                    "value_template": format!("{{{{ value_json.{key} }}}}"),
                    "availability_topic": self.availability_topic(),
                    "entity_category": "diagnostic",
                    "device": device,
                    "origin": self.origin(),
                });
                if let (Some(class), Some(map)) = (device_class, config.as_object_mut()) {
                    map.insert("device_class".into(), json!(class));
                }
                if let (Some(class), Some(map)) = (state_class, config.as_object_mut()) {
                    map.insert("state_class".into(), json!(class));
                }
                retained(
                    format!(
                        "{}/sensor/{node}/{key}/config",
                        self.settings.discovery_prefix
                    ),
                    config.to_string(),
                )
            })
            .collect()
    }

    fn update_daemon_state(&mut self, snapshot: &StatusSnapshot) {
        let last_refresh = snapshot
            .catalog
            .sources
            .iter()
            .filter_map(|s| s.last_refresh_unix)
            .max()
            .map(|secs| {
                humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
                    .to_string()
            });
        let active = snapshot.transfers.iter().filter(|t| is_active(t)).count();
        let state = json!({
            "coordinator_state": snapshot.coordinator.state,
            "last_catalog_refresh": last_refresh,
            "active_transfers": active,
        });
        if self.daemon_state.as_ref() != Some(&state) {
            self.queue(retained(self.daemon_state_topic(), state.to_string()));
            self.daemon_state = Some(state);
        }
    }
}

fn retained(topic: String, payload: String) -> Publication {
    Publication {
        topic,
        payload: payload.into_bytes(),
        retain: true,
    }
}

fn is_active(transfer: &TransferStatus) -> bool {
    transfer.state == TransferState::Downloading
}

fn progress_moved(last: &DeviceState, now: &DeviceState) -> bool {
    match (last.update_percentage, now.update_percentage) {
        (Some(a), Some(b)) => (b - a).abs() >= PROGRESS_STEP_PERCENT,
        _ => true,
    }
}

/// `0x0000000A`: how OTA file versions are usually written.
fn version_text(version: u32) -> String {
    format!("0x{version:08X}")
}

/// Release notes that are a URL become `release_url`; text becomes a `release_summary` cut to
/// what Home Assistant shows.
fn split_notes(notes: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(notes) = notes.map(str::trim).filter(|n| !n.is_empty()) else {
        return (None, None);
    };
    let is_url = (notes.starts_with("https://") || notes.starts_with("http://"))
        && !notes.contains(char::is_whitespace);
    if is_url {
        (None, Some(notes.to_owned()))
    } else {
        (Some(notes.chars().take(MAX_SUMMARY_CHARS).collect()), None)
    }
}

/// Home Assistant's discovery `node_id`/`object_id`: `[a-zA-Z0-9_-]`.
fn sanitize_object_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test picks any instant to start its virtual clock from
mod tests {
    use super::*;
    use crate::daemon::status::{CatalogStatus, DeviceStatus, SourceStatus};

    const IEEE: &str = "00:0d:6f:ff:fe:12:34:56";

    fn publisher() -> HaPublisher {
        let mut p = HaPublisher::new(HaSettings {
            base_topic: "zigbee-otad".into(),
            discovery_prefix: "homeassistant".into(),
            sw_version: "0.1.0".into(),
        });
        p.on_connected();
        drain(&mut p);
        p
    }

    fn drain(p: &mut HaPublisher) -> Vec<Publication> {
        std::iter::from_fn(|| p.poll_publication()).collect()
    }

    fn snapshot(current: u32, available: Option<u32>, offset: Option<u32>) -> StatusSnapshot {
        StatusSnapshot {
            devices: vec![DeviceStatus {
                ieee: IEEE.into(),
                nwk: 0x1234,
                manufacturer_code: 0x1189,
                image_type: 0x0042,
                current_version: current,
                available_version: available,
                ..DeviceStatus::default()
            }],
            transfers: offset
                .map(|offset| TransferStatus {
                    ieee: IEEE.into(),
                    offset,
                    image_size: 10_000,
                    state: TransferState::Downloading,
                    file_version: 2,
                    ..TransferStatus::default()
                })
                .into_iter()
                .collect(),
            catalog: CatalogStatus {
                sources: vec![SourceStatus {
                    last_refresh_unix: Some(1_796_000_000),
                    ..SourceStatus::default()
                }],
                cached_images: 1,
            },
            ..StatusSnapshot::default()
        }
    }

    fn releases() -> HashMap<ImageKey, ReleaseInfo> {
        HashMap::from([(
            ImageKey {
                manufacturer_code: 0x1189,
                image_type: 0x42,
                file_version: 2,
            },
            ReleaseInfo {
                title: Some("bulb-v2.ota".into()),
                notes: Some("https://example.org/notes".into()),
            },
        )])
    }

    fn find<'a>(out: &'a [Publication], topic: &str) -> Option<&'a Publication> {
        out.iter().find(|p| p.topic == topic)
    }

    fn json_of(p: &Publication) -> Value {
        serde_json::from_slice(&p.payload).unwrap()
    }

    const CONFIG: &str = "homeassistant/update/zigbee-otad/000d6ffffe123456/config";
    const STATE: &str = "zigbee-otad/device/000d6ffffe123456/state";

    #[test]
    fn discovery_config_has_what_home_assistant_requires() {
        let mut p = publisher();
        p.on_snapshot(&snapshot(1, Some(2), None), &releases(), Instant::now());
        let out = drain(&mut p);
        assert_eq!(out[0].topic, CONFIG, "the config first");
        let config = find(&out, CONFIG).unwrap();
        assert!(config.retain);
        let c = json_of(config);
        assert_eq!(c["device_class"], "firmware");
        assert_eq!(c["state_topic"], STATE);
        assert_eq!(
            c["command_topic"],
            "zigbee-otad/device/000d6ffffe123456/install"
        );
        assert_eq!(c["payload_install"], "install");
        assert_eq!(c["availability_topic"], "zigbee-otad/availability");
        assert_eq!(c["device"]["identifiers"][0], IEEE);
        assert_eq!(c["device"]["connections"][0][1], IEEE);
        assert_eq!(c["device"]["manufacturer"], "LEDVANCE");
        assert!(
            c["unique_id"]
                .as_str()
                .unwrap()
                .contains("000d6ffffe123456")
        );
        // Configs go out before states.
        let config_at = out.iter().position(|p| p.topic == CONFIG).unwrap();
        let state_at = out.iter().position(|p| p.topic == STATE).unwrap();
        assert!(config_at < state_at);
        let s = json_of(find(&out, STATE).unwrap());
        assert_eq!(s["installed_version"], "0x00000001");
        assert_eq!(s["latest_version"], "0x00000002");
        assert_eq!(s["title"], "bulb-v2.ota");
        assert_eq!(s["release_url"], "https://example.org/notes");
        assert_eq!(s["release_summary"], Value::Null);
        assert_eq!(s["in_progress"], false);
        assert_eq!(s["update_percentage"], Value::Null);
        let daemon = json_of(find(&out, "zigbee-otad/daemon/state").unwrap());
        assert_eq!(daemon["last_catalog_refresh"], "2026-11-30T00:53:20Z");
        assert_eq!(daemon["active_transfers"], 0);
    }

    #[test]
    fn progress_at_most_every_percent_or_five_seconds() {
        let mut p = publisher();
        let t0 = Instant::now();
        p.on_snapshot(&snapshot(1, Some(2), Some(0)), &releases(), t0);
        drain(&mut p);
        // 0.5 % later: held back.
        p.on_snapshot(
            &snapshot(1, Some(2), Some(50)),
            &releases(),
            t0 + Duration::from_millis(250),
        );
        assert!(find(&drain(&mut p), STATE).is_none());
        assert_eq!(p.poll_timeout(), Some(t0 + PROGRESS_INTERVAL));
        // 1 % since the last published: goes out.
        p.on_snapshot(
            &snapshot(1, Some(2), Some(100)),
            &releases(),
            t0 + Duration::from_millis(500),
        );
        let out = drain(&mut p);
        assert_eq!(
            json_of(find(&out, STATE).unwrap())["update_percentage"],
            1.0
        );
        // A small move, then silence: the timer sends the newest value 5 s after the last.
        let t1 = t0 + Duration::from_millis(500);
        p.on_snapshot(
            &snapshot(1, Some(2), Some(130)),
            &releases(),
            t1 + Duration::from_secs(1),
        );
        assert!(drain(&mut p).is_empty());
        p.handle_timeout(t1 + Duration::from_secs(4));
        assert!(drain(&mut p).is_empty());
        p.handle_timeout(t1 + PROGRESS_INTERVAL);
        let out = drain(&mut p);
        assert_eq!(
            json_of(find(&out, STATE).unwrap())["update_percentage"],
            1.3
        );
        assert_eq!(p.poll_timeout(), None);
        // Finished and rebooted: installed equals latest, at once.
        p.on_snapshot(
            &snapshot(2, None, None),
            &releases(),
            t1 + Duration::from_secs(6),
        );
        let s = json_of(find(&drain(&mut p), STATE).unwrap());
        assert_eq!(s["installed_version"], s["latest_version"]);
        assert_eq!(s["in_progress"], false);
    }

    #[test]
    fn many_snapshots_while_down_leave_one_message_per_topic() {
        let mut p = publisher();
        p.on_disconnected();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            p.on_snapshot(
                &snapshot(1, Some(2), Some(i * 10)),
                &releases(),
                t0 + Duration::from_secs(u64::from(i)),
            );
        }
        assert!(
            p.poll_publication().is_none(),
            "nothing goes out while down"
        );
        assert!(p.pending_len() <= 4, "{}", p.pending_len());
        p.on_connected();
        let out = drain(&mut p);
        let s = json_of(find(&out, STATE).unwrap());
        assert_eq!(s["update_percentage"], 99.9, "the newest state");
        assert!(
            find(&out, CONFIG).is_some(),
            "configs again after a reconnection"
        );
        assert_eq!(
            find(&out, "zigbee-otad/availability").unwrap().payload,
            b"online"
        );
    }

    #[test]
    fn forgotten_device_gets_an_empty_retained_config() {
        let mut p = publisher();
        p.on_snapshot(&snapshot(1, Some(2), None), &releases(), Instant::now());
        drain(&mut p);
        p.on_snapshot(&StatusSnapshot::default(), &releases(), Instant::now());
        let out = drain(&mut p);
        let removal = find(&out, CONFIG).unwrap();
        assert!(removal.retain && removal.payload.is_empty());
        assert!(find(&out, STATE).unwrap().payload.is_empty());
    }

    #[test]
    fn install_presses_are_kept_once_per_device() {
        let mut p = publisher();
        let topic = "zigbee-otad/device/000d6ffffe123456/install";
        let command = p.on_message(topic, b"install").unwrap();
        assert_eq!(command.ieee.to_string(), IEEE);
        assert!(p.on_message(topic, b"install").is_some());
        assert!(p.on_message(topic, b"other").is_none());
        assert!(
            p.on_message("zigbee-otad/device/xyz/install", b"install")
                .is_none()
        );
        assert!(
            p.on_message("elsewhere/device/000d6ffffe123456/install", b"install")
                .is_none()
        );
        assert_eq!(p.poll_install(), Some(command));
        assert_eq!(p.poll_install(), None);
    }

    #[test]
    fn text_notes_become_a_short_summary() {
        let long = "fixes ".repeat(100);
        let (summary, url) = split_notes(Some(&long));
        assert_eq!(summary.unwrap().chars().count(), MAX_SUMMARY_CHARS);
        assert!(url.is_none());
        assert_eq!(split_notes(Some("  ")), (None, None));
    }
}
