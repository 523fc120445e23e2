//! The installer's control requests, routed from the status socket to the OTA server, and the
//! disk side of its decisions: `state_dir/control.json` (approvals, holds, cancellations and the
//! devices waiting for the upgrade command; written with [`crate::atomic_file`]) and the history log. Both are
//! written by one thread of their own, in order, so the main loop never waits on the disk.
//!
//! The decisions themselves are made by the sans-IO server ([`crate::server::control`],
//! [`OtaServer::approve`] and its siblings); this module only parses the request, calls the
//! server and words the answer.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use serde_json::json;

use crate::coordinator::{Coordinator, MAX_PERMIT_JOIN_SECONDS, SendError};
use crate::server::{ControlError, ControlState, DeviceAddr, Ieee, NotifyTarget, OtaServer};

use super::history::{self, HistoryRecord, HistoryWriter};
use super::socket::{ControlAnswer, Request};
use crate::identity::StoredIdentity;

/// The control state's file name in `state_dir`.
pub const CONTROL_FILE: &str = "control.json";

/// Reads the decisions saved before a restart; a missing file is an empty state. A file that
/// cannot be read is moved aside (`control.json.bad`) and logged, and the daemon starts without
/// it rather than not at all.
pub fn load_control(state_dir: &Path) -> ControlState {
    let path = state_dir.join(CONTROL_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ControlState::default(),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "cannot read the installer's decisions");
            return ControlState::default();
        }
    };
    match serde_json::from_str(&text) {
        Ok(state) => state,
        Err(error) => {
            let aside = state_dir.join(format!("{CONTROL_FILE}.bad"));
            tracing::error!(
                path = %path.display(),
                %error,
                moved_to = %aside.display(),
                "the installer's decisions are unreadable; starting without them"
            );
            let _ = std::fs::rename(&path, aside);
            ControlState::default()
        }
    }
}

/// Work for the persistence thread.
#[derive(Debug)]
enum Job {
    Control(ControlState),
    History(Box<HistoryRecord>),
    Identities(Vec<StoredIdentity>),
}

/// The persistence thread's handle: jobs go in order, the main loop never waits.
#[derive(Debug)]
pub struct Persister {
    jobs: std_mpsc::SyncSender<Job>,
    saved_revision: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Jobs queued at most; beyond it a history record is dropped (and logged) rather than stall.
const MAX_QUEUED_JOBS: usize = 1024;

impl Persister {
    /// Starts the thread that writes `state_dir/control.json`, the history log and the device
    /// identities.
    pub fn start(state_dir: &Path) -> Persister {
        let (jobs, rx) = std_mpsc::sync_channel::<Job>(MAX_QUEUED_JOBS);
        let control_path = state_dir.join(CONTROL_FILE);
        let history_path = state_dir.join(history::FILE_NAME);
        let spawned = std::thread::Builder::new().name("persist".into()).spawn({
            let state_dir = state_dir.to_owned();
            move || persist(rx, &control_path, &history_path, &state_dir)
        });
        let thread = spawned
            .map_err(|error| {
                tracing::error!(%error, "cannot start the persistence thread; decisions and history are not saved");
            })
            .ok();
        Persister {
            jobs,
            saved_revision: 0,
            thread,
        }
    }

    /// Saves what is still pending and waits until the thread has written everything.
    pub fn finish(mut self, server: &OtaServer) {
        self.save_control_if_changed(server);
        let Persister { jobs, thread, .. } = self;
        drop(jobs);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Saves the server's decisions if they changed since the last save.
    pub fn save_control_if_changed(&mut self, server: &OtaServer) {
        let revision = server.control_revision();
        if revision == self.saved_revision {
            return;
        }
        self.saved_revision = revision;
        if self
            .jobs
            .try_send(Job::Control(server.control_state().clone()))
            .is_err()
        {
            // The next change saves the whole state again.
            self.saved_revision = revision.wrapping_sub(1);
            tracing::warn!("the persistence thread is behind; the decisions are saved later");
        }
    }

    /// Saves the device identities read so far (`state_dir/identities.json`).
    pub fn save_identities(&self, identities: Vec<StoredIdentity>) {
        if self.jobs.try_send(Job::Identities(identities)).is_err() {
            tracing::warn!(
                "the persistence thread is behind; identities are saved with the next one"
            );
        }
    }

    /// Appends a record to the history log.
    pub fn append_history(&self, record: HistoryRecord) {
        if self.jobs.try_send(Job::History(Box::new(record))).is_err() {
            tracing::warn!("the persistence thread is behind; a history record is dropped");
        }
    }
}

fn persist(
    jobs: std_mpsc::Receiver<Job>,
    control_path: &Path,
    history_path: &Path,
    state_dir: &Path,
) {
    let mut writer: Option<HistoryWriter> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Control(state) => {
                let written = serde_json::to_vec_pretty(&state)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        crate::atomic_file::write(
                            control_path,
                            &bytes,
                            crate::atomic_file::OWNER_ONLY,
                        )
                        .map_err(|e| e.to_string())
                    });
                if let Err(error) = written {
                    tracing::error!(path = %control_path.display(), %error, "cannot save the installer's decisions");
                }
            }
            Job::Identities(list) => {
                if let Err(error) = super::identities::save(state_dir, &list) {
                    tracing::warn!(%error, "cannot save device identities");
                }
            }
            Job::History(record) => {
                if writer.is_none() {
                    writer = HistoryWriter::open(history_path)
                        .map_err(|error| {
                            tracing::error!(path = %history_path.display(), %error, "cannot open the history log");
                        })
                        .ok();
                }
                if let Some(w) = &mut writer
                    && let Err(error) = w.append(&record)
                {
                    tracing::error!(path = %history_path.display(), %error, "cannot append to the history log");
                    writer = None;
                }
            }
        }
    }
}

