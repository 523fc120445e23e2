//! The daemon as an installer runs it: `zigbee-otad run` against `zigbee-otad simulate` on a
//! pseudo-terminal, two real processes, with a directory catalog, the status socket, a socket that
//! plays systemd's NOTIFY_SOCKET, SIGHUP, SIGTERM and a restart.
//!
//! These are real processes on a real pty, so they run on real time with generous deadlines.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::zigbee_ota_index;
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId, payload::GblBuilder,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_zigbee-otad");

/// Kills the child when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn synthetic_ota(manufacturer: u16, image_type: u16, version: u32, len: usize) -> Vec<u8> {
    let header = OtaHeader::new(
        ManufacturerCode(manufacturer),
        ImageType(image_type),
        FileVersion(version),
    );
    let firmware: Vec<u8> = (0..len).map(|i| (i * 7 + version as usize) as u8).collect();
    let gbl = GblBuilder::new()
        .tag([0xFE, 0x01, 0x01, 0xFE], firmware)
        .build();
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, gbl)
        .build()
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

pub fn status_json(socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["status", "--json", "--socket", socket.to_str().unwrap()])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Plays systemd's end of NOTIFY_SOCKET: every datagram, read as it arrives, onto a channel.
pub fn notify_listener(path: &Path) -> mpsc::Receiver<String> {
    let socket = UnixDatagram::bind(path).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Waits for a notify message containing `needle`.
pub fn wait_notify(
    messages: &mpsc::Receiver<String>,
    needle: &str,
    timeout: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Ok(text) = messages.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let found = text.contains(needle);
        seen.push(text);
        if found {
            return seen;
        }
    }
    panic!("no `{needle}` on NOTIFY_SOCKET within {timeout:?}; got {seen:?}");
}

pub fn wait_line(lines: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no simulator line containing `{needle}` within {timeout:?}"),
        }
    }
}

