//! The TOML configuration: schema, defaults and validation (ARCHITECTURE.md, "Configuration").
//!
//! The key names are a stable interface. Every value is checked while it is deserialised, so an
//! error always carries the file, line, column and key that toml reports (`deny_unknown_fields`
//! everywhere: a misspelt key is an error, not a silently ignored line). Values that need more than
//! their own key to be checked (a loopback-only `http://` URL, a source without a location) are
//! checked afterwards by [`Config::validate`] and name the key path.
//!
//! ```
//! let config = zigbee_otad::config::Config::from_toml_str(
//!     "[coordinator]\nport = \"/dev/ttyUSB0\"\n",
//!     "example.toml",
//! ).unwrap();
//! assert_eq!(config.coordinator.baudrate.get(), 115_200);
//! assert_eq!(config.catalog.refresh_interval.as_secs(), 24 * 3600);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A key's value read as text and parsed with its type's `FromStr`; the error names the key
/// (`` `ieee`: … ``).
fn parsed_text<'de, D, T>(deserializer: D, key: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|e| de::Error::custom(format!("`{key}`: {e}")))
}

/// A newtype over an integer whose `Deserialize` accepts only `min..=max` and says which key
/// (`what`) was out of range. Defined before the section modules so they can use it too.
macro_rules! bounded_integer {
    ($(#[$doc:meta])* $name:ident, $repr:ty, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name($repr);

        impl $name {
            /// The value.
            pub fn get(self) -> $repr {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <$repr>::deserialize(deserializer)?;
                if ($min..=$max).contains(&value) {
                    Ok($name(value))
                } else {
                    Err(de::Error::custom(format!(
                        "{} {value} is outside {}..={}",
                        $what, $min, $max
                    )))
                }
            }
        }
    };
}

mod catalog;
pub use catalog::{
    CatalogSection, LedvanceMode, SALUS_REFUSAL, SourceKind, SourceSection, ZIGPY_OTA_DEFAULT_URL,
    check_source_url, is_loopback_authority,
};
mod coordinator;
use coordinator::redact_secrets;
pub use coordinator::{
    Baudrate, Channel, CoordinatorSection, FlowControl, HexBytes, NETWORK_KEY_CREDENTIAL, Protocol,
};
mod device;
pub use device::DeviceSection;
mod integrations;
pub use integrations::{BrokerAddress, ExportSection, MqttSection};
mod proxy;
pub use proxy::{DEFAULT_PROXY_PORT, OtaScope, ProxyListen, ProxyOta, ProxySection};

/// Where the daemon looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/zigbee-otad/config.toml";

/// A configuration file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a wrong type or a bad value; toml's message names line, column and key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's rendering, with the offending line.
        message: String,
    },
    /// A value that is only wrong together with others.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The key path, e.g. `catalog.source[1].url`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Network key, device table, quota ledger, upgrade history.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The Zigbee coordinator.
    pub coordinator: CoordinatorSection,
    /// The OTA server.
    #[serde(default)]
    pub server: ServerSection,
    /// Firmware catalogs and the cache.
    #[serde(default)]
    pub catalog: CatalogSection,
    /// Upgrade policy: downgrades, deny list, pins.
    #[serde(default)]
    pub policy: PolicySection,
    /// Per-device overrides (`[[device]]`).
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceSection>,
    /// The status socket.
    #[serde(default)]
    pub status: StatusSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Home Assistant over MQTT (off without the section).
    #[serde(default)]
    pub mqtt: Option<MqttSection>,
    /// The verified catalog served as an index over HTTP (off without the section).
    #[serde(default)]
    pub export: Option<ExportSection>,
    /// Share the stick with an upstream stack through the EZSP proxy (off without the section).
    #[serde(default)]
    pub proxy: Option<ProxySection>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/zigbee-otad")
}

