//! Unmodified reference hosts against the `zigbee-otad simulate` binary, as a new user runs
//! them: the bellows CLI (`bellows -d PTY info`), zigpy + bellows start-up, form and backup
//! (`tests/interop/zigpy_start.py`), and zigbee-herdsman's `ember` adapter
//! (`tests/interop/herdsman_start.js`). The tools come from `.ci/run`: `$BELLOWS` (bellows
//! 1.2.1 and zigpy 2.4.0 in a venv; the venv's python runs the zigpy script) and
//! `$ZIGBEE_HERDSMAN_DIR` (zigbee-herdsman 10.9.5 from npm in its `node_modules`). A test whose tool is missing
//! says SKIPPED on stderr and passes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_zigbee-otad");

/// A running `zigbee-otad simulate`, killed when dropped.
struct Simulator {
    child: Child,
    pty: String,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `zigbee-otad simulate ARGS` and reads the pty path from its first line.
fn simulate(args: &[&str]) -> Simulator {
    let mut child = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining so the simulator never blocks on a full pipe.
        for _ in lines {}
    });
    let pty = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Simulator { child, pty }
}

/// The bellows CLI from `.ci/run`'s venv, or `None` after saying SKIPPED.
fn bellows() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("BELLOWS").unwrap_or_else(|_| "/tmp/zigbee-otad-ci-venv/bin/bellows".into()),
    );
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: bellows CLI not found at {} (set BELLOWS; .ci/run installs it)",
            path.display()
        );
        None
    }
}

fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Runs `command` with a deadline; the output, or a panic naming what hung.
fn run(command: Command, deadline: Duration) -> Output {
    let what = format!("{command:?}");
    run_or_kill(command, deadline).unwrap_or_else(|output| {
        panic!(
            "{what} did not finish within {deadline:?}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs `command` until it exits (`Ok`) or until `deadline`, when it is killed (`Err`, with
/// what it printed).
#[allow(clippy::disallowed_methods)] // A real-time deadline on a real process.
fn run_or_kill(mut command: Command, deadline: Duration) -> Result<Output, Box<Output>> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            return Err(Box::new(child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `bellows -d PTY info` against plain `simulate --devices 1 --ezsp-version V` finds the
/// network the stick holds (no test builds one in-process) at every version bellows has.
#[test]
fn bellows_info_finds_the_held_network_at_every_version() {
    let Some(bellows) = bellows() else { return };
    for version in ["8", "9", "10", "11", "12", "13", "14", "16", "17"] {
        let sim = simulate(&["--devices", "1", "--ezsp-version", version]);
        let mut command = Command::new(&bellows);
        command.args(["-d", &sim.pty, "info"]);
        let output = run(command, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "v{version}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for expected in [
            "JOINED_NETWORK",
            "panId=0x1A62",
            "extendedPanId=dd:dd:dd:dd:dd:dd:dd:dd",
            "COORDINATOR",
            "Board name: simulated NCP",
        ] {
            assert!(
                stdout.contains(expected),
                "v{version}: no `{expected}` in\n{stdout}"
            );
        }
    }
}

/// `simulate --fresh` is an empty stick: bellows `info` finds no network (and, as with a
/// real empty stick, bellows 1.2.1 prints the failure and then never exits, so it is killed).
#[test]
fn bellows_info_on_a_fresh_stick_finds_no_network() {
    let Some(bellows) = bellows() else { return };
    let sim = simulate(&["--devices", "1", "--fresh"]);
    let mut command = Command::new(&bellows);
    command.args(["-d", &sim.pty, "info"]);
    let output = run_or_kill(command, Duration::from_secs(15)).unwrap_or_else(|output| *output);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{all}");
    assert!(all.contains("Failure initializing network"), "{all}");
    assert!(all.contains("NOT_JOINED"), "{all}");
    assert!(!all.contains("JOINED_NETWORK"), "{all}");
}

/// Parses the JSON line a reference-host script printed.
fn script_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

/// zigpy + bellows as ZHA runs them: start-up, a backup with devices, permit joining,
/// shutdown. On the held network it learns the stick's key and both joined devices; on a
/// `--fresh` stick it forms a network (energy scan, token factory reset, keys) and backs that
/// up.
#[test]
fn zigpy_starts_backs_up_and_forms() {
    let Some(bellows) = bellows() else { return };
    let python = bellows.with_file_name("python");
    let script = interop_script("zigpy_start.py");
    let sim = simulate(&["--devices", "2"]);
    let mut command = Command::new(&python);
    command.arg(&script).arg(&sim.pty);
    let held = script_json(&run(command, Duration::from_secs(90)));
    assert_eq!(held["ieee"], "00:0d:6f:ff:fe:00:00:01");
    assert_eq!(held["pan_id"], "0x1A62");
    assert_eq!(held["channel"], 11);
    assert_eq!(held["network_key"], "01030507090b0d0f00020406080a0c0d");
    assert_eq!(
        held["children"],
        serde_json::json!(["00:12:4b:00:00:00:00:01", "00:12:4b:00:00:00:00:02"])
    );
    drop(sim);

    // Forming on an empty stick, with the Security Manager (v14) and with the v8–12 key frames.
    for version in [14u64, 12, 8] {
        let sim = simulate(&[
            "--devices",
            "1",
            "--fresh",
            "--ezsp-version",
            &version.to_string(),
        ]);
        let mut command = Command::new(&python);
        command.arg(&script).arg(&sim.pty);
        let formed = script_json(&run(command, Duration::from_secs(90)));
        assert_eq!(formed["ezsp_version"], version);
        assert_ne!(formed["pan_id"], "0x1A62", "v{version}: {formed}");
        assert_ne!(
            formed["network_key"], held["network_key"],
            "v{version}: {formed}"
        );
    }
}

/// zigbee-herdsman's `ember` adapter (Zigbee2MQTT) `start()` resolves at v13, v14 and v17 and
/// reads the coordinator's IEEE address and the network parameters: with Zigbee2MQTT's
/// default network options it resumes the held network; with other options it leaves it and
/// forms its own.
#[test]
fn herdsman_ember_adapter_starts_and_reads_the_network() {
    let Some(node_modules) = crate::common::herdsman_dir().map(|dir| dir.join("node_modules"))
    else {
        eprintln!(
            "SKIPPED: zigbee-herdsman not installed (set ZIGBEE_HERDSMAN_DIR to a folder whose \
             node_modules holds zigbee-herdsman 10.9.5; .ci/run installs it)"
        );
        return;
    };
    let script = interop_script("herdsman_start.js");
    let start = |version: &str, form: bool| {
        let sim = simulate(&["--devices", "1", "--ezsp-version", version]);
        let mut command = Command::new("node");
        command
            .env("NODE_PATH", &node_modules)
            .arg(&script)
            .arg(&sim.pty);
        if form {
            command.arg("--form");
        }
        script_json(&run(command, Duration::from_secs(90)))
    };
    for version in [13u64, 14, 17] {
        let resumed = start(&version.to_string(), false);
        assert_eq!(resumed["start"], "resumed", "v{version}: {resumed}");
        assert_eq!(resumed["ezsp_version"], version);
        assert_eq!(resumed["ieee"], "0x000d6ffffe000001");
        assert_eq!(resumed["pan_id"], 0x1A62);
        assert_eq!(resumed["extended_pan_id"], "0xdddddddddddddddd");
        assert_eq!(resumed["channel"], 11);
        assert_eq!(resumed["network_key"], "01030507090b0d0f00020406080a0c0d");
    }
    let formed = start("14", true);
    assert_eq!(formed["start"], "reset", "{formed}");
    assert_eq!(formed["pan_id"], 0x1234);
    assert_eq!(formed["channel"], 15);
    assert_eq!(formed["network_key"], "09090909090909090909090909090909");
}
