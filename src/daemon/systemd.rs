//! systemd integration (sd_notify(3)): readiness, status text and watchdog pings, sent as
//! datagrams to `$NOTIFY_SOCKET`.
//!
//! Every send is non-blocking: if systemd (or whatever plays it) does not read, a message is
//! dropped rather than stalling the main loop. Outside systemd (`NOTIFY_SOCKET` unset) every call
//! is a no-op. The watchdog is pinged from the daemon's main loop, never from a free-running
//! task, so a stuck loop gets restarted.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// What the daemon tells systemd.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`; pings are due every half of
    /// the watchdog timeout.
    pub fn from_environment() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let address = match path.strip_prefix('@') {
                Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
                None => SocketAddr::from_pathname(&path),
            };
            let address = match address {
                Ok(address) => address,
                Err(error) => {
                    tracing::warn!(%error, path, "NOTIFY_SOCKET is not a usable address");
                    return None;
                }
            };
            let socket = UnixDatagram::unbound().ok()?;
            socket.set_nonblocking(true).ok()?;
            Some((socket, address))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog_interval = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us && socket.is_some())
            .map(|usec| Duration::from_micros(usec) / 2);
        Notifier {
            socket,
            watchdog_interval,
        }
    }

    /// How often the main loop must call [`Notifier::watchdog`], when systemd watches.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// The coordinator is up and the images are loaded.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// A one-line description of what the daemon is doing (`systemctl status` shows it).
    pub fn status(&self, text: &str) {
        let line = text.replace('\n', " ");
        self.send(&format!("STATUS={line}"));
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        if self.watchdog_interval.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, message: &str) {
        if let Some((socket, address)) = &self.socket
            && let Err(error) = socket.send_to_addr(message.as_bytes(), address)
        {
            tracing::debug!(%error, message, "sd_notify message dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_without_blocking_even_when_nobody_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: {
                let s = UnixDatagram::unbound().unwrap();
                s.set_nonblocking(true).unwrap();
                Some((s, SocketAddr::from_pathname(&path).unwrap()))
            },
            watchdog_interval: Some(Duration::from_secs(1)),
        };
        notifier.ready();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Far more than a datagram queue holds: must return every time, never block.
        for _ in 0..10_000 {
            notifier.watchdog();
        }
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn no_socket_means_no_watchdog() {
        let notifier = Notifier::default();
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.ready();
        notifier.watchdog();
    }
}
