//! `simulate`: only the simulated coordinator (EZSP over ASH per UG101/UG100, or TI Z-Stack ZNP)
//! on a pseudo-terminal, with simulated OTA client devices and fault injection (ARCHITECTURE.md,
//! "Command line").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zigbee_otad::daemon::logging;
use zigbee_otad::ota::OtaFile;
use zigbee_otad::sim::device::DeviceEvent;
use zigbee_otad::sim::{
    HostileSpec, SimConfig, SimDeviceSpec, SimEvent, SimZnpConfig, ZnpNetwork, run_simulator,
    run_znp_simulator,
};

use crate::{SimProtocol, runtime};

/// The arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// Which stick to simulate: a Silicon Labs EmberZNet NCP (ezsp) or a TI Z-Stack 3.x.0
    /// coordinator (znp).
    #[arg(long, value_enum, default_value_t = SimProtocol::Ezsp)]
    protocol: SimProtocol,
    /// Add N devices of the default kind (LEDVANCE 0x1189, image type 0x0001, version 1).
    #[arg(long)]
    devices: Option<usize>,
    /// One simulated device: MFR:TYPE:VERSION[:HW[:MAXDATA]] (decimal or 0x-hex), then
    /// optionally ,model=TEXT ,manufacturer_name=TEXT ,power=mains|battery (what its Basic
    /// cluster answers; a battery device answers only shortly after it sent something);
    /// repeatable.
    #[arg(
        long = "device",
        value_name = "MFR:TYPE:VERSION[:HW[:MAXDATA]][,model=TEXT][,manufacturer_name=TEXT][,power=mains|battery]"
    )]
    device: Vec<SimDeviceSpec>,
    /// Also make PATH a symlink to the pty.
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
    /// The EZSP protocol version the simulated NCP speaks (8..=17: EmberZNet 6.10 to 8.2).
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(u8).range(8..=17))]
    ezsp_version: u8,
    /// An OTA file the devices must receive byte for byte (matched by manufacturer and
    /// image type); repeatable. Without it devices check the OTA header and size only.
    #[arg(long, value_name = "FILE")]
    image: Vec<PathBuf>,
    /// Start with an empty stick (no network stored; the host must form one). Without it
    /// the stick holds a formed network (PAN 0x1A62, extended PAN DD:..:DD, channel 11,
    /// Zigbee2MQTT's default key) that its devices have joined; with `--protocol znp` the
    /// stick holds PAN 0x1A62, extended PAN DD:..:DD, channel 15.
    #[arg(long)]
    fresh: bool,
    /// A hostile device (after the honest ones; repeatable): squat:MFR:TYPE:VERSION[:SECS]
    /// claims to be Bosch and asks for one block of that image every SECS (default 540);
    /// pages:MFR:TYPE:VERSION asks for 65,535-byte pages at 0 ms spacing, forever;
    /// spoof[:MS[:MFR]] sends a query from a new made-up address with a random manufacturer
    /// and image type every MS (default 250; with MFR: that manufacturer, image types 0..16),
    /// leaving each address at once so the NCP cannot name it; spoof-named also gives each
    /// address a made-up IEEE address the NCP learns.
    #[arg(
        long = "hostile",
        value_name = "squat:MFR:TYPE:VERSION[:SECS]|pages:MFR:TYPE:VERSION|spoof[-named][:MS[:MFR]]"
    )]
    hostile: Vec<HostileSpec>,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Fault injection and timing for `simulate` (probabilities are 0.0..=1.0 per frame or message).
