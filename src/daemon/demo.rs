//! `zigbee-otad demo`: the whole daemon against the built-in simulated coordinator, for someone
//! who has just cloned the repository and has no hardware.
//!
//! It builds synthetic OTA images (real GBL and EBL payloads with valid CRCs, written with the
//! project's own OTA writer) and publishes them where the daemon finds images in the field: a
//! loopback server plays the LEDVANCE API and a zigbee-OTA index ([`super::demo_cloud`], with a
//! Tuya-style entry restricted by model and manufacturer name), and a local folder holds the rest.
//! It starts the simulated coordinator on a pseudo-terminal with eight simulated devices
//! (different manufacturers; one sleepy, one asking for small blocks, one already up to date, and
//! two Tuya bulbs that share a manufacturer code and image type but not a manufacturer name), and
//! runs the real daemon code path on it: catalog refresh within the rate limits, download and
//! verification, serial driver, ASH, EZSP or ZNP, ZCL, identity reads, OTA server. It shows each
//! device's progress and ends with a table that says where each image came from. It succeeds only
//! when every device that should upgrade has received, verified (byte for byte against the file it
//! should get) and applied its image, and the others were told there is nothing for them.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::config::Protocol;
use crate::ota::payload::{EblBuilder, GblBuilder};
use crate::ota::{
    FileVersion, HardwareVersion, HardwareVersions, ImageType, ManufacturerCode, OtaFileBuilder,
    OtaHeader, TagId,
};
use crate::server::ImageKey;
use crate::server::ServerEvent;
use crate::sim::device::{DeviceEvent, UpgradeOutcome};
use crate::sim::{
    SimConfig, SimDeviceSpec, SimEvent, SimZnpConfig, run_simulator, run_znp_simulator,
};
use crate::zcl::basic::BasicIdentity;

use super::demo_cloud::{DemoCloud, INDEX_PATH, IndexImage, LEDVANCE_PATH, LedvanceImage};
use super::service::{Daemon, DaemonOptions};
use super::status::render_transfer;

/// The demo gives up after this long.
pub const DEMO_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the demo publishes a device's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// In the LEDVANCE API.
    Ledvance,
    /// In the zigbee-OTA index, for any device with the header's code and type.
    Index,
    /// In the zigbee-OTA index, restricted to one model and manufacturer name.
    IndexRestricted {
        model: &'static str,
        manufacturer_name: &'static str,
    },
    /// In the local folder.
    Folder,
    /// Nowhere: another device's restricted entry has this device's code and type.
    Nowhere,
}

/// One simulated device and what the demo expects of it.
#[derive(Debug, Clone)]
struct DemoDevice {
    label: &'static str,
    spec: SimDeviceSpec,
    publish: Publish,
    /// The version it should end on.
    target_version: u32,
    /// Bytes of the synthetic firmware payload (0: no image for it is generated).
    payload_len: usize,
    /// Silicon Labs GBL (true) or EBL (false) payload.
    gbl: bool,
    /// A sleepy end device polling its parent this often.
    sleepy_poll: Option<Duration>,
}

