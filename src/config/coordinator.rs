//! `[coordinator]`: the stick, its serial line and the network it forms (ARCHITECTURE.md,
//! "Configuration"), and the network key, read from the file, a key file or a systemd credential
//! and never printed.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, de};

use super::{Config, ConfigError};

/// `[coordinator]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSection {
    /// Which driver speaks to the stick.
    #[serde(default)]
    pub protocol: Protocol,
    /// Serial device path (`/dev/serial/by-id/...`) or a pseudo-terminal.
    pub port: PathBuf,
    /// Serial speed.
    #[serde(default = "default_baudrate")]
    pub baudrate: Baudrate,
    /// Serial flow control.
    #[serde(default)]
    pub flow_control: FlowControl,
    /// 802.15.4 channel used when a network must be formed (11..=26).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// PAN id used when a network must be formed.
    #[serde(default)]
    pub pan_id: Option<u16>,
    /// Extended PAN id (16 hex digits) used when a network must be formed.
    #[serde(default)]
    pub extended_pan_id: Option<HexBytes<8>>,
    /// Network key (32 hex digits); generated once and kept in `state_dir` when absent.
    /// Prefer `network_key_file` or the systemd credential `network_key` to keep the key out
    /// of the configuration file.
    #[serde(default)]
    pub network_key: Option<HexBytes<16>>,
    /// A file holding the network key (32 hex digits, nothing else but whitespace). When the
    /// daemon runs under systemd with `LoadCredential=network_key:…`, the credential is read
    /// without this key.
    #[serde(default)]
    pub network_key_file: Option<PathBuf>,
}

fn default_baudrate() -> Baudrate {
    Baudrate(NonZeroU32::MIN.saturating_add(115_199))
}

/// Coordinator protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Silicon Labs EmberZNet NCP: EZSP over ASH.
    #[default]
    Ezsp,
    /// TI Z-Stack 3.x coordinator (CC26x2/CC13x2, and 3.0.x on CC253x): MT over UART (ZNP).
    Znp,
}

/// Serial flow control: the coordinator's own type, which the config reads as
/// `none | software | hardware` (default `software`).
pub use crate::coordinator::FlowControl;

/// A serial speed from the set coordinators use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baudrate(NonZeroU32);

impl Baudrate {
    /// Speeds accepted in the config.
    pub const ALLOWED: [u32; 6] = [38_400, 57_600, 115_200, 230_400, 460_800, 921_600];

    /// The speed in bits per second.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl<'de> Deserialize<'de> for Baudrate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        if !Self::ALLOWED.contains(&value) {
            return Err(de::Error::custom(format!(
                "`baudrate` {value} is not one of {:?}",
                Self::ALLOWED
            )));
        }
        NonZeroU32::new(value)
            .map(Baudrate)
            .ok_or_else(|| de::Error::custom("baud rate must not be 0"))
    }
}

bounded_integer!(
    /// An 802.15.4 channel in 11..=26.
    Channel, u8, 11, 26, "`channel`"
);

/// The name of the systemd credential that holds the network key
/// (`LoadCredential=network_key:/etc/zigbee-otad/network_key`).
pub const NETWORK_KEY_CREDENTIAL: &str = "network_key";

/// toml's errors quote the offending line: a `network_key` value anywhere in `text` is
/// replaced in `message`, so `check-config` and a failed reload never echo the key.
pub(super) fn redact_secrets(text: &str, message: &str) -> String {
    let mut message = message.to_owned();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("network_key") else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.split('#').next().unwrap_or_default().trim();
        let inner = value.trim_matches(|c| c == '"' || c == '\'');
        for secret in [value, inner] {
            if secret.len() >= 4 {
                message = message.replace(secret, "<redacted>");
            }
        }
    }
    message
}

/// Exactly `N` bytes written as `2N` hex digits (separators `:` and spaces allowed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material in logs or debug output.
        write!(f, "HexBytes<{N}>(..)")
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = crate::wire::parse_hex(&text).map_err(de::Error::custom)?;
        let array: [u8; N] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            de::Error::custom(format!(
                "expected {} hex digits ({N} bytes), got {}",
                N * 2,
                bytes.len() * 2
            ))
        })?;
        Ok(HexBytes(array))
    }
}

impl Config {
    /// Reads the network key from `network_key_file`, or from the systemd credential
    /// [`NETWORK_KEY_CREDENTIAL`] in `credentials` (`$CREDENTIALS_DIRECTORY`), into
    /// `coordinator.network_key`. Errors never show the file's content.
    pub fn read_network_key(
        &mut self,
        origin: &str,
        credentials: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key: "coordinator.network_key_file".to_owned(),
            message,
        };
        let credential = credentials
            .map(|dir| dir.join(NETWORK_KEY_CREDENTIAL))
            .filter(|path| path.is_file());
        let path = match (&self.coordinator.network_key_file, credential) {
            (Some(path), _) => path.clone(),
            (None, Some(path)) if self.coordinator.network_key.is_none() => path,
            _ => return Ok(()),
        };
        if self.coordinator.network_key.is_some() {
            return Err(invalid(
                "give the network key once: `network_key` or `network_key_file`, not both".into(),
            ));
        }
        let mut text = String::new();
        std::fs::File::open(&path)
            .and_then(|file| {
                std::io::Read::read_to_string(&mut std::io::Read::take(file, 4096), &mut text)
            })
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let key = crate::wire::parse_hex(&text)
            .ok()
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "{} does not hold a network key (32 hex digits); its content is not shown",
                    path.display()
                ))
            })?;
        self.coordinator.network_key = Some(HexBytes(key));
        Ok(())
    }
}