/// A duration written like `"24h"`, `"6h 30m"` or `"250ms"`, within a key's bounds.
fn duration_within<'de, D: Deserializer<'de>>(
    deserializer: D,
    key: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    let value = humantime::parse_duration(&text).map_err(|e| {
        de::Error::custom(format!(
            "`{key}` = \"{text}\" is not a duration like \"24h\" or \"10m\" ({e})"
        ))
    })?;
    if value < min || value > max {
        return Err(de::Error::custom(format!(
            "`{key}` = \"{text}\" is outside {} ..= {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )));
    }
    Ok(value)
}

macro_rules! bounded_duration {
    ($name:ident, $min:expr, $max:expr) => {
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
            duration_within(deserializer, stringify!($name), $min, $max)
        }
    };
}

bounded_duration!(
    refresh_interval,
    Duration::from_secs(3600),
    Duration::from_secs(30 * 86_400)
);
bounded_duration!(
    connect_timeout,
    Duration::from_secs(1),
    Duration::from_secs(300)
);
bounded_duration!(
    request_timeout,
    Duration::from_secs(1),
    Duration::from_secs(3600)
);
bounded_duration!(
    idle_timeout,
    Duration::from_secs(10),
    Duration::from_secs(7 * 86_400)
);
bounded_duration!(
    upgrade_delay,
    Duration::from_secs(0),
    Duration::from_secs(7 * 86_400)
);
bounded_duration!(
    notify_interval,
    Duration::from_secs(600),
    Duration::from_secs(30 * 86_400)
);

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The endpoint that hosts the OTA Upgrade server cluster (1..=240).
    #[serde(default = "default_endpoint")]
    pub endpoint: Endpoint,
    /// Upper bound on the data bytes in one Image Block Response (the coordinator's APS payload
    /// and the device's own maximum lower it further).
    #[serde(default = "default_block_size")]
    pub max_block_size: BlockSize,
    /// Transfers served at once; devices beyond it are told WAIT_FOR_DATA.
    #[serde(default = "default_concurrent")]
    pub max_concurrent_transfers: ConcurrentTransfers,
    /// A transfer with no request for this long is abandoned (the device may resume later).
    #[serde(default = "default_idle_timeout", deserialize_with = "idle_timeout")]
    pub idle_timeout: Duration,
    /// When a device that finished its download is told to apply it.
    #[serde(default)]
    pub upgrade_time: UpgradeTime,
    /// With `upgrade_time = "delay"`: how long after the Upgrade End Request.
    #[serde(default, deserialize_with = "upgrade_delay")]
    pub upgrade_delay: Duration,
    /// How often known devices are told about new images (Image Notify).
    #[serde(
        default = "default_notify_interval",
        deserialize_with = "notify_interval"
    )]
    pub notify_interval: Duration,
    /// A daily window, local time (`"02:00-05:00"`, may cross midnight), in which devices that
    /// hold a downloaded image are told to apply it; outside it they wait.
    #[serde(default, deserialize_with = "device::apply_window")]
    pub apply_window: Option<crate::server::ApplyWindow>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            endpoint: default_endpoint(),
            max_block_size: default_block_size(),
            max_concurrent_transfers: default_concurrent(),
            idle_timeout: default_idle_timeout(),
            upgrade_time: UpgradeTime::default(),
            upgrade_delay: Duration::ZERO,
            notify_interval: default_notify_interval(),
            apply_window: None,
        }
    }
}

fn default_endpoint() -> Endpoint {
    Endpoint(1)
}
fn default_block_size() -> BlockSize {
    BlockSize(50)
}
fn default_concurrent() -> ConcurrentTransfers {
    ConcurrentTransfers(3)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_notify_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}

bounded_integer!(
    /// A Zigbee application endpoint (1..=240).
    Endpoint, u8, 1, 240, "`endpoint`"
);
bounded_integer!(
    /// Data bytes per Image Block Response (16..=223).
    BlockSize, u8, 16, 223, "`max_block_size`"
);
bounded_integer!(
    /// Concurrent transfers (1..=64).
    ConcurrentTransfers, u16, 1, 64, "`max_concurrent_transfers`"
);

/// When a device is told to apply a downloaded image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeTime {
    /// At once.
    #[default]
    Now,
    /// `upgrade_delay` after the Upgrade End Request.
    Delay,
    /// Wait until told (`zigbee-otad` sends the upgrade command later).
    Wait,
}