fn demo_devices() -> Vec<DemoDevice> {
    let spec = |mfr, ty, ver, hw, max| SimDeviceSpec {
        manufacturer_code: mfr,
        image_type: ty,
        file_version: ver,
        hardware_version: hw,
        max_data_size: max,
        identity: Default::default(),
    };
    let tuya = |name: &str| SimDeviceSpec {
        identity: BasicIdentity {
            manufacturer_name: Some(name.to_owned()),
            model_id: Some("TS0505B".to_owned()),
            power_source: Some(0x01),
            ..BasicIdentity::default()
        },
        ..spec(0x1141, 0xD3A3, 0x0000_0040, None, 50)
    };
    vec![
        DemoDevice {
            label: "LEDVANCE A60 bulb",
            publish: Publish::Ledvance,
            spec: spec(0x1189, 0x00CD, 0x0102_0300, None, 50),
            target_version: 0x0102_0400,
            payload_len: 24_000,
            gbl: true,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "Hue motion sensor (sleepy)",
            publish: Publish::Index,
            spec: spec(0x100B, 0x0119, 0x0200_1A00, Some(0x0100), 50),
            target_version: 0x0200_2100,
            payload_len: 4_000,
            gbl: true,
            sleepy_poll: Some(Duration::from_millis(100)),
        },
        DemoDevice {
            label: "dresden FLS-PP (32-byte blocks)",
            publish: Publish::Index,
            spec: spec(0x1135, 0x0000, 0x2010_00F0, None, 32),
            target_version: 0x2010_00F8,
            payload_len: 12_000,
            gbl: false,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "ubisys S1 (hardware 2)",
            publish: Publish::Folder,
            spec: spec(0x10F2, 0x7B32, 0x0260_0450, Some(0x0002), 64),
            target_version: 0x0260_0460,
            payload_len: 16_000,
            gbl: false,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "Legrand dimmer",
            publish: Publish::Folder,
            spec: spec(0x1021, 0x000F, 0x0047_44FF, None, 48),
            target_version: 0x0047_45FF,
            payload_len: 14_000,
            gbl: false,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "IKEA bulb (up to date)",
            publish: Publish::Folder,
            spec: spec(0x117C, 0x2101, 0x2303_0931, None, 50),
            target_version: 0x2303_0931,
            payload_len: 10_000,
            gbl: false,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "Tuya bulb _TZ3210_demo",
            publish: Publish::IndexRestricted {
                model: "TS0505B",
                manufacturer_name: "_TZ3210_demo",
            },
            spec: tuya("_TZ3210_demo"),
            target_version: 0x0000_0041,
            payload_len: 9_000,
            gbl: false,
            sleepy_poll: None,
        },
        DemoDevice {
            label: "Tuya bulb _TZ3210_other",
            publish: Publish::Nowhere,
            spec: tuya("_TZ3210_other"),
            target_version: 0x0000_0040,
            payload_len: 0,
            gbl: false,
            sleepy_poll: None,
        },
    ]
}

/// A deterministic filler so the firmware bytes are not all alike.
fn firmware_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Builds the synthetic OTA file a device kind should receive.
fn synthetic_image(device: &DemoDevice, seed: u32) -> Vec<u8> {
    let mut header = OtaHeader::new(
        ManufacturerCode(device.spec.manufacturer_code),
        ImageType(device.spec.image_type),
        FileVersion(device.target_version),
    );
    header.set_header_string(&format!("zigbee-otad demo {}", device.label));
    if let Some(hw) = device.spec.hardware_version {
        header.hardware_versions = Some(HardwareVersions {
            minimum: HardwareVersion(hw),
            maximum: HardwareVersion(hw),
        });
    }
    let firmware = firmware_bytes(device.payload_len, seed);
    let payload = if device.gbl {
        GblBuilder::new()
            .tag([0xFE, 0x01, 0x01, 0xFE], firmware)
            .build()
    } else {
        EblBuilder::new().tag([0x02, 0x01], firmware).build()
    };
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, payload)
        .build()
}

/// Where the demo keeps its files; removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn demo_config(root: &Path, port: &str, protocol: Protocol, cloud: &str) -> anyhow::Result<Config> {
    let protocol = match protocol {
        Protocol::Ezsp => "ezsp",
        Protocol::Znp => "znp",
    };
    let text = format!(
        r#"
state_dir = "{root}/state"

[coordinator]
protocol = "{protocol}"
port = "{port}"
baudrate = 115200
flow_control = "none"

[server]
max_concurrent_transfers = 5
idle_timeout = "2m"

[catalog]
cache_dir = "{root}/cache"

[[catalog.source]]
kind = "ledvance"
name = "ledvance-api"
url = "{cloud}{LEDVANCE_PATH}"

[[catalog.source]]
kind = "zigbee-ota-index"
name = "zigbee-ota-index"
url = "{cloud}{INDEX_PATH}"

[[catalog.source]]
kind = "directory"
name = "demo-images"
path = "{root}/images"

[status]
socket = "{root}/status.sock"
"#,
        root = root.display(),
    );
    Ok(Config::from_toml_str(&text, "demo configuration")?)
}

