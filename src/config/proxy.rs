//! `[proxy]`: share the stick with an upstream stack (Home Assistant's ZHA, Zigbee2MQTT) through
//! the EZSP proxy ([`crate::proxy`]; issue 17). The stack connects to `listen` (bellows:
//! `socket://127.0.0.1:6638`, zigbee-herdsman's `ember` adapter: `tcp://127.0.0.1:6638`) or opens
//! the pseudo-terminal `link`; zigbee-otad keeps the serial port.
//!
//! `listen` is loopback unless another address is written out. `ota` says whose OTA cluster
//! traffic zigbee-otad answers: `"all"` devices, only the `devices` `"listed"`, or `"none"` (the
//! proxy is then transparent and upstream's own OTA server keeps working).
//!
//! ```
//! let config = zigbee_otad::config::Config::from_toml_str(
//!     "[coordinator]\nport = \"/dev/ttyUSB0\"\n[proxy]\n",
//!     "example.toml",
//! ).unwrap();
//! let proxy = config.proxy.unwrap();
//! assert_eq!(proxy.listen.to_string(), "tcp://127.0.0.1:6638");
//! assert!(proxy.listen.address().ip().is_loopback());
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, de};

use crate::zcl::Ieee;

/// The port of the default `listen` address.
pub const DEFAULT_PROXY_PORT: u16 = 6638;

/// `[proxy]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Where the upstream stack connects: `tcp://ADDRESS:PORT` (loopback by default).
    #[serde(default)]
    pub listen: ProxyListen,
    /// Also offer the virtual stick as a pseudo-terminal, with this path as a symlink to it.
    #[serde(default)]
    pub link: Option<PathBuf>,
    /// Whose OTA cluster traffic zigbee-otad answers.
    #[serde(default)]
    pub ota: ProxyOta,
    /// The devices answered when `ota = "listed"` (IEEE addresses).
    #[serde(default, deserialize_with = "ieee_list")]
    pub devices: Vec<Ieee>,
}

impl ProxySection {
    /// The set of IEEE addresses the OTA cluster is answered for, or `None` for every device.
    pub fn scope(&self) -> OtaScope {
        match self.ota {
            ProxyOta::All => OtaScope::All,
            ProxyOta::None => OtaScope::None,
            ProxyOta::Listed => OtaScope::Listed(self.devices.iter().copied().collect()),
        }
    }

    /// Checks the keys that depend on each other; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match (self.ota, self.devices.is_empty()) {
            (ProxyOta::Listed, true) => Err((
                "devices",
                "`ota = \"listed\"` needs the devices listed here (or use \"none\")".to_owned(),
            )),
            (ProxyOta::All | ProxyOta::None, false) => Err((
                "devices",
                "a device list is only used with `ota = \"listed\"`".to_owned(),
            )),
            _ => {
                let mut seen = BTreeSet::new();
                match self.devices.iter().find(|d| !seen.insert(**d)) {
                    Some(twice) => Err(("devices", format!("{twice} is listed twice"))),
                    None => Ok(()),
                }
            }
        }
    }
}

/// `[proxy] ota`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyOta {
    /// Every device's OTA cluster traffic is ours.
    #[default]
    All,
    /// Only the devices in `devices`.
    Listed,
    /// None: upstream keeps the OTA cluster.
    None,
}

/// Whose OTA traffic the proxy answers, resolved from [`ProxySection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtaScope {
    /// Every device.
    All,
    /// These devices only.
    Listed(BTreeSet<Ieee>),
    /// No device.
    None,
}

impl OtaScope {
    /// True when `ieee`'s OTA traffic is ours; an unknown address is ours only under `All`.
    pub fn covers(&self, ieee: Option<Ieee>) -> bool {
        match self {
            OtaScope::All => true,
            OtaScope::None => false,
            OtaScope::Listed(set) => ieee.is_some_and(|i| set.contains(&i)),
        }
    }

    /// True when the IEEE address must be known to decide ([`OtaScope::Listed`]).
    pub fn needs_ieee(&self) -> bool {
        matches!(self, OtaScope::Listed(_))
    }
}

