//! The EZSP proxy (issue 17) as a user runs it: `zigbee-otad simulate` on a pty plays the
//! stick, `zigbee-otad run` with `[proxy]` owns it, and unmodified upstream stacks connect over
//! TCP: the bellows CLI (`bellows -d socket://127.0.0.1:PORT info`), zigpy + bellows
//! (`tests/interop/zigpy_proxy.py`), zigbee-herdsman's `ember` adapter over `tcp://`. Tools come
//! from `.ci/run` as in `interop.rs`; a test whose tool is missing says SKIPPED and passes.
//!
//! Real processes on a real pty and real sockets: real time, generous deadlines.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::free_port;
use crate::daemon::{
    Guard, log_text, minimal_config, start_daemon, start_simulator, synthetic_ota, wait_line,
};

/// `simulate` + `run` with `[proxy]` on a free loopback port.
pub struct ProxyRig {
    pub dir: tempfile::TempDir,
    pub simulator: Guard,
    pub sim_lines: mpsc::Receiver<String>,
    pub daemon: Guard,
    pub port: u16,
    pub pty: String,
}

impl ProxyRig {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        log_text(self.root())
    }

    /// Waits until the daemon's log holds `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(self.root().join("run.log")).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no `{needle}` in the daemon's log within {timeout:?}\n{}",
            self.log()
        );
    }
}

/// Starts the simulator with `sim_args` (`{root}` in one stands for the rig's folder), then the
/// daemon with `[proxy]` (plus `proxy_extra` lines) in front of it, and `images` in its image
/// folder; returns once the proxy listens.
pub fn start_rig(sim_args: &[&str], proxy_extra: &str, images: &[(&str, &[u8])]) -> ProxyRig {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("images")).unwrap();
    for (name, bytes) in images {
        std::fs::write(root.join("images").join(name), bytes).unwrap();
    }
    let sim_args: Vec<String> = sim_args
        .iter()
        .map(|a| a.replace("{root}", root.to_str().unwrap()))
        .collect();
    let sim_args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
    let (simulator, sim_lines, pty) = start_simulator(&sim_args, &root.join("sim.log"));
    let port = free_port();
    let config = minimal_config(&root, &pty);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[proxy]\nlisten = \"tcp://127.0.0.1:{port}\"\n{}",
        proxy_extra.replace("{root}", root.to_str().unwrap())
    ));
    std::fs::write(&config, text).unwrap();
    let daemon = start_daemon(&config, &root.join("notify.sock"), &root.join("run.log"));
    let rig = ProxyRig {
        dir,
        simulator,
        sim_lines,
        daemon,
        port,
        pty,
    };
    rig.wait_log("proxy listening on", Duration::from_secs(30));
    rig
}

pub fn bellows_info(bellows: &PathBuf, port: u16) -> std::process::Output {
    let mut command = Command::new(bellows);
    command.args(["-d", &format!("socket://127.0.0.1:{port}"), "info"]);
    crate::interop::run(command, Duration::from_secs(60))
}

/// Unmodified `bellows -d socket://127.0.0.1:PORT info` through the proxy finds the network
/// the stick holds, and the daemon behind the proxy sees the network come up.
#[test]
fn bellows_info_through_the_proxy() {
    let Some(bellows) = crate::interop::bellows() else {
        return;
    };
    for version in ["13", "14"] {
        let rig = start_rig(
            &["--devices", "1", "--ezsp-version", version],
            "link = \"{root}/ezsp\"\n",
            &[],
        );
        let output = bellows_info(&bellows, rig.port);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "v{version}: {stdout}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            rig.log()
        );
        for expected in [
            "JOINED_NETWORK",
            "panId=0x1A62",
            "extendedPanId=dd:dd:dd:dd:dd:dd:dd:dd",
            "Board name: simulated NCP",
        ] {
            assert!(
                stdout.contains(expected),
                "v{version}: no `{expected}` in\n{stdout}"
            );
        }
        rig.wait_log("network up through the proxy", Duration::from_secs(20));
        rig.wait_log(
            "upstream disconnected; the stick stays up",
            Duration::from_secs(20),
        );
        // A second `info` on the same proxy: upstream reconnects and resets the stick again.
        let again = bellows_info(&bellows, rig.port);
        assert!(again.status.success(), "{}", rig.log());
        // And through the pty `link`, as a host that opens a serial port does.
        let mut command = Command::new(&bellows);
        command.args(["-d", rig.root().join("ezsp").to_str().unwrap(), "info"]);
        let output = crate::interop::run(command, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("JOINED_NETWORK"),
            "v{version} over the pty: {stdout}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            rig.log()
        );
    }
}

