//! Log output: plain lines without timestamps or colours under journald (which adds its own),
//! readable coloured text with timestamps on a terminal. `RUST_LOG` overrides the configured level.
//! Lines about one device are rate-limited per device ([`DeviceLogLimit`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::log_limit::DeviceLogLimit;

use crate::config::LogLevel;

/// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the global subscriber; a second call is harmless.
pub fn init(level: LogLevel) {
    let default = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    // The level filter first, then the per-device rate limit (issue 18), then the output.
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(DeviceLogLimit::default());
    let result = if under_journald() {
        registry
            .with(output.with_ansi(false).without_time())
            .try_init()
    } else {
        registry.with(output).try_init()
    };
    // Already installed (tests, or `demo` after `run` setup): keep the first.
    let _ = result;
}
