//! Conformance of `zigbee-otad simulate --protocol znp` with the two reference ZNP hosts, both
//! unmodified and installed by `.ci/run`: zigpy-znp's `network_backup` tool connects, skips the
//! bootloader, detects Z-Stack 3.30 and reads the network out of NV as it does from a real
//! CC2652; zigpy + zigpy-znp's `ControllerApplication` starts as ZHA starts it
//! (`tests/interop/zigpy_znp_start.py`); zigbee-herdsman's `zstack` adapter starts
//! (`tests/herdsman_zstack_start.js`).
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::Command;

use crate::daemon::start_simulator;

/// The venv python with zigpy-znp: `$ZIGPY_ZNP_PYTHON`, else the scratch venv `.ci/run` makes.
fn zigpy_znp_python() -> Option<PathBuf> {
    let path = std::env::var_os("ZIGPY_ZNP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/zigbee-otad-znp-venv/bin/python"));
    let works = Command::new(&path)
        .args(["-c", "import zigpy_znp.tools.network_backup"])
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: zigpy-znp is not installed at {} (set ZIGPY_ZNP_PYTHON; .ci/run installs it)",
            path.display()
        );
        None
    }
}

/// Starts `simulate` with `args` and runs `tool` on its pty. A host driver of another test that
/// is still reconnecting may grab a reused `/dev/pts/N` number and lock it first: then both are
/// started again on a new pty (at most three times).
fn run_against_simulator(
    args: &[&str],
    log: &std::path::Path,
    tool: impl Fn(&str) -> std::process::Output,
) -> (crate::daemon::Guard, std::process::Output) {
    let mut attempt = 0;
    loop {
        let (simulator, _lines, pty) = start_simulator(args, log);
        let out = tool(&pty);
        let stderr = String::from_utf8_lossy(&out.stderr);
        attempt += 1;
        if attempt < 3 && stderr.contains("locked by another") {
            eprintln!("{pty} was locked by another process; trying a new pty");
            continue;
        }
        return (simulator, out);
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otad-znp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn zigpy_znp_network_backup_reads_the_simulated_network() {
    let Some(python) = zigpy_znp_python() else {
        return;
    };
    let dir = scratch("backup");
    let backup = dir.join("backup.json");
    let (_sim, out) = run_against_simulator(
        &["--protocol", "znp", "--devices", "1"],
        &dir.join("sim.log"),
        |pty| {
            Command::new(&python)
                .args(["-m", "zigpy_znp.tools.network_backup", pty, "-o"])
                .arg(&backup)
                .output()
                .unwrap()
        },
    );
    assert!(
        out.status.success(),
        "network_backup failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    // The simulator's default network (sim::ZnpNetwork::default) and its one device.
    assert_eq!(json["pan_id"], "1a62", "{json}");
    assert_eq!(json["extended_pan_id"], "dddddddddddddddd", "{json}");
    assert_eq!(json["channel"], 15, "{json}");
    assert_eq!(json["coordinator_ieee"], "00124b001cdd0001", "{json}");
    assert_eq!(
        json["network_key"]["key"], "01030507090b0d0f11131517191b1d1f",
        "{json}"
    );
    assert_eq!(json["devices"][0]["nwk_address"], "1001", "{json}");
    assert_eq!(json["metadata"]["internal"]["zstack"]["version"], 3.3);

    // A factory-new stick holds no network: zigpy-znp must say so rather than invent one.
    let (_fresh, out) = run_against_simulator(
        &["--protocol", "znp", "--fresh"],
        &dir.join("fresh.log"),
        |pty| {
            Command::new(&python)
                .args(["-m", "zigpy_znp.tools.network_backup", pty, "-o"])
                .arg(dir.join("none.json"))
                .output()
                .unwrap()
        },
    );
    assert!(
        !out.status.success(),
        "a fresh stick must have nothing to back up"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NetworkNotFormed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The herdsman checkout `.ci/run` installs (`$ZIGBEE_HERDSMAN_DIR`), if node can load it.
fn herdsman_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ZIGBEE_HERDSMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/zigbee-otad-ci-herdsman"));
    let package = dir.join("node_modules/zigbee-herdsman/package.json");
    let node = Command::new("node").arg("--version").output();
    if package.is_file() && node.is_ok_and(|out| out.status.success()) {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: zigbee-herdsman is not installed under {} or node is missing (set ZIGBEE_HERDSMAN_DIR; .ci/run installs it)",
            dir.display()
        );
        None
    }
}

/// Unmodified zigbee-herdsman 10.9.5: its `zstack` adapter's `start()` resolves against the
/// simulator (regular start-up: the configured network matches what the stick holds), and it
/// reads the coordinator's IEEE address and the network parameters.
#[test]
fn zigbee_herdsman_zstack_adapter_starts_against_the_simulator() {
    let Some(herdsman) = herdsman_dir() else {
        return;
    };
    let dir = scratch("herdsman");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/herdsman_zstack_start.js");
    let (_sim, out) = run_against_simulator(
        &["--protocol", "znp", "--devices", "1"],
        &dir.join("sim.log"),
        |pty| {
            Command::new("node")
                .arg(&script)
                .arg(pty)
                .arg(&herdsman)
                .arg(dir.join("herdsman-backup.json"))
                .output()
                .unwrap()
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "herdsman start() failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // herdsman logs to stdout too: the script's report is the last JSON line.
    let report = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no report from the script:\n{stdout}"));
    let json: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(json["result"], "resumed", "{json}");
    assert_eq!(json["ieee"], "0x00124b001cdd0001", "{json}");
    assert_eq!(json["network"]["panID"], 0x1A62, "{json}");
    assert_eq!(json["network"]["channel"], 15, "{json}");
    assert_eq!(
        json["network"]["extendedPanID"], "0xdddddddddddddddd",
        "{json}"
    );
    assert_eq!(json["version"], "ZStack3x0", "{json}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Unmodified zigpy + zigpy-znp start as Home Assistant's ZHA starts them
/// (`ControllerApplication.new(auto_form=False)`, `tests/interop/zigpy_znp_start.py`): zigpy-znp
/// reads and writes its stack settings in NV, resets, commissions, registers its endpoints, and
/// zigpy then reads the coordinator's own node, active-endpoint and simple descriptors through
/// `AF.DataRequestExt` to 0x0000, answered as `ZDO.MsgCbIncoming` (the benchmark against
/// zigpy-znp needs exactly this start-up).
#[test]
fn zigpy_znp_controller_application_starts_against_the_simulator() {
    let Some(python) = zigpy_znp_python() else {
        return;
    };
    let dir = scratch("zigpy-start");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/zigpy_znp_start.py");
    let (_sim, out) = run_against_simulator(
        &["--protocol", "znp", "--devices", "1"],
        &dir.join("sim.log"),
        |pty| {
            Command::new(&python)
                .arg(&script)
                .arg(pty)
                .arg(dir.join("zigbee.db"))
                .output()
                .unwrap()
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "zigpy-znp did not start:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(started["ieee"], "00:12:4b:00:1c:dd:00:01", "{started}");
    assert_eq!(started["nwk"], 0, "{started}");
    assert_eq!(started["channel"], 15, "{started}");
    assert_eq!(started["pan_id"], 0x1A62, "{started}");
    assert_eq!(started["extended_pan_id"], "dd:dd:dd:dd:dd:dd:dd:dd");
    assert_eq!(started["coordinator_initialized"], true, "{started}");
    // zigpy-znp's endpoint 1 (Home Automation), read back from the stick's own ZDO.
    assert_eq!(started["endpoints"]["1"]["profile"], 0x0104, "{started}");
    let inputs = started["endpoints"]["1"]["in"].as_array().unwrap();
    assert!(inputs.contains(&serde_json::json!(0x0019)), "{started}");
    let _ = std::fs::remove_dir_all(&dir);
}
