//! What the configuration file decides for the OTA server ([`ServerConfig`]: limits, policies,
//! the upgrade-time policy, deny rules, pins, per-device overrides) and for the coordinator
//! driver ([`CoordinatorConfig`]: serial port, network overrides, endpoint). The daemon builds
//! them at start; the server's again at SIGHUP.

use crate::config::{Config, UpgradeTime};
use crate::coordinator::network::NetworkOverrides;
use crate::coordinator::{CoordinatorConfig, SerialConfig};
use crate::server::{DenyRule, DeviceOverride, ServerConfig, UpgradeTimePolicy, VersionPin};

/// The server settings the config decides; the rest keep the server's field-tested defaults.
pub fn server_config(config: &Config) -> anyhow::Result<ServerConfig> {
    let server = &config.server;
    let upgrade_time = |time: UpgradeTime| match time {
        UpgradeTime::Now => UpgradeTimePolicy::Immediately,
        UpgradeTime::Delay => UpgradeTimePolicy::AfterDelay(server.upgrade_delay),
        UpgradeTime::Wait => UpgradeTimePolicy::WaitForCommand,
    };
    let mut out = ServerConfig {
        endpoint: server.endpoint.get(),
        block_size_cap: server.max_block_size.get(),
        max_concurrent_transfers: usize::from(server.max_concurrent_transfers.get()),
        idle_timeout: server.idle_timeout,
        upgrade_time: upgrade_time(server.upgrade_time),
        allow_downgrade: config.policy.allow_downgrade,
        install: config.policy.install,
        // Issue 18: a page stream waits for the delivery report of its last block.
        pace_pages_by_delivery: true,
        apply_window: server.apply_window,
        ..ServerConfig::default()
    };
    for device in &config.devices {
        out.device_overrides.insert(
            device.ieee,
            DeviceOverride {
                disabled: device.deny,
                pinned_version: device.pin,
                block_size_cap: device.max_block_size.map(|b| b.get()),
                upgrade_time: device.upgrade_time.map(upgrade_time),
                install: device.install,
                ..DeviceOverride::default()
            },
        );
    }
    for rule in &config.policy.deny {
        out.deny.push(DenyRule {
            manufacturer_code: rule.manufacturer_code,
            image_type: rule.image_type,
            file_version: rule.file_version,
            reason: "denied by policy.deny in the configuration".to_owned(),
        });
    }
    for (index, pin) in config.policy.pin.iter().enumerate() {
        let (Some(image_type), Some(file_version)) = (pin.image_type, pin.file_version) else {
            anyhow::bail!("policy.pin[{index}]: a pin needs `image_type` and `file_version`");
        };
        out.pins.push(VersionPin {
            manufacturer_code: pin.manufacturer_code,
            image_type,
            file_version,
        });
    }
    Ok(out)
}

pub(crate) fn coordinator_config(config: &Config) -> CoordinatorConfig {
    let c = &config.coordinator;
    CoordinatorConfig {
        serial: SerialConfig {
            path: c.port.display().to_string(),
            baudrate: c.baudrate.get(),
            flow_control: c.flow_control,
        },
        state_dir: config.state_dir.clone(),
        network: NetworkOverrides {
            channel: c.channel.map(|ch| ch.get()),
            pan_id: c.pan_id,
            extended_pan_id: c.extended_pan_id.map(|e| u64::from_be_bytes(e.0)),
            network_key: c.network_key.map(|k| k.0),
        },
        endpoint: config.server.endpoint.get(),
    }
}
