//! The zigbee-otad command line (ARCHITECTURE.md, "Command line": a stable interface).
//!
//! Every subcommand is a thin wrapper over the library; errors go to stderr with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zigbee_otad::config::{Config, DEFAULT_CONFIG_PATH};
use zigbee_otad::daemon::demo::run_demo_with;
use zigbee_otad::daemon::logging;
use zigbee_otad::daemon::service::{Daemon, DaemonOptions};
use zigbee_otad::daemon::socket::{self, Request};
use zigbee_otad::daemon::status::render_snapshot;
use zigbee_otad::ota::{InspectReport, OtaFile};
use zigbee_otad::sim::device::DeviceEvent;
use zigbee_otad::sim::{
    SimConfig, SimDeviceSpec, SimEvent, SimZnpConfig, ZnpNetwork, run_simulator, run_znp_simulator,
};
use zigbee_otad::zcl::ZclStatus;
use zigbee_otad::zcl::ota::OtaFrame;

/// zigbee-otad: a Zigbee OTA Upgrade server daemon for home gateways.
#[derive(Debug, Parser)]
#[command(name = "zigbee-otad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: serve OTA upgrades through the coordinator in the configuration.
    Run {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// The whole daemon against the built-in simulated coordinator with simulated devices and
    /// a synthetic catalog; exits 0 once every device has upgraded and verified its image.
    Demo {
        /// Which simulated coordinator to run against.
        #[arg(long, value_enum, default_value_t = SimProtocol::Ezsp)]
        protocol: SimProtocol,
    },
    /// Validate a configuration file; errors name the line and key.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Parse an OTA upgrade file: header, sub-elements, container, payload check.
    Inspect {
        /// The OTA file.
        file: PathBuf,
        /// Print JSON (field names as in the OTA header, snake_case).
        #[arg(long)]
        json: bool,
    },
    /// Decode captured bytes (hex), for troubleshooting logs.
    Decode {
        #[command(subcommand)]
        layer: DecodeLayer,
    },
    /// Run only the simulated coordinator (EZSP over ASH, or TI Z-Stack ZNP, on a
    /// pseudo-terminal) with simulated OTA client devices; prints the pty path on the first line
    /// so any EZSP or ZNP host can drive it.
    Simulate {
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
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// What the cached firmware catalogs offer, or one refresh within the rate limits.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Ask the running daemon for coordinator state and every transfer's progress.
    Status {
        #[command(flatten)]
        socket: SocketArgs,
        /// Print the raw JSON snapshot.
        #[arg(long)]
        json: bool,
        /// Keep refreshing once a second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Tell one device (by IEEE address) or all devices about available images (Image Notify).
    Notify {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address (00:11:22:33:44:55:66:77).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ieee: Option<String>,
        /// Broadcast to every device.
        #[arg(long)]
        all: bool,
    },
    /// Approve the image available to one device, or to every device waiting for approval
    /// (with `[policy] install = "approve"`).
    Approve {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ieee: Option<String>,
        /// Every device with an image waiting for approval.
        #[arg(long)]
        all: bool,
        /// Approve only this file version (decimal or 0x-hex).
        #[arg(long, value_parser = file_version)]
        version: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tell one device, or every waiting device, holding a downloaded image to apply it now.
    Apply {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ieee: Option<String>,
        /// Every device waiting to apply.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a device's transfer: its next request is answered ABORT and the image is not
    /// offered again until it is approved again.
    Cancel {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address.
        ieee: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep a device at its version: nothing offered, a transfer stopped, nothing applied.
    Hold {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address.
        ieee: String,
        /// End the hold by itself at this time (RFC 3339, e.g. 2026-12-24T00:00:00+01:00).
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a hold.
    Release {
        #[command(flatten)]
        socket: SocketArgs,
        /// The device's IEEE address.
        ieee: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The transfer history kept in state_dir, whether or not the daemon runs.
    History {
        #[command(flatten)]
        socket: SocketArgs,
        /// Only this device.
        ieee: Option<String>,
        /// Only transfers that ended at or after this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the network for devices to join.
    PermitJoin {
        #[command(flatten)]
        socket: SocketArgs,
        /// How long, in seconds (0 closes the network; at most 254).
        #[arg(default_value_t = 60, value_parser = clap::value_parser!(u8).range(0..=254))]
        seconds: u8,
    },
}

/// The simulated stick's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SimProtocol {
    /// Silicon Labs EZSP over ASH.
    Ezsp,
    /// TI Z-Stack MT (ZNP).
    Znp,
}

#[derive(Debug, Subcommand)]
enum DecodeLayer {
    /// A ZCL frame (ZCL header + OTA Upgrade cluster command).
    Zcl {
        /// The frame as hex (spaces, `:` and `0x` allowed).
        hex: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One or more ASH frames as they appear on the serial line (flag-terminated).
    Ash {
        /// The bytes as hex.
        hex: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// An EZSP frame (the payload of an ASH DATA frame, de-randomised).
    Ezsp {
        /// The frame as hex.
        hex: String,
        /// The negotiated EZSP protocol version (8..=17).
        #[arg(long, default_value_t = 13)]
        ezsp_version: u8,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One or more ZNP (TI Z-Stack MT) frames as they appear on the serial line (SOF 0xFE).
    Znp {
        /// The bytes as hex.
        hex: String,
        /// Print JSON, one object per frame.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogAction {
    /// What is cached per source and what each known device could get (no network).
    List {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One refresh of every cloud source within its rate limits, downloading what known devices
    /// could take; a progress line per download on stderr.
    Refresh {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a device would be offered from the configured catalogs, and why each nearby entry
    /// was passed over (no download: local files as they are, cloud sources from the cache).
    /// Exits 0 whether or not there is an offer.
    Match {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Manufacturer code (decimal or 0x hex).
        #[arg(long, value_parser = number::<u16>)]
        manufacturer_code: u16,
        /// Image type (decimal or 0x hex).
        #[arg(long, value_parser = number::<u16>)]
        image_type: u16,
        /// The file version the device runs (decimal or 0x hex).
        #[arg(long, value_parser = number::<u32>)]
        file_version: u32,
        /// Its hardware version (decimal or 0x hex).
        #[arg(long, value_parser = number::<u16>)]
        hardware_version: Option<u16>,
        /// Its Basic cluster model identifier.
        #[arg(long)]
        model_id: Option<String>,
        /// Its Basic cluster manufacturer name.
        #[arg(long)]
        manufacturer_name: Option<String>,
        /// Print JSON: `offer` (null or {source, file_version, sha512, url, file_name, …}) and
        /// `reasons`.
        #[arg(long)]
        json: bool,
    },
}

/// A decimal or `0x` hex number that fits `T`.
fn number<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    }
    .map_err(|e| format!("`{text}`: {e}"))?;
    T::try_from(value).map_err(|_| format!("`{text}` is out of range"))
}

/// Fault injection and timing for `simulate` (probabilities are 0.0..=1.0 per frame or message).
#[derive(Debug, clap::Args)]
struct FaultArgs {
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
}

fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(format!("{value} is not a number of seconds in (0, 86400]"))
    }
}

fn file_version(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("`{text}` is not a file version (decimal or 0x-hex): {e}"))
}

fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a probability in 0.0..=1.0"))
    }
}

/// Where to find the daemon's status socket.
#[derive(Debug, clap::Args)]
struct SocketArgs {
    /// The configuration file (its `[status] socket` is used).
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// The socket path, overriding the configuration.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl SocketArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(socket) = &self.socket {
            return Ok(socket.clone());
        }
        if !self.config.exists() {
            return Ok(zigbee_otad::config::StatusSection::default().socket);
        }
        Ok(Config::load(&self.config)?.status.socket)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("zigbee-otad: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            config: config_path,
        } => {
            let config = Config::load(&config_path).context("the configuration is not valid")?;
            logging::init(config.log.level);
            // One thread: every request crosses the serial driver and the OTA server on the same
            // thread, without a cross-thread wake-up per frame (docs/PERFORMANCE.md).
            let runtime = runtime()?;
            runtime.block_on(async {
                let daemon = Daemon::start(
                    config,
                    DaemonOptions {
                        status_socket: true,
                        systemd: true,
                        events: None,
                        config_path: Some(config_path),
                    },
                )
                .await?;
                daemon.wait().await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { protocol } => {
            logging::init(zigbee_otad::config::LogLevel::Warn);
            let protocol = match protocol {
                SimProtocol::Ezsp => zigbee_otad::config::Protocol::Ezsp,
                SimProtocol::Znp => zigbee_otad::config::Protocol::Znp,
            };
            let passed = runtime()?.block_on(run_demo_with(protocol))?;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::CheckConfig { config } => {
            Config::load(&config).with_context(|| "the configuration is not valid".to_owned())?;
            println!("{}: OK", config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Decode { layer } => decode(layer),
        Command::Simulate {
            protocol,
            devices,
            device,
            link,
            ezsp_version,
            image,
            fresh,
            faults,
        } => {
            let mut config = SimConfig {
                devices: device,
                link_path: link,
                query_interval: std::time::Duration::from_secs(faults.query_interval.max(1)),
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
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
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
        Command::Catalog { action } => catalog(action),
        Command::Status {
            socket,
            json,
            watch,
        } => runtime()?.block_on(status(socket.path()?, json, watch)),
        Command::Notify { socket, ieee, all } => {
            runtime()?.block_on(control(socket.path()?, Request::Notify { ieee, all }))
        }
        Command::PermitJoin { socket, seconds } => {
            runtime()?.block_on(control(socket.path()?, Request::PermitJoin { seconds }))
        }
        Command::Approve {
            socket,
            ieee,
            all,
            version,
            json,
        } => runtime()?.block_on(control_json(
            socket.path()?,
            Request::Approve { ieee, all, version },
            json,
        )),
        Command::Apply {
            socket,
            ieee,
            all,
            json,
        } => runtime()?.block_on(control_json(
            socket.path()?,
            Request::Apply { ieee, all },
            json,
        )),
        Command::Cancel { socket, ieee, json } => {
            runtime()?.block_on(control_json(socket.path()?, Request::Cancel { ieee }, json))
        }
        Command::Hold {
            socket,
            ieee,
            until,
            json,
        } => runtime()?.block_on(control_json(
            socket.path()?,
            Request::Hold { ieee, until },
            json,
        )),
        Command::Release { socket, ieee, json } => runtime()?.block_on(control_json(
            socket.path()?,
            Request::Release { ieee },
            json,
        )),
        Command::History {
            socket,
            ieee,
            since,
            json,
        } => runtime()?.block_on(history(socket, ieee, since, json)),
    }
}

impl SocketArgs {
    /// The state directory of the configuration (for `history` without a daemon).
    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.config.exists() {
            return Ok(PathBuf::from("/var/lib/zigbee-otad"));
        }
        Ok(Config::load(&self.config)?.state_dir)
    }
}

/// A control request; with `json`, the daemon's whole answer (or the error) as JSON on stdout.
async fn control_json(path: PathBuf, request: Request, json: bool) -> anyhow::Result<ExitCode> {
    if !json {
        return control(path, request).await;
    }
    let response = match socket::query(&path, &request).await {
        Ok(response) => response,
        Err(error) => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "error": error.to_string()})
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(if response.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `history`: asked of the daemon when it runs, read from state_dir when it does not.
async fn history(
    socket: SocketArgs,
    ieee: Option<String>,
    since: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use zigbee_otad::daemon::history::{self as log, Filter, HistoryRecord};
    let filter = Filter::parse(ieee.as_deref(), since.as_deref()).map_err(anyhow::Error::msg)?;
    let path = socket.path()?;
    let request = Request::History { ieee, since };
    let records: Vec<HistoryRecord> = match socket::query(&path, &request).await {
        Ok(response) if response.ok => {
            serde_json::from_value(response.data.unwrap_or_default()).unwrap_or_default()
        }
        Ok(response) => anyhow::bail!("{}", response.error.unwrap_or_default()),
        // No daemon: the log is read directly (its framing makes that safe at any time).
        Err(_) => {
            let file = zigbee_otad::daemon::control::history_path(&socket.state_dir()?);
            log::read(&file, &filter).with_context(|| format!("cannot read {}", file.display()))?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        print!("{}", log::render(&records));
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(path: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = OtaFile::parse(bytes)
        .with_context(|| format!("{} is not a usable OTA file", path.display()))?;
    let report = InspectReport::from(&file);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}\n{report}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn decode(layer: DecodeLayer) -> anyhow::Result<ExitCode> {
    let hex_of = |text: &str| {
        zigbee_otad::wire::parse_hex(text).map_err(|e| anyhow::anyhow!("not hex: {e}"))
    };
    match layer {
        DecodeLayer::Zcl { hex, json } => {
            let bytes = hex_of(&hex)?;
            // Only a frame that cannot be read at all fails; values the spec does not allow
            // are shown and listed as violations (the troubleshooter wants to see them).
            let (frame, violations) = OtaFrame::inspect(&bytes).map_err(|e| {
                let status = ZclStatus::from(&e);
                anyhow::anyhow!("{e} (a server answers {status:?})")
            })?;
            if json {
                let mut value = serde_json::to_value(&frame)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("violations".into(), serde_json::to_value(&violations)?);
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("{frame}");
                for violation in &violations {
                    let answer = if violation.refused {
                        "the server refuses it with INVALID_VALUE"
                    } else {
                        "reported only"
                    };
                    println!(
                        "violation: {} 0x{:X} at offset {}: the spec allows {} ({answer})",
                        violation.field, violation.value, violation.offset, violation.allowed
                    );
                }
            }
        }
        DecodeLayer::Ash { hex, json } => {
            let bytes = hex_of(&hex)?;
            let mut deframer = zigbee_otad::ash::Deframer::new();
            let mut frames = Vec::new();
            // A capture may omit the final flag: end it so the last frame is decoded.
            let mut input = bytes;
            if input.last() != Some(&0x7E) {
                input.push(0x7E);
            }
            frames.extend(deframer.push(&input));
            if frames.is_empty() {
                anyhow::bail!("no ASH frame in the input");
            }
            let mut failed = false;
            for frame in &frames {
                match frame {
                    Ok(frame) if json => println!("{}", serde_json::to_string(&ash_json(frame))?),
                    Ok(frame) => println!("{frame:?}"),
                    Err(e) => {
                        failed = true;
                        eprintln!("zigbee-otad: bad ASH frame: {e}");
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        DecodeLayer::Ezsp {
            hex,
            ezsp_version,
            json,
        } => {
            let bytes = hex_of(&hex)?;
            let version = zigbee_otad::ezsp::EzspVersion::new(ezsp_version)?;
            let frame = zigbee_otad::ezsp::command::Frame::decode(version, &bytes)
                .with_context(|| format!("not an EZSP {version} frame"))?;
            if json {
                let value = serde_json::json!({
                    "ezsp_version": version.get(),
                    "frame": format!("{frame:?}"),
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("EZSP {version}: {frame:#?}");
            }
        }
        DecodeLayer::Znp { hex, json } => {
            let items = zigbee_otad::znp::decode_stream(&hex_of(&hex)?);
            if items.is_empty() {
                anyhow::bail!("no ZNP frame in the input");
            }
            let mut failed = false;
            for item in &items {
                failed |= !matches!(item, Ok((_, Ok(_))));
                match item {
                    _ if json => println!("{}", zigbee_otad::znp::decoded_json(item)),
                    Ok((_, Ok(message))) => println!("{}: {message:?}", message.name()),
                    Ok((frame, Err(e))) => eprintln!("zigbee-otad: {frame:?}: {e}"),
                    Err(e) => eprintln!("zigbee-otad: {e}"),
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ash_json(frame: &zigbee_otad::ash::Frame) -> serde_json::Value {
    use zigbee_otad::ash::Frame;
    use zigbee_otad::wire::hex_spaced;
    match frame {
        Frame::Data {
            frm_num,
            re_tx,
            ack_num,
            payload,
        } => serde_json::json!({"type": "DATA", "frm_num": frm_num, "re_tx": re_tx,
            "ack_num": ack_num, "ezsp": hex_spaced(payload)}),
        other => serde_json::json!({"type": "control", "frame": format!("{other:?}")}),
    }
}

async fn simulate(config: SimConfig, znp: Option<SimZnpConfig>) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let device_count = config.devices.len();
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

fn catalog(action: CatalogAction) -> anyhow::Result<ExitCode> {
    use zigbee_otad::catalog::{matching, report, service};
    match action {
        CatalogAction::Match {
            config,
            manufacturer_code,
            image_type,
            file_version,
            hardware_version,
            model_id,
            manufacturer_name,
            json,
        } => {
            let config = Config::load(&config).context("the configuration is not valid")?;
            let device = matching::MatchDevice {
                manufacturer_code,
                image_type,
                file_version,
                hardware_version,
                model_id,
                manufacturer_name,
            };
            let policy = zigbee_otad::daemon::service::server_config(&config)
                .context("the configuration is not valid")?;
            let policy = matching::MatchPolicy {
                deny: &policy.deny,
                pins: &policy.pins,
                allow_downgrade: policy.allow_downgrade,
            };
            let report = matching::match_device(&config, policy, device);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::List { config, json } => {
            let config = Config::load(&config).context("the configuration is not valid")?;
            let devices = service::load_known_devices(&config.state_dir)?;
            let listing = report::list(&config, &devices)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{listing}");
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::Refresh { config, json } => {
            let config = Config::load(&config).context("the configuration is not valid")?;
            // Two processes refreshing at once would each spend the month's budget without
            // seeing the other's calls: while the daemon runs, it alone talks to the cloud.
            if std::os::unix::net::UnixStream::connect(&config.status.socket).is_ok() {
                anyhow::bail!(
                    "the daemon is running (status socket {}); it refreshes on its own schedule \
                     within the limits. Stop it first to refresh by hand.",
                    config.status.socket.display()
                );
            }
            logging::init(config.log.level);
            let report =
                runtime()?.block_on(report::refresh_once(&config, |step| eprintln!("{step}")))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn status(path: PathBuf, json: bool, watch: bool) -> anyhow::Result<ExitCode> {
    loop {
        let response = socket::query(&path, &Request::Status).await?;
        let snapshot = match (response.ok, response.status) {
            (true, Some(snapshot)) => snapshot,
            _ => anyhow::bail!("the daemon refused: {}", response.error.unwrap_or_default()),
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&snapshot)?);
        } else {
            if watch {
                // Clear the screen and home the cursor between refreshes.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render_snapshot(&snapshot));
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn control(path: PathBuf, request: Request) -> anyhow::Result<ExitCode> {
    let response = socket::query(&path, &request).await?;
    if response.ok {
        println!("{}", response.message.unwrap_or_else(|| "done".to_owned()));
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!("{}", response.error.unwrap_or_else(|| "refused".to_owned()))
    }
}
