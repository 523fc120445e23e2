//! `zigbee-otad run` with `protocol = "znp"` against `zigbee-otad simulate --protocol znp`: two
//! real processes on a real pty. Devices upgrade byte-exact (the simulator checks every byte
//! against `--image`) and `status --json` says so. These are the ZNP rows of the fault matrix
//! (docs/RELIABILITY.md) at test size: lost and damaged MT frames, the stick resetting itself
//! mid-transfer, the USB stick unplugged mid-transfer, and the daemon killed with `kill -9`
//! mid-transfer and started again. Every row must end byte-exact with nothing lost: each device's
//! last report is "Upgraded, verified" and no report is anything else.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::daemon::{
    Guard, log_text, notify_listener, start_daemon, start_simulator, status_json, synthetic_ota,
    wait_exit, wait_notify,
};

/// The two device kinds of every row and their images (version 1 -> 2).
const DEVICES: [(u16, u16); 2] = [(0x1189, 0x00CD), (0x100B, 0x0119)];

/// A simulated Z-Stack stick with two devices, and the config of a daemon that serves them.
struct ZnpRig {
    root: PathBuf,
    simulator: Guard,
    lines: mpsc::Receiver<String>,
    config: PathBuf,
    socket: PathBuf,
    /// Upgrade reports seen so far (`device ... Upgraded, verified (...)` and any other ending).
    reports: Vec<String>,
}

impl ZnpRig {
    /// Writes the images (`sizes` firmware bytes), starts `simulate --protocol znp` with
    /// `faults`, and writes the daemon's config for the simulator's port (its `--link` when
    /// `faults` names one).
    fn start(root: &Path, sizes: [usize; 2], faults: &[&str]) -> ZnpRig {
        Self::start_with_identities(root, sizes, ["", ""], faults)
    }

    /// Like [`ZnpRig::start`], each device's spec followed by `identities` (what its Basic
    /// cluster answers: ",model=...,manufacturer_name=...,power=...").
    fn start_with_identities(
        root: &Path,
        sizes: [usize; 2],
        identities: [&str; 2],
        faults: &[&str],
    ) -> ZnpRig {
        let images = root.join("images");
        std::fs::create_dir_all(&images).unwrap();
        let mut args = vec!["--protocol".to_owned(), "znp".to_owned()];
        let devices = DEVICES.iter().zip(sizes).zip(identities);
        for (index, (((manufacturer, image_type), size), identity)) in devices.enumerate() {
            let path = images.join(format!("{index}.ota"));
            std::fs::write(&path, synthetic_ota(*manufacturer, *image_type, 2, size)).unwrap();
            args.extend([
                "--device".to_owned(),
                format!("0x{manufacturer:04X}:0x{image_type:04X}:1{identity}"),
                "--image".to_owned(),
                path.display().to_string(),
            ]);
        }
        args.extend(faults.iter().map(|f| (*f).to_owned()));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (simulator, lines, pty) = start_simulator(&arg_refs, &root.join("sim.log"));
        let port = faults
            .iter()
            .position(|f| *f == "--link")
            .and_then(|i| faults.get(i + 1))
            .map_or(pty, |link| (*link).to_owned());
        let socket = root.join("status.sock");
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{root}/state\"\n\
                 [coordinator]\nprotocol = \"znp\"\nport = \"{port}\"\nflow_control = \"none\"\n\
                 [catalog]\ncache_dir = \"{root}/cache\"\n\
                 [[catalog.source]]\nkind = \"directory\"\npath = \"{images}\"\n\
                 [status]\nsocket = \"{socket}\"\n",
                root = root.display(),
                images = images.display(),
                socket = socket.display(),
            ),
        )
        .unwrap();
        ZnpRig {
            root: root.to_owned(),
            simulator,
            lines,
            config,
            socket,
            reports: Vec::new(),
        }
    }

    /// Starts `zigbee-otad run` and waits for READY=1 (the log is appended to across restarts,
    /// one file per start: `run.log`, `run-2.log`, ...).
    fn start_daemon(&self, nth: usize) -> Guard {
        let name = if nth == 1 {
            "run.log".to_owned()
        } else {
            format!("run-{nth}.log")
        };
        let notify_path = self.root.join(format!("notify-{nth}.sock"));
        let notify = notify_listener(&notify_path);
        let daemon = start_daemon(&self.config, &notify_path, &self.root.join(name));
        wait_notify(&notify, "READY=1", Duration::from_secs(30));
        daemon
    }

    /// Reads simulator lines until `stop` or `timeout`; every upgrade report is kept.
    fn read_until(&mut self, timeout: Duration, stop: impl Fn(&ZnpRig) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !stop(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) if line.starts_with("device ") => {
                    assert!(!line.contains("nvalid"), "{line}\n{}", log_text(&self.root));
                    self.reports.push(line);
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the simulator stopped\n{}", log_text(&self.root))
                }
            }
            if left.is_zero() {
                return stop(self);
            }
        }
        true
    }

    fn verified(&self) -> usize {
        self.reports
            .iter()
            .filter(|r| r.contains("Upgraded, verified"))
            .count()
    }

    /// Waits until both devices report "Upgraded, verified", and asserts that no report ended
    /// any other way (nothing lost, no failed attempt).
    fn wait_all_verified(&mut self, timeout: Duration) {
        let done = self.read_until(timeout, |rig| rig.verified() >= DEVICES.len());
        assert!(
            done,
            "only {:?} within {timeout:?}\n{}",
            self.reports,
            log_text(&self.root)
        );
        let failed: Vec<_> = self
            .reports
            .iter()
            .filter(|r| !r.contains("Upgraded, verified"))
            .collect();
        assert!(failed.is_empty(), "failed attempts: {failed:?}");
    }

    /// Bytes the daemon has served so far, by its status socket.
    fn served(&self) -> u64 {
        status_json(&self.socket)
            .and_then(|s| {
                s["transfers"]
                    .as_array()
                    .map(|t| t.iter().filter_map(|t| t["offset"].as_u64()).sum())
            })
            .unwrap_or(0)
    }

    /// The status once it shows both transfers finished.
    fn finished_status(&self) -> serde_json::Value {
        (0..100)
            .find_map(|_| {
                let s = status_json(&self.socket)?;
                let finished = s["transfers"]
                    .as_array()?
                    .iter()
                    .filter(|t| t["state"] == "finished")
                    .count();
                if finished == DEVICES.len() {
                    Some(s)
                } else {
                    std::thread::sleep(Duration::from_millis(100));
                    None
                }
            })
            .expect("status never showed both transfers finished")
    }

    fn sim_log(&self) -> String {
        std::fs::read_to_string(self.root.join("sim.log")).unwrap_or_default()
    }

    fn run_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap_or_default()
    }
}