/// The history log's path in `state_dir`.
pub fn history_path(state_dir: &Path) -> PathBuf {
    state_dir.join(history::FILE_NAME)
}

fn parse_ieee(text: &str) -> Result<Ieee, String> {
    text.parse::<Ieee>().map_err(|e| e.to_string())
}

fn one_or_all(ieee: Option<&str>, all: bool) -> Result<Option<Ieee>, String> {
    match (ieee, all) {
        (Some(_), true) => Err("name a device or --all, not both".to_owned()),
        (Some(text), false) => parse_ieee(text).map(Some),
        (None, true) => Ok(None),
        (None, false) => Err("name a device or --all".to_owned()),
    }
}

fn error(e: ControlError) -> String {
    e.to_string()
}

/// Image Notify to one device the coordinator knows.
fn notify_one(
    ieee: Ieee,
    server: &mut OtaServer,
    coordinator: &dyn Coordinator,
    now: Instant,
) -> Result<ControlAnswer, String> {
    let nwk = coordinator
        .device_table()
        .nwk(ieee)
        .ok_or_else(|| format!("{ieee} is not in the coordinator's device table"))?;
    let device = DeviceAddr {
        nwk: nwk.0,
        ieee: Some(ieee),
        endpoint: 1,
    };
    server.notify(NotifyTarget::Device(device), now);
    Ok(format!("Image Notify sent to {ieee} ({nwk})").into())
}

/// The answer to an `--all` request: one line per device, and `{key: [...]}` as data.
fn list_answer(
    key: &str,
    items: impl Iterator<Item = (String, serde_json::Value)>,
    when_empty: &str,
) -> ControlAnswer {
    let (lines, list): (Vec<String>, Vec<serde_json::Value>) = items.unzip();
    ControlAnswer {
        message: if lines.is_empty() {
            when_empty.to_owned()
        } else {
            lines.join("\n")
        },
        data: json!({ key: list }),
    }
}

