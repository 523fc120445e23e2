//! Home Assistant over a real broker: Mosquitto on a loopback port, `zigbee-otad run` against
//! `simulate`, and an MQTT client playing Home Assistant (reads the retained discovery config
//! and the state, presses Install). The broker is restarted in the middle of the transfer.
//! SKIPPED (loudly) only when Mosquitto is not installed (`bash .ci/run` installs it).
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use crate::common::free_port;
use crate::daemon::{
    Guard, log_text, notify_listener, start_daemon, start_simulator, synthetic_ota, wait_line,
    wait_notify,
};

const IEEE: &str = "00:12:4b:00:00:00:00:01";
const DEVICE: &str = "00124b0000000001";

fn mosquitto() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Starts Mosquitto on `port` (no persistence: a restart loses every retained message) and
/// waits until it accepts connections.
fn start_broker(binary: &Path, root: &Path, port: u16) -> Guard {
    start_broker_with(
        binary,
        root,
        port,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
}

/// Starts Mosquitto with `conf` as its whole configuration and waits until `port` accepts
/// connections.
fn start_broker_with(binary: &Path, root: &Path, port: u16, conf_text: &str) -> Guard {
    let conf = root.join("mosquitto.conf");
    std::fs::write(&conf, conf_text).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("mosquitto.log"))
        .unwrap();
    let broker = Guard(
        Command::new(binary)
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    broker
}

/// One message seen by the observer.
#[derive(Debug, Clone)]
struct Seen {
    topic: String,
    payload: Vec<u8>,
    at: Instant,
}

/// Home Assistant's side: subscribes to everything and keeps every message; reconnects by
/// itself when the broker restarts.
fn observer(port: u16) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let mut options = MqttOptions::new("test-observer", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 64);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let subscriber = client.clone();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = subscriber.try_subscribe("#", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().unwrap().push(Seen {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                    at: Instant::now(),
                }),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    (client, seen)
}

/// The retained message on `topic`, as a client that connects now gets it.
fn retained(port: u16, topic: &str, timeout: Duration) -> Option<Vec<u8>> {
    let mut options = MqttOptions::new(format!("test-retained-{}", free_port()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 8);
    client.subscribe(topic, QoS::AtLeastOnce).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.retain => {
                return Some(p.payload.to_vec());
            }
            Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
            _ => {}
        }
    }
    None
}

/// Waits up to 30 s for a retained message on `topic`. A message published while a client is
/// subscribed reaches it without the retain flag, so each try is a new subscription.
fn wait_retained(port: u16, topic: &str, root: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(payload) = retained(port, topic, Duration::from_secs(1)) {
            return payload;
        }
        assert!(
            Instant::now() < deadline,
            "no retained message on {topic}\n{}",
            log_text(root)
        );
    }
}

fn states(seen: &Mutex<Vec<Seen>>, since: usize) -> Vec<(serde_json::Value, Instant)> {
    let topic = format!("zigbee-otad/device/{DEVICE}/state");
    seen.lock()
        .unwrap()
        .iter()
        .skip(since)
        .filter(|s| s.topic == topic && !s.payload.is_empty())
        .map(|s| (serde_json::from_slice(&s.payload).unwrap(), s.at))
        .collect()
}