/// `[proxy] listen`: `tcp://ADDRESS:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyListen(SocketAddr);

impl ProxyListen {
    /// The socket address.
    pub fn address(self) -> SocketAddr {
        self.0
    }
}

impl Default for ProxyListen {
    /// `tcp://127.0.0.1:6638`.
    fn default() -> Self {
        ProxyListen(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PROXY_PORT)))
    }
}

impl fmt::Display for ProxyListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.0)
    }
}

impl std::str::FromStr for ProxyListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("tcp://") else {
            return Err(format!(
                "`{text}` must be tcp://ADDRESS:PORT (e.g. tcp://127.0.0.1:6638)"
            ));
        };
        let address: SocketAddr = rest.trim_end_matches('/').parse().map_err(|_| {
            format!("`{text}`: `{rest}` is not ADDRESS:PORT (an IP address, then a port)")
        })?;
        if address.port() == 0 {
            return Err(format!("`{text}`: port 0 is not a port to listen on"));
        }
        Ok(ProxyListen(address))
    }
}

impl<'de> Deserialize<'de> for ProxyListen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed_text(deserializer, "listen")
    }
}

fn ieee_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Ieee>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e| de::Error::custom(format!("`devices`: `{t}`: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::with_coordinator;

    fn parse(proxy: &str) -> Result<Config, String> {
        with_coordinator(&format!("[proxy]\n{proxy}"))
    }

    #[test]
    fn defaults_listen_on_loopback_and_answer_every_device() {
        let proxy = parse("").unwrap().proxy.unwrap();
        assert_eq!(proxy.listen.to_string(), "tcp://127.0.0.1:6638");
        assert!(proxy.scope().covers(None));
        assert_eq!(proxy.link, None);
        let none = Config::from_toml_str("[coordinator]\nport = \"/dev/x\"\n", "t.toml").unwrap();
        assert!(none.proxy.is_none());
    }

    #[test]
    fn written_addresses_and_device_lists() {
        let proxy = parse(
            "listen = \"tcp://0.0.0.0:7000\"\nlink = \"/run/zigbee-otad/ezsp\"\nota = \"listed\"\n\
             devices = [\"00:0d:6f:00:00:19:8b:36\"]\n",
        )
        .unwrap()
        .proxy
        .unwrap();
        assert_eq!(proxy.listen.address().port(), 7000);
        assert!(!proxy.listen.address().ip().is_loopback());
        let listed: crate::zcl::Ieee = "00:0d:6f:00:00:19:8b:36".parse().unwrap();
        assert!(proxy.scope().covers(Some(listed)));
        assert!(!proxy.scope().covers(Some(crate::zcl::Ieee(1))));
        assert!(!proxy.scope().covers(None));
        assert!(parse("ota = \"none\"\n").unwrap().proxy.unwrap().scope() == super::OtaScope::None);
    }

    #[test]
    fn errors_name_the_key() {
        for (text, expected) in [
            ("listen = \"127.0.0.1:6638\"\n", "tcp://ADDRESS:PORT"),
            ("listen = \"tcp://localhost:6638\"\n", "not ADDRESS:PORT"),
            ("listen = \"tcp://127.0.0.1:0\"\n", "port 0"),
            ("ota = \"some\"\n", "ota"),
            ("ota = \"listed\"\n", "proxy.devices"),
            (
                "devices = [\"00:0d:6f:00:00:19:8b:36\"]\n",
                "only used with",
            ),
            ("ota = \"listed\"\ndevices = [\"00:11\"]\n", "devices"),
            (
                "ota = \"listed\"\ndevices = [\"00:0d:6f:00:00:19:8b:36\", \"00:0d:6f:00:00:19:8b:36\"]\n",
                "twice",
            ),
            ("bogus = 1\n", "bogus"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let znp = Config::from_toml_str(
            "[coordinator]\nprotocol = \"znp\"\nport = \"/dev/x\"\n[proxy]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(znp.contains("proxy") && znp.contains("ezsp"), "{znp}");
    }
}
