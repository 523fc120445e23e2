//! The zigbee-otad command line (ARCHITECTURE.md, "Command line": a stable interface).
//!
//! Every subcommand is a thin wrapper over the library; errors go to stderr with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zigbee_otad::config::{Config, DEFAULT_CONFIG_PATH};

/// zigbee-otad: a Zigbee OTA Upgrade server daemon for home gateways.
#[derive(Debug, Parser)]
#[command(name = "zigbee-otad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file; errors name the line and key.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
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
        Command::CheckConfig { config } => {
            Config::load(&config).with_context(|| "the configuration is not valid".to_owned())?;
            println!("{}: OK", config.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
