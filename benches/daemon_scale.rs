//! Whole-host measurements from outside the host process (issue 7: side-by-side, scale, idle).
//!
//! This binary runs the simulated coordinator ([`zigbee_otad::sim`], the code behind
//! `zigbee-otad simulate`: the EZSP NCP, or with `--protocol znp` the Z-Stack stick) in-process,
//! puts a byte relay between its pty and a second pty, and starts the host under test as a
//! child process on that second pty:
//!
//! - `--host otad`: `zigbee-otad run` with a generated configuration (the release binary,
//!   `$OTAD_BIN` or `target/release/zigbee-otad`);
//! - `--host zigpy`: `benches/compare/zigpy_host.py` (zigpy + bellows, or zigpy + zigpy-znp
//!   with `--protocol znp`, from the package registry) run by `$ZIGPY_PYTHON`;
//!   `benches/compare/run.sh` sets that up.
//!
//! The relay decodes the line in both directions (ASH and EZSP, or MT: `scale/wire.rs`) and
//! timestamps every OTA Upgrade cluster message: a device's request (`incomingMessageHandler`
//! or `AF.IncomingMsg`, cluster 0x0019) is matched with the host's next unicast of that
//! cluster to the same node (`sendUnicast`, or `AF.DataRequest(Ext)`). That interval is the host's
//! serial-in -> serial-out latency (it includes the kernel's pty hand-over both ways, so it is
//! an upper bound). Host CPU comes from `/proc/PID/stat` (utime + stime), memory from
//! `/proc/PID/status` (VmHWM, VmRSS), wake-ups from the context-switch counters of every thread
//! (`/proc/PID/task/*/status`). The simulator's own CPU is not counted: it runs in this process.
//!
//! `cargo bench --bench daemon_scale -- --host otad --devices 250 --image-size 16384`
//! `cargo bench --bench daemon_scale -- --host otad --idle 60`
//! `cargo bench --bench daemon_scale -- --host otad --devices 10 --bulk-mb 210 --sighup-every-ms 1000`
//!
//! The last one is the stall measurement (issue 12): the image folder also holds `--bulk-mb`
//! of other OTA files, which every reload reads and parses, and the host gets a SIGHUP (a
//! configuration reload and a rescan of every source) every second while the devices
//! download. The report counts the DATA frames the host sent again (`host_ash_retransmissions`,
//! ASH's reTx flag, read by the relay) and gives the transfer time to compare with a quiet run.
//!
//! For `--host otad` the report also gives the daemon's own answer latency from inside (the
//! `latency_us` object of its status snapshot, read over the status socket at the end): request
//! read from the port -> the OTA server's answer ready (`inside_host_us_*`), and -> the
//! `write` carrying its `sendUnicast` returned (`inside_serial_us_*`).
//!
//! Prints a report and, with `--json FILE`, writes the figures for `benches/compare/run.sh`.

#![allow(clippy::disallowed_methods, clippy::indexing_slicing)] // a measuring harness: reads the clock, indexes its own buffers and JSON

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use zigbee_otad::ezsp::EzspVersion;
use zigbee_otad::ezsp::types::{Ieee, JoinMethod, NetworkParameters, Nwk};
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId,
};
use zigbee_otad::sim::device::DeviceEvent;
use zigbee_otad::sim::{
    SimConfig, SimDeviceSpec, SimEvent, SimZnpConfig, UpgradeOutcome, run_simulator,
    run_znp_simulator,
};

#[path = "scale/wire.rs"]
mod wire;
use wire::{Seen, Watch};
/// ZCL command ids of the client -> server OTA requests.
const QUERY_NEXT_IMAGE_REQUEST: u8 = 0x01;
const IMAGE_BLOCK_REQUEST: u8 = 0x03;
/// The simulated devices' manufacturer (LEDVANCE) and image type; the served version.
const MANUFACTURER: u16 = 0x1189;
const IMAGE_TYPE: u16 = 0x0001;
const TARGET_VERSION: u32 = 0x0000_0002;

