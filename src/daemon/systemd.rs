//! systemd integration: readiness, status text and watchdog pings through `sd_notify`.
//!
//! Every call is a no-op outside systemd (no `NOTIFY_SOCKET`). The watchdog is pinged from the
//! daemon's main loop, never from a free-running task, so a stuck loop gets restarted.

use std::time::Duration;

use sd_notify::NotifyState;

/// What the daemon tells systemd.
#[derive(Debug, Default)]
pub struct Notifier {
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// Reads `WATCHDOG_USEC`; pings are due every half of it.
    pub fn from_environment() -> Notifier {
        Notifier {
            watchdog_interval: sd_notify::watchdog_enabled().map(|timeout| timeout / 2),
        }
    }

    /// How often the main loop must call [`Notifier::watchdog`], when systemd watches.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// The coordinator is up and the cache loaded.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// A one-line description of what the daemon is doing (`systemctl status` shows it).
    pub fn status(&self, text: &str) {
        self.send(&[NotifyState::Status(text)]);
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        if self.watchdog_interval.is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(error) = sd_notify::notify(states) {
            tracing::debug!(%error, "sd_notify failed");
        }
    }
}
