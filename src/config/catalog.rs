//! `[catalog]` and `[[catalog.source]]`: where firmware comes from and how often it is refreshed
//! (ARCHITECTURE.md, "Configuration"; docs/CATALOGS.md), and the rule that a catalog URL is
//! https:// (plain http:// only for loopback mirrors and tests).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{connect_timeout, refresh_interval, request_timeout};

/// `[catalog]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// How often catalogs are refreshed (1h ..= 30d).
    #[serde(default = "default_refresh", deserialize_with = "refresh_interval")]
    pub refresh_interval: Duration,
    /// Cached catalogs and images.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Longest wait for a catalog server's TCP and TLS connection (1s ..= 5m).
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "connect_timeout"
    )]
    pub connect_timeout: Duration,
    /// Longest time one catalog or image request may take, body included (1s ..= 1h); a server
    /// that stalls or trickles is given up after it, and the source backs off.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "request_timeout"
    )]
    pub request_timeout: Duration,
    /// Where firmware comes from, in order of preference.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceSection>,
}

impl Default for CatalogSection {
    fn default() -> Self {
        CatalogSection {
            refresh_interval: default_refresh(),
            cache_dir: default_cache_dir(),
            connect_timeout: default_connect_timeout(),
            request_timeout: default_request_timeout(),
            sources: Vec::new(),
        }
    }
}

fn default_refresh() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from("/var/cache/zigbee-otad")
}

/// `[[catalog.source]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// What kind of source this is.
    pub kind: SourceKind,
    /// A name for logs and status (defaults to the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// The catalog URL (every kind but `directory`; the vendor kinds and `zigpy-ota` default to
    /// their feed's published URL, filled in when the configuration is read).
    #[serde(default)]
    pub url: Option<String>,
    /// A local path (`directory`, or a local copy of any catalog but `ledvance`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `ledvance` only: which endpoint the catalog comes from (see [`LedvanceMode`]).
    #[serde(default)]
    pub mode: Option<LedvanceMode>,
    /// A PEM file of CA certificates this source's server is also trusted under (added to the
    /// system roots for this source only; sources fetched from a URL only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// How a `ledvance` source learns the firmwares (CATALOGS.md, "The LEDVANCE API as documented
/// by LEDVANCE").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedvanceMode {
    /// The whole catalog, `GET {url}` (what zigpy and the zigbee-OTA tooling use; undocumented).
    List,
    /// One documented `GET {url}/newer?Company=&Product=&Version=` per distinct (manufacturer
    /// code, image type, file version) of the known LEDVANCE and OSRAM devices.
    Newer,
    /// The list, falling back to `newer` calls when the list answers 404 or 410 or a shape
    /// that cannot be read.
    #[default]
    Auto,
}

/// The checks of a source's `mode` and `ca_file`: the key at fault and why.
pub(super) fn check_source_options(source: &SourceSection) -> Result<(), (&'static str, String)> {
    if source.mode.is_some() && source.kind != SourceKind::Ledvance {
        return Err((
            "mode",
            "`mode` applies only to kind = \"ledvance\"".to_owned(),
        ));
    }
    if source.ca_file.is_some() && (source.path.is_some() || source.kind == SourceKind::Directory) {
        return Err((
            "ca_file",
            "`ca_file` needs a source fetched from a `url`".to_owned(),
        ));
    }
    Ok(())
}

/// The kind of a catalog source: the `kind = "…"` of a `[[catalog.source]]`, and the kind of
/// source a catalog entry came from (`catalog::model::Provenance`). One enum for both, so the
/// configuration and the catalog cannot disagree on a kind or its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourceKind {
    /// The LEDVANCE cloud API (`{"firmwares":[…]}`).
    Ledvance,
    /// A manifest in the zigbee-OTA `index.json` format.
    ZigbeeOtaIndex,
    /// A local folder of `.ota` files.
    Directory,
    /// IKEA's `version_info.json` (DIRIGERA style with SHA3-256, or TRÅDFRI style).
    Ikea,
    /// Inovelli's `firmware-zha-v2.json`.
    Inovelli,
    /// Third Reality's `firmware.json`.
    #[serde(rename = "thirdreality")]
    ThirdReality,
    /// Sonoff's `upgrade.json`.
    Sonoff,
    /// zigpy-ota's index in the zigbee-OTA format (`z2m_v1_ota.json`).
    ZigpyOta,
    /// Salus's feed: recognised only to refuse it with the reason (see [`SALUS_REFUSAL`]).
    Salus,
}

/// Why `kind = "salus"` is refused.
pub const SALUS_REFUSAL: &str = "the Salus feed is not supported: its entries name only a model and a version (no manufacturer code or image type to match a device on), it mixes gateway firmware and other files with the Zigbee images, its files are tar archives checked only by an MD5 inside them, over plain http; the zigbee-OTA index carries the Salus Zigbee images already extracted, with SHA-512 digests: use kind = \"zigbee-ota-index\"";