/// The whole point of the proxy: unmodified zigpy (as ZHA runs it) starts through it, sees the
/// simulated device's attribute reports and reads its Basic cluster, while zigbee-otad upgrades
/// that same device byte-exact; zigpy never sees an OTA cluster frame.
#[test]
fn zigpy_keeps_its_device_while_zigbee_otad_upgrades_it() {
    let Some(bellows) = crate::interop::bellows() else {
        return;
    };
    let python = bellows.with_file_name("python");
    let image = synthetic_ota(0x1189, 0x0001, 2, 12_000);
    let rig = start_rig(
        &[
            "--device",
            "0x1189:0x0001:1,model=ProxyBulb,manufacturer_name=LEDVANCE",
            "--report-every",
            "2",
            "--image",
            "{root}/images/bulb.ota",
        ],
        "",
        &[("bulb.ota", &image)],
    );
    let stop = rig.root().join("stop");
    let mut zigpy = Command::new(&python);
    zigpy
        .arg(crate::interop::interop_script("zigpy_proxy.py"))
        .arg(rig.port.to_string())
        .arg("00:12:4b:00:00:00:00:01")
        .arg("0x1001")
        .arg(&stop);
    let zigpy = std::thread::spawn(move || crate::interop::run(zigpy, Duration::from_secs(240)));
    let line = wait_line(&rig.sim_lines, "1189:0001", Duration::from_secs(180));
    assert!(line.contains("Upgraded, verified"), "{line}\n{}", rig.log());
    std::fs::write(&stop, b"").unwrap();
    let output = zigpy.join().unwrap();
    let seen = crate::interop::script_json(&output);
    eprintln!("zigpy through the proxy saw: {seen}");
    assert_eq!(seen["ota_frames"], 0, "zigpy saw OTA frames: {seen}");
    assert!(seen["reports"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(seen["model"], "ProxyBulb", "{seen}");
    assert_eq!(seen["manufacturer"], "LEDVANCE", "{seen}");
    let log = std::fs::read_to_string(rig.root().join("run.log")).unwrap();
    assert!(
        log.contains("network up through the proxy"),
        "{}",
        rig.log()
    );
}

/// Unmodified zigbee-herdsman's `ember` adapter (as Zigbee2MQTT runs it with
/// `port: tcp://127.0.0.1:PORT`) starts through the proxy and resumes the stick's network;
/// zigbee-otad upgrades the device byte-exact meanwhile and after the adapter has gone.
#[test]
fn herdsman_ember_adapter_starts_through_the_proxy_over_tcp() {
    let Some(node_modules) = crate::common::herdsman_dir().map(|dir| dir.join("node_modules"))
    else {
        eprintln!(
            "SKIPPED: zigbee-herdsman not installed (set ZIGBEE_HERDSMAN_DIR to a folder whose \
             node_modules holds zigbee-herdsman 10.9.5; .ci/run installs it)"
        );
        return;
    };
    let image = synthetic_ota(0x1189, 0x0001, 2, 12_000);
    let rig = start_rig(
        &[
            "--device",
            "0x1189:0x0001:1",
            "--image",
            "{root}/images/bulb.ota",
        ],
        "",
        &[("bulb.ota", &image)],
    );
    let mut herdsman = Command::new("node");
    herdsman
        .env("NODE_PATH", &node_modules)
        .arg(crate::interop::interop_script("herdsman_start.js"))
        .arg(format!("tcp://127.0.0.1:{}", rig.port));
    let output = crate::interop::run(herdsman, Duration::from_secs(90));
    let started = crate::interop::script_json(&output);
    assert_eq!(started["start"], "resumed", "{started}\n{}", rig.log());
    assert_eq!(started["ieee"], "0x000d6ffffe000001", "{started}");
    assert_eq!(started["pan_id"], 0x1A62, "{started}");
    assert_eq!(started["ezsp_version"], 13, "{started}");
    let line = wait_line(&rig.sim_lines, "1189:0001", Duration::from_secs(180));
    assert!(line.contains("Upgraded, verified"), "{line}\n{}", rig.log());
    rig.wait_log(
        "upstream disconnected; the stick stays up",
        Duration::from_secs(10),
    );
}