#[derive(Debug, clap::Args)]
pub(crate) struct FaultArgs {
    /// ASH frames lost, in each direction.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    loss: f64,
    /// ASH frames with one byte damaged, in each direction.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    corrupt: f64,
    /// Unicasts that never reach the device (DELIVERY_FAILED).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    delivery_failure: f64,
    /// Delivery reports that never come.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    lost_report: f64,
    /// The NCP resets by itself once, after handing this many device messages to the host.
    #[arg(long, value_name = "MESSAGES")]
    reset_after: Option<u64>,
    /// The NCP resets by itself whenever this many seconds have passed since its last reset.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    reset_every: Option<std::time::Duration>,
    /// Unplug the simulated stick this many seconds after start: the pty vanishes (and the
    /// `--link`), the NCP loses power; the devices keep their state.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    unplug_after: Option<std::time::Duration>,
    /// How long the stick stays unplugged before a new pty appears (at the same `--link`).
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "3", requires = "unplug_after")]
    unplug_for: std::time::Duration,
    /// Seed of the fault generator (a failing run replays with the same seed).
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
    /// One-way radio delay between the NCP and each device, in milliseconds.
    #[arg(long, default_value_t = 10)]
    radio_delay_ms: u64,
    /// How often idle devices ask for an image, in seconds.
    #[arg(long, default_value_t = 60)]
    query_interval: u64,
    /// Every device also reports an attribute (Basic ApplicationVersion) this often, in seconds.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    report_every: Option<std::time::Duration>,
}

fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(format!("{value} is not a number of seconds in (0, 86400]"))
    }
}

fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a probability in 0.0..=1.0"))
    }
}

/// Runs `simulate` until Ctrl-C or SIGTERM.
pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let SimulateArgs {
        protocol,
        devices,
        device,
        link,
        ezsp_version,
        image,
        fresh,
        hostile,
        faults,
    } = args;
    let mut config = SimConfig {
        devices: device,
        hostile,
        link_path: link,
        query_interval: std::time::Duration::from_secs(faults.query_interval.max(1)),
        report_every: faults.report_every,
        ..SimConfig::default()
    };
    config.ncp.ezsp_version = ezsp_version;
    if !fresh {
        config.ncp = config.ncp.holding_network();
    }
    config.radio_delay = std::time::Duration::from_millis(faults.radio_delay_ms);
    let f = &mut config.ncp.faults;
    f.seed = faults.seed;
    f.drop_to_host = faults.loss;
    f.drop_from_host = faults.loss;
    f.corrupt_to_host = faults.corrupt;
    f.corrupt_from_host = faults.corrupt;
    f.delivery_failure = faults.delivery_failure;
    f.lost_delivery_report = faults.lost_report;
    f.reset_after_messages = faults.reset_after;
    f.reset_every = faults.reset_every;
    config.unplug = faults.unplug_after.map(|after| zigbee_otad::sim::Unplug {
        after,
        gap: faults.unplug_for,
    });
    config.add_default_devices(devices.unwrap_or(0));
    for path in image {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = OtaFile::parse(bytes)
            .with_context(|| format!("{} is not a usable OTA file", path.display()))?;
        let header = file.header();
        config.images.insert(
            (header.manufacturer_code.0, header.image_type.0),
            std::sync::Arc::new(file.image_bytes().to_vec()),
        );
    }
    logging::init(zigbee_otad::config::LogLevel::Warn);
    let znp = (protocol == SimProtocol::Znp).then(|| SimZnpConfig {
        network: (!fresh).then(ZnpNetwork::default),
        faults: config.ncp.faults.clone(),
        ..SimZnpConfig::default()
    });
    runtime()?.block_on(simulate(config, znp))
}

async fn simulate(config: SimConfig, znp: Option<SimZnpConfig>) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let device_count = config.devices.len();
    let hostile: Vec<String> = config.hostile.iter().map(ToString::to_string).collect();
    let kind = if znp.is_some() { "Z-Stack ZNP" } else { "EZSP" };
    let mut simulator = match znp {
        Some(znp) => run_znp_simulator(config, znp).await?,
        None => run_simulator(config).await?,
    };
    println!("{}", simulator.path());
    std::io::stdout().flush()?;
    eprintln!(
        "simulated {kind} coordinator with {device_count} device(s) on {}; Ctrl-C stops it",
        simulator.path()
    );
    if !hostile.is_empty() {
        eprintln!("hostile devices: {}", hostile.join(", "));
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            event = simulator.events.recv() => match event {
                Some(SimEvent::Device { event: DeviceEvent::UpgradeEnded(report), .. }) => {
                    println!("{report}");
                    std::io::stdout().flush()?;
                }
                Some(SimEvent::Reset { unsolicited }) => {
                    eprintln!("NCP reset ({})", if unsolicited { "injected" } else { "host RST" });
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    simulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
