//! `[mqtt]` and `[export]`: the sections that connect the daemon to the rest of a home gateway
//! (Home Assistant over MQTT, and our verified catalog served as an index for Zigbee2MQTT and ZHA).
//!
//! Both sections are optional; without them the daemon neither connects to a broker nor listens
//! on TCP. The export listens on loopback unless another address is written out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

/// `[mqtt]`: Home Assistant MQTT discovery (an `update` entity per device).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default 8883).
    pub url: String,
    /// PEM file with the CA certificates that sign the broker's certificate (`mqtts://` only);
    /// without it the system's trust store is used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Broker user name.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the broker password (its first line). The password itself is never logged
    /// nor shown in the status.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The MQTT client id.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Our topics live under this prefix.
    #[serde(default = "default_base_topic")]
    pub base_topic: String,
    /// Home Assistant's discovery prefix.
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
}

fn default_client_id() -> String {
    "zigbee-otad".to_owned()
}

fn default_base_topic() -> String {
    "zigbee-otad".to_owned()
}

fn default_discovery_prefix() -> String {
    "homeassistant".to_owned()
}

/// A broker address taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
}

impl MqttSection {
    /// The broker's host, port and whether TLS is used; an error says what is wrong with `url`.
    pub fn broker(&self) -> Result<BrokerAddress, String> {
        let (rest, tls, default_port) = if let Some(rest) = self.url.strip_prefix("mqtts://") {
            (rest, true, 8883)
        } else if let Some(rest) = self.url.strip_prefix("mqtt://") {
            (rest, false, 1883)
        } else {
            return Err(format!(
                "`{}` must start with mqtt:// or mqtts://",
                self.url
            ));
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains(['/', '?', '#']) {
            return Err(format!("`{}`: give only a host and a port", self.url));
        }
        if authority.contains('@') {
            return Err(format!(
                "`{}`: put the user in `username` and the password in `password_file`, not in the URL",
                self.url
            ));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("`{}`: unclosed `[`", self.url))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{}` has no host", self.url));
        }
        let port = match port {
            None => default_port,
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{}`: `{text}` is not a port (1..65535)", self.url))?,
        };
        Ok(BrokerAddress {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// Checks the keys that depend on each other; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let broker = self.broker().map_err(|m| ("url", m))?;
        if self.ca_file.is_some() && !broker.tls {
            return Err(("ca_file", "`ca_file` needs an mqtts:// url".to_owned()));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err((
                "password_file",
                "a password needs a `username` too".to_owned(),
            ));
        }
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err(("client_id", "1 to 64 characters".to_owned()));
        }
        check_topic_prefix(&self.base_topic).map_err(|m| ("base_topic", m))?;
        check_topic_prefix(&self.discovery_prefix).map_err(|m| ("discovery_prefix", m))?;
        Ok(())
    }
}

/// A topic prefix: not empty, no wildcards, no NUL, no leading or trailing `/`.
fn check_topic_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > 128 {
        return Err("1 to 128 characters".to_owned());
    }
    if prefix.contains(['+', '#', '\0']) {
        return Err(format!(
            "`{prefix}`: MQTT wildcards (+, #) are not allowed in a topic"
        ));
    }
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err(format!("`{prefix}`: no empty topic levels"));
    }
    Ok(())
}

/// `[export]`: the verified images we hold, served read-only over HTTP as a zigbee-OTA
/// `index.json` (Zigbee2MQTT, ZHA's `z2m` provider) and a zigpy index (`zigpy.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// Address and port to listen on; loopback unless written out.
    #[serde(default = "default_export_listen")]
    pub listen: SocketAddr,
    /// The address clients use to reach this server, for the `url` of each image
    /// (`http://gateway.lan:8765`). Without it, the request's `Host` is used.
    #[serde(default)]
    pub base_url: Option<String>,
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            listen: default_export_listen(),
            base_url: None,
        }
    }
}

fn default_export_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8765)
}

impl ExportSection {
    /// Checks `base_url`; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.base_url {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(|| ("base_url", format!("`{url}` is not an http(s):// URL")))?;
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
                return Err((
                    "base_url",
                    format!("`{url}`: give the scheme, host and port only"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(url: &str) -> MqttSection {
        MqttSection {
            url: url.to_owned(),
            ca_file: None,
            username: None,
            password_file: None,
            client_id: default_client_id(),
            base_topic: default_base_topic(),
            discovery_prefix: default_discovery_prefix(),
        }
    }

    #[test]
    fn broker_urls() {
        let b = mqtt("mqtt://127.0.0.1").broker().unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 1883, false));
        let b = mqtt("mqtts://broker.lan:8884/").broker().unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("broker.lan", 8884, true));
        let b = mqtt("mqtt://[::1]:1884").broker().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1884));
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://u:p@host",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://h/topic",
        ] {
            assert!(mqtt(bad).broker().is_err(), "{bad}");
        }
    }

    #[test]
    fn dependent_keys() {
        let mut m = mqtt("mqtt://h");
        m.ca_file = Some("/etc/ca.pem".into());
        assert_eq!(m.validate().unwrap_err().0, "ca_file");
        let mut m = mqtt("mqtt://h");
        m.password_file = Some("/etc/pw".into());
        assert_eq!(m.validate().unwrap_err().0, "password_file");
        let mut m = mqtt("mqtt://h");
        m.base_topic = "a/+/b".into();
        assert_eq!(m.validate().unwrap_err().0, "base_topic");
        let mut m = mqtt("mqtt://h");
        m.discovery_prefix = "ha/".into();
        assert_eq!(m.validate().unwrap_err().0, "discovery_prefix");
    }

    #[test]
    fn export_base_url() {
        let mut e = ExportSection::default();
        assert!(e.listen.ip().is_loopback());
        e.base_url = Some("http://gw.lan:8765".into());
        assert!(e.validate().is_ok());
        e.base_url = Some("ftp://gw".into());
        assert!(e.validate().is_err());
        e.base_url = Some("http://gw/images".into());
        assert!(e.validate().is_err());
    }
}