#[derive(Debug, Parser)]
#[command(about = "zigbee-otad host measurements against the simulated coordinator")]
struct Args {
    /// The host under test: `otad` or `zigpy`.
    #[arg(long, default_value = "otad")]
    host: String,
    /// The simulated coordinator: `ezsp` (EmberZNet NCP; zigpy drives it with bellows) or
    /// `znp` (Z-Stack 3.x.0 stick; zigpy drives it with zigpy-znp).
    #[arg(long, default_value = "ezsp")]
    protocol: String,
    /// Simulated devices that all upgrade at once.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Bytes of firmware payload in the served OTA file.
    #[arg(long, default_value_t = 65_536)]
    image_size: usize,
    /// Largest block the devices ask for.
    #[arg(long, default_value_t = 50)]
    max_data: u8,
    /// One-way radio delay of the simulated network, milliseconds.
    #[arg(long, default_value_t = 2)]
    radio_delay_ms: u64,
    /// ASH frames from the host that the simulated NCP never receives (0.0..=1.0; its seeded
    /// fault generator, the same as `simulate --loss`).
    #[arg(long, default_value_t = 0.0)]
    loss_from_host: f64,
    /// ASH frames from the simulated NCP that never reach the host (0.0..=1.0).
    #[arg(long, default_value_t = 0.0)]
    loss_to_host: f64,
    /// When devices first query, seconds after the simulator starts.
    #[arg(long, default_value_t = 3)]
    first_query_s: u64,
    /// zigbee-otad's `max_concurrent_transfers` (1..=64).
    #[arg(long, default_value_t = 64)]
    concurrent: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Measure an idle host instead: no devices, this many seconds after start-up settles.
    #[arg(long)]
    idle: Option<u64>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the scratch directory (configuration, host logs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Passed to the host as `--debug` (zigpy) or log level `debug` (zigbee-otad).
    #[arg(long)]
    debug: bool,
    /// Megabytes of other OTA files (not served to the devices) in the image folder.
    #[arg(long, default_value_t = 0)]
    bulk_mb: usize,
    /// Send the host a SIGHUP this often while the devices download (0: never).
    #[arg(long, default_value_t = 0)]
    sighup_every_ms: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// A network the simulated NCP already holds, so every host resumes it and none must form one.
fn held_network() -> NetworkParameters {
    NetworkParameters {
        extended_pan_id: Ieee(0xDDDD_EEEE_0000_1111),
        pan_id: 0x1A62,
        radio_tx_power: 8,
        radio_channel: 15,
        join_method: JoinMethod::USE_MAC_ASSOCIATION,
        nwk_manager_id: Nwk::COORDINATOR,
        nwk_update_id: 0,
        channels: 1 << 15,
    }
}

/// A synthetic OTA file: one upgrade-image sub-element of pseudo-random bytes.
fn synthetic_ota_file(payload_len: usize) -> Vec<u8> {
    let mut header = OtaHeader::new(
        ManufacturerCode(MANUFACTURER),
        ImageType(IMAGE_TYPE),
        FileVersion(TARGET_VERSION),
    );
    header.set_header_string("zigbee-otad benchmark image");
    let mut state = 0x9E37_79B9u32;
    let payload = (0..payload_len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, payload)
        .build()
}

fn otad_config(args: &Args, root: &Path, port: &str, log_level: &str) -> String {
    let concurrent = args.concurrent;
    let protocol = &args.protocol;
    format!(
        r#"state_dir = "{root}/state"

[coordinator]
protocol = "{protocol}"
port = "{port}"
baudrate = 115200
flow_control = "none"

[server]
max_concurrent_transfers = {concurrent}
idle_timeout = "2m"

[catalog]
cache_dir = "{root}/cache"

[[catalog.source]]
kind = "directory"
name = "bench-images"
path = "{root}/images"

[status]
socket = "{root}/status.sock"

[log]
level = "{log_level}"
"#,
        root = root.display()
    )
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the host under test on `port`.
fn spawn_host(args: &Args, root: &Path, port: &str) -> anyhow::Result<Child> {
    let mut command = match args.host.as_str() {
        "otad" => {
            let config = root.join("zigbee-otad.toml");
            // The stall runs log at info: each SIGHUP's reload is then seen in host.err.
            let level = match (args.debug, args.sighup_every_ms > 0) {
                (true, _) => "debug",
                (false, true) => "info",
                (false, false) => "warn",
            };
            std::fs::write(&config, otad_config(args, root, port, level))?;
            let binary = std::env::var_os("OTAD_BIN").map_or_else(
                || manifest_dir().join("target/release/zigbee-otad"),
                PathBuf::from,
            );
            if !binary.is_file() {
                bail!(
                    "{} not found: run `cargo build --release` or set OTAD_BIN",
                    binary.display()
                );
            }
            let mut command = Command::new(binary);
            command.arg("run").arg("--config").arg(config);
            command
        }
        "zigpy" => {
            let python = std::env::var_os("ZIGPY_PYTHON").context(
                "set ZIGPY_PYTHON to a python with zigpy and bellows (see benches/compare/run.sh)",
            )?;
            let mut command = Command::new(python);
            command
                .arg(manifest_dir().join("benches/compare/zigpy_host.py"))
                .arg("--port")
                .arg(port)
                .arg("--images")
                .arg(root.join("images"))
                .arg("--devices")
                .arg(root.join("devices.json"))
                .arg("--database")
                .arg(root.join("zigbee.db"))
                .arg("--radio")
                .arg(if args.protocol == "znp" {
                    "znp"
                } else {
                    "bellows"
                });
            if args.debug {
                command.arg("--debug");
            }
            command
        }
        other => bail!("unknown host {other:?} (otad or zigpy)"),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(root.join("host.log"))?))
        .stderr(Stdio::from(std::fs::File::create(root.join("host.err"))?));
    Ok(command.spawn()?)
}

/// What `/proc` says about the host process at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_ticks: u64,
    system_ticks: u64,
    vm_hwm_kib: u64,
    vm_rss_kib: u64,
    context_switches: u64,
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let system_ticks = fields.get(12).copied().unwrap_or(0);
    let cpu_ticks = fields.get(11).copied().unwrap_or(0) + system_ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(ProcSample {
        cpu_ticks,
        system_ticks,
        vm_hwm_kib: status_field(&status, "VmHWM"),
        vm_rss_kib: status_field(&status, "VmRSS"),
        context_switches: thread_switches(pid).values().sum(),
    })
}

/// Context switches per thread, keyed by "TID name".
fn thread_switches(pid: u32) -> HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let name = status
                .lines()
                .next()?
                .strip_prefix("Name:")?
                .trim()
                .to_owned();
            let count = status_field(&status, "voluntary_ctxt_switches")
                + status_field(&status, "nonvoluntary_ctxt_switches");
            Some((
                format!("{} {name}", task.file_name().to_string_lossy()),
                count,
            ))
        })
        .collect()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// What the relay saw.
