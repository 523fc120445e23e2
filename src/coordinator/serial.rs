//! The serial port under a coordinator driver: opening it by path with the configured baud rate
//! and flow control (mio-serial's termios set-up), and the capped exponential [`Backoff`] used to
//! reopen it.
//!
//! [`SerialIo`] is registered with the runtime for readability only. A tty registered for
//! writability too (as tokio-serial's stream is) reports an edge-triggered EPOLLOUT each time the
//! other end drains the output buffer, i.e. after nearly every frame the host writes, and each
//! such event wakes the runtime's thread for nothing (docs/PERFORMANCE.md measured 0.6-2.7 per
//! block). The driver's writes are a few bytes, far below the kernel's output buffer, so they
//! practically never block; when one would, [`SerialIo`] retries after a short sleep that
//! doubles up to 64 ms. A read shorter than the buffer drained the port, so the readiness is
//! cleared then (as tokio does for sockets) and the next read waits for epoll instead of
//! costing a `read` that fails with EAGAIN.
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
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

pub use tokio_serial::SerialStream;

/// First retry delay of a write that would block; it doubles up to [`MAX_WRITE_RETRY_DELAY`].
const FIRST_WRITE_RETRY_DELAY: Duration = Duration::from_millis(1);
/// Longest retry delay of a write that would block.
const MAX_WRITE_RETRY_DELAY: Duration = Duration::from_millis(64);

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

/// Opens the port in raw mode, registered with the current tokio runtime for readability.
pub fn open(config: &SerialConfig) -> Result<SerialIo, OpenError> {
    let builder = tokio_serial::new(&config.path, config.baudrate)
        .flow_control(config.flow_control.into())
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One);
    let failed = |source| OpenError {
        path: config.path.clone(),
        source,
    };
    let port = mio_serial::SerialStream::open(&builder).map_err(failed)?;
    // Deprecated because an arbitrary `AsRawFd` may close or swap its descriptor while
    // registered; mio-serial's stream owns its descriptor and closes it only when dropped (as
    // tokio-serial relies on, registering the same type with `AsyncFd::new`).
    #[allow(deprecated)]
    let fd = AsyncFd::with_interest(port, Interest::READABLE)
        .map_err(|e| failed(tokio_serial::Error::from(e)))?;
    Ok(SerialIo {
        fd,
        write_retry: None,
    })
}

/// An open serial port: non-blocking, watched by the runtime for readability only (see the
/// module docs).
pub struct SerialIo {
    fd: AsyncFd<mio_serial::SerialStream>,
    /// While a write would block: the sleep before the next attempt, and its length.
    write_retry: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
}

impl fmt::Debug for SerialIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialIo")
            .field("write_blocked", &self.write_retry.is_some())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for SerialIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            match guard.try_io(|port| io::Read::read(&mut port.get_ref(), unfilled)) {
                Ok(Ok(read)) => {
                    if read > 0 && read < wanted {
                        // The port is drained: wait for epoll rather than read EAGAIN.
                        guard.clear_ready();
                    }
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for SerialIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Some((sleep, _)) = &mut self.write_retry {
                ready!(sleep.as_mut().poll(cx));
            }
            match io::Write::write(&mut self.fd.get_ref(), bytes) {
                Ok(written) => {
                    self.write_retry = None;
                    return Poll::Ready(Ok(written));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let delay = match &self.write_retry {
                        Some((_, delay)) => (*delay * 2).min(MAX_WRITE_RETRY_DELAY),
                        None => FIRST_WRITE_RETRY_DELAY,
                    };
                    self.write_retry = Some((Box::pin(tokio::time::sleep(delay)), delay));
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    /// Nothing is buffered in user space. (A serial port's flush would be tcdrain(3), blocking
    /// the runtime's thread until the UART has shifted every byte out.)
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
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

    /// A pseudo-terminal pair, and our port opened by the slave's path (the slave is returned
    /// to keep it open).
    fn port_on_a_pty() -> (SerialStream, SerialStream, SerialIo) {
        let (master, slave) = SerialStream::pair().unwrap();
        let path = tokio_serial::SerialPort::name(&slave).unwrap();
        let port = open(&SerialConfig {
            path,
            baudrate: 115_200,
            flow_control: FlowControl::None,
        })
        .unwrap();
        (master, slave, port)
    }

    #[tokio::test]
    async fn opens_a_pseudo_terminal_by_path() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut master, slave, mut port) = port_on_a_pty();
        // Reserved ASH bytes pass a raw pty unchanged.
        master
            .write_all(&[0x7E, 0x11, 0x13, 0x0D, 0x03])
            .await
            .unwrap();
        let mut received = [0u8; 5];
        port.read_exact(&mut received).await.unwrap();
        assert_eq!(received, [0x7E, 0x11, 0x13, 0x0D, 0x03]);
        // A short read cleared the readiness; bytes written later still wake the reader.
        let reader = tokio::spawn(async move {
            let mut later = [0u8; 3];
            port.read_exact(&mut later).await.unwrap();
            (port, later)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        master.write_all(&[1, 2, 3]).await.unwrap();
        let (mut port, later) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(later, [1, 2, 3]);
        // And the other way round.
        port.write_all(b"host").await.unwrap();
        let mut echoed = [0u8; 4];
        master.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"host");
        drop(slave);
    }

    /// A write the kernel cannot take yet is retried until the other end drains the port.
    #[tokio::test]
    async fn blocked_writes_complete_once_the_port_drains() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut master, slave, mut port) = port_on_a_pty();
        // Far more than a pty buffers: the writer must wait for the reader.
        let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = payload.clone();
        let writer = tokio::spawn(async move {
            port.write_all(&payload).await.unwrap();
            port
        });
        let mut received = vec![0u8; expected.len()];
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            master.read_exact(&mut received),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(received == expected);
        drop(writer.await.unwrap());
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
