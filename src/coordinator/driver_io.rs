//! What every coordinator driver task does with tokio (STYLE.md rule 9), written once for the
//! EZSP, ZNP and proxy drivers: the runtime's clock, sleeping until a sans-IO core's next
//! deadline, reading a port that may be closed, and sorting what a read brought (a port that
//! reads end of file or fails is gone: serial.rs says why).

use std::io;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The runtime's clock (paused and advanced in tokio tests).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `at`; forever when there is no deadline.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Reads from `port` into `buffer`; waits forever while there is no port.
pub async fn read_if_open<P: AsyncRead + Unpin>(
    port: Option<&mut P>,
    buffer: &mut [u8],
) -> io::Result<usize> {
    match port {
        Some(port) => port.read(buffer).await,
        None => std::future::pending().await,
    }
}

/// What one read brought.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome<'a> {
    /// Bytes to hand to the core.
    Bytes(&'a [u8]),
    /// A signal interrupted the read: nothing happened.
    Interrupted,
    /// End of file or an I/O error: the port is gone, for this reason.
    Gone(String),
}

impl<'a> ReadOutcome<'a> {
    /// Sorts the result of a read into `buffer`.
    pub fn of(read: io::Result<usize>, buffer: &'a [u8]) -> Self {
        match read {
            Ok(0) => ReadOutcome::Gone("end of file".to_owned()),
            Ok(n) => ReadOutcome::Bytes(buffer.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Interrupted,
            Err(e) => ReadOutcome::Gone(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_bytes_nothing_or_the_port_gone() {
        let buffer = [1, 2, 3];
        assert_eq!(ReadOutcome::of(Ok(2), &buffer), ReadOutcome::Bytes(&[1, 2]));
        assert_eq!(
            ReadOutcome::of(Ok(0), &buffer),
            ReadOutcome::Gone("end of file".to_owned())
        );
        assert_eq!(
            ReadOutcome::of(Err(io::ErrorKind::Interrupted.into()), &buffer),
            ReadOutcome::Interrupted
        );
        assert_eq!(
            ReadOutcome::of(Err(io::Error::other("EIO")), &buffer),
            ReadOutcome::Gone("EIO".to_owned())
        );
        // A count beyond the buffer (a broken reader) brings nothing rather than a panic.
        assert_eq!(ReadOutcome::of(Ok(9), &buffer), ReadOutcome::Bytes(&[]));
    }
}