/// Carries out one control request on the server (and the coordinator, for `permit_join` and a
/// `notify` to a device not heard from yet).
pub fn handle(
    request: Request,
    server: &mut OtaServer,
    coordinator: &dyn Coordinator,
    now: Instant,
) -> Result<ControlAnswer, String> {
    match request {
        Request::Notify { all: true, .. } => {
            server.notify(NotifyTarget::Broadcast, now);
            Ok(String::from("Image Notify broadcast to every device").into())
        }
        Request::Notify {
            ieee: Some(text), ..
        } => notify_one(parse_ieee(&text)?, server, coordinator, now),
        Request::Notify { .. } => Err("name a device or --all".to_owned()),
        // 255 would mean "open forever" to the stack, and the trust centre hands the network
        // key to anyone joining while the network is open (issue 18).
        Request::PermitJoin { seconds } if seconds > MAX_PERMIT_JOIN_SECONDS => {
            Err(SendError::PermitJoinTooLong(seconds).to_string())
        }
        Request::PermitJoin { seconds } => coordinator
            .permit_joining(seconds)
            .map(|()| {
                if seconds == 0 {
                    "joining closed".to_owned().into()
                } else {
                    format!("joining open for {seconds} s").into()
                }
            })
            .map_err(|e| e.to_string()),
        Request::Approve { ieee, all, version } => match one_or_all(ieee.as_deref(), all)? {
            Some(ieee) => {
                let approved = server.approve(ieee, version, now).map_err(error)?;
                let what = approved.map_or("any version".to_owned(), |v| format!("v{v:08X}"));
                Ok(ControlAnswer {
                    message: format!("{ieee}: approved {what}"),
                    data: json!({"approved": [{"ieee": ieee, "version": approved}]}),
                })
            }
            None => {
                let approved = server.approve_all(version, now);
                Ok(list_answer(
                    "approved",
                    approved.iter().map(|(ieee, v)| {
                        (
                            format!("{ieee}: approved v{v:08X}"),
                            json!({"ieee": ieee, "version": v}),
                        )
                    }),
                    "nothing waits for approval",
                ))
            }
        },
        Request::Apply { ieee, all } => match one_or_all(ieee.as_deref(), all)? {
            Some(ieee) => {
                let file = server.apply(ieee, now).map_err(error)?;
                Ok(ControlAnswer {
                    message: format!("{ieee}: told to apply {file} now"),
                    data: json!({"applied": [{"ieee": ieee, "image": file.to_string(), "version": file.file_version}]}),
                })
            }
            None => {
                let applied = server.apply_all(now);
                Ok(list_answer(
                    "applied",
                    applied.iter().map(|(ieee, f)| {
                        (
                            format!("{ieee}: told to apply {f} now"),
                            json!({"ieee": ieee, "image": f.to_string(), "version": f.file_version}),
                        )
                    }),
                    "no device waits to apply a downloaded image",
                ))
            }
        },
        Request::Cancel { ieee } => {
            let ieee = parse_ieee(&ieee)?;
            let file = server.cancel(ieee, now).map_err(error)?;
            Ok(ControlAnswer {
                message: format!(
                    "{ieee}: {file} cancelled; not offered again until approved again"
                ),
                data: json!({"cancelled": {"ieee": ieee, "image": file.to_string(), "version": file.file_version}}),
            })
        }
        Request::Hold { ieee, until } => {
            let ieee = parse_ieee(&ieee)?;
            let until_unix = until.as_deref().map(history::parse_rfc3339).transpose()?;
            let stopped = server.hold(ieee, until_unix, now).map_err(error)?;
            let until_text = until_unix.map_or("until released".to_owned(), |u| {
                format!("until {}", crate::server::control::format_unix(u))
            });
            let stopped_text = stopped.map_or(String::new(), |f| {
                format!("; its transfer of {f} is stopped")
            });
            Ok(ControlAnswer {
                message: format!("{ieee}: held {until_text}{stopped_text}"),
                data: json!({"held": {"ieee": ieee, "until_unix": until_unix, "stopped": stopped.map(|f| f.to_string())}}),
            })
        }
        Request::Release { ieee } => {
            let ieee = parse_ieee(&ieee)?;
            server.release(ieee, now).map_err(error)?;
            Ok(ControlAnswer {
                message: format!("{ieee}: hold released"),
                data: json!({"released": {"ieee": ieee}}),
            })
        }
        Request::Install { ieee } => {
            let ieee = parse_ieee(&ieee)?;
            let outcome = match server.install(ieee, now) {
                Ok(outcome) => outcome,
                // Not heard from yet: ask it to query (it is approved once it has).
                Err(ControlError::UnknownDevice(_)) => {
                    return notify_one(ieee, server, coordinator, now);
                }
                Err(e) => return Err(error(e)),
            };
            let applied = outcome.applied.map(|f| f.to_string());
            Ok(ControlAnswer {
                message: format!(
                    "{ieee}: approved {}{}",
                    outcome
                        .approved_version
                        .map_or("any version".to_owned(), |v| format!("v{v:08X}")),
                    applied
                        .as_deref()
                        .map_or(String::new(), |f| format!("; told to apply {f} now"))
                ),
                data: json!({"ieee": ieee, "approved_version": outcome.approved_version, "applied": applied}),
            })
        }
        Request::Status | Request::History { .. } => {
            Err("read requests are answered by the socket itself".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_file_starts_empty_and_a_broken_one_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_control(dir.path()), ControlState::default());
        std::fs::write(dir.path().join(CONTROL_FILE), b"{ not json").unwrap();
        assert_eq!(load_control(dir.path()), ControlState::default());
        assert!(dir.path().join("control.json.bad").exists());
    }

    #[test]
    fn one_or_all_says_what_is_missing() {
        assert!(one_or_all(None, false).unwrap_err().contains("--all"));
        assert!(one_or_all(Some("00:11:22:33:44:55:66:77"), true).is_err());
        assert_eq!(one_or_all(None, true), Ok(None));
        assert!(one_or_all(Some("zz"), false).unwrap_err().contains("IEEE"));
    }
}
