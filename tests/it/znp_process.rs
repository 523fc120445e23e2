//! `zigbee-otad run` with `protocol = "znp"` against `zigbee-otad simulate --protocol znp`: two
//! real processes on a real pty. Devices upgrade byte-exact (the simulator checks every byte
//! against `--image`) and `status --json` says so; with lost and damaged MT frames, and with the
//! stick resetting itself mid-transfer, every upgrade still ends byte-exact.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{
    log_text, notify_listener, start_daemon, start_simulator, status_json, synthetic_ota,
    wait_exit, wait_notify,
};

/// Runs one upgrade of two devices with `faults` on the simulator; returns the final status.
fn upgrade_over_znp(root: &Path, sizes: [usize; 2], faults: &[&str]) -> serde_json::Value {
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let first = synthetic_ota(0x1189, 0x00CD, 2, sizes[0]);
    let second = synthetic_ota(0x100B, 0x0119, 2, sizes[1]);
    std::fs::write(images.join("a.ota"), &first).unwrap();
    std::fs::write(images.join("b.ota"), &second).unwrap();
    let a = images.join("a.ota");
    let b = images.join("b.ota");
    let mut args = vec![
        "--protocol",
        "znp",
        "--device",
        "0x1189:0x00CD:1",
        "--device",
        "0x100B:0x0119:1",
        "--image",
        a.to_str().unwrap(),
        "--image",
        b.to_str().unwrap(),
    ];
    args.extend_from_slice(faults);
    let (_simulator, lines, pty) = start_simulator(&args, &root.join("sim.log"));
    let socket = root.join("status.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nprotocol = \"znp\"\nport = \"{pty}\"\nflow_control = \"none\"\n\
             [catalog]\ncache_dir = \"{root}/cache\"\n\
             [[catalog.source]]\nkind = \"directory\"\npath = \"{images}\"\n\
             [status]\nsocket = \"{socket}\"\n",
            root = root.display(),
            images = images.display(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    let notify_path = root.join("notify.sock");
    let notify = notify_listener(&notify_path);
    let mut daemon = start_daemon(&config, &notify_path, &root.join("run.log"));
    wait_notify(&notify, "READY=1", Duration::from_secs(30));

    let mut verified = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while verified.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("Upgraded, verified") => verified.push(line),
            Ok(line) => assert!(!line.contains("nvalid"), "{line}\nlog:\n{}", log_text(root)),
            Err(_) => panic!("only {verified:?} within 120 s; log:\n{}", log_text(root)),
        }
    }
    let status = (0..100)
        .find_map(|_| {
            let s = status_json(&socket)?;
            let finished = s["transfers"]
                .as_array()?
                .iter()
                .filter(|t| t["state"] == "finished")
                .count();
            if finished == 2 {
                Some(s)
            } else {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        })
        .expect("status never showed both transfers finished");
    crate::daemon::signal(&daemon.0, "TERM");
    assert_eq!(wait_exit(&mut daemon.0, Duration::from_secs(15)), Some(0));
    status
}

#[test]
fn run_with_znp_upgrades_devices_byte_exact_and_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let status = upgrade_over_znp(dir.path(), [12_000, 6_000], &[]);
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    assert_eq!(status["coordinator"]["channel"], 15, "{status}");
    for transfer in status["transfers"].as_array().unwrap() {
        assert_eq!(transfer["state"], "finished", "{status}");
    }
    // The network key generated for forming is kept, as for EZSP (the stick held its own
    // network, which was resumed rather than replaced).
    assert!(dir.path().join("state/network.json").exists());
}

#[test]
fn znp_upgrades_survive_lost_and_damaged_frames_and_a_stick_reset() {
    let dir = tempfile::tempdir().unwrap();
    let status = upgrade_over_znp(
        dir.path(),
        [4_000, 3_000],
        &[
            "--loss",
            "0.01",
            "--corrupt",
            "0.01",
            "--reset-after",
            "40",
            "--seed",
            "7",
        ],
    );
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    let sim = std::fs::read_to_string(dir.path().join("sim.log")).unwrap();
    assert!(
        sim.contains("NCP reset (injected)"),
        "no reset was injected:\n{sim}"
    );
    let run = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(
        run.contains("the stick reset by itself"),
        "the daemon did not see the reset:\n{}",
        log_text(dir.path())
    );
}