fn wait_state(
    seen: &Mutex<Vec<Seen>>,
    root: &Path,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((state, _)) = states(seen, 0).into_iter().rev().find(|(s, _)| ok(s)) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "no state where {what}; states: {:?}\n{}",
            states(seen, 0)
                .iter()
                .map(|s| s.0.to_string())
                .collect::<Vec<_>>(),
            log_text(root)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentage(state: &serde_json::Value) -> f64 {
    state["update_percentage"].as_f64().unwrap_or(0.0)
}

#[test]
fn home_assistant_sees_the_update_presses_install_and_survives_a_broker_restart() {
    let Some(binary) = mosquitto() else {
        eprintln!(
            "\n*** SKIPPED: mosquitto is not installed (bash .ci/run installs it: apt-get install mosquitto mosquitto-clients) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let port = free_port();
    let mut broker = start_broker(&binary, root, port);
    let (ha, seen) = observer(port);

    // Approve mode: the image is there from the start, but nothing moves until Install is pressed.
    // The device asks once at start and then only when told (Image Notify).
    std::fs::write(
        root.join("images/v2.ota"),
        synthetic_ota(0x1189, 0x0042, 2, 60_000),
    )
    .unwrap();
    let (_simulator, lines, pty) = start_simulator(
        &[
            "--device",
            "0x1189:0x42:1",
            "--radio-delay-ms",
            "2",
            "--query-interval",
            "3600",
        ],
        &root.join("sim.log"),
    );
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\
             [coordinator]\nport = \"{pty}\"\nflow_control = \"none\"\n\
             [catalog]\ncache_dir = \"{root}/cache\"\n\
             [[catalog.source]]\nkind = \"directory\"\npath = \"{root}/images\"\n\
             [policy]\ninstall = \"approve\"\n\
             [status]\nsocket = \"{root}/status.sock\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"otad-test\"\n",
            root = root.display(),
        ),
    )
    .unwrap();
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));

    // The retained discovery config, with what Home Assistant's MQTT update platform reads.
    let config_topic = format!("homeassistant/update/zigbee-otad/{DEVICE}/config");
    let discovery = wait_retained(port, &config_topic, root);
    let discovery: serde_json::Value = serde_json::from_slice(&discovery).unwrap();
    assert_eq!(discovery["device_class"], "firmware");
    assert_eq!(
        discovery["state_topic"],
        format!("zigbee-otad/device/{DEVICE}/state")
    );
    let command_topic = discovery["command_topic"].as_str().unwrap().to_owned();
    assert_eq!(discovery["payload_install"], "install");
    assert_eq!(discovery["availability_topic"], "zigbee-otad/availability");
    assert_eq!(discovery["device"]["identifiers"][0], IEEE);
    assert!(discovery["unique_id"].is_string());
    assert_eq!(
        retained(port, "zigbee-otad/availability", Duration::from_secs(5)).as_deref(),
        Some(&b"online"[..])
    );
    assert!(
        retained(
            port,
            "homeassistant/sensor/zigbee-otad/active_transfers/config",
            Duration::from_secs(5)
        )
        .is_some()
    );
    // The state shows the update available, waiting for approval: nothing is transferred.
    wait_state(
        &seen,
        root,
        "an update available",
        Duration::from_secs(20),
        |s| {
            s["installed_version"] == "0x00000001"
                && s["latest_version"] == "0x00000002"
                && s["in_progress"] == false
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        states(&seen, 0)
            .iter()
            .all(|(s, _)| s["in_progress"] == false),
        "a transfer started before Install was pressed"
    );

    // Install is pressed: approved, the device is told to ask, the transfer starts.
    ha.publish(&command_topic, QoS::AtLeastOnce, false, "install")
        .unwrap();

    // The transfer starts: the state shows the update available and in progress.
    let first = wait_state(
        &seen,
        root,
        "an update in progress",
        Duration::from_secs(30),
        |s| s["in_progress"] == true && percentage(s) > 0.0,
    );
    assert_eq!(first["installed_version"], "0x00000001");
    assert_eq!(first["latest_version"], "0x00000002");

    // The broker goes away mid-transfer (losing its retained messages) and comes back.
    let before_restart = wait_state(&seen, root, "5 % done", Duration::from_secs(60), |s| {
        s["in_progress"] == true && percentage(s) >= 5.0
    });
    let at_kill = percentage(&before_restart);
    assert!(
        at_kill < 80.0,
        "the transfer was too quick to restart the broker mid-way"
    );
    drop(broker);
    let seen_at_kill = seen.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(2));
    broker = start_broker(&binary, root, port);
    let after = wait_state(
        &seen,
        root,
        "progress after the restart",
        Duration::from_secs(30),
        |s| s["in_progress"] == true && percentage(s) > at_kill,
    );
    let states_after = states(&seen, seen_at_kill);
    let first_after = states_after
        .first()
        .map(|s| percentage(&s.0))
        .unwrap_or(0.0);
    assert!(
        first_after > at_kill,
        "the transfer did not move while the broker was down ({at_kill} % then {first_after} %)"
    );
    assert!(percentage(&after) > at_kill);
    assert!(
        retained(port, &config_topic, Duration::from_secs(10)).is_some(),
        "the discovery config was not published again after the restart"
    );

    // The end: installed equals latest.
    let line = wait_line(&lines, "1189:0042", Duration::from_secs(120));
    assert!(
        line.contains("Upgraded, verified"),
        "{line}\n{}",
        log_text(root)
    );
    let done = wait_state(&seen, root, "installed 2", Duration::from_secs(60), |s| {
        s["installed_version"] == "0x00000002"
    });
    assert_eq!(done["installed_version"], done["latest_version"]);
    assert_eq!(done["in_progress"], false);

    // Progress went out at most once per 1 % or 5 s, never per block (1200 blocks here).
    let all = states(&seen, 0);
    assert!(all.len() < 200, "{} state messages", all.len());
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.0["in_progress"] == true && b.0["in_progress"] == true {
            let moved = (percentage(&b.0) - percentage(&a.0)).abs();
            let waited = b.1.duration_since(a.1);
            assert!(
                moved >= 0.99 || waited >= Duration::from_millis(4500) || moved == 0.0,
                "progress {} -> {} after {waited:?}",
                percentage(&a.0),
                percentage(&b.0)
            );
        }
    }
    drop(broker);
}