pub fn start_daemon(config: &Path, notify: &Path, log: &Path) -> Guard {
    let log = std::fs::File::create(log).unwrap();
    Guard(
        Command::new(BIN)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("NOTIFY_SOCKET", notify)
            .env("WATCHDOG_USEC", "1000000")
            .env("RUST_LOG", "debug")
            // The apply window is local time; tests compute it in UTC.
            .env("TZ", "UTC")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn run_against_simulate_upgrades_reloads_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();

    // Device 1 has an image from the start; device 2's image is dropped in later (SIGHUP).
    let first = synthetic_ota(0x1189, 0x00CD, 0x0000_0002, 30_000);
    let second = synthetic_ota(0x100B, 0x0119, 0x0000_0002, 9_000);
    std::fs::write(images.join("ledvance.ota"), &first).unwrap();
    let second_path = root.join("hue.ota.pending");
    std::fs::write(&second_path, &second).unwrap();
    std::fs::write(root.join("ledvance.ota"), &first).unwrap();

    let mut simulator = Guard(
        Command::new(BIN)
            .args([
                "simulate",
                "--device",
                "0x1189:0x00CD:1",
                "--device",
                "0x100B:0x0119:1",
                "--image",
                root.join("ledvance.ota").to_str().unwrap(),
                "--image",
                second_path.to_str().unwrap(),
            ])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(root.join("sim.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let (line_tx, lines) = mpsc::channel();
    let stdout = simulator.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let pty = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(pty.starts_with("/dev/pts/"), "first line is the pty: {pty}");

    let socket = root.join("status.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nport = \"{pty}\"\nflow_control = \"none\"\n\
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

    // While device 1 downloads, `status --json` shows the transfer; at the end, finished.
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut finished_line = None;
    while Instant::now() < deadline {
        if let Some(status) = status_json(&socket) {
            for t in status["transfers"].as_array().unwrap() {
                let state = t["state"].as_str().unwrap().to_owned();
                if states.last() != Some(&state) {
                    states.push(state);
                }
            }
        }
        if let Ok(line) = lines.try_recv()
            && line.contains("0x00000001 -> 0x00000002")
        {
            finished_line = Some(line);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished_line = finished_line.unwrap_or_else(|| {
        panic!(
            "device 1 did not finish its upgrade; states {states:?}; log:\n{}",
            log_text(root)
        )
    });
    assert!(
        finished_line.contains("Upgraded, verified"),
        "{finished_line}\nlog:\n{}",
        log_text(root)
    );
    assert!(
        states.iter().any(|s| s == "downloading"),
        "status never showed the transfer in progress: {states:?}"
    );
    let status = (0..50)
        .find_map(|_| {
            let s = status_json(&socket)?;
            let done = s["transfers"]
                .as_array()?
                .iter()
                .any(|t| t["state"] == "finished");
            if done {
                Some(s)
            } else {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        })
        .expect("status never showed the transfer finished");
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    let devices = status["devices"].as_array().unwrap();
    assert!(!devices.is_empty(), "{status}");

    // A new image dropped into the folder is picked up on SIGHUP and served.
    std::fs::rename(&second_path, images.join("hue.ota")).unwrap();
    signal(&daemon.0, "HUP");
    let line = wait_line(&lines, "100B:0119", Duration::from_secs(60));
    assert!(line.contains("Upgraded, verified"), "{line}");

    // The watchdog is pinged from the main loop.
    wait_notify(&notify, "WATCHDOG=1", Duration::from_secs(5));

    // SIGTERM: exit 0, state persisted.
    signal(&daemon.0, "TERM");
    let exit = wait_exit(&mut daemon.0, Duration::from_secs(15));
    assert_eq!(exit, Some(0), "log:\n{}", log_text(root));
    assert!(!socket.exists(), "the status socket is removed on exit");
    let state_files: Vec<PathBuf> = std::fs::read_dir(root.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        !state_files.is_empty(),
        "nothing persisted in the state directory"
    );

    // A restart serves again from what is on disk (no network is configured or needed).
    let mut daemon = start_daemon(&config, &notify_path, &root.join("run2.log"));
    wait_notify(&notify, "READY=1", Duration::from_secs(30));
    let status = status_json(&socket).expect("status after restart");
    assert_eq!(status["catalog"]["cached_images"], 2, "{status}");
    signal(&daemon.0, "TERM");
    assert_eq!(wait_exit(&mut daemon.0, Duration::from_secs(15)), Some(0));
}

pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn log_text(root: &Path) -> String {
    let tail = |name: &str| {
        let text = std::fs::read_to_string(root.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(150)..].join("\n")
    };
    format!(
        "--- run.log (tail)\n{}\n--- sim.log (tail)\n{}",
        tail("run.log"),
        tail("sim.log")
    )
}

#[test]
fn demo_upgrades_every_device_and_exits_zero() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo passed"), "{stdout}");
    assert_eq!(stdout.matches("upgraded, verified").count(), 6, "{stdout}");
    assert!(stdout.contains("up to date"), "{stdout}");
    // The closing table names where each image came from, as the daemon's library says.
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row for {label}:\n{stdout}"))
            .to_owned()
    };
    assert!(
        row("LEDVANCE A60 bulb").contains("ledvance-api"),
        "{stdout}"
    );
    assert!(
        row("Hue motion sensor").contains("zigbee-ota-index"),
        "{stdout}"
    );
    assert!(row("Legrand dimmer").contains("demo-images"), "{stdout}");
    // The restricted index entry reached the device it names and no other.
    let tuya = row("Tuya bulb _TZ3210_demo");
    assert!(
        tuya.contains("zigbee-ota-index") && tuya.contains("upgraded, verified"),
        "{stdout}"
    );
    assert!(
        row("Tuya bulb _TZ3210_other").contains("restricted entry is for another maker"),
        "{stdout}"
    );
    // The cloud sources' ledgers: the LEDVANCE API counted its catalog call and one download.
    let ledger = row("  ledvance-api");
    assert!(ledger.contains("2 of "), "{ledger}\n{stdout}");
}

/// Starts `simulate` with `args`, returns it with a channel of its stdout lines and the pty path.
pub fn start_simulator(args: &[&str], log: &Path) -> (Guard, mpsc::Receiver<String>, String) {
    let mut simulator = Guard(
        Command::new(BIN)
            .arg("simulate")
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let (line_tx, lines) = mpsc::channel();
    let stdout = simulator.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let pty = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    (simulator, lines, pty)
}

pub fn minimal_config(root: &Path, pty: &str) -> PathBuf {
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nport = \"{pty}\"\nflow_control = \"none\"\n\
             [catalog]\ncache_dir = \"{root}/cache\"\n\
             [[catalog.source]]\nkind = \"directory\"\npath = \"{root}/images\"\n\
             [status]\nsocket = \"{root}/status.sock\"\n",
            root = root.display(),
        ),
    )
    .unwrap();
    config
}

/// A unicast the radio fails to deliver is sent again at once instead of waiting for the
/// device's own 5 s answer timeout: with 10 % of deliveries failing, a 200-block transfer sees
/// about 20 failures but only the rare double failure costs the device a retry.
#[test]
fn failed_deliveries_are_resent_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let image = synthetic_ota(0x1189, 0x0001, 2, 10_000);
    let image_path = root.join("images/fw.ota");
    std::fs::write(&image_path, &image).unwrap();

    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:1:1",
            "--image",
            image_path.to_str().unwrap(),
            "--delivery-failure",
            "0.1",
            "--seed",
            "7",
            "--radio-delay-ms",
            "2",
        ],
        &root.join("sim.log"),
    );
    let config = minimal_config(root, &pty);
    let notify = root.join("notify.sock");
    let _messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    let line = wait_line(&lines, "0x00000001 -> 0x00000002", Duration::from_secs(90));
    assert!(line.contains("Upgraded, verified"), "{line}");
    let retries: u32 = line
        .split(", ")
        .find_map(|part| part.strip_suffix(" retries"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no retry count in {line}"));
    assert!(
        retries <= 4,
        "{retries} device retries: failed deliveries were not resent ({line})"
    );
}

/// The catalog rows of the fault matrix, end to end: one cloud source is down (nothing listens)
/// and the other lies about its image's hash. The daemon keeps serving, never offers the image
/// whose bytes do not match, and says what went wrong in `status`.
#[test]
fn a_down_catalog_and_a_lying_one_never_stop_serving_and_never_offer_bad_bytes() {
    use axum::Router;
    use axum::routing::get;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    // A local image for device 1 (served); a cloud image for device 2 (its index lies).
    let local = synthetic_ota(0x1189, 0x0001, 2, 6_000);
    std::fs::write(root.join("images/local.ota"), &local).unwrap();
    let cloud = synthetic_ota(0x1189, 0x0042, 2, 6_000);
    std::fs::write(root.join("cloud.ota"), &cloud).unwrap();

    let (runtime, listener, base) = crate::common::loopback_listener();
    let index_with =
        |sha512: &str| zigbee_ota_index(&format!("{base}/fw.ota"), &cloud, 0x42, 2, sha512);
    let index = std::sync::Arc::new(std::sync::Mutex::new(index_with(&"ab".repeat(64))));
    let served_index = index.clone();
    let served = cloud.clone();
    let app = Router::new()
        .route(
            "/index.json",
            get(move || {
                let body = served_index.lock().unwrap().clone();
                async move { body }
            }),
        )
        .route("/fw.ota", get(move || async move { served }));
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Nothing listens on port 9 of the loopback address.
    let down = "http://127.0.0.1:9/v1/zigbee/firmwares";

    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:1:1",
            "--device",
            "0x1189:0x42:1",
            "--image",
            root.join("images/local.ota").to_str().unwrap(),
            "--image",
            root.join("cloud.ota").to_str().unwrap(),
            "--radio-delay-ms",
            "2",
            "--query-interval",
            "2",
        ],
        &root.join("sim.log"),
    );
    let socket = root.join("status.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nport = \"{pty}\"\nflow_control = \"none\"\n\
             [catalog]\ncache_dir = \"{root}/cache\"\n\
             [[catalog.source]]\nkind = \"ledvance\"\nurl = \"{down}\"\n\
             [[catalog.source]]\nkind = \"zigbee-ota-index\"\nurl = \"{base}/index.json\"\n\
             [[catalog.source]]\nkind = \"directory\"\npath = \"{root}/images\"\n\
             [status]\nsocket = \"{socket}\"\n",
            root = root.display(),
            socket = socket.display(),
        ),
    )
    .unwrap();
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));

    // The local image is served although both cloud sources fail.
    let line = wait_line(&lines, "1189:0001", Duration::from_secs(60));
    assert!(line.contains("Upgraded, verified"), "{line}");

    // The lying source: its index is stored, its image is downloaded and refused, and device 2
    // is never offered it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = serde_json::Value::Null;
    let refused = loop {
        if let Some(s) = status_json(&socket) {
            status = s;
            let index_error = status["catalog"]["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["kind"] == "zigbee-ota-index")
                .and_then(|s| s["last_error"].as_str().map(str::to_owned));
            if let Some(error) = index_error {
                break error;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the bad download was never reported: {status}\n{}",
            log_text(root)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        refused.contains("sha512") || refused.contains("hash"),
        "{refused}"
    );
    let ledvance_error = status["catalog"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "ledvance")
        .map(|s| s["last_error"].clone());
    assert!(
        ledvance_error.is_some_and(|e| e.is_string()),
        "the down source shows no error: {status}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lines.try_iter().all(|l| !l.contains("1189:0042")),
        "device 2 got an image whose hash did not match"
    );
    let status = status_json(&socket).unwrap();
    let device2 = status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["image_type"] == 0x42)
        .cloned()
        .unwrap_or_default();
    assert!(device2["available_version"].is_null(), "{status}");
    let cached: Vec<_> = std::fs::read_dir(root.join("cache/images"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(cached.is_empty(), "unverified bytes were stored");

    // The index is corrected. Left alone, the daemon tries the failed refresh again by itself
    // (1 min after the failure; the hourly schedule would be far later) and device 2 upgrades.
    let right_sha512 = zigbee_otad::catalog::model::ImageHash::compute(
        zigbee_otad::catalog::model::HashAlgorithm::Sha512,
        &cloud,
    )
    .to_hex();
    *index.lock().unwrap() = index_with(&right_sha512);
    let line = wait_line(&lines, "1189:0042", Duration::from_secs(150));
    assert!(
        line.contains("Upgraded, verified"),
        "{line}\n{}",
        log_text(root)
    );
    let whole_log = std::fs::read_to_string(root.join("run.log")).unwrap();
    assert!(
        whole_log.contains("trying the catalogs again after a failed refresh"),
        "recovered, but not by the daemon's own retry:\n{}",
        log_text(root)
    );
}

/// SIGHUP reads the configuration again: a broken file changes nothing (the daemon keeps
/// serving), a valid one applies at once — here a deny rule that withholds an image.
#[test]
fn sighup_reloads_the_configuration_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let image = synthetic_ota(0x1189, 0x0001, 2, 4_000);
    std::fs::write(root.join("images/fw.ota"), &image).unwrap();
    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:1:1",
            "--image",
            root.join("images/fw.ota").to_str().unwrap(),
            "--radio-delay-ms",
            "2",
            "--query-interval",
            "1",
        ],
        &root.join("sim.log"),
    );
    let config = minimal_config(root, &pty);
    let good = std::fs::read_to_string(&config).unwrap();
    // Deny the image before the daemon starts serving it: start with a deny rule in force...
    let denied =
        format!("{good}[policy]\n[[policy.deny]]\nmanufacturer_code = 0x1189\nimage_type = 1\n");
    std::fs::write(&config, &denied).unwrap();
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));
    let socket = root.join("status.sock");

    // ...the device asks and is told there is nothing for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = status_json(&socket);
        let told = status.as_ref().is_some_and(|s| {
            s["devices"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["available_version"].is_null()))
        });
        if told {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the device never asked: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A broken file: SIGHUP changes nothing and the daemon keeps running.
    std::fs::write(&config, format!("{denied}bogus_key = 1\n")).unwrap();
    signal(&daemon.0, "HUP");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        status_json(&socket).is_some(),
        "the daemon stopped on a broken config"
    );
    assert!(
        lines.try_iter().all(|l| !l.contains("Upgraded")),
        "the deny rule was dropped by a broken reload"
    );
    let log = std::fs::read_to_string(root.join("run.log")).unwrap();
    assert!(log.contains("configuration not reloaded"), "{log}");

    // The fixed file without the deny rule: applied at once, the device gets its image.
    std::fs::write(&config, &good).unwrap();
    signal(&daemon.0, "HUP");
    let line = wait_line(&lines, "0x00000001 -> 0x00000002", Duration::from_secs(60));
    assert!(line.contains("Upgraded, verified"), "{line}");
}