#[derive(Debug, Default)]
struct Traffic {
    /// Per device node id: when its outstanding OTA request reached the host, and whether the
    /// host then had EZSP commands awaiting the NCP's response.
    pending: HashMap<u16, (Instant, bool)>,
    /// Host latencies of answered requests.
    latencies: Vec<Duration>,
    /// The same, only for requests that arrived while no EZSP command awaited a response (the
    /// host was free to send at once).
    latencies_ncp_idle: Vec<Duration>,
    /// Host commands awaiting the coordinator's response (EZSP sequence numbers; ZNP
    /// subsystem and command id).
    awaiting_response: HashSet<u16>,
    /// `sendUnicast` commands the NCP refused (e.g. MAX_MESSAGE_LIMIT_REACHED).
    sends_refused: u64,
    /// Image Block Requests delivered to the host.
    block_requests: u64,
    first_block_request: Option<Instant>,
    first_query: Option<Instant>,
    /// DATA frames the host sent with ASH's reTx flag set (its own retransmissions).
    host_ash_retransmissions: u64,
    /// Host -> NCP and NCP -> host bytes.
    bytes_to_host: u64,
    bytes_from_host: u64,
}

/// The ZCL command id of an OTA cluster frame (after an optional manufacturer code).
fn zcl_command_id(frame: &[u8]) -> Option<u8> {
    let control = *frame.first()?;
    let index = if control & 0x04 != 0 { 4 } else { 2 };
    frame.get(index).copied()
}