/// `openssl` run in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a broker certificate it signs, for 127.0.0.1 and localhost. Returns
/// `(ca.pem, server.pem, server.key)` under `dir`.
pub(crate) fn make_ca_and_broker_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// `mqtts://` against Mosquitto's TLS listener with a private CA and a password: the daemon
/// publishes discovery and availability over TLS, Install works over it, and the password never
/// appears in the log. A second daemon that trusts another CA is refused by its own TLS check,
/// says so once, and keeps serving.
#[test]
fn mqtts_with_a_private_ca_and_a_password() {
    let Some(binary) = mosquitto() else {
        eprintln!(
            "\n*** SKIPPED: mosquitto is not installed (bash .ci/run installs it: apt-get install mosquitto mosquitto-clients) ***\n"
        );
        return;
    };
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!(
            "\n*** SKIPPED: openssl is not installed (bash .ci/run installs it), so no test CA can be made ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let (ca, cert, key) = make_ca_and_broker_cert(&root.join("pki"), "broker");
    let (other_ca, _, _) = make_ca_and_broker_cert(&root.join("other-pki"), "other");
    const PASSWORD: &str = "s3cret-never-logged";
    let passwd = root.join("passwd");
    std::fs::write(&passwd, "").unwrap();
    let made = Command::new("mosquitto_passwd")
        .args(["-b", passwd.to_str().unwrap(), "otad", PASSWORD])
        .output()
        .expect("mosquitto_passwd runs (package mosquitto)");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(root.join("mqtt-password"), format!("{PASSWORD}\n")).unwrap();

    // A plain loopback listener for the test's observer, a TLS listener with passwords for us.
    let (plain_port, tls_port) = (free_port(), free_port());
    let _broker = start_broker_with(
        &binary,
        root,
        tls_port,
        &format!(
            // As root, Mosquitto would drop to its own user, which cannot read the temp dir.
            "user root\nper_listener_settings true\npersistence false\n\
             listener {plain_port} 127.0.0.1\nallow_anonymous true\n\
             listener {tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
            passwd = passwd.display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
        ),
    );
    let (ha, seen) = observer(plain_port);

    std::fs::write(
        root.join("images/v2.ota"),
        synthetic_ota(0x1189, 0x0042, 2, 4_000),
    )
    .unwrap();
    let (_simulator, lines, pty) = start_simulator(
        &["--device", "0x1189:0x42:1", "--query-interval", "3600"],
        &root.join("sim.log"),
    );
    let write_config = |name: &str, ca_file: &Path, socket: &str, port_path: &str| {
        let config = root.join(name);
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{root}/state-{name}\"\n\
                 [coordinator]\nport = \"{port_path}\"\nflow_control = \"none\"\n\
                 [catalog]\ncache_dir = \"{root}/cache-{name}\"\n\
                 [[catalog.source]]\nkind = \"directory\"\npath = \"{root}/images\"\n\
                 [policy]\ninstall = \"approve\"\n\
                 [status]\nsocket = \"{root}/{socket}\"\n\
                 [mqtt]\nurl = \"mqtts://127.0.0.1:{tls_port}\"\nca_file = \"{ca}\"\n\
                 username = \"otad\"\npassword_file = \"{root}/mqtt-password\"\n\
                 client_id = \"otad-{socket}\"\n",
                root = root.display(),
                ca = ca_file.display(),
            ),
        )
        .unwrap();
        config
    };

    // The daemon that trusts the broker's CA.
    let config = write_config("good.toml", &ca, "good.sock", &pty);
    let notify = root.join("notify.sock");
    let messages = notify_listener(&notify);
    let _daemon = start_daemon(&config, &notify, &root.join("run.log"));
    wait_notify(&messages, "READY=1", Duration::from_secs(30));
    let config_topic = format!("homeassistant/update/zigbee-otad/{DEVICE}/config");
    let discovery = wait_retained(plain_port, &config_topic, root);
    let discovery: serde_json::Value = serde_json::from_slice(&discovery).unwrap();
    assert_eq!(discovery["device"]["identifiers"][0], IEEE);
    assert_eq!(
        retained(
            plain_port,
            "zigbee-otad/availability",
            Duration::from_secs(5)
        )
        .as_deref(),
        Some(&b"online"[..])
    );
    wait_state(
        &seen,
        root,
        "an update available",
        Duration::from_secs(20),
        |s| s["latest_version"] == "0x00000002",
    );
    // Install travels broker → TLS → daemon.
    ha.publish(
        discovery["command_topic"].as_str().unwrap(),
        QoS::AtLeastOnce,
        false,
        "install",
    )
    .unwrap();
    let line = wait_line(&lines, "1189:0042", Duration::from_secs(60));
    assert!(
        line.contains("Upgraded, verified"),
        "{line}\n{}",
        log_text(root)
    );
    let log = std::fs::read_to_string(root.join("run.log")).unwrap();
    assert!(log.contains("MQTT: Install pressed"), "{}", log_text(root));
    assert!(
        !log.contains(PASSWORD),
        "the MQTT password appears in the log"
    );

    // A daemon that trusts another CA: refused by its own certificate check, logged once at
    // warn, still serving (READY, status answers). It gets its own simulator.
    let (_simulator2, _lines2, pty2) = start_simulator(&["--devices", "1"], &root.join("sim2.log"));
    let config = write_config("bad.toml", &other_ca, "bad.sock", &pty2);
    let notify2 = root.join("notify2.sock");
    let messages2 = notify_listener(&notify2);
    let _daemon2 = start_daemon(&config, &notify2, &root.join("bad.log"));
    wait_notify(&messages2, "READY=1", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let log = std::fs::read_to_string(root.join("bad.log")).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("MQTT: broker unreachable")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no TLS refusal logged:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"),
        "{refused}"
    );
    assert!(!refused.contains(PASSWORD));
    let status = Command::new(crate::daemon::BIN)
        .args(["status", "--json", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}
