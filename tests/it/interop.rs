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

/// Runs `host` (given the pty path) against a new `simulate ARGS`. On a busy machine the pty
/// a host opens can still be locked by another test's process for a moment (the host then fails
/// at once with EAGAIN from flock); that attempt says so on stderr and runs again on a new
/// simulator, three times at most.
fn against_simulator(args: &[&str], host: impl Fn(&str) -> Command, deadline: Duration) -> Output {
    let mut attempt = 1;
    loop {
        let sim = simulate(args);
        let output = run(host(&sim.pty), deadline);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let locked = stderr.contains("Resource temporarily unavailable")
            || stderr.contains("Cannot lock port");
        if !locked || attempt == 3 {
            return output;
        }
        eprintln!(
            "{} was locked by another process; retrying on a new pty",
            sim.pty
        );
        attempt += 1;
    }
}

/// The bellows CLI from `.ci/run`'s venv, or `None` after saying SKIPPED.
pub(crate) fn bellows() -> Option<PathBuf> {
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

pub(crate) fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Runs `command` with a deadline; the output, or a panic naming what hung.
pub(crate) fn run(command: Command, deadline: Duration) -> Output {
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
pub(crate) fn run_or_kill(mut command: Command, deadline: Duration) -> Result<Output, Box<Output>> {
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
        let output = against_simulator(
            &["--devices", "1", "--ezsp-version", version],
            |pty| {
                let mut command = Command::new(&bellows);
                command.args(["-d", pty, "info"]);
                command
            },
            Duration::from_secs(60),
        );
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
pub(crate) fn script_json(output: &Output) -> serde_json::Value {
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
    let zigpy = |pty: &str| {
        let mut command = Command::new(&python);
        command.arg(&script).arg(pty);
        command
    };
    let held = script_json(&against_simulator(
        &["--devices", "2"],
        zigpy,
        Duration::from_secs(90),
    ));
    assert_eq!(held["ieee"], "00:0d:6f:ff:fe:00:00:01");
    assert_eq!(held["pan_id"], "0x1A62");
    assert_eq!(held["channel"], 11);
    assert_eq!(held["network_key"], "01030507090b0d0f00020406080a0c0d");
    assert_eq!(
        held["children"],
        serde_json::json!(["00:12:4b:00:00:00:00:01", "00:12:4b:00:00:00:00:02"])
    );

    // Forming on an empty stick, with the Security Manager (v14) and with the v8–12 key frames.
    for version in [14u64, 12, 8] {
        let formed = script_json(&against_simulator(
            &[
                "--devices",
                "1",
                "--fresh",
                "--ezsp-version",
                &version.to_string(),
            ],
            zigpy,
            Duration::from_secs(90),
        ));
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
        let herdsman = |pty: &str| {
            let mut command = Command::new("node");
            command
                .env("NODE_PATH", &node_modules)
                .arg(&script)
                .arg(pty);
            if form {
                command.arg("--form");
            }
            command
        };
        script_json(&against_simulator(
            &["--devices", "1", "--ezsp-version", version],
            herdsman,
            Duration::from_secs(90),
        ))
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

/// Sample request parameters for each frame the simulated stack answers, in `version`'s
/// layout: (bellows' name, frame id, parameters).
fn stack_requests(version: u8) -> Vec<(&'static str, u16, Vec<u8>)> {
    let eui: [u8; 8] = [0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00];
    let key = [0xAB; 16];
    let aps = [
        0x04, 0x01, 0x19, 0x00, 0x01, 0x01, 0x40, 0x01, 0x00, 0x00, 0x10,
    ];
    let mut context = vec![1, 0, 0];
    if version >= 13 {
        context.push(0);
    }
    context.extend_from_slice(&[0; 14]);
    let cat = |parts: &[&[u8]]| parts.concat();
    let mut requests = vec![
        ("getExtendedValue", 0x0003, vec![0, 1, 0, 0, 0]),
        ("getMfgToken", 0x000B, vec![1]),
        (
            "setConcentrator",
            0x0010,
            vec![1, 0xF9, 0xFF, 10, 0, 60, 0, 3, 1, 0],
        ),
        ("setManufacturerCode", 0x0015, vec![0x02, 0x10]),
        ("startScan", 0x001A, vec![0, 0, 0xF8, 0xFF, 0x07, 3]),
        ("getParentChildParameters", 0x0029, vec![]),
        ("sendReply", 0x0039, cat(&[&[0x34, 0x12], &aps, &[1, 0xAA]])),
        ("sendManyToOneRouteRequest", 0x0041, vec![0xF9, 0xFF, 0]),
        ("customFrame", 0x0047, vec![0]),
        ("getChildData", 0x004A, vec![0]),
        ("getChildData", 0x004A, vec![7]),
        ("setSourceRouteDiscoveryMode", 0x005A, vec![1]),
        ("getMulticastTableEntry", 0x0063, vec![0]),
        ("setMulticastTableEntry", 0x0064, vec![0, 0x0B, 0xF9, 1, 0]),
        ("readAndClearCounters", 0x0065, vec![]),
        ("getCurrentSecurityState", 0x0069, vec![]),
        ("clearTransientLinkKeys", 0x006B, vec![]),
        ("findKeyTableEntry", 0x0075, cat(&[&eui, &[1]])),
        ("eraseKeyTableEntry", 0x0076, vec![0]),
        ("setExtendedTimeout", 0x007E, cat(&[&eui, &[1]])),
        ("getExtendedTimeout", 0x007F, eui.to_vec()),
        (
            "replaceAddressTableEntry",
            0x0082,
            cat(&[&[0], &eui, &[0x34, 0x12, 0]]),
        ),
        ("setRadioPower", 0x0099, vec![5]),
        ("removeDevice", 0x00A8, cat(&[&[0x34, 0x12], &eui, &eui])),
        ("setSourceRoute", 0x00AE, vec![0x34, 0x12, 1, 0x78, 0x56]),
        ("clearKeyTable", 0x00B1, vec![]),
        ("setLogicalAndRadioChannel", 0x00B9, vec![15]),
        ("getSourceRouteTableFilledSize", 0x00C2, vec![]),
        ("gpSinkTableClearAll", 0x00E2, vec![]),
        ("readCounters", 0x00F1, vec![]),
        (
            "leaveNetwork",
            0x0020,
            if version >= 14 { vec![0] } else { vec![] },
        ),
    ];
    if version >= 14 {
        requests.push(("getAddressTableInfo", 0x005E, vec![0]));
        let multicast = cat(&[&aps, &[7, 0xFD, 0xFF, 0, 0, 0, 0x42, 0, 1, 0xAA]]);
        requests.push(("sendMulticast", 0x0038, multicast));
    } else {
        requests.push(("getAddressTableRemoteEui64", 0x005E, vec![0]));
        requests.push((
            "sendMulticast",
            0x0038,
            cat(&[&aps, &[7, 3, 0x42, 1, 0xAA]]),
        ));
    }
    if version <= 13 {
        requests.push(("getAddressTableRemoteNodeId", 0x005F, vec![0]));
    } else if version >= 17 {
        requests.push(("gpClearProxyTable", 0x005F, vec![]));
    }
    if version >= 9 {
        requests.push(("setRadioIeee802154CcaMode", 0x0095, vec![0]));
        requests.push(("getTokenCount", 0x0100, vec![]));
        requests.push(("getTokenInfo", 0x0101, vec![0]));
        requests.push(("getTokenData", 0x0102, vec![1, 0, 0, 0, 0, 0, 0, 0]));
        requests.push((
            "setTokenData",
            0x0103,
            vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9],
        ));
    }
    if version <= 12 {
        requests.push(("getKey", 0x006A, vec![3]));
        requests.push(("getKey", 0x006A, vec![1]));
        requests.push(("getKeyTableEntry", 0x0071, vec![0]));
        requests.push(("addOrUpdateKeyTableEntry", 0x0066, cat(&[&eui, &[1], &key])));
        requests.push(("getKeyTableEntry", 0x0071, vec![0]));
        requests.push(("becomeTrustCenter", 0x0077, key.to_vec()));
    } else {
        requests.push(("tokenFactoryReset", 0x0077, vec![0, 0]));
        requests.push(("getNetworkKeyInfo", 0x0116, vec![]));
    }
    if version >= 12 {
        requests.push(("exportKey", 0x0114, context.clone()));
        requests.push(("importKey", 0x0115, cat(&[&context, &key])));
        requests.push(("getApsKeyInfo", 0x010C, context.clone()));
        requests.push(("importLinkKey", 0x010E, cat(&[&[0], &eui, &key])));
        requests.push(("exportLinkKeyByIndex", 0x010F, vec![0]));
        requests.push(("exportLinkKeyByIndex", 0x010F, vec![5]));
        requests.push(("importTransientKey", 0x0111, cat(&[&eui, &key, &[0]])));
    }
    requests
}

/// Every answer of the simulated stack tables, at every version bellows has, is read by
/// bellows 1.2.1's own response schema for that frame and version, byte for byte.
#[test]
fn stack_answers_are_read_by_bellows_at_every_version() {
    use zigbee_otad::ezsp::EzspVersion;
    use zigbee_otad::ezsp::frame::FrameId;
    use zigbee_otad::sim::stack::{StackTables, StackView};
    let Some(bellows) = bellows() else { return };
    let mut records = Vec::new();
    for version in [8u8, 9, 10, 11, 12, 13, 14, 16, 17] {
        let children = [(0x1234, [1, 2, 3, 4, 5, 6, 7, 8])];
        let view = StackView {
            version: EzspVersion::new(version).unwrap(),
            network_up: true,
            eui64: [8, 7, 6, 5, 4, 3, 2, 1],
            children: &children,
            endpoints: &[1],
        };
        let mut tables = StackTables::new([0x5A; 16]);
        for (name, frame_id, parameters) in stack_requests(version) {
            let answer = tables
                .answer(&view, FrameId(frame_id), &parameters)
                .unwrap_or_else(|| panic!("v{version} {name}: no answer"));
            records.push(serde_json::json!({
                "version": version,
                "frame_id": frame_id,
                "name": name,
                "parameters": answer.parameters.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            }));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("answers.json");
    std::fs::write(&path, serde_json::to_string(&records).unwrap()).unwrap();
    let mut command = Command::new(bellows.with_file_name("python"));
    command
        .arg(interop_script("check_stack_answers.py"))
        .arg(&path);
    let output = run(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