impl SourceKind {
    /// The name used for this kind in the configuration (`kind = "…"`).
    pub fn config_name(self) -> &'static str {
        match self {
            SourceKind::Ledvance => "ledvance",
            SourceKind::ZigbeeOtaIndex => "zigbee-ota-index",
            SourceKind::Directory => "directory",
            SourceKind::Ikea => "ikea",
            SourceKind::Inovelli => "inovelli",
            SourceKind::ThirdReality => "thirdreality",
            SourceKind::Sonoff => "sonoff",
            SourceKind::ZigpyOta => "zigpy-ota",
            SourceKind::Salus => "salus",
        }
    }

    /// Whether a source of this kind publishes a catalog document to parse: every kind but a
    /// local folder (read file by file) and the refused `salus`.
    pub fn has_catalog_document(self) -> bool {
        !matches!(self, SourceKind::Directory | SourceKind::Salus)
    }

    /// The catalog URL used when a source gives neither `url` nor `path`.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            SourceKind::Ikea => Some(IKEA_DEFAULT_URL),
            SourceKind::Inovelli => Some(INOVELLI_DEFAULT_URL),
            SourceKind::ThirdReality => Some(THIRDREALITY_DEFAULT_URL),
            SourceKind::Sonoff => Some(SONOFF_DEFAULT_URL),
            SourceKind::ZigpyOta => Some(ZIGPY_OTA_DEFAULT_URL),
            SourceKind::Ledvance
            | SourceKind::ZigbeeOtaIndex
            | SourceKind::Directory
            | SourceKind::Salus => None,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_name())
    }
}

/// IKEA's DIRIGERA feed, the one zigpy uses by default.
const IKEA_DEFAULT_URL: &str = "https://fw.ota.homesmart.ikea.com/DIRIGERA/version_info.json";

/// Inovelli's ZHA feed.
const INOVELLI_DEFAULT_URL: &str = "https://files.inovelli.com/firmware/firmware-zha-v2.json";

/// Sonoff's feed.
const SONOFF_DEFAULT_URL: &str = "https://zigbee-ota.sonoff.tech/releases/upgrade.json";

/// Third Reality's feed.
const THIRDREALITY_DEFAULT_URL: &str = "https://tr-zha.s3.amazonaws.com/firmware.json";

/// zigpy-ota's stable index in the zigbee-OTA format (its README's published location).
pub const ZIGPY_OTA_DEFAULT_URL: &str =
    "https://raw.githubusercontent.com/zigpy/zigpy-ota/release/files/stable/z2m_v1_ota.json";

/// HTTPS only; plain HTTP only for loopback hosts (tests and local mirrors).
pub fn check_source_url(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("https://") {
        if host_of(rest).is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        if is_loopback_authority(rest) {
            return Ok(());
        }
        return Err(format!(
            "`{url}`: plain http:// is accepted only for loopback addresses; use https://"
        ));
    }
    Err(format!("`{url}` is not an https:// URL"))
}

/// Whether the host of a URL, given as the text after its `scheme://`, is the machine itself:
/// `localhost`, `[::1]` or an address in 127.0.0.0/8 (any port, any user info).
pub fn is_loopback_authority(after_scheme: &str) -> bool {
    let host = host_of(after_scheme);
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn host_of(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or("");
    }
    host_port.split(':').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use crate::config::tests::with_coordinator;
    use crate::config::{Config, LedvanceMode};

    fn source(lines: &str) -> Result<Config, String> {
        with_coordinator(&format!("[[catalog.source]]\n{lines}\n"))
    }

    #[test]
    fn ledvance_mode_defaults_to_auto_and_belongs_to_ledvance() {
        let url = "url = \"https://api.update.ledvance.com/v1/zigbee/firmwares\"";
        let plain = source(&format!("kind = \"ledvance\"\n{url}")).unwrap();
        assert_eq!(
            plain.catalog.sources[0].mode.unwrap_or_default(),
            LedvanceMode::Auto
        );
        for (text, mode) in [("list", LedvanceMode::List), ("newer", LedvanceMode::Newer)] {
            let c = source(&format!("kind = \"ledvance\"\n{url}\nmode = \"{text}\"")).unwrap();
            assert_eq!(c.catalog.sources[0].mode, Some(mode));
        }
        let bad = source(&format!("kind = \"ledvance\"\n{url}\nmode = \"all\"")).unwrap_err();
        assert!(bad.contains("mode"), "{bad}");
        let elsewhere = source("kind = \"sonoff\"\nmode = \"newer\"").unwrap_err();
        assert!(elsewhere.contains("catalog.source[0].mode"), "{elsewhere}");
    }

    #[test]
    fn ca_file_only_for_sources_fetched_over_https() {
        let ikea = source("kind = \"ikea\"\nca_file = \"/etc/zigbee-otad/ikea-root.pem\"").unwrap();
        assert!(ikea.catalog.sources[0].ca_file.is_some());
        let folder =
            source("kind = \"directory\"\npath = \"/x\"\nca_file = \"/ca.pem\"").unwrap_err();
        assert!(folder.contains("catalog.source[0].ca_file"), "{folder}");
        let local =
            source("kind = \"ikea\"\npath = \"/x.json\"\nca_file = \"/ca.pem\"").unwrap_err();
        assert!(local.contains("catalog.source[0].ca_file"), "{local}");
    }
}
