//! `catalog list|refresh|match`: what the cached catalogs offer, one refresh within the rate
//! limits, and why a device would (not) be offered an image (docs/CATALOGS.md; ARCHITECTURE.md,
//! "Command line").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use zigbee_otad::catalog::cache::{Cache, Removed, Verify};
use zigbee_otad::catalog::sources::DEFAULT_CACHE_BYTES;
use zigbee_otad::config::{Config, DEFAULT_CONFIG_PATH};
use zigbee_otad::daemon::logging;

use crate::runtime;

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogAction {
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
    /// Read and hash every cached image again (the daemon trusts a digest-named file of the
    /// right size once it has been verified and stored); remove those that no longer match.
    /// Refused while the daemon runs (`run --rehash` does the same at start).
    Verify {
        /// The configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Print JSON: `images` (kept, and bytes) and `removed` ([{path, reason}]).
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

pub(crate) fn catalog(action: CatalogAction) -> anyhow::Result<ExitCode> {
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
            print_report(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::List { config, json } => {
            let config = Config::load(&config).context("the configuration is not valid")?;
            let devices = service::load_known_devices(&config.state_dir)?;
            let listing = report::list(&config, &devices)?;
            print_report(&listing, json)?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogAction::Verify { config, json } => {
            let config = Config::load(&config).context("the configuration is not valid")?;
            if std::os::unix::net::UnixStream::connect(&config.status.socket).is_ok() {
                anyhow::bail!(
                    "the daemon is running (status socket {}); stop it first, or start it with \
                     `run --rehash`",
                    config.status.socket.display()
                );
            }
            let checked = rehash_cache(&config)?;
            if json {
                let removed: Vec<_> = checked
                    .removed
                    .iter()
                    .map(|r| serde_json::json!({"path": r.path, "reason": format!("{:?}", r.reason)}))
                    .collect();
                let value = serde_json::json!({
                    "images": checked.images,
                    "image_bytes": checked.image_bytes,
                    "removed": removed,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                for r in &checked.removed {
                    println!("removed {} ({:?})", r.path.display(), r.reason);
                }
                println!(
                    "{} cached image(s), {} bytes, match their digests; {} file(s) removed",
                    checked.images,
                    checked.image_bytes,
                    checked.removed.len()
                );
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
            print_report(&report, json)?;
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// What [`rehash_cache`] found.
#[derive(Debug)]
pub(crate) struct Rehashed {
    /// Images kept (their bytes match their digest).
    pub(crate) images: usize,
    /// Their total size.
    pub(crate) image_bytes: u64,
    /// What was removed, and why.
    pub(crate) removed: Vec<Removed>,
}

/// Opens the image cache with [`Verify::Rehash`]: every cached image is read and hashed again
/// and those that no longer match are removed. Runs before the daemon starts (`run --rehash`)
/// or without it (`catalog verify`), never on the thread that serves the serial port.
pub(crate) fn rehash_cache(config: &Config) -> anyhow::Result<Rehashed> {
    let (cache, removed) = Cache::open_with(
        &config.catalog.cache_dir,
        DEFAULT_CACHE_BYTES,
        Verify::Rehash,
    )
    .with_context(|| {
        format!(
            "cannot open the cache {}",
            config.catalog.cache_dir.display()
        )
    })?;
    let image_bytes = cache.image_bytes();
    let images = cache.image_count();
    Ok(Rehashed {
        images,
        image_bytes,
        removed,
    })
}

/// Prints a report as pretty JSON (`--json`) or in its human form.
fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
