//! Log output: plain lines without timestamps or colours under journald (which adds its own),
//! readable coloured text with timestamps on a terminal. `RUST_LOG` overrides the configured level.

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if under_journald() {
        builder.with_ansi(false).without_time().try_init()
    } else {
        builder.try_init()
    };
    // Already installed (tests, or `demo` after `run` setup): keep the first.
    let _ = result;
}
