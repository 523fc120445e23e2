//! A hostile device on the network with the real daemon (issue 18, "Prove it" 1):
//! `zigbee-otad run` against `zigbee-otad simulate` with three honest devices and the attacker
//! of `--hostile`: a squatter claiming to be Bosch that asks for one block every nine minutes
//! (the real cadence: the test is over long before its second request), a pager asking for
//! 65,535-byte pages at 0 ms spacing again and again, and a spoofer sending a query from a new
//! made-up address every 250 ms, each claiming manufacturer 0x7777 and one of 16 image types
//! that the test's zigbee-OTA index lists (`spoof-named`: the NCP learns a made-up IEEE
//! address for each, so only the claim gate stands between them and a download). A second
//! test floods the daemon with queries from addresses nobody can name (`spoof`) and checks
//! that they are answered at the bounded rate.
//!
//! What is checked here is correctness: the honest devices finish byte-exact, the daemon stays
//! up and answers, the index's images for the spoofed claims are never downloaded (while the
//! honest device served from the same index gets its image), and the status snapshot carries
//! the main loop's lateness. How fast, how late and how much memory are measured, not asserted:
//! the `hostile` row of `benches/reliability/fault_matrix.py` (docs/RELIABILITY.md).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::{
    log_text, notify_listener, start_daemon, start_simulator, status_json, synthetic_ota,
    wait_notify,
};

/// The spoofer's manufacturer code and the number of image types it claims.
const BAIT_MANUFACTURER: u16 = 0x7777;
const BAIT_TYPES: u16 = zigbee_otad::sim::hostile::BAIT_IMAGE_TYPES;

#[test]
fn honest_devices_finish_byte_exact_beside_a_squatter_a_pager_and_a_spoofer() {
    use axum::Router;
    use axum::extract::Path as UrlPath;
    use axum::routing::get;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    // Two honest LEDVANCE devices served from the folder; the third device's image (and the
    // bait) come from a zigbee-OTA index on loopback.
    let folder = synthetic_ota(0x1189, 0x0001, 2, 12_000);
    std::fs::write(root.join("images/ledvance.ota"), &folder).unwrap();
    let cloud = synthetic_ota(0x100B, 0x0119, 2, 8_000);
    std::fs::write(root.join("cloud.ota"), &cloud).unwrap();
    let bait = synthetic_ota(BAIT_MANUFACTURER, 0, 2, 2_000);

    let (runtime, listener, base) = crate::common::loopback_listener();
    let sha512 = |bytes: &[u8]| {
        use sha2::Digest;
        sha2::Sha512::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut entries = vec![serde_json::json!({
        "fileName": "cloud.ota", "fileVersion": 2, "fileSize": cloud.len(),
        "url": format!("{base}/cloud.ota"), "imageType": 0x0119, "manufacturerCode": 0x100B,
        "sha512": sha512(&cloud),
    })];
    for image_type in 0..BAIT_TYPES {
        entries.push(serde_json::json!({
            "fileName": format!("bait-{image_type}.ota"), "fileVersion": 2,
            "fileSize": bait.len(), "url": format!("{base}/bait/{image_type}"),
            "imageType": image_type, "manufacturerCode": BAIT_MANUFACTURER,
            "sha512": sha512(&bait),
        }));
    }
    let index = serde_json::to_string(&entries).unwrap();
    let (index_gets, cloud_gets, bait_gets) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let app = {
        let (index_gets, cloud_gets, bait_gets) =
            (index_gets.clone(), cloud_gets.clone(), bait_gets.clone());
        let served_cloud = cloud.clone();
        Router::new()
            .route(
                "/index.json",
                get(move || {
                    index_gets.fetch_add(1, Ordering::SeqCst);
                    async move { index }
                }),
            )
            .route(
                "/cloud.ota",
                get(move || {
                    cloud_gets.fetch_add(1, Ordering::SeqCst);
                    async move { served_cloud }
                }),
            )
            .route(
                "/bait/{image_type}",
                get(move |UrlPath(_): UrlPath<String>| {
                    bait_gets.fetch_add(1, Ordering::SeqCst);
                    let bait = bait.clone();
                    async move { bait }
                }),
            )
    };
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:0x0001:1",
            "--device",
            "0x1189:0x0001:1",
            "--device",
            "0x100B:0x0119:1",
            "--image",
            root.join("images/ledvance.ota").to_str().unwrap(),
            "--image",
            root.join("cloud.ota").to_str().unwrap(),
            "--hostile",
            "squat:0x1189:0x0001:2:540",
            "--hostile",
            "pages:0x1189:0x0001:2",
            "--hostile",
            &format!("spoof-named:250:{BAIT_MANUFACTURER:#06x}"),
            "--query-interval",
            "5",
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
    let mut daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));

    // Every honest device ends its upgrade byte-exact (the simulator compares each byte with
    // the file), within a deadline that only a stuck or starved device misses.
    let honest = ["1189:0001", "100B:0119"];
    let mut verified = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while verified.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!(
                "only {} of 3 honest devices finished: {verified:#?}\n{}",
                verified.len(),
                log_text(root)
            );
        };
        if line.starts_with("device ") && honest.iter().any(|key| line.contains(key)) {
            assert!(
                line.contains("Upgraded, verified"),
                "{line}\n{}",
                log_text(root)
            );
            verified.push(line);
        }
    }

    // The daemon is up and answers; the spoofed claims were never fetched for, while the
    // honest device's image came from the very same index.
    let status = status_json(&socket).expect("the daemon answers status");
    assert_eq!(status["coordinator"]["state"], "up", "{status}");
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited");
    assert!(
        index_gets.load(Ordering::SeqCst) >= 1,
        "the index was never read"
    );
    assert!(
        cloud_gets.load(Ordering::SeqCst) >= 1,
        "the honest image never downloaded"
    );
    assert_eq!(
        bait_gets.load(Ordering::SeqCst),
        0,
        "an image was downloaded for a spoofed claim\n{}",
        log_text(root)
    );
    let lag = &status["main_loop"];
    assert!(
        lag["timer_samples"].as_u64().is_some_and(|n| n > 0),
        "the main loop's lateness is measured: {lag}"
    );
    crate::daemon::signal(&daemon.0, "TERM");
    assert_eq!(
        crate::daemon::wait_exit(&mut daemon.0, Duration::from_secs(15)),
        Some(0)
    );
}

