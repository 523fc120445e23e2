//! The installer's keys: `[policy] install`, `[server] apply_window` and the per-device
//! `[[device]]` sections (`ieee`, `pin`, `deny`, `max_block_size`, `upgrade_time`, `install`).
//! Each value is checked while it is read, so an error names the line and the key.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer};

use super::{BlockSize, UpgradeTime, parsed_text};
use crate::server::control::{ApplyWindow, InstallMode};
use crate::zcl::Ieee;

/// `[[device]]`: settings for one device that take precedence over the global ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSection {
    /// The device's IEEE address (`00:0d:6f:00:00:19:8b:36`).
    #[serde(deserialize_with = "ieee")]
    pub ieee: Ieee,
    /// The only file version offered to it.
    #[serde(default)]
    pub pin: Option<u32>,
    /// Never offer it anything.
    #[serde(default)]
    pub deny: bool,
    /// Its own cap on data bytes per block (16..=223).
    #[serde(default)]
    pub max_block_size: Option<BlockSize>,
    /// Its own upgrade time (`now`, `delay`, `wait`; `delay` uses `[server] upgrade_delay`).
    #[serde(default)]
    pub upgrade_time: Option<UpgradeTime>,
    /// Its own install mode (`auto`, `approve`).
    #[serde(default)]
    pub install: Option<InstallMode>,
}

fn ieee<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Ieee, D::Error> {
    parsed_text(deserializer, "ieee")
}

/// `[server] apply_window = "HH:MM-HH:MM"`.
pub(super) fn apply_window<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ApplyWindow>, D::Error> {
    parsed_text(deserializer, "apply_window").map(Some)
}

/// The first IEEE address given to two `[[device]]` sections, with both indexes.
pub(super) fn duplicate_device(devices: &[DeviceSection]) -> Option<(usize, Ieee)> {
    let mut seen = HashSet::new();
    devices
        .iter()
        .enumerate()
        .find(|(_, d)| !seen.insert(d.ieee))
        .map(|(index, d)| (index, d.ieee))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::with_coordinator as parse;

    #[test]
    fn install_window_and_devices_are_read_and_checked() {
        let c = parse(
            "[server]\napply_window = \"23:00-02:00\"\n[policy]\ninstall = \"approve\"\n\
             [[device]]\nieee = \"00:0d:6f:00:00:19:8b:36\"\npin = 0x0300\nmax_block_size = 40\n\
             upgrade_time = \"wait\"\ninstall = \"auto\"\n\
             [[device]]\nieee = \"00:0d:6f:00:00:19:8b:37\"\ndeny = true\n",
        )
        .unwrap();
        assert_eq!(c.server.apply_window.unwrap().to_string(), "23:00-02:00");
        assert_eq!(c.policy.install, crate::server::InstallMode::Approve);
        assert_eq!(c.devices.len(), 2);
        assert_eq!(c.devices[0].pin, Some(0x0300));
        assert!(c.devices[1].deny);

        let err = parse("[server]\napply_window = \"25:00-02:00\"\n").unwrap_err();
        assert!(
            err.contains("line 4") && err.contains("apply_window"),
            "{err}"
        );
        let err = parse("[policy]\ninstall = \"sometimes\"\n").unwrap_err();
        assert!(err.contains("line 4") && err.contains("auto"), "{err}");
        let err = parse("[[device]]\nieee = \"00:11\"\n").unwrap_err();
        assert!(err.contains("line 4") && err.contains("ieee"), "{err}");
        let err = parse("[[device]]\nieee = \"00:11:22:33:44:55:66:77\"\nmax_block_size = 5\n")
            .unwrap_err();
        assert!(
            err.contains("line 5") && err.contains("max_block_size"),
            "{err}"
        );
        let err =
            parse("[[device]]\nieee = \"00:11:22:33:44:55:66:77\"\npinned = 3\n").unwrap_err();
        assert!(err.contains("unknown field `pinned`"), "{err}");
        let twice = "[[device]]\nieee = \"00:11:22:33:44:55:66:77\"\n";
        let err = parse(&format!("{twice}{twice}")).unwrap_err();
        assert!(err.contains("device[1].ieee"), "{err}");
    }
}