/// The OTA file a device should end with, and where the demo publishes it.
fn publish_images(
    devices: &[DemoDevice],
    images_dir: &Path,
    sim: &mut SimConfig,
) -> anyhow::Result<(Vec<LedvanceImage>, Vec<IndexImage>)> {
    let (mut ledvance, mut index) = (Vec::new(), Vec::new());
    for (seed, device) in devices.iter().enumerate() {
        if device.publish == Publish::Nowhere {
            continue;
        }
        let bytes = synthetic_image(device, seed as u32 + 1);
        let (mfr, ty, version) = (
            device.spec.manufacturer_code,
            device.spec.image_type,
            device.target_version,
        );
        let name = format!("{mfr:04X}-{ty:04X}-{version:08X}.ota");
        sim.images.insert((mfr, ty), Arc::new(bytes.clone()));
        let index_image = |model: Option<&str>, names: Vec<String>| IndexImage {
            file_name: name.clone(),
            manufacturer_code: mfr,
            image_type: ty,
            file_version: version,
            model_id: model.map(str::to_owned),
            manufacturer_names: names,
            bytes: bytes.clone(),
        };
        match device.publish {
            Publish::Ledvance => ledvance.push(LedvanceImage {
                company: mfr,
                product: ty,
                file_version: version,
                product_name: device.label.to_owned(),
                bytes,
            }),
            Publish::Index => index.push(index_image(None, Vec::new())),
            Publish::IndexRestricted {
                model,
                manufacturer_name,
            } => index.push(index_image(Some(model), vec![manufacturer_name.to_owned()])),
            Publish::Folder => std::fs::write(images_dir.join(&name), &bytes)
                .with_context(|| format!("cannot write {name}"))?,
            Publish::Nowhere => {}
        }
    }
    Ok((ledvance, index))
}

/// What the demo saw of one device.
#[derive(Debug, Default, Clone)]
struct Outcome {
    upgraded: Option<crate::sim::UpgradeReport>,
    told_up_to_date: bool,
}

/// Runs the demo against the simulated EZSP coordinator; returns true when every device ended
/// as it should.
pub async fn run_demo() -> anyhow::Result<bool> {
    run_demo_with(Protocol::Ezsp).await
}

