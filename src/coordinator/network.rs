//! The network a coordinator forms when its NCP holds none: channel, PAN id, extended PAN id and
//! network key.
//!
//! Values given in the config win. The others are generated once, from the operating system's
//! random source, and kept in `network.json` in the state directory (written atomically, mode 0600,
//! since it holds the network key), so every later formation (a replaced stick, a factory-reset
//! NCP) builds the same network and the devices stay joined.
//!
//! ```
//! use zigbee_otad::coordinator::network::{NetworkOverrides, NetworkSettings};
//! let settings = NetworkSettings::resolve(
//!     &NetworkOverrides { channel: Some(20), ..Default::default() },
//!     None,
//!     &[7u8; 32],
//! );
//! assert_eq!(settings.channel, 20);
//! let text = settings.to_json();
//! assert_eq!(NetworkSettings::from_json(&text).unwrap(), settings);
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The file in the state directory that keeps the generated settings.
pub const NETWORK_FILE: &str = "network.json";

/// The default channel (15: clear of the usual Wi-Fi channels 1, 6 and 11's overlap).
pub const DEFAULT_CHANNEL: u8 = 15;

/// What the config fixes; `None` means "generate once and keep".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOverrides {
    /// 802.15.4 channel 11..=26.
    pub channel: Option<u8>,
    /// PAN id.
    pub pan_id: Option<u16>,
    /// Extended PAN id.
    pub extended_pan_id: Option<u64>,
    /// Network key.
    pub network_key: Option<[u8; 16]>,
}

/// A complete set of formation parameters.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkSettings {
    /// 802.15.4 channel 11..=26.
    pub channel: u8,
    /// PAN id.
    pub pan_id: u16,
    /// Extended PAN id.
    pub extended_pan_id: u64,
    /// Network key, hex in the file.
    #[serde(with = "hex_key")]
    pub network_key: [u8; 16],
}

impl std::fmt::Debug for NetworkSettings {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field("channel", &self.channel)
            .field("pan_id", &format_args!("0x{:04X}", self.pan_id))
            .field(
                "extended_pan_id",
                &format_args!("{:016X}", self.extended_pan_id),
            )
            .field("network_key", &"<redacted>")
            .finish()
    }
}

/// The settings file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not valid settings JSON.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl NetworkSettings {
    /// Fills what `overrides` leaves open from `saved`, then from `entropy` (32 random bytes).
    pub fn resolve(
        overrides: &NetworkOverrides,
        saved: Option<&NetworkSettings>,
        entropy: &[u8; 32],
    ) -> NetworkSettings {
        let [p0, p1, e0, e1, e2, e3, e4, e5, e6, e7, key @ ..] = *entropy;
        let mut generated_key = [0u8; 16];
        for (slot, byte) in generated_key.iter_mut().zip(key) {
            *slot = byte;
        }
        // PAN ids 0xFFF8..=0xFFFF are reserved; 0 is legal but confusing in logs.
        let generated_pan = (u16::from_le_bytes([p0, p1]) % 0xFFF6) + 1;
        let generated_ext = u64::from_le_bytes([e0, e1, e2, e3, e4, e5, e6, e7]);
        NetworkSettings {
            channel: overrides
                .channel
                .or(saved.map(|s| s.channel))
                .unwrap_or(DEFAULT_CHANNEL),
            pan_id: overrides
                .pan_id
                .or(saved.map(|s| s.pan_id))
                .unwrap_or(generated_pan),
            extended_pan_id: overrides
                .extended_pan_id
                .or(saved.map(|s| s.extended_pan_id))
                .unwrap_or(generated_ext),
            network_key: overrides
                .network_key
                .or(saved.map(|s| s.network_key))
                .unwrap_or(generated_key),
        }
    }

    /// The settings as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads [`NetworkSettings::to_json`]'s output.
    pub fn from_json(text: &str) -> Result<NetworkSettings, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Resolves the settings against `state_dir/network.json`, generating and saving what is
    /// missing. Returns the settings to form with.
    pub fn load_or_create(
        state_dir: &Path,
        overrides: &NetworkOverrides,
    ) -> Result<NetworkSettings, NetworkFileError> {
        let path = state_dir.join(NETWORK_FILE);
        let saved = match std::fs::read_to_string(&path) {
            Ok(text) => Some(
                Self::from_json(&text).map_err(|source| NetworkFileError::Parse {
                    path: path.clone(),
                    source,
                })?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(NetworkFileError::Io { path, source }),
        };
        let entropy = os_entropy().map_err(|source| NetworkFileError::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
        let settings = Self::resolve(overrides, saved.as_ref(), &entropy);
        if saved.as_ref() != Some(&settings) {
            settings.save(&path)?;
        }
        Ok(settings)
    }

    /// Writes the file atomically and durably, readable by the owner only (a fresh temporary
    /// file each time, so a stale leftover's mode never carries over).
    fn save(&self, path: &Path) -> Result<(), NetworkFileError> {
        let io_error = |source| NetworkFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        crate::atomic_file::write(
            path,
            self.to_json().as_bytes(),
            crate::atomic_file::OWNER_ONLY,
        )
        .map_err(|error| io_error(error.into()))
    }
}

/// 32 bytes from the operating system's random source.
fn os_entropy() -> io::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

mod hex_key {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(key: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&key.iter().map(|b| format!("{b:02X}")).collect::<String>())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = crate::wire::parse_hex(&text).map_err(D::Error::custom)?;
        <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
            D::Error::custom(format!("network key must be 16 bytes, not {}", bytes.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("otad-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generated_once_then_kept() {
        let dir = scratch_dir("kept");
        let first = NetworkSettings::load_or_create(&dir, &NetworkOverrides::default()).unwrap();
        let second = NetworkSettings::load_or_create(&dir, &NetworkOverrides::default()).unwrap();
        assert_eq!(first, second);
        assert!(first.pan_id >= 1 && first.pan_id <= 0xFFF6);
        assert_eq!(first.channel, DEFAULT_CHANNEL);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(NETWORK_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "the key file must not be readable by others"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_values_win_over_saved_ones() {
        let saved = NetworkSettings::resolve(&NetworkOverrides::default(), None, &[1; 32]);
        let overrides = NetworkOverrides {
            pan_id: Some(0x1A62),
            network_key: Some([0xAB; 16]),
            ..Default::default()
        };
        let merged = NetworkSettings::resolve(&overrides, Some(&saved), &[2; 32]);
        assert_eq!(merged.pan_id, 0x1A62);
        assert_eq!(merged.network_key, [0xAB; 16]);
        assert_eq!(merged.extended_pan_id, saved.extended_pan_id);
        assert_eq!(merged.channel, saved.channel);
    }

    #[test]
    fn corrupt_file_names_the_path_and_debug_hides_the_key() {
        let dir = scratch_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(NETWORK_FILE), "{\"channel\": 15").unwrap();
        let err = NetworkSettings::load_or_create(&dir, &NetworkOverrides::default()).unwrap_err();
        assert!(err.to_string().contains(NETWORK_FILE), "{err}");
        let mut entropy = [0x01; 32];
        entropy[10..].fill(0xC3);
        let settings = NetworkSettings::resolve(&NetworkOverrides::default(), None, &entropy);
        assert_eq!(settings.network_key, [0xC3; 16]);
        assert!(!format!("{settings:?}").contains("C3C3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
