//! Keeping the device table on disk (`devices.txt` in the state directory) without touching
//! the serial task: a change only marks the table dirty; a background task waits a short
//! debounce, takes one snapshot and writes it on a blocking thread (atomic, fsynced, mode 0600:
//! [`crate::atomic_file`]). A burst of announces costs one write, not one per announce.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::warn;

use super::DeviceTable;

/// How long a change waits for more changes before the table is written.
pub const SAVE_DEBOUNCE: Duration = Duration::from_secs(2);

type Snapshot = dyn Fn() -> String + Send + Sync;

/// Saves the device table off the serial task, debounced.
pub struct DeviceTableSaver {
    path: PathBuf,
    dirty: Arc<AtomicBool>,
    wake: Arc<Notify>,
    snapshot: Arc<Snapshot>,
    writing: Arc<tokio::sync::Mutex<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DeviceTableSaver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTableSaver")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DeviceTableSaver {
    /// Starts the saver on the current tokio runtime; `snapshot` renders the table as text.
    pub fn spawn(path: PathBuf, debounce: Duration, snapshot: Arc<Snapshot>) -> Self {
        let dirty = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let writing = Arc::new(tokio::sync::Mutex::new(()));
        let task = tokio::spawn({
            let (path, dirty, wake, snapshot, writing) = (
                path.clone(),
                Arc::clone(&dirty),
                Arc::clone(&wake),
                Arc::clone(&snapshot),
                Arc::clone(&writing),
            );
            async move {
                loop {
                    wake.notified().await;
                    tokio::time::sleep(debounce).await;
                    save_if_dirty(&path, &dirty, &snapshot, &writing).await;
                }
            }
        });
        DeviceTableSaver {
            path,
            dirty,
            wake,
            snapshot,
            writing,
            task,
        }
    }

    /// The table changed: it is written within the debounce.
    pub fn changed(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Writes a pending change now (at shutdown).
    pub async fn flush(&self) {
        save_if_dirty(&self.path, &self.dirty, &self.snapshot, &self.writing).await;
    }
}

impl Drop for DeviceTableSaver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn save_if_dirty(
    path: &Path,
    dirty: &AtomicBool,
    snapshot: &Arc<Snapshot>,
    writing: &tokio::sync::Mutex<()>,
) {
    let _one_writer = writing.lock().await;
    if !dirty.swap(false, Ordering::AcqRel) {
        return;
    }
    let text = snapshot();
    let target = path.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::atomic_file::write(&target, text.as_bytes(), crate::atomic_file::OWNER_ONLY)
            .map_err(std::io::Error::from)
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            dirty.store(true, Ordering::Release);
            warn!("cannot save the device table to {}: {e}", path.display());
        }
        Err(e) => warn!("the device table writer failed: {e}"),
    }
}

/// Reads the saved table; a missing or unreadable file is an empty table (logged).
pub fn load_device_table(path: &Path) -> DeviceTable {
    match std::fs::read_to_string(path) {
        Ok(text) => DeviceTable::from_text(&text).unwrap_or_else(|e| {
            warn!("ignoring {}: {e}", path.display());
            DeviceTable::default()
        }),
        Err(_) => DeviceTable::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Ieee, Nwk};
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_one_write_after_the_debounce() {
        let dir = std::env::temp_dir().join(format!("otad-device-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("devices.txt");
        let table = Arc::new(Mutex::new(DeviceTable::default()));
        let snapshots = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let saver = DeviceTableSaver::spawn(path.clone(), SAVE_DEBOUNCE, {
            let (table, snapshots) = (Arc::clone(&table), Arc::clone(&snapshots));
            Arc::new(move || {
                snapshots.fetch_add(1, Ordering::Relaxed);
                table.lock().unwrap().to_text()
            })
        });
        for n in 0..100u16 {
            table.lock().unwrap().learn(Nwk(n), Ieee(u64::from(n) + 1));
            saver.changed();
        }
        assert!(!path.exists(), "nothing written before the debounce");
        tokio::time::sleep(SAVE_DEBOUNCE * 2).await;
        // Waits for the write in progress (one writer at a time); nothing is left to write.
        saver.flush().await;
        assert_eq!(snapshots.load(Ordering::Relaxed), 1);
        assert_eq!(load_device_table(&path).len(), 100);
        table.lock().unwrap().learn(Nwk(500), Ieee(500));
        saver.changed();
        saver.flush().await;
        assert_eq!(load_device_table(&path).len(), 101);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
