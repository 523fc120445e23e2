//! The serial port under a coordinator driver: opening it by path with the configured baud rate
//! and flow control (tokio-serial), and the capped exponential [`Backoff`] used to reopen it.
//!
//! A USB stick that is unplugged makes reads return `Ok(0)` or fail with `EIO`; drivers treat
//! both as "the port is gone", drop it and reopen it after [`Backoff::next_delay`], so a vanished
//! port never turns into a busy loop (STYLE.md, "Testing serial code without hardware" §3).
//!
//! ```
//! use std::time::Duration;
//! use zigbee_otad::coordinator::serial::{Backoff, FlowControl};
//! assert_eq!("hardware".parse::<FlowControl>(), Ok(FlowControl::Hardware));
//! let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(250));
//! assert_eq!(backoff.next_delay(), Duration::from_millis(100));
//! assert_eq!(backoff.next_delay(), Duration::from_millis(200));
//! assert_eq!(backoff.next_delay(), Duration::from_millis(250));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_serial::SerialPortBuilderExt;

pub use tokio_serial::SerialStream;

/// Flow control on the serial line (the `flow_control` config key: `none`, `software` or
/// `hardware`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    /// No flow control.
    None,
    /// XON/XOFF (ASH stuffs 0x11/0x13 in frames, so they only ever mean flow control).
    #[default]
    Software,
    /// RTS/CTS.
    Hardware,
}

impl FromStr for FlowControl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Self::None),
            "software" => Ok(Self::Software),
            "hardware" => Ok(Self::Hardware),
            other => Err(format!(
                "unknown flow control `{other}` (expected none, software or hardware)"
            )),
        }
    }
}

impl fmt::Display for FlowControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Software => "software",
            Self::Hardware => "hardware",
        })
    }
}

impl From<FlowControl> for tokio_serial::FlowControl {
    fn from(flow: FlowControl) -> Self {
        match flow {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        }
    }
}

/// Where and how to open the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Device path (`/dev/serial/by-id/...`, `/dev/ttyUSB0`, or a pseudo-terminal).
    pub path: String,
    /// Baud rate (115200 for most EZSP sticks).
    pub baudrate: u32,
    /// Flow control.
    pub flow_control: FlowControl,
}

/// The port could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open serial port {path}: {source}")]
pub struct OpenError {
    /// The path that was tried.
    pub path: String,
    /// Why it failed.
    #[source]
    pub source: tokio_serial::Error,
}

/// Opens the port in raw mode, registered with the current tokio runtime.
pub fn open(config: &SerialConfig) -> Result<SerialStream, OpenError> {
    tokio_serial::new(&config.path, config.baudrate)
        .flow_control(config.flow_control.into())
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .open_native_async()
        .map_err(|source| OpenError {
            path: config.path.clone(),
            source,
        })
}

/// Capped exponential backoff: `initial`, `2·initial`, `4·initial`, ... up to `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` (at least 1 ms, so it can never spin) and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; each call doubles the following one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    /// 250 ms doubling up to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flow_control_round_trips_through_text() {
        for flow in [
            FlowControl::None,
            FlowControl::Software,
            FlowControl::Hardware,
        ] {
            assert_eq!(flow.to_string().parse::<FlowControl>(), Ok(flow));
        }
        let err = "rts".parse::<FlowControl>().unwrap_err();
        assert!(err.contains("rts"), "{err}");
    }

    #[test]
    fn backoff_resets_after_success() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        backoff.next_delay();
        backoff.next_delay();
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(10));
    }

    proptest! {
        /// Delays never shrink, never exceed the cap and are never zero (no busy loop).
        #[test]
        fn backoff_is_monotone_capped_and_nonzero(initial in 0u64..5_000, max in 0u64..60_000, steps in 1usize..40) {
            let mut backoff = Backoff::new(Duration::from_millis(initial), Duration::from_millis(max));
            let cap = Duration::from_millis(max.max(initial).max(1));
            let mut previous = Duration::ZERO;
            for _ in 0..steps {
                let delay = backoff.next_delay();
                prop_assert!(delay >= previous);
                prop_assert!(delay <= cap);
                prop_assert!(delay >= Duration::from_millis(1));
                previous = delay;
            }
        }
    }

    #[tokio::test]
    async fn opens_a_pseudo_terminal_by_path() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut master, slave) = SerialStream::pair().unwrap();
        let path = tokio_serial::SerialPort::name(&slave).unwrap();
        let mut port = open(&SerialConfig {
            path,
            baudrate: 115_200,
            flow_control: FlowControl::None,
        })
        .unwrap();
        // Reserved ASH bytes pass a raw pty unchanged.
        master
            .write_all(&[0x7E, 0x11, 0x13, 0x0D, 0x03])
            .await
            .unwrap();
        let mut received = [0u8; 5];
        port.read_exact(&mut received).await.unwrap();
        assert_eq!(received, [0x7E, 0x11, 0x13, 0x0D, 0x03]);
        drop(slave);
    }

    /// Every flow-control setting opens (a pty accepts the termios flags).
    #[tokio::test]
    async fn every_flow_control_opens_a_pty() {
        let (_master, slave) = SerialStream::pair().unwrap();
        let path = tokio_serial::SerialPort::name(&slave).unwrap();
        for flow_control in [
            FlowControl::None,
            FlowControl::Software,
            FlowControl::Hardware,
        ] {
            let port = open(&SerialConfig {
                path: path.clone(),
                baudrate: 115_200,
                flow_control,
            });
            assert!(port.is_ok(), "{flow_control}: {:?}", port.err());
        }
    }

    #[test]
    fn missing_port_names_the_path() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let err = open(&SerialConfig {
            path: "/dev/does-not-exist-otad".into(),
            baudrate: 115_200,
            flow_control: FlowControl::Software,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/dev/does-not-exist-otad"),
            "{err}"
        );
    }
}
