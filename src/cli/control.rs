//! The commands that talk to the running daemon through its status socket (`status`, `notify`,
//! `approve`, `apply`, `cancel`, `hold`, `release`, `permit-join`, `history`; ARCHITECTURE.md,
//! "Command line").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zigbee_otad::config::{Config, DEFAULT_CONFIG_PATH};
use zigbee_otad::daemon::socket::{self, Request};
use zigbee_otad::daemon::status::render_snapshot;

/// Where to find the daemon's status socket.
#[derive(Debug, clap::Args)]
pub(crate) struct SocketArgs {
    /// The configuration file (its `[status] socket` is used).
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// The socket path, overriding the configuration.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl SocketArgs {
    pub(crate) fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(socket) = &self.socket {
            return Ok(socket.clone());
        }
        if !self.config.exists() {
            return Ok(zigbee_otad::config::StatusSection::default().socket);
        }
        Ok(Config::load(&self.config)?.status.socket)
    }

    /// The state directory of the configuration (for `history` without a daemon).
    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.config.exists() {
            return Ok(PathBuf::from("/var/lib/zigbee-otad"));
        }
        Ok(Config::load(&self.config)?.state_dir)
    }
}

/// A control request; with `json`, the daemon's whole answer (or the error) as JSON on stdout.
pub(crate) async fn control_json(
    path: PathBuf,
    request: Request,
    json: bool,
) -> anyhow::Result<ExitCode> {
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
pub(crate) async fn history(
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

pub(crate) async fn status(path: PathBuf, json: bool, watch: bool) -> anyhow::Result<ExitCode> {
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

pub(crate) async fn control(path: PathBuf, request: Request) -> anyhow::Result<ExitCode> {
    let response = socket::query(&path, &request).await?;
    if response.ok {
        println!("{}", response.message.unwrap_or_else(|| "done".to_owned()));
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!("{}", response.error.unwrap_or_else(|| "refused".to_owned()))
    }
}
