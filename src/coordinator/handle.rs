//! The handle every coordinator driver hands out (ARCHITECTURE.md principle 2): the driver runs as
//! one tokio task fed by a bounded command queue; the handle queues without waiting, numbers the
//! messages it queues ([`MessageTag`]), checks that the stick is up and the payload fits, and
//! stops the task on `shutdown` or when dropped. EZSP, ZNP and the EZSP proxy share it instead
//! of writing it three times.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{CoordinatorState, MessageTag, SendError};

/// A running driver task, its command queue and its message numbering.
#[derive(Debug)]
pub struct DriverHandle<C> {
    /// What the driver is, for the log ("coordinator", "proxy").
    what: &'static str,
    commands: mpsc::Sender<C>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    next_tag: AtomicU32,
}

impl<C> DriverHandle<C> {
    /// The handle of the task `task` (none when the driver could not start), which reads
    /// `commands` and stops when `cancel` fires.
    pub fn new(
        what: &'static str,
        commands: mpsc::Sender<C>,
        cancel: CancellationToken,
        task: Option<JoinHandle<()>>,
    ) -> Self {
        DriverHandle {
            what,
            commands,
            cancel,
            task: Mutex::new(task),
            next_tag: AtomicU32::new(1),
        }
    }

    /// Queues a command without waiting: a full queue is [`SendError::QueueFull`], a stopped
    /// driver [`SendError::Stopped`].
    pub fn queue(&self, command: C) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// The tag of the next message queued (1, 2, 3, …).
    pub fn next_tag(&self) -> MessageTag {
        MessageTag(self.next_tag.fetch_add(1, Ordering::Relaxed))
    }

    /// Stops the driver and waits for its task to end (the port is closed).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            warn!("{} task ended abnormally: {e}", self.what);
        }
    }
}

impl<C> Drop for DriverHandle<C> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A send is refused unless the stick is up and `len` fits its maximum APS payload (when known).
pub fn check_up_and_size(
    state: CoordinatorState,
    max_payload: Option<usize>,
    len: usize,
) -> Result<(), SendError> {
    if state != CoordinatorState::Up {
        return Err(SendError::NotUp(state));
    }
    match max_payload {
        Some(max) if len > max => Err(SendError::PayloadTooLarge { len, max }),
        _ => Ok(()),
    }
}