/// `[policy]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Offer older images than the device runs.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Images never offered.
    #[serde(default)]
    pub deny: Vec<ImageMatch>,
    /// Devices held at a version.
    #[serde(default)]
    pub pin: Vec<ImageMatch>,
    /// `auto` offers every allowed image; `approve` shows it and waits for
    /// `zigbee-otad approve`.
    #[serde(default)]
    pub install: crate::server::InstallMode,
}

/// Matches images (deny list) or devices (pins) by manufacturer, image type and version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageMatch {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type; all types when absent.
    #[serde(default)]
    pub image_type: Option<u16>,
    /// File version; all versions when absent (for a pin: the version to hold).
    #[serde(default)]
    pub file_version: Option<u32>,
}

/// `[status]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    /// The Unix socket `zigbee-otad status` talks to.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// A group (from /etc/group) whose members may send control requests (permit-join,
    /// notify, ...) besides root and the daemon's own user; `status` is open to everyone.
    #[serde(default)]
    pub control_group: Option<String>,
}

impl Default for StatusSection {
    fn default() -> Self {
        StatusSection {
            socket: default_socket(),
            control_group: None,
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/zigbee-otad/status.sock")
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace` (`RUST_LOG` overrides it).
    #[serde(default)]
    pub level: LogLevel,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: LogLevel::Info,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Milestones.
    #[default]
    Info,
    /// Per-block detail.
    Debug,
    /// Everything.
    Trace,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut config = Self::from_toml_str(&text, &origin)?;
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        config.read_network_key(&origin, credentials.as_deref())?;
        Ok(config)
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: redact_secrets(text, e.to_string().trim_end()),
        })?;
        config.validate(origin)?;
        for source in &mut config.catalog.sources {
            if source.url.is_none() && source.path.is_none() {
                source.url = source.kind.default_url().map(str::to_owned);
            }
        }
        Ok(config)
    }

    /// Checks what no single key can check by itself.
    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key,
            message,
        };
        if let Some((index, ieee)) = device::duplicate_device(&self.devices) {
            return Err(invalid(
                format!("device[{index}].ieee"),
                format!("{ieee} has two [[device]] sections; merge them"),
            ));
        }
        for (index, source) in self.catalog.sources.iter().enumerate() {
            let key = |field: &str| format!("catalog.source[{index}].{field}");
            catalog::check_source_options(source)
                .map_err(|(field, message)| invalid(key(field), message))?;
            match source.kind {
                SourceKind::Salus => {
                    return Err(invalid(key("kind"), SALUS_REFUSAL.to_owned()));
                }
                SourceKind::Ledvance
                | SourceKind::ZigbeeOtaIndex
                | SourceKind::Ikea
                | SourceKind::Inovelli
                | SourceKind::ThirdReality
                | SourceKind::Sonoff
                | SourceKind::ZigpyOta => {
                    match (&source.url, &source.path) {
                        (Some(url), None) => {
                            check_source_url(url).map_err(|m| invalid(key("url"), m))?
                        }
                        // A local copy of the catalog; LEDVANCE builds its download URLs on
                        // the catalog URL, so it needs one.
                        (None, Some(_)) if source.kind != SourceKind::Ledvance => {}
                        (None, None) if source.kind.default_url().is_some() => {}
                        (None, None) => {
                            return Err(invalid(
                                key("url"),
                                "this source needs a `url`".to_owned(),
                            ));
                        }
                        _ => {
                            return Err(invalid(
                                key("path"),
                                "give either `url` or `path`, not both (a `path` is not allowed for ledvance)"
                                    .to_owned(),
                            ));
                        }
                    }
                }
                SourceKind::Directory => {
                    if source.path.is_none() {
                        return Err(invalid(
                            key("path"),
                            "a directory source needs a `path`".to_owned(),
                        ));
                    }
                    if source.url.is_some() {
                        return Err(invalid(
                            key("url"),
                            "a directory source takes a `path`, not a `url`".to_owned(),
                        ));
                    }
                }
            }
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate()
                .map_err(|(key, message)| invalid(format!("mqtt.{key}"), message))?;
        }
        if let Some(export) = &self.export {
            export
                .validate()
                .map_err(|(key, message)| invalid(format!("export.{key}"), message))?;
        }
        if let Some(proxy) = &self.proxy {
            if self.coordinator.protocol != Protocol::Ezsp {
                return Err(invalid(
                    "proxy".to_owned(),
                    "the proxy shares an EZSP stick: it needs `[coordinator] protocol = \"ezsp\"`"
                        .to_owned(),
                ));
            }
            proxy
                .validate()
                .map_err(|(key, message)| invalid(format!("proxy.{key}"), message))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, "test.toml")
    }

    /// A configuration of a `[coordinator]` and the `sections` after it, its error in words: the
    /// section modules' tests read their own keys with it.
    pub(super) fn with_coordinator(sections: &str) -> Result<Config, String> {
        parse(&format!("[coordinator]\nport = \"/dev/x\"\n{sections}")).map_err(|e| e.to_string())
    }

    #[test]
    fn vendor_kinds_default_their_url_and_salus_is_refused_with_the_reason() {
        let with = |kind: &str, extra: &str| {
            parse(&format!(
                "[coordinator]\nport = \"/dev/x\"\n[[catalog.source]]\nkind = \"{kind}\"\n{extra}"
            ))
        };
        let expected = [
            (
                "ikea",
                "https://fw.ota.homesmart.ikea.com/DIRIGERA/version_info.json",
            ),
            (
                "inovelli",
                "https://files.inovelli.com/firmware/firmware-zha-v2.json",
            ),
            (
                "thirdreality",
                "https://tr-zha.s3.amazonaws.com/firmware.json",
            ),
            (
                "sonoff",
                "https://zigbee-ota.sonoff.tech/releases/upgrade.json",
            ),
            ("zigpy-ota", ZIGPY_OTA_DEFAULT_URL),
        ];
        for (kind, url) in expected {
            let config = with(kind, "").unwrap();
            assert_eq!(
                config.catalog.sources[0].url.as_deref(),
                Some(url),
                "{kind}"
            );
            // A configured URL or local copy wins.
            let mirror = with(kind, "url = \"https://mirror.example/f.json\"").unwrap();
            assert_eq!(
                mirror.catalog.sources[0].url.as_deref(),
                Some("https://mirror.example/f.json")
            );
            let local = with(kind, "path = \"/srv/f.json\"").unwrap();
            assert_eq!(local.catalog.sources[0].url, None);
            assert!(with(kind, "url = \"http://mirror.example/f.json\"").is_err());
        }
        assert!(
            with("ledvance", "").is_err(),
            "ledvance still needs its url"
        );
        assert!(with("ledvance", "path = \"/srv/f.json\"").is_err());
        let salus = with("salus", "").unwrap_err().to_string();
        assert!(salus.contains("catalog.source[0].kind"), "{salus}");
        assert!(salus.contains("zigbee-ota-index"), "{salus}");
        assert!(salus.contains("MD5"), "{salus}");
        assert!(with("third-reality", "").is_err());
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[coordinator]\nport = \"/dev/ttyACM0\"\n").unwrap();
        assert_eq!(c.coordinator.protocol, Protocol::Ezsp);
        assert_eq!(c.coordinator.flow_control, FlowControl::Software);
        assert_eq!(c.server.endpoint.get(), 1);
        assert_eq!(c.server.max_block_size.get(), 50);
        assert_eq!(
            c.status.socket,
            PathBuf::from("/run/zigbee-otad/status.sock")
        );
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/zigbee-otad"));
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/zigbee-otad.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.catalog.sources.len(), 3);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("[coordinator]\nport = \"/dev/x\"\nbaud = 115200\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml: "), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("unknown field `baud`"), "{err}");
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        let err = parse("[coordinator]\nport = \"/dev/x\"\nbaudrate = 1234\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("not one of"),
            "{err}"
        );

        let err = parse("[coordinator]\nport = \"/dev/x\"\n[catalog]\nrefresh_interval = \"5m\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("outside 1h"),
            "{err}"
        );

        let c = parse(
            "[coordinator]\nport = \"/dev/x\"\n[catalog]\nconnect_timeout = \"3s\"\nrequest_timeout = \"20s\"\n",
        )
        .unwrap();
        assert_eq!(c.catalog.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.catalog.request_timeout, Duration::from_secs(20));
        let err = parse("[coordinator]\nport = \"/dev/x\"\n[catalog]\nrequest_timeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("request_timeout") && err.contains("outside 1s"),
            "{err}"
        );

        let err = parse("[coordinator]\nport = \"/dev/x\"\nchannel = 27\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside 11..=26"), "{err}");

        let err = parse("[coordinator]\nport = \"/dev/x\"\nnetwork_key = \"0011\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 32 hex digits"), "{err}");
        assert!(!err.contains("0011"), "the key is redacted: {err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse("[coordinator]\nport = 5\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_source_url("https://api.example.com/v1").is_ok());
        assert!(check_source_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_source_url("http://localhost/x").is_ok());
        assert!(check_source_url("http://[::1]:80/x").is_ok());
        assert!(check_source_url("http://example.com/x").is_err());
        assert!(check_source_url("http://127.0.0.1.evil.com/x").is_err());
        assert!(check_source_url("ftp://127.0.0.1/x").is_err());
        assert!(check_source_url("https:///nohost").is_err());

        let err = parse(
            "[coordinator]\nport = \"/dev/x\"\n[[catalog.source]]\nkind = \"ledvance\"\nurl = \"http://10.0.0.1/fw\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("catalog.source[0].url"), "{err}");
    }

    #[test]
    fn sources_need_their_location() {
        let err =
            parse("[coordinator]\nport = \"/dev/x\"\n[[catalog.source]]\nkind = \"directory\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("catalog.source[0].path"), "{err}");
    }

    #[test]
    fn key_material_is_not_printed() {
        let c = parse(
            "[coordinator]\nport = \"/dev/x\"\nnetwork_key = \"00112233445566778899aabbccddeeff\"\n",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("aabbcc"));
    }

    #[test]
    fn the_network_key_never_appears_in_an_error() {
        let secret = "00112233445566778899AABBCCDDEEFG";
        for text in [
            format!("[coordinator]\nport = \"/dev/x\"\nnetwork_key = \"{secret}\"\n"),
            format!(
                "[coordinator]\nport = \"/dev/x\"\nnetwork_key = \"{}\"\n",
                &secret[..30]
            ),
            format!(
                "[coordinator]\nport = \"/dev/x\"\nnetwork_key = \"{secret}\"  # mine\nbogus = 1\n"
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(!err.contains(&secret[..16]), "{err}");
            assert!(!err.contains(&secret[16..30]), "{err}");
        }
    }

    #[test]
    fn the_network_key_comes_from_a_key_file_or_a_credential() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, "00112233445566778899aabbccddeeff\n").unwrap();
        let mut config = parse(&format!(
            "[coordinator]\nport = \"/dev/x\"\nnetwork_key_file = \"{}\"\n",
            key_file.display()
        ))
        .unwrap();
        config.read_network_key("t.toml", None).unwrap();
        assert_eq!(config.coordinator.network_key.map(|k| k.0[15]), Some(0xff));
        // A systemd credential, without any key in the file.
        let credentials = tempfile::tempdir().unwrap();
        std::fs::write(
            credentials.path().join(NETWORK_KEY_CREDENTIAL),
            "ffeeddccbbaa99887766554433221100",
        )
        .unwrap();
        let mut config = parse("[coordinator]\nport = \"/dev/x\"\n").unwrap();
        config
            .read_network_key("t.toml", Some(credentials.path()))
            .unwrap();
        assert_eq!(config.coordinator.network_key.map(|k| k.0[0]), Some(0xff));
        // A bad key file is named, its content never shown.
        std::fs::write(&key_file, "secretsecretsecret").unwrap();
        let mut config = parse(&format!(
            "[coordinator]\nport = \"/dev/x\"\nnetwork_key_file = \"{}\"\n",
            key_file.display()
        ))
        .unwrap();
        let err = config
            .read_network_key("t.toml", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("network_key_file") && !err.contains("secret"),
            "{err}"
        );
    }
}