fn stop(mut daemon: Guard) {
    crate::daemon::signal(&daemon.0, "TERM");
    assert_eq!(wait_exit(&mut daemon.0, Duration::from_secs(15)), Some(0));
}

/// Runs one upgrade of two devices with `faults` on the simulator; returns the final status.
fn upgrade_over_znp(root: &Path, sizes: [usize; 2], faults: &[&str]) -> serde_json::Value {
    let mut rig = ZnpRig::start(root, sizes, faults);
    let daemon = rig.start_daemon(1);
    rig.wait_all_verified(Duration::from_secs(120));
    let status = rig.finished_status();
    stop(daemon);
    drop(rig.simulator);
    status
}

#[test]
fn run_with_znp_upgrades_devices_byte_exact_and_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let status = upgrade_over_znp(dir.path(), [12_000, 6_000], &[]);
    let coordinator = &status["coordinator"];
    assert_eq!(coordinator["state"], "up", "{status}");
    assert_eq!(coordinator["channel"], 15, "{status}");
    // The coordinator says what it is: the protocol and the Z-Stack version the stick reported
    // in SYS.Version (the simulator is a CC2652 with Z-Stack 3.x.0 2.7.1, build 20230507).
    // `ezsp_version` is EZSP's own field: null here, not a misleading 0.
    assert_eq!(coordinator["protocol"], "znp", "{status}");
    assert_eq!(
        coordinator["firmware"], "Z-Stack 3.x.0 2.7.1 (build 20230507)",
        "{status}"
    );
    assert!(coordinator["ezsp_version"].is_null(), "{status}");
    for transfer in status["transfers"].as_array().unwrap() {
        assert_eq!(transfer["state"], "finished", "{status}");
    }
    // The network key generated for forming is kept, as for EZSP (the stick held its own
    // network, which was resumed rather than replaced).
    assert!(dir.path().join("state/network.json").exists());
}

/// Fault matrix rows `znp-loss-1`, `znp-corrupt-2` and `znp-reset`, together at test size.
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

/// Fault matrix row `znp-port-vanish-resume`: the USB stick is unplugged mid-transfer (its pty
/// and the link to it vanish, the stick loses power) and plugged in again 2 s later at the same
/// path. The daemon reopens the port, resumes the network the stick stored, and the devices,
/// which kept their state, finish their downloads byte-exact. The images take about 10 s, so
/// the unplug at 5 s falls in the middle of them.
#[test]
fn znp_upgrades_survive_the_stick_being_unplugged_mid_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyZNP");
    let link_text = link.display().to_string();
    let mut rig = ZnpRig::start(
        dir.path(),
        // The default 10 ms radio delay: transfers of ~10 s, unplugged after 5 s.
        [24_000, 20_000],
        &[
            "--link",
            &link_text,
            "--unplug-after",
            "5",
            "--unplug-for",
            "2",
        ],
    );
    let daemon = rig.start_daemon(1);
    let unplugged = rig.read_until(Duration::from_secs(30), |rig| {
        rig.sim_log().contains("serial port unplugged")
    });
    assert!(
        unplugged,
        "the stick was never unplugged\n{}",
        rig.sim_log()
    );
    // Mid-transfer: nothing had finished yet.
    assert_eq!(
        rig.verified(),
        0,
        "finished before the unplug: {:?}",
        rig.reports
    );
    let replugged = rig.read_until(Duration::from_secs(10), |rig| {
        rig.sim_log().contains("serial port plugged in again")
    });
    assert!(replugged, "the stick never came back\n{}", rig.sim_log());
    // The daemon noticed, reopened the same path and came back up on the stored network.
    let back_up = rig.read_until(Duration::from_secs(20), |rig| {
        let log = rig.run_log("run.log");
        log.contains("reopening the port") && log.matches("network resumed").count() >= 2
    });
    assert!(
        back_up,
        "the daemon did not come back\n{}",
        log_text(dir.path())
    );
    rig.wait_all_verified(Duration::from_secs(90));
    let status = rig.finished_status();
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    stop(daemon);
}

