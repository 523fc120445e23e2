//! The zigbee-otad command line (ARCHITECTURE.md, "Command line": a stable interface).
//!
//! Every subcommand is a thin wrapper over the library; errors go to stderr with a non-zero exit.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cli::catalog::{CatalogAction, catalog};
use cli::control::{SocketArgs, control, control_json, history, status};
use cli::decode::{DecodeLayer, decode, inspect};
use cli::simulate::{self, SimulateArgs};
use zigbee_otad::config::{Config, DEFAULT_CONFIG_PATH};
use zigbee_otad::daemon::demo::run_demo_with;
use zigbee_otad::daemon::logging;
use zigbee_otad::daemon::service::{Daemon, DaemonOptions};
use zigbee_otad::daemon::socket::Request;

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
        /// Before starting, read and hash every cached image again and remove those that no
        /// longer match (otherwise a digest-named image of the right size is trusted: it was
        /// hashed when it was stored).
        #[arg(long)]
        rehash: bool,
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
    Simulate(SimulateArgs),
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
pub(crate) enum SimProtocol {
    /// Silicon Labs EZSP over ASH.
    Ezsp,
    /// TI Z-Stack MT (ZNP).
    Znp,
}

fn file_version(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("`{text}` is not a file version (decimal or 0x-hex): {e}"))
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
            rehash,
        } => {
            let config = Config::load(&config_path).context("the configuration is not valid")?;
            logging::init(config.log.level);
            if rehash {
                // Before the runtime and the serial port exist: nothing waits for this disk work.
                let checked = cli::catalog::rehash_cache(&config)?;
                for removed in &checked.removed {
                    tracing::warn!(path = %removed.path.display(), reason = ?removed.reason, "cached file removed");
                }
                tracing::info!(
                    images = checked.images,
                    bytes = checked.image_bytes,
                    removed = checked.removed.len(),
                    "cached images re-hashed"
                );
            }
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
        Command::Simulate(args) => simulate::run(args),
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

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