/// Made-up senders that the device table cannot name (the NCP has no IEEE address for them)
/// are answered at a bounded rate, all together: 20 at once, then 5 a second. The spoofer
/// sends 50 queries a second from new addresses; the daemon's device list (a session per
/// answered sender) grows no faster than the bound, while an honest device upgrades.
#[test]
fn made_up_senders_nobody_can_name_are_answered_at_a_bounded_rate() {
    const BURST: f64 = 20.0;
    const PER_SECOND: f64 = 5.0;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let image = synthetic_ota(0x1189, 0x0001, 2, 6_000);
    std::fs::write(root.join("images/ledvance.ota"), &image).unwrap();
    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:0x0001:1",
            "--image",
            root.join("images/ledvance.ota").to_str().unwrap(),
            "--hostile",
            "spoof:20",
        ],
        &root.join("sim.log"),
    );
    let config = crate::daemon::minimal_config(root, &pty);
    let socket = root.join("status.sock");
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let started = Instant::now();
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));
    let line = crate::daemon::wait_line(&lines, "1189:0001", Duration::from_secs(120));
    assert!(line.contains("Upgraded, verified"), "{line}");
    // Let the flood run a while longer, then count the made-up senders the daemon answered.
    std::thread::sleep(Duration::from_secs(5));
    let status = status_json(&socket).expect("the daemon answers status");
    let elapsed = started.elapsed().as_secs_f64();
    let unnamed = status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ieee"].as_str().is_some_and(str::is_empty))
        .count();
    let bound = BURST + PER_SECOND * (elapsed + 1.0);
    let sent_at_least = 50.0 * (elapsed - 10.0).max(5.0);
    assert!(
        bound < sent_at_least,
        "the flood outruns the bound ({bound} vs {sent_at_least})"
    );
    assert!(
        unnamed > 0,
        "no made-up sender was answered at all: {status}"
    );
    assert!(
        (unnamed as f64) <= bound,
        "{unnamed} made-up senders answered in {elapsed:.1} s (at most {bound:.0})\n{}",
        log_text(root)
    );
}