/// The status socket's two privileges (issue 18): `status` for every local user, control
/// requests only for root and the daemon's user (peer credentials); and a raw `permit_join` of
/// 255 ("open forever") is refused by the daemon itself, whoever sends it.
#[test]
fn socket_control_needs_privilege_and_permit_join_is_bounded() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Others must be able to reach the socket for `status`.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let (_simulator, _lines, pty) =
        start_simulator(&["--device", "0x1189:1:1"], &root.join("sim.log"));
    let config = minimal_config(root, &pty);
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));
    let socket = root.join("status.sock");
    let raw = |line: &str| {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        answer
    };
    let forever = raw("{\"request\":\"permit_join\",\"seconds\":255}\n");
    assert!(
        forever.contains("\"ok\":false") && forever.contains("254"),
        "{forever}"
    );
    let minute = raw("{\"request\":\"permit_join\",\"seconds\":60}\n");
    assert!(
        minute.contains("\"ok\":true"),
        "root may open the network: {minute}"
    );

    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(is_root && setpriv) {
        eprintln!("SKIPPED: the unprivileged half needs root and setpriv (util-linux)");
        return;
    }
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .args(["--socket", socket.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let status = as_nobody(&["status", "--json"]);
    assert!(
        status.status.success(),
        "status is open to everyone: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let permit = as_nobody(&["permit-join", "30"]);
    assert!(!permit.status.success());
    let stderr = String::from_utf8_lossy(&permit.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    let notify_all = as_nobody(&["notify", "--all"]);
    assert!(!notify_all.status.success());
}
