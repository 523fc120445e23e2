//! The status socket: a Unix stream socket in the runtime directory that answers one JSON request
//! per line with one JSON response per line.
//!
//! Requests (`{"request": ...}`) are read-only — `status`, `history` — or control: `notify`,
//! `permit_join`, `approve`, `apply`, `cancel`, `hold`, `release`, `install`
//! ([`Request::class`] tells which). The socket file is created with mode 0660 so members of the service's group may use
//! it; a stale socket left by a crash is replaced, anything else at the path is refused. Requests
//! are capped in size and time, and connections in number, so a misbehaving client cannot stall the
//! daemon.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::status::StatusSnapshot;

/// Longest request line accepted.
const MAX_REQUEST_BYTES: usize = 4096;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A request on the status socket.
///
/// [`Request::class`] sorts them into read-only requests and control requests, which change what
/// the daemon does: the one place to gate control behind a stronger privilege.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The current snapshot.
    Status,
    /// The persisted transfer history, newest last.
    History {
        /// Only this device (colon-hex IEEE address).
        #[serde(default)]
        ieee: Option<String>,
        /// Only transfers that ended at or after this time (RFC 3339).
        #[serde(default)]
        since: Option<String>,
    },
    /// Send Image Notify to one device (`ieee`) or to all (`all = true`).
    Notify {
        /// Colon-hex IEEE address.
        #[serde(default)]
        ieee: Option<String>,
        /// Broadcast to every device.
        #[serde(default)]
        all: bool,
    },
    /// Open the network for joining.
    PermitJoin {
        /// How long (0 closes it).
        seconds: u8,
    },
    /// Approve the available image for one device or all (`install = "approve"`).
    Approve {
        /// Colon-hex IEEE address.
        #[serde(default)]
        ieee: Option<String>,
        /// Every device with an image waiting for approval.
        #[serde(default)]
        all: bool,
        /// Only this file version.
        #[serde(default)]
        version: Option<u32>,
    },
    /// Tell one device (or all) holding a downloaded image to apply it now.
    Apply {
        /// Colon-hex IEEE address.
        #[serde(default)]
        ieee: Option<String>,
        /// Every waiting device.
        #[serde(default)]
        all: bool,
    },
    /// Stop a device's transfer; its image is not offered again until approved again.
    Cancel {
        /// Colon-hex IEEE address.
        ieee: String,
    },
    /// Keep a device at its version, until `until` (RFC 3339) or `release`.
    Hold {
        /// Colon-hex IEEE address.
        ieee: String,
        /// When the hold ends by itself.
        #[serde(default)]
        until: Option<String>,
    },
    /// End a hold.
    Release {
        /// Colon-hex IEEE address.
        ieee: String,
    },
    /// Approve the available image and apply it if already downloaded (an "Install" button).
    Install {
        /// Colon-hex IEEE address.
        ieee: String,
    },
}

/// Whether a request only reads or changes what the daemon does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// `status`, `history`: show what is.
    Read,
    /// Everything else: notify, permit join, approve, apply, cancel, hold, release, install.
    Control,
}

impl Request {
    /// Read-only or control.
    pub fn class(&self) -> RequestClass {
        match self {
            Request::Status | Request::History { .. } => RequestClass::Read,
            Request::Notify { .. }
            | Request::PermitJoin { .. }
            | Request::Approve { .. }
            | Request::Apply { .. }
            | Request::Cancel { .. }
            | Request::Hold { .. }
            | Request::Release { .. }
            | Request::Install { .. } => RequestClass::Control,
        }
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A human-readable confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The snapshot, for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSnapshot>,
    /// What a control request did, or the history, as structured data (`--json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Response {
    fn error(error: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(error.into()),
            message: None,
            status: None,
            data: None,
        }
    }
}

/// What the main loop answers to a control request.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlAnswer {
    /// A human-readable confirmation.
    pub message: String,
    /// The same as data, for `--json`.
    pub data: serde_json::Value,
}

impl From<String> for ControlAnswer {
    fn from(message: String) -> Self {
        ControlAnswer {
            data: serde_json::Value::Null,
            message,
        }
    }
}

/// A control request forwarded to the daemon's main loop, with the channel for its answer.
#[derive(Debug)]
pub struct ControlRequest {
    /// A request of [`RequestClass::Control`].
    pub request: Request,
    /// Where the main loop answers: a confirmation or an error.
    pub reply: oneshot::Sender<Result<ControlAnswer, String>>,
}

/// A bound status socket.
#[derive(Debug)]
pub struct StatusSocket {
    listener: UnixListener,
    path: PathBuf,
    history: Option<PathBuf>,
}