/// Runs the demo against the simulated coordinator of `protocol` (`demo --protocol znp`).
pub async fn run_demo_with(protocol: Protocol) -> anyhow::Result<bool> {
    let started = Instant::now();
    let root = std::env::temp_dir().join(format!("zigbee-otad-demo-{}", std::process::id()));
    let scratch = Scratch(root.clone());
    let images_dir = root.join("images");
    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("cannot create {}", images_dir.display()))?;

    let devices = demo_devices();
    let mut sim = SimConfig {
        radio_delay: Duration::from_millis(2),
        first_query_after: Duration::from_millis(500),
        query_interval: Duration::from_secs(3),
        response_timeout: Duration::from_secs(2),
        ..SimConfig::default()
    };
    let (ledvance, index) = publish_images(&devices, &images_dir, &mut sim)?;
    let cloud = DemoCloud::start(&ledvance, &index)
        .await
        .context("cannot start the demo's loopback catalog server")?;
    for (index, device) in devices.iter().enumerate() {
        if let Some(poll) = device.sleepy_poll {
            sim.sleepy_devices.insert(index, poll);
        }
        sim.devices.push(device.spec.clone());
    }
    let addresses: Vec<_> = sim
        .device_configs()
        .iter()
        .map(|d| (d.nwk, d.ieee))
        .collect();

    let (mut simulator, kind) = match protocol {
        Protocol::Ezsp => (run_simulator(sim).await?, "EZSP"),
        Protocol::Znp => (
            run_znp_simulator(sim, SimZnpConfig::default()).await?,
            "Z-Stack ZNP",
        ),
    };
    println!(
        "zigbee-otad demo: simulated {kind} coordinator on {} with {} devices",
        simulator.path(),
        devices.len(),
    );
    println!(
        "  catalogs: LEDVANCE API ({} image) and zigbee-OTA index ({} images, 1 restricted to a model and manufacturer name) on {}; local folder {}",
        ledvance.len(),
        index.len(),
        cloud.base_url,
        images_dir.display()
    );
    let config = demo_config(&root, simulator.path(), protocol, &cloud.base_url)?;
    let (events_tx, mut events) = mpsc::channel(1024);
    let daemon = Daemon::start(
        config,
        DaemonOptions {
            status_socket: true,
            systemd: false,
            events: Some(events_tx),
            config_path: None,
        },
    )
    .await?;
    let mut snapshots = daemon.snapshots.clone();

    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    let index_of: HashMap<_, _> = addresses
        .iter()
        .enumerate()
        .map(|(i, (nwk, _))| (*nwk, i))
        .collect();
    let interactive = std::io::stdout().is_terminal();
    let mut drawn_lines = 0usize;
    let mut redraw = tokio::time::interval(Duration::from_millis(300));
    let deadline = started + DEMO_TIMEOUT;

    let finished = loop {
        let done = devices.iter().enumerate().all(|(i, d)| {
            let o = outcomes.get(&i);
            if d.target_version == d.spec.file_version {
                o.is_some_and(|o| o.told_up_to_date)
            } else {
                o.and_then(|o| o.upgraded.as_ref())
                    .is_some_and(|r| r.outcome == UpgradeOutcome::Upgraded)
            }
        });
        if done {
            break true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break false,
            _ = tokio::signal::ctrl_c() => break false,
            event = simulator.events.recv() => match event {
                Some(SimEvent::Device { nwk, event }) => {
                    let Some(&i) = index_of.get(&nwk) else { continue };
                    let entry = outcomes.entry(i).or_default();
                    match event {
                        DeviceEvent::UpgradeEnded(report) => {
                            if !interactive {
                                println!("  {report}");
                            }
                            entry.upgraded = Some(report);
                        }
                        DeviceEvent::NoImage { .. } => entry.told_up_to_date = true,
                        DeviceEvent::DownloadStarted { .. } => {}
                    }
                }
                Some(_) => {}
                None => break false,
            },
            Some(event) = events.recv() => {
                if !interactive {
                    print_milestone(&event);
                }
            }
            _ = redraw.tick(), if interactive => {
                let snapshot = snapshots.borrow_and_update().clone();
                let mut out = std::io::stdout().lock();
                if drawn_lines > 0 {
                    let _ = write!(out, "\x1b[{drawn_lines}A\x1b[J");
                }
                drawn_lines = 0;
                for t in &snapshot.transfers {
                    let _ = writeln!(out, "  {}", render_transfer(t));
                    drawn_lines += 1;
                }
                let _ = out.flush();
            }
        }
    };

    if interactive {
        // One last frame after the daemon's next snapshot, so the bars end where the devices did.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let snapshot = daemon.snapshots.borrow().clone();
        let mut out = std::io::stdout().lock();
        if drawn_lines > 0 {
            let _ = write!(out, "\x1b[{drawn_lines}A\x1b[J");
        }
        for t in &snapshot.transfers {
            let _ = writeln!(out, "  {}", render_transfer(t));
        }
        let _ = out.flush();
    }
    let sources: HashMap<ImageKey, String> = daemon
        .library
        .borrow()
        .images
        .iter()
        .map(|image| (image.key(), image.provenance().source.clone()))
        .collect();
    let catalog_sources = daemon.snapshots.borrow().catalog.sources.clone();
    daemon.stop().await?;
    simulator.shutdown().await;
    let cloud_requests = cloud.requests();
    drop(cloud);
    drop(scratch);

    println!();
    println!(
        "{:<34} {:<23} {:>23} {:>8} {:>7}  {:<17} result",
        "device", "ieee", "from -> to", "bytes", "time", "image from"
    );
    let mut all_ok = finished;
    for (i, device) in devices.iter().enumerate() {
        let ieee = addresses
            .get(i)
            .map(|(_, ieee)| ieee.to_string())
            .unwrap_or_default();
        let outcome = outcomes.get(&i).cloned().unwrap_or_default();
        let (versions, bytes, time, result) = match (&outcome.upgraded, outcome.told_up_to_date) {
            (Some(r), _) => (
                format!("{:08X} -> {:08X}", r.from_version, r.to_version),
                r.image_size.to_string(),
                format!("{:.1}s", r.elapsed.as_secs_f64()),
                match (r.outcome, r.verified) {
                    (UpgradeOutcome::Upgraded, true) => "upgraded, verified".to_owned(),
                    (UpgradeOutcome::Upgraded, false) => "upgraded, NOT verified".to_owned(),
                    (other, _) => format!("FAILED: {other:?}"),
                },
            ),
            (None, true) => (
                format!(
                    "{:08X} {}",
                    device.spec.file_version,
                    if device.publish == Publish::Nowhere {
                        "(no offer)"
                    } else {
                        "(latest)"
                    }
                ),
                "-".to_owned(),
                "-".to_owned(),
                if device.publish == Publish::Nowhere {
                    "nothing for it: restricted entry is for another maker".to_owned()
                } else {
                    "up to date".to_owned()
                },
            ),
            (None, false) => (
                format!("{:08X}", device.spec.file_version),
                "-".to_owned(),
                "-".to_owned(),
                "DID NOT FINISH".to_owned(),
            ),
        };
        if result.contains("FAILED") || result.contains("NOT") || result.contains("DID NOT") {
            all_ok = false;
        }
        let source = outcome
            .upgraded
            .as_ref()
            .and_then(|r| {
                sources.get(&ImageKey {
                    manufacturer_code: device.spec.manufacturer_code,
                    image_type: device.spec.image_type,
                    file_version: r.to_version,
                })
            })
            .map_or("-", String::as_str);
        println!(
            "{:<34} {:<23} {:>23} {:>8} {:>7}  {:<17} {}",
            device.label, ieee, versions, bytes, time, source, result
        );
    }
    println!();
    println!("catalog server answered {cloud_requests} requests; the daemon's ledger:");
    for source in catalog_sources.iter().filter(|s| s.kind != "directory") {
        let used = |usage: Option<(u64, u64)>, unit: &str| {
            usage.map_or(String::new(), |(used, limit)| match limit {
                u64::MAX => format!(", {used} {unit} this month (no limit)"),
                limit => format!(", {used} of {limit} {unit} this month"),
            })
        };
        println!(
            "  {:<17} {} entries{}{}",
            source.name,
            source.entries,
            used(source.calls_this_month, "calls"),
            used(source.bytes_this_month, "bytes"),
        );
    }
    println!(
        "{} in {:.1} s",
        if all_ok {
            "demo passed: every device that needed an upgrade got it, verified byte for byte"
        } else {
            "demo FAILED"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(all_ok)
}

fn print_milestone(event: &ServerEvent) {
    match event {
        ServerEvent::ImageOffered {
            device,
            image,
            image_size,
        } => {
            println!("  offered {image} ({image_size} bytes) to {device}");
        }
        ServerEvent::TransferStarted {
            device,
            image,
            offset,
        } => {
            println!("  {device}: download of {image} started at offset {offset}");
        }
        ServerEvent::Progress(p) => {
            println!(
                "  {}: {}% ({} / {} bytes)",
                p.ieee.map(|i| i.to_string()).unwrap_or_default(),
                p.percent,
                p.offset,
                p.image_size
            );
        }
        ServerEvent::UpgradeScheduled { device, image, .. } => {
            println!("  {device}: {image} complete; told to apply it");
        }
        ServerEvent::TransferFailed { device, image, .. } => {
            println!("  {device}: transfer of {image} FAILED");
        }
        _ => {}
    }
}
