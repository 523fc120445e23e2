//! Conformance of `zigbee-otad simulate --protocol znp` with unmodified zigpy-znp (the reference
//! ZNP host, installed by `.ci/run` into a scratch venv): its `network_backup` tool connects,
//! skips the bootloader, detects Z-Stack 3.30 and reads the network out of NV exactly as it
//! does from a real CC2652.
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
    let (_sim, _lines, pty) = start_simulator(
        &["--protocol", "znp", "--devices", "1"],
        &dir.join("sim.log"),
    );
    let backup = dir.join("backup.json");
    let out = Command::new(&python)
        .args(["-m", "zigpy_znp.tools.network_backup", &pty, "-o"])
        .arg(&backup)
        .output()
        .unwrap();
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
    let (_fresh, _lines, pty) =
        start_simulator(&["--protocol", "znp", "--fresh"], &dir.join("fresh.log"));
    let out = Command::new(&python)
        .args(["-m", "zigpy_znp.tools.network_backup", &pty, "-o"])
        .arg(dir.join("none.json"))
        .output()
        .unwrap();
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
