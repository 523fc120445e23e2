//! A pseudo-terminal that plays a serial port for another program (POSIX `posix_openpt`, via
//! tokio-serial's `SerialStream::pair`): we talk on the master; the path of the slave, and
//! optionally a symlink to it (like socat's `link=`), is what the other program opens. Used by
//! the simulated stick (`zigbee-otad simulate`) and by the EZSP proxy's `[proxy] link`.
//!
//! The slave stays open here, so the master never reads EIO while nobody has the port open.

use std::io;
use std::path::{Path, PathBuf};

use tokio_serial::SerialStream;

/// Why a pseudo-terminal could not be offered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtyError {
    /// The pair could not be created.
    #[error("cannot create a pseudo-terminal: {0}")]
    Open(#[source] tokio_serial::Error),
    /// The symlink could not be made.
    #[error("cannot link {path} to the pty: {source}")]
    Link {
        /// The link path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A pty pair: read and write `master`; others open [`Pty::path`] (or the link).
#[derive(Debug)]
pub struct Pty {
    /// Our end.
    pub master: SerialStream,
    _slave: SerialStream,
    /// The slave's path (`/dev/pts/N`).
    pub path: String,
}

impl Pty {
    /// A new pair, with `link` (if any) pointing at its slave.
    pub fn open(link: Option<&Path>) -> Result<Self, PtyError> {
        let (master, slave) = SerialStream::pair().map_err(PtyError::Open)?;
        let path = tokio_serial::SerialPort::name(&slave).unwrap_or_default();
        if let Some(link) = link {
            point_link(link, &path).map_err(|source| PtyError::Link {
                path: link.to_path_buf(),
                source,
            })?;
        }
        Ok(Pty {
            master,
            _slave: slave,
            path,
        })
    }
}

/// Makes `link` a symlink to `target`, replacing what was there in one step (a program polling
/// the link never sees it missing or half made).
pub fn point_link(link: &Path, target: &str) -> io::Result<()> {
    let mut temporary = link.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    if std::fs::symlink_metadata(&temporary).is_ok() {
        std::fs::remove_file(&temporary)?;
    }
    std::os::unix::fs::symlink(target, &temporary)?;
    std::fs::rename(&temporary, link)
}