impl StatusSocket {
    /// Binds at `path` (replacing a stale socket) with mode 0660.
    pub fn bind(path: &Path) -> io::Result<StatusSocket> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        Ok(StatusSocket {
            listener,
            path: path.to_owned(),
            history: None,
        })
    }

    /// Answers `history` from this log (in `state_dir`).
    pub fn with_history(mut self, path: PathBuf) -> Self {
        self.history = Some(path);
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until the task is dropped: snapshots from `snapshots`, control requests to
    /// `control`.
    pub async fn serve(
        self,
        snapshots: watch::Receiver<StatusSnapshot>,
        control: mpsc::Sender<ControlRequest>,
    ) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "status socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                tracing::debug!("status socket busy; refusing a connection");
                let mut stream = stream;
                let _ = write_response(&mut stream, &Response::error("busy")).await;
                continue;
            };
            let snapshots = snapshots.clone();
            let control = control.clone();
            let history = self.history.clone();
            tokio::spawn(async move {
                if let Err(error) = handle_connection(stream, snapshots, control, history).await {
                    tracing::debug!(%error, "status socket client");
                }
                drop(permit);
            });
        }
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle_connection(
    stream: UnixStream,
    snapshots: watch::Receiver<StatusSnapshot>,
    control: mpsc::Sender<ControlRequest>,
    history: Option<PathBuf>,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_REQUEST_BYTES as u64 + 1);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST_BYTES {
            write_response(&mut write, &Response::error("request too long")).await?;
            return Ok(());
        }
        let response = match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(Request::Status) => Response {
                ok: true,
                error: None,
                message: None,
                status: Some(snapshots.borrow().clone()),
                data: None,
            },
            Ok(Request::History { ieee, since }) => {
                read_history(history.clone(), ieee.as_deref(), since.as_deref()).await
            }
            Ok(request) => forward(request, &control).await,
        };
        write_response(&mut write, &response).await?;
        reader.set_limit(MAX_REQUEST_BYTES as u64 + 1);
    }
}

async fn forward(request: Request, control: &mpsc::Sender<ControlRequest>) -> Response {
    let (reply, answer) = oneshot::channel();
    if control.try_send(ControlRequest { request, reply }).is_err() {
        return Response::error("the daemon is busy; try again");
    }
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(Ok(answer))) => Response {
            ok: true,
            error: None,
            message: Some(answer.message),
            status: None,
            data: Some(answer.data).filter(|d| !d.is_null()),
        },
        Ok(Ok(Err(error))) => Response::error(error),
        Ok(Err(_)) | Err(_) => Response::error("the daemon did not answer"),
    }
}

/// Reads the history log off the async threads.
async fn read_history(path: Option<PathBuf>, ieee: Option<&str>, since: Option<&str>) -> Response {
    let Some(path) = path else {
        return Response::error("this daemon keeps no history");
    };
    let filter = match super::history::Filter::parse(ieee, since) {
        Ok(filter) => filter,
        Err(error) => return Response::error(error),
    };
    let read = tokio::task::spawn_blocking(move || super::history::read(&path, &filter)).await;
    match read {
        Ok(Ok(records)) => Response {
            ok: true,
            error: None,
            message: None,
            status: None,
            data: serde_json::to_value(records).ok(),
        },
        Ok(Err(error)) => Response::error(error.to_string()),
        Err(_) => Response::error("reading the history failed"),
    }
}

async fn write_response<W: AsyncWriteExt + Unpin>(
    write: &mut W,
    response: &Response,
) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Sends one request to the daemon at `path` and returns its response.
pub async fn query(path: &Path, request: &Request) -> io::Result<Response> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reach the daemon at {} ({e}); is zigbee-otad running?",
                path.display()
            ),
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    let mut reader = BufReader::new(read).take(64 * 1024 * 1024);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(15), reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the daemon did not answer"))??;
    serde_json::from_str(line.trim()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable answer from the daemon: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"request":"status"}"#
        );
        let r: Request = serde_json::from_str(r#"{"request":"notify","all":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Notify {
                ieee: None,
                all: true
            }
        );
        let r: Request = serde_json::from_str(r#"{"request":"permit_join","seconds":60}"#).unwrap();
        assert_eq!(r, Request::PermitJoin { seconds: 60 });
        assert!(serde_json::from_str::<Request>(r#"{"request":"reboot"}"#).is_err());
        let r: Request =
            serde_json::from_str(r#"{"request":"hold","ieee":"00:11:22:33:44:55:66:77"}"#).unwrap();
        assert_eq!(r.class(), RequestClass::Control);
        assert_eq!(Request::Status.class(), RequestClass::Read);
        let r: Request = serde_json::from_str(r#"{"request":"history"}"#).unwrap();
        assert_eq!(r.class(), RequestClass::Read);
    }

    #[tokio::test]
    async fn serves_status_and_forwards_control() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.sock");
        let socket = StatusSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);

        let mut snapshot = StatusSnapshot::default();
        snapshot.coordinator.port = "/dev/pts/9".into();
        let (_tx, snapshots) = watch::channel(snapshot.clone());
        let (control_tx, mut control_rx) = mpsc::channel(4);
        let server = tokio::spawn(socket.serve(snapshots, control_tx));

        let answer = query(&path, &Request::Status).await.unwrap();
        assert!(answer.ok);
        assert_eq!(answer.status.unwrap(), snapshot);

        let main_loop = tokio::spawn(async move {
            let request = control_rx.recv().await.unwrap();
            assert_eq!(request.request, Request::PermitJoin { seconds: 30 });
            request
                .reply
                .send(Ok(String::from("joining open for 30 s").into()))
                .unwrap();
        });
        let answer = query(&path, &Request::PermitJoin { seconds: 30 })
            .await
            .unwrap();
        assert!(answer.ok, "{answer:?}");
        assert_eq!(answer.message.as_deref(), Some("joining open for 30 s"));
        main_loop.await.unwrap();

        // Garbage gets an error, not a hang or a crash.
        let mut raw = UnixStream::connect(&path).await.unwrap();
        raw.write_all(b"{nonsense\n").await.unwrap();
        let mut line = String::new();
        BufReader::new(raw).read_line(&mut line).await.unwrap();
        assert!(line.contains("bad request"), "{line}");

        server.abort();
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.sock");
        std::fs::write(&path, b"precious").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime.block_on(async { StatusSocket::bind(&path).unwrap_err() });
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn missing_daemon_is_a_clear_error() {
        let err = query(Path::new("/nonexistent/status.sock"), &Request::Status)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is zigbee-otad running"), "{err}");
    }
}