/// Forwards bytes between the simulator's pty and the host's pty until cancelled, recording
/// OTA request timings in `traffic`.
async fn relay(
    mut ncp_side: SerialStream,
    mut host_side: SerialStream,
    mut from_ncp_watch: Watch,
    mut from_host_watch: Watch,
    traffic: Arc<std::sync::Mutex<Traffic>>,
) {
    let mut from_ncp = [0u8; 4096];
    let mut from_host = [0u8; 4096];
    loop {
        tokio::select! {
            read = ncp_side.read(&mut from_ncp) => {
                let Ok(n) = read else { return };
                if n == 0 { return; }
                let bytes = &from_ncp[..n];
                if host_side.write_all(bytes).await.is_err() { return; }
                let now = Instant::now();
                let seen = from_ncp_watch.observe(bytes);
                let mut t = traffic.lock().unwrap_or_else(|e| e.into_inner());
                t.bytes_to_host += n as u64;
                for fact in seen {
                    match fact {
                        Seen::Response { key, refused } => {
                            t.awaiting_response.remove(&key);
                            if refused {
                                t.sends_refused += 1;
                            }
                        }
                        Seen::OtaFromDevice { sender, zcl } => {
                            match zcl_command_id(&zcl) {
                                Some(IMAGE_BLOCK_REQUEST) => {
                                    t.block_requests += 1;
                                    t.first_block_request.get_or_insert(now);
                                }
                                Some(QUERY_NEXT_IMAGE_REQUEST) => {
                                    t.first_query.get_or_insert(now);
                                }
                                _ => {}
                            }
                            let ncp_idle = t.awaiting_response.is_empty();
                            t.pending.entry(sender).or_insert((now, ncp_idle));
                        }
                        _ => {}
                    }
                }
            }
            read = host_side.read(&mut from_host) => {
                let now = Instant::now();
                let Ok(n) = read else { return };
                if n == 0 { return; }
                let bytes = &from_host[..n];
                if ncp_side.write_all(bytes).await.is_err() { return; }
                let seen = from_host_watch.observe(bytes);
                let mut t = traffic.lock().unwrap_or_else(|e| e.into_inner());
                t.bytes_from_host += n as u64;
                for fact in seen {
                    match fact {
                        Seen::Request(key) => {
                            t.awaiting_response.insert(key);
                        }
                        Seen::Retransmission => t.host_ash_retransmissions += 1,
                        Seen::OtaToDevice { destination } => {
                            if let Some((since, ncp_idle)) = t.pending.remove(&destination) {
                                t.latencies.push(now - since);
                                if ncp_idle {
                                    t.latencies_ncp_idle.push(now - since);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn run(args: Args) -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new().prefix("otad-scale-").tempdir()?;
    let root = scratch.path().to_path_buf();
    std::fs::create_dir_all(root.join("images"))?;
    let devices = if args.idle.is_some() { 0 } else { args.devices };
    let ota_file = synthetic_ota_file(args.image_size);
    std::fs::write(root.join("images/bench.ota"), &ota_file)?;
    write_bulk_images(&root.join("images"), args.bulk_mb)?;

    let mut sim = SimConfig::default();
    sim.ncp.network = Some(held_network());
    sim.radio_delay = Duration::from_millis(args.radio_delay_ms);
    sim.ncp.faults.drop_from_host = args.loss_from_host;
    sim.ncp.faults.drop_to_host = args.loss_to_host;
    sim.first_query_after = Duration::from_secs(args.first_query_s);
    sim.images
        .insert((MANUFACTURER, IMAGE_TYPE), Arc::new(ota_file.clone()));
    sim.devices.extend(std::iter::repeat_n(
        SimDeviceSpec {
            manufacturer_code: MANUFACTURER,
            image_type: IMAGE_TYPE,
            file_version: 1,
            hardware_version: None,
            max_data_size: args.max_data,
            identity: Default::default(),
        },
        devices,
    ));
    let device_list: Vec<_> = sim
        .device_configs()
        .iter()
        .map(|d| serde_json::json!({"ieee": d.ieee.to_string(), "nwk": d.nwk.0}))
        .collect();
    std::fs::write(
        root.join("devices.json"),
        serde_json::to_vec(&serde_json::json!({
            "manufacturer_code": MANUFACTURER,
            "image_type": IMAGE_TYPE,
            "devices": device_list,
        }))?,
    )?;
    let (mut simulator, watches) = if args.protocol == "znp" {
        let simulator = run_znp_simulator(sim, SimZnpConfig::default()).await?;
        (simulator, (Watch::znp(), Watch::znp()))
    } else {
        let version = EzspVersion::new(sim.ncp.ezsp_version)?;
        let simulator = run_simulator(sim).await?;
        (simulator, (Watch::ezsp(version), Watch::ezsp(version)))
    };
    let ncp_side = tokio_serial::new(simulator.path(), 115_200).open_native_async()?;
    let (host_master, host_slave) = SerialStream::pair()?;
    let host_port = tokio_serial::SerialPort::name(&host_slave).unwrap_or_default();
    let traffic = Arc::new(std::sync::Mutex::new(Traffic::default()));
    let relay_task = tokio::spawn(relay(
        ncp_side,
        host_master,
        watches.0,
        watches.1,
        traffic.clone(),
    ));

    let load_at_start = load_average();
    let started = Instant::now();
    let mut child = spawn_host(&args, &root, &host_port)?;
    let ticks = clock_ticks_per_second();

    let report = if let Some(idle_seconds) = args.idle {
        measure_idle(&mut child, idle_seconds, ticks, &traffic).await
    } else {
        measure_upgrades(
            &args,
            &mut child,
            devices,
            ota_file.len(),
            ticks,
            started,
            &mut simulator,
            &traffic,
        )
        .await
    };
    let report = match report {
        Ok(mut report) if args.host == "otad" && args.idle.is_none() => {
            add_inside_latency(&mut report, &root.join("status.sock")).await;
            Ok(report)
        }
        other => other,
    };
    let mut report = match report {
        Ok(report) => report,
        Err(error) => {
            let _ = child.kill();
            print_host_log(&root);
            return Err(error);
        }
    };
    report["host"] = args.host.clone().into();
    report["protocol"] = args.protocol.clone().into();
    report["load_average_start"] = load_at_start.into();
    report["load_average_end"] = load_average().into();
    report["cpus"] = std::thread::available_parallelism()
        .map_or(0, |n| n.get())
        .into();

    let _ = child.kill();
    let _ = child.wait();
    relay_task.abort();
    drop(host_slave);
    simulator.shutdown().await;

    if args.keep {
        let kept = scratch.keep();
        eprintln!("scratch directory kept: {}", kept.display());
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if report["all_upgraded"] == false {
        print_host_log(&root);
        bail!("not every device upgraded");
    }
    Ok(())
}

/// Writes `megabytes` of valid OTA files (15 MB each at most, another image type than the
/// devices') into `folder`: what a reload must read and parse.
fn write_bulk_images(folder: &Path, megabytes: usize) -> anyhow::Result<()> {
    const PER_FILE: usize = 15_000_000;
    let mut left = megabytes * 1_000_000;
    let mut index = 0u16;
    while left > 0 {
        let size = left.min(PER_FILE);
        let mut payload = vec![0u8; size];
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
        }
        let mut header = OtaHeader::new(
            ManufacturerCode(MANUFACTURER),
            ImageType(0x0100 + index),
            FileVersion(2),
        );
        header.set_header_string("bulk");
        let file = OtaFileBuilder::new(header)
            .sub_element(TagId::UPGRADE_IMAGE, payload)
            .build();
        std::fs::write(folder.join(format!("bulk-{index}.ota")), file)?;
        left -= size;
        index += 1;
    }
    Ok(())
}

fn print_host_log(root: &Path) {
    let log = std::fs::read_to_string(root.join("host.err")).unwrap_or_default();
    let tail: Vec<_> = log.lines().rev().take(30).collect();
    eprintln!("host stderr (last lines):");
    for line in tail.iter().rev() {
        eprintln!("  {line}");
    }
}

/// Sleeps, failing on Ctrl-C so that the caller stops the host.
async fn sleep_or_interrupt(duration: Duration) -> anyhow::Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(duration) => Ok(()),
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// Samples the host, failing when it has exited.
fn sample_running(child: &mut Child) -> anyhow::Result<ProcSample> {
    if let Some(status) = child.try_wait()? {
        bail!("the host exited early ({status})");
    }
    sample(child.id())
}

#[allow(clippy::too_many_arguments)]
async fn measure_upgrades(
    args: &Args,
    child: &mut Child,
    devices: usize,
    file_len: usize,
    ticks: f64,
    started: Instant,
    simulator: &mut zigbee_otad::sim::Simulator,
    traffic: &Arc<std::sync::Mutex<Traffic>>,
) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_s);
    let mut at_first_block: Option<ProcSample> = None;
    let mut upgraded = 0usize;
    let mut failed = Vec::new();
    let mut retries = 0u64;
    let mut waits = 0u64;
    let mut peak_rss_kib = 0u64;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    let hup_period = Duration::from_millis(args.sighup_every_ms.max(1));
    let mut hup = tokio::time::interval_at(tokio::time::Instant::now() + hup_period, hup_period);
    let mut sighups = 0u64;
    while upgraded + failed.len() < devices {
        tokio::select! {
            _ = hup.tick(), if args.sighup_every_ms > 0 => {
                let sent = Command::new("kill")
                    .args(["-HUP", &child.id().to_string()])
                    .status()?;
                if sent.success() {
                    sighups += 1;
                }
            }
            event = simulator.events.recv() => match event {
                Some(SimEvent::Device { event: DeviceEvent::UpgradeEnded(report), .. }) => {
                    retries += u64::from(report.retries);
                    waits += u64::from(report.waits);
                    if report.outcome == UpgradeOutcome::Upgraded && report.verified {
                        upgraded += 1;
                    } else {
                        failed.push(report.to_string());
                    }
                }
                Some(_) => {}
                None => bail!("the simulator stopped"),
            },
            _ = poll.tick() => {
                let now_sample = sample_running(child)?;
                peak_rss_kib = peak_rss_kib.max(now_sample.vm_rss_kib);
                if at_first_block.is_none() {
                    let first = traffic.lock().unwrap_or_else(|e| e.into_inner()).first_block_request;
                    if first.is_some() {
                        at_first_block = Some(now_sample);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    }
    let finished = Instant::now();
    let end = sample_running(child)?;
    let begin = at_first_block.unwrap_or_default();
    let t = traffic.lock().unwrap_or_else(|e| e.into_inner());
    let transfer_start = t.first_block_request.unwrap_or(finished);
    let transfer_seconds = (finished - transfer_start).as_secs_f64();
    let mut latencies = t.latencies.clone();
    latencies.sort_unstable();
    let mut latencies_ncp_idle = t.latencies_ncp_idle.clone();
    latencies_ncp_idle.sort_unstable();
    let served_bytes = (upgraded * file_len) as f64;
    let transfer_cpu = (end.cpu_ticks.saturating_sub(begin.cpu_ticks)) as f64 / ticks;
    let transfer_system = (end.system_ticks.saturating_sub(begin.system_ticks)) as f64 / ticks;
    let transfer_switches = end.context_switches.saturating_sub(begin.context_switches);
    Ok(serde_json::json!({
        "devices": devices,
        "all_upgraded": upgraded == devices,
        "upgraded_verified": upgraded,
        "failed": failed,
        "ota_file_bytes": file_len,
        "served_bytes": served_bytes,
        "max_data": args.max_data,
        "radio_delay_ms": args.radio_delay_ms,
        "loss_from_host": args.loss_from_host,
        "loss_to_host": args.loss_to_host,
        "wall_s_host_start_to_done": (finished - started).as_secs_f64(),
        "wall_s_first_block_to_done": transfer_seconds,
        "block_requests": t.block_requests,
        "blocks_per_s": t.block_requests as f64 / transfer_seconds.max(1e-9),
        "device_retries": retries,
        "device_waits": waits,
        "cpu_s_total": end.cpu_ticks as f64 / ticks,
        "cpu_s_transfer": transfer_cpu,
        "cpu_s_per_mb_served": transfer_cpu / (served_bytes / 1e6).max(1e-9),
        "cpu_system_s_transfer": transfer_system,
        "cpu_us_per_block": transfer_cpu * 1e6 / (t.block_requests as f64).max(1.0),
        "context_switches_transfer": transfer_switches,
        "context_switches_per_block": transfer_switches as f64 / (t.block_requests as f64).max(1.0),
        "vm_hwm_kib": end.vm_hwm_kib,
        "vm_rss_kib_end": end.vm_rss_kib,
        "vm_rss_kib_peak_sampled": peak_rss_kib,
        "requests_answered": latencies.len(),
        "latency_us_p50": micros(percentile(&latencies, 0.50)),
        "latency_us_p99": micros(percentile(&latencies, 0.99)),
        "latency_us_max": micros(latencies.last().copied().unwrap_or_default()),
        "requests_answered_ncp_idle": latencies_ncp_idle.len(),
        "latency_ncp_idle_us_p50": micros(percentile(&latencies_ncp_idle, 0.50)),
        "latency_ncp_idle_us_p99": micros(percentile(&latencies_ncp_idle, 0.99)),
        "latency_ncp_idle_us_max": micros(latencies_ncp_idle.last().copied().unwrap_or_default()),
        "sends_refused_by_ncp": t.sends_refused,
        "host_ash_retransmissions": t.host_ash_retransmissions,
        "sighups_sent": sighups,
        "bulk_mb": args.bulk_mb,
        "bytes_ncp_to_host": t.bytes_to_host,
        "bytes_host_to_ncp": t.bytes_from_host,
    }))
}

/// Adds the daemon's own latency figures (its status snapshot's `latency_us`) to the report.
async fn add_inside_latency(report: &mut serde_json::Value, socket: &Path) {
    use zigbee_otad::daemon::socket::{Request, query};
    // The daemon refreshes its snapshot 250 ms after a change.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let latency = match query(socket, &Request::Status).await {
        Ok(response) => response.status.and_then(|s| s.latency_us),
        Err(error) => {
            eprintln!("status socket: {error}");
            None
        }
    };
    let Some(latency) = latency else {
        eprintln!("the daemon reported no latency figures");
        return;
    };
    for (prefix, summary) in [
        ("inside_host_us", latency.host),
        ("inside_serial_us", latency.serial_in_to_out),
    ] {
        report[format!("{prefix}_count")] = summary.count.into();
        report[format!("{prefix}_p50")] = summary.p50_us.into();
        report[format!("{prefix}_p99")] = summary.p99_us.into();
        report[format!("{prefix}_max")] = summary.max_us.into();
    }
}

async fn measure_idle(
    child: &mut Child,
    seconds: u64,
    ticks: f64,
    traffic: &Arc<std::sync::Mutex<Traffic>>,
) -> anyhow::Result<serde_json::Value> {
    // Start-up: let the host connect and settle before counting.
    sleep_or_interrupt(Duration::from_secs(10)).await?;
    let traffic_before = {
        let t = traffic.lock().unwrap_or_else(|e| e.into_inner());
        t.bytes_to_host + t.bytes_from_host
    };
    let begin = sample_running(child)?;
    let begin_threads = thread_switches(child.id());
    let mut peak_rss_kib = begin.vm_rss_kib;
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        sleep_or_interrupt(Duration::from_millis(500)).await?;
        peak_rss_kib = peak_rss_kib.max(sample_running(child)?.vm_rss_kib);
    }
    let end = sample_running(child)?;
    let traffic_after = {
        let t = traffic.lock().unwrap_or_else(|e| e.into_inner());
        t.bytes_to_host + t.bytes_from_host
    };
    let switches = end.context_switches.saturating_sub(begin.context_switches);
    let per_thread: serde_json::Map<String, serde_json::Value> = thread_switches(child.id())
        .into_iter()
        .map(|(thread, count)| {
            let before = begin_threads.get(&thread).copied().unwrap_or(0);
            (thread, count.saturating_sub(before).into())
        })
        .collect();
    Ok(serde_json::json!({
        "idle_seconds": seconds,
        "context_switches": switches,
        "wakeups_per_s": switches as f64 / seconds as f64,
        "context_switches_per_thread": per_thread,
        "cpu_s": (end.cpu_ticks.saturating_sub(begin.cpu_ticks)) as f64 / ticks,
        "vm_rss_kib_end": end.vm_rss_kib,
        "vm_rss_kib_peak_sampled": peak_rss_kib,
        "vm_hwm_kib": end.vm_hwm_kib,
        "serial_bytes_while_idle": traffic_after - traffic_before,
    }))
}
