//! The installer's commands as a user types them: `zigbee-otad run` against `zigbee-otad
//! simulate` (two real processes on a pty), and `approve`, `apply`, `cancel`, `hold`,
//! `release` and `history` run as separate processes through the status socket — with a
//! restart, a SIGHUP and a `kill -9` in between.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::daemon::{
    BIN, Guard, log_text, minimal_config, notify_listener, signal, start_daemon, start_simulator,
    status_json, synthetic_ota, wait_exit, wait_line, wait_notify,
};

/// Runs `zigbee-otad ARGS --socket SOCKET`.
fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--socket", socket.to_str().unwrap()])
        .output()
        .unwrap()
}

fn cli_json(socket: &Path, args: &[&str]) -> (bool, serde_json::Value) {
    let out = cli(socket, args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

/// Polls `status --json` until `check` finds what it wants in it.
fn wait_status(
    socket: &Path,
    root: &Path,
    what: &str,
    timeout: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Some(status) = status_json(socket) {
            if check(&status) {
                return status;
            }
            last = status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: not seen within {timeout:?}; last status {last}\n{}",
        log_text(root)
    );
}

fn transfer_state(status: &serde_json::Value) -> Option<String> {
    status["transfers"]
        .as_array()?
        .first()?
        .get("state")?
        .as_str()
        .map(str::to_owned)
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    notify: PathBuf,
    messages: mpsc::Receiver<String>,
    lines: mpsc::Receiver<String>,
    _simulator: Guard,
    image: Vec<u8>,
}

/// One simulated device (0x1189:1, version 1) and an image for it (version 2, `len` bytes),
/// with `extra` appended to a minimal config.
fn setup(len: usize, radio_delay_ms: &str, extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let image = synthetic_ota(0x1189, 0x0001, 2, len);
    let image_path = root.join("images/fw.ota");
    std::fs::write(&image_path, &image).unwrap();
    let (simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:1:1",
            "--image",
            image_path.to_str().unwrap(),
            "--radio-delay-ms",
            radio_delay_ms,
            "--query-interval",
            "1",
        ],
        &root.join("sim.log"),
    );
    let config = minimal_config(&root, &pty);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    Setup {
        socket: root.join("status.sock"),
        _dir: dir,
        root,
        config,
        notify,
        messages,
        lines,
        _simulator: simulator,
        image,
    }
}

impl Setup {
    fn start(&self, log: &str) -> Guard {
        let daemon = start_daemon(&self.config, &self.notify, &self.root.join(log));
        wait_notify(&self.messages, "READY=1", Duration::from_secs(30));
        daemon
    }

    /// Waits until the device's transfer is in `state`.
    fn wait_state(&self, state: &str, seconds: u64) -> serde_json::Value {
        wait_status(
            &self.socket,
            &self.root,
            state,
            Duration::from_secs(seconds),
            |st| transfer_state(st).as_deref() == Some(state),
        )
    }

    /// The simulated device's IEEE address, once it has asked.
    fn device(&self) -> String {
        let status = wait_status(
            &self.socket,
            &self.root,
            "the device asks",
            Duration::from_secs(20),
            |s| s["devices"].as_array().is_some_and(|d| !d.is_empty()),
        );
        status["devices"][0]["ieee"].as_str().unwrap().to_owned()
    }
}

#[test]
fn approve_mode_serves_nothing_before_approve_then_upgrades_byte_exact() {
    let s = setup(6_000, "2", "[policy]\ninstall = \"approve\"\n");
    let _daemon = s.start("run.log");
    let ieee = s.device();
    let status = wait_status(
        &s.socket,
        &s.root,
        "the image shown as available, not approved",
        Duration::from_secs(20),
        |st| st["devices"][0]["available_version"] == 2,
    );
    assert_eq!(status["devices"][0]["approved"], false, "{status}");
    // Several queries (one a second) and not one block: no transfer, nothing served.
    std::thread::sleep(Duration::from_secs(3));
    let status = status_json(&s.socket).unwrap();
    assert_eq!(status["transfers"], serde_json::json!([]), "{status}");
    assert!(
        s.lines.try_iter().next().is_none(),
        "the device ended an upgrade"
    );
    let log = std::fs::read_to_string(s.root.join("run.log")).unwrap();
    assert!(!log.contains("transfer started"), "a block was served");

    let text = cli(&s.socket, &["status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("awaiting approval"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let (ok, answer) = cli_json(&s.socket, &["approve", "00:00:00:00:00:00:00:99", "--json"]);
    assert!(
        !ok && answer["error"].as_str().unwrap().contains("unknown device"),
        "{answer}"
    );
    let (ok, answer) = cli_json(&s.socket, &["approve", &ieee, "--json"]);
    assert!(ok, "{answer}");
    assert_eq!(answer["data"]["approved"][0]["version"], 2, "{answer}");

    let line = wait_line(
        &s.lines,
        "0x00000001 -> 0x00000002",
        Duration::from_secs(60),
    );
    // The simulator compares the received file with the image byte for byte (`--image`).
    assert!(line.contains("Upgraded, verified"), "{line}");
    assert!(line.contains(&format!("{} bytes", s.image.len())), "{line}");
}

#[test]
fn a_waiting_device_survives_a_restart_is_applied_and_history_survives_kill_9() {
    let s = setup(4_000, "2", "");
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text = text.replace("[status]", "[server]\nupgrade_time = \"wait\"\n[status]");
    std::fs::write(&s.config, text).unwrap();
    let mut daemon = s.start("run.log");
    let ieee = s.device();
    s.wait_state("downloaded", 60);
    // Applying a device that has nothing downloaded is a clear error.
    let (ok, answer) = cli_json(&s.socket, &["apply", "00:00:00:00:00:00:00:99", "--json"]);
    assert!(
        !ok && answer["error"].as_str().unwrap().contains("unknown device"),
        "{answer}"
    );

    // A restart while the device waits: it is still shown waiting, and `apply` releases it.
    signal(&daemon.0, "TERM");
    assert_eq!(wait_exit(&mut daemon.0, Duration::from_secs(15)), Some(0));
    let out = cli(&s.socket, &["apply", &ieee]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is zigbee-otad running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut daemon = s.start("run2.log");
    let status = s.wait_state("downloaded", 10);
    assert_eq!(status["transfers"][0]["ieee"], ieee.as_str(), "{status}");
    let (ok, answer) = cli_json(&s.socket, &["apply", &ieee, "--json"]);
    assert!(ok, "{answer}");
    assert_eq!(answer["data"]["applied"][0]["version"], 2, "{answer}");
    s.wait_state("finished", 10);
    let line = wait_line(
        &s.lines,
        "0x00000001 -> 0x00000002",
        Duration::from_secs(30),
    );
    assert!(line.contains("Upgraded, verified"), "{line}");

    // The history, from the daemon: the download, then the upgrade command.
    let history = |expect: &str| {
        let out = cli(
            &s.socket,
            &["history", "--json", "--config", s.config.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{expect}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let outcomes: Vec<String> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap().to_owned())
            .collect();
        (records, outcomes)
    };
    let (records, outcomes) = history("running");
    assert_eq!(outcomes, vec!["downloaded", "finished"], "{records}");
    let first = &records[0];
    assert_eq!(first["ieee"], ieee.as_str());
    assert_eq!(first["from_version"], 1);
    assert_eq!(first["to_version"], 2);
    assert_eq!(first["bytes"], s.image.len(), "{records}");
    assert_eq!(first["image_size"], s.image.len(), "{records}");

    // kill -9: nothing is lost or corrupted, and `history` reads the file without the daemon.
    signal(&daemon.0, "KILL");
    wait_exit(&mut daemon.0, Duration::from_secs(10));
    let (_, after_kill) = history("killed");
    assert_eq!(after_kill, outcomes);
    let out = cli(
        &s.socket,
        &[
            "history",
            &ieee,
            "--since",
            "2000-01-01T00:00:00Z",
            "--config",
            s.config.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("finished") && text.contains(&ieee), "{text}");
}

/// `HH:MM` of the UTC time `offset` seconds from now (the daemon runs with TZ=UTC).
fn utc_clock(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = (now + offset).rem_euclid(86_400);
    format!("{:02}:{:02}", t / 3600, t % 3600 / 60)
}

#[test]
fn an_apply_window_elsewhere_keeps_a_device_waiting_and_one_around_now_releases_it() {
    let elsewhere = format!("{}-{}", utc_clock(3 * 3600), utc_clock(4 * 3600));
    let around_now = format!("{}-{}", utc_clock(-3600), utc_clock(3600));
    let s = setup(4_000, "2", "");
    let text = std::fs::read_to_string(&s.config).unwrap();
    let with_window = |w: &str| {
        text.replace(
            "[status]",
            &format!("[server]\napply_window = \"{w}\"\n[status]"),
        )
    };
    std::fs::write(&s.config, with_window(&elsewhere)).unwrap();
    let daemon = s.start("run.log");
    s.wait_state("downloaded", 60);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        transfer_state(&status_json(&s.socket).unwrap()).as_deref(),
        Some("downloaded")
    );
    assert!(
        s.lines.try_iter().next().is_none(),
        "applied outside its window"
    );

    // The window moved around the current time (SIGHUP): the waiting device is released.
    std::fs::write(&s.config, with_window(&around_now)).unwrap();
    signal(&daemon.0, "HUP");
    let line = wait_line(
        &s.lines,
        "0x00000001 -> 0x00000002",
        Duration::from_secs(30),
    );
    assert!(line.contains("Upgraded, verified"), "{line}");
    s.wait_state("finished", 5);
}

#[test]
fn cancel_mid_transfer_then_hold_and_release() {
    // 60 kB at 50-byte blocks with a 20 ms radio each way: a minute, plenty to cancel in.
    let s = setup(60_000, "20", "");
    let _daemon = s.start("run.log");
    let ieee = s.device();
    wait_status(
        &s.socket,
        &s.root,
        "downloading",
        Duration::from_secs(30),
        |st| {
            transfer_state(st).as_deref() == Some("downloading")
                && st["transfers"][0]["offset"].as_u64().unwrap_or(0) > 1_000
        },
    );
    let (ok, answer) = cli_json(&s.socket, &["cancel", &ieee, "--json"]);
    assert!(ok, "{answer}");
    assert_eq!(answer["data"]["cancelled"]["version"], 2, "{answer}");
    let line = wait_line(
        &s.lines,
        "0x00000001 -> 0x00000002",
        Duration::from_secs(20),
    );
    assert!(
        line.contains("Aborted"),
        "the device was not told ABORT: {line}"
    );
    let status = s.wait_state("cancelled", 10);
    let offset = status["transfers"][0]["offset"].as_u64().unwrap();
    // The device asks again every second; nothing more is served.
    std::thread::sleep(Duration::from_secs(3));
    let status = status_json(&s.socket).unwrap();
    assert_eq!(
        transfer_state(&status).as_deref(),
        Some("cancelled"),
        "{status}"
    );
    assert_eq!(status["transfers"][0]["offset"].as_u64().unwrap(), offset);
    assert!(
        status["devices"][0]["withheld"]
            .as_str()
            .unwrap_or("")
            .contains("cancelled"),
        "{status}"
    );

    // A hold keeps it at its version even once approved again; release lets it upgrade.
    let (ok, answer) = cli_json(&s.socket, &["hold", &ieee, "--json"]);
    assert!(ok, "{answer}");
    let (ok, _) = cli_json(&s.socket, &["approve", &ieee, "--json"]);
    assert!(ok);
    std::thread::sleep(Duration::from_secs(3));
    let status = status_json(&s.socket).unwrap();
    assert_eq!(status["devices"][0]["held"], true, "{status}");
    assert_eq!(
        transfer_state(&status).as_deref(),
        Some("cancelled"),
        "{status}"
    );
    let (ok, answer) = cli_json(&s.socket, &["release", &ieee, "--json"]);
    assert!(ok, "{answer}");
    let (ok, answer) = cli_json(&s.socket, &["release", &ieee, "--json"]);
    assert!(
        !ok && answer["error"].as_str().unwrap().contains("not held"),
        "{answer}"
    );
    s.wait_state("downloading", 20);
}