/// Fault matrix row `znp-kill-9`: the daemon is killed with SIGKILL twice while transfers run
/// and started again each time; the stick and the devices carry on. Nothing is lost: both
/// devices end byte-exact, and the restarted daemon resumes the stick's network with the key it
/// persisted (no re-forming, which would strand the devices).
#[test]
fn znp_upgrades_survive_kill_9_of_the_daemon_mid_transfer() {
    let dir = tempfile::tempdir().unwrap();
    // The default 10 ms radio delay: transfers of ~10 s, so both kills fall mid-transfer.
    let mut rig = ZnpRig::start(dir.path(), [16_000, 12_000], &[]);
    let mut daemon = rig.start_daemon(1);
    for nth in 2..=3 {
        let served = rig.read_until(Duration::from_secs(30), |rig| rig.served() > 2_000);
        assert!(served, "no transfer under way\n{}", log_text(dir.path()));
        assert!(rig.verified() < DEVICES.len(), "{:?}", rig.reports);
        crate::daemon::signal(&daemon.0, "KILL");
        let _ = wait_exit(&mut daemon.0, Duration::from_secs(5));
        drop(daemon);
        daemon = rig.start_daemon(nth);
    }
    rig.wait_all_verified(Duration::from_secs(90));
    for log in ["run.log", "run-2.log", "run-3.log"].map(|name| rig.run_log(name)) {
        assert!(log.contains("network resumed"), "not resumed:\n{log}");
        assert!(
            !log.contains("network formed"),
            "re-formed after kill -9:\n{log}"
        );
    }
    let status = rig.finished_status();
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    stop(daemon);
}

/// Issue 13's identity reads over ZNP: the daemon reads each device's Basic cluster
/// (manufacturer name, model, power source) with ZCL Read Attributes sent as `AF.DataRequest`,
/// the answers come back as `AF.IncomingMsg`, and `status --json` shows every device's identity
/// (kept in the state directory too) while both devices upgrade byte-exact.
#[test]
fn znp_reads_each_devices_basic_cluster_identity_and_status_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = ZnpRig::start_with_identities(
        dir.path(),
        [6_000, 4_000],
        [
            ",model=TS0505B,manufacturer_name=_TZ3210_znp,power=mains",
            ",model=E11-G13,manufacturer_name=LEDVANCE-ZNP,power=battery",
        ],
        &["--radio-delay-ms", "2", "--query-interval", "2"],
    );
    let daemon = rig.start_daemon(1);
    rig.wait_all_verified(Duration::from_secs(90));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = status_json(&rig.socket).unwrap_or_default();
        let named = status["devices"].as_array().map_or(0, |d| {
            d.iter().filter(|d| d["model_id"].is_string()).count()
        });
        if named == DEVICES.len() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "identities not shown: {status}\n{}",
            log_text(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let device = |ieee: &str| {
        status["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ieee"] == ieee)
            .cloned()
            .unwrap_or_else(|| panic!("{ieee} not in {status}"))
    };
    let first = device("00:12:4b:00:00:00:00:01");
    assert_eq!(first["manufacturer_name"], "_TZ3210_znp", "{status}");
    assert_eq!(first["model_id"], "TS0505B", "{status}");
    assert_eq!(first["power_source"], "mains (single phase)", "{status}");
    let second = device("00:12:4b:00:00:00:00:02");
    assert_eq!(second["manufacturer_name"], "LEDVANCE-ZNP", "{status}");
    assert_eq!(second["model_id"], "E11-G13", "{status}");
    assert_eq!(second["power_source"], "battery", "{status}");
    assert_eq!(status["coordinator"]["protocol"], "znp", "{status}");
    let stored = std::fs::read_to_string(dir.path().join("state/identities.json")).unwrap();
    assert!(stored.contains("_TZ3210_znp") && stored.contains("LEDVANCE-ZNP"));
    // The reads went over MT: the daemon's debug log names the Basic cluster sends.
    stop(daemon);
}
