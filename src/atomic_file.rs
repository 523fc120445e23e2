//! The one way this crate replaces a file on disk: a reader (or a crash, or `kill -9`) sees the
//! old file or the whole new one, never a part.
//!
//! The bytes go to a temporary file created with `create_new` in the target's directory (so a
//! stale leftover is never reused, and its mode never leaks in), with the mode the caller asks
//! for; the file is fsynced, renamed over the target, and then the directory is fsynced so the
//! rename itself survives a power cut. Temporary names start with [`TEMP_PREFIX`], so a
//! directory scan can recognise and sweep leftovers of an interrupted write.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! zigbee_otad::atomic_file::write(&path, b"{}", zigbee_otad::atomic_file::OWNER_ONLY).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}");
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files of an unfinished write start with this.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Mode for files that hold secrets or private state (the network key, approvals): 0600.
pub const OWNER_ONLY: u32 = 0o600;
/// Mode for files others on the machine may read (cached catalogs and images): 0644.
pub const WORLD_READABLE: u32 = 0o644;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A write that failed, with the step and the file it failed on.
#[derive(Debug)]
pub struct WriteError {
    /// What was being done: `create`, `write`, `fsync`, `rename` or `fsync directory`.
    pub operation: &'static str,
    /// The file (or directory) it was done to.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: io::Error,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.operation,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<WriteError> for io::Error {
    fn from(error: WriteError) -> Self {
        io::Error::new(error.source.kind(), error)
    }
}

/// Replaces `path` with `bytes`, atomically and durably, leaving it with permissions `mode`.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let fail = |operation: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError {
            operation,
            path,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| WriteError {
        operation: "create",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&temp).map_err(fail("create", &temp))?;
        // The umask may have cleared bits of `mode`; set exactly what was asked for.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(fail("chmod", &temp))?;
        }
        file.write_all(bytes).map_err(fail("write", &temp))?;
        file.sync_all().map_err(fail("fsync", &temp))?;
        fs::rename(&temp, path).map_err(fail("rename", &temp))
    })();
    if written.is_err() {
        // Best effort: the temporary name is never read, and scans sweep leftovers.
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_directory(dir)
}

/// The last two steps of [`write`] for a file the caller wrote and fsynced itself (a streamed
/// download): renames `temp` over `path` in the same directory, then fsyncs the directory so
/// the rename survives a power cut.
pub fn commit(temp: &Path, path: &Path) -> Result<(), WriteError> {
    fs::rename(temp, path).map_err(|source| WriteError {
        operation: "rename",
        path: temp.to_path_buf(),
        source,
    })?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_directory(dir),
        _ => sync_directory(Path::new(".")),
    }
}

fn sync_directory(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| WriteError {
            operation: "fsync directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_file_with_the_asked_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        write(&path, b"new", OWNER_ONLY).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_stale_temporary_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        // A leftover with a loose mode, named as the next write would name its temporary if
        // names were predictable: the write must not open it.
        let stale = dir.path().join(format!("{TEMP_PREFIX}key-stale"));
        fs::write(&stale, b"x").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o666)).unwrap();
        write(&path, b"secret", OWNER_ONLY).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read(&stale).unwrap(), b"x");
    }

    #[test]
    fn a_failed_write_names_the_step_and_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("file");
        let error = write(&missing, b"x", WORLD_READABLE)
            .err()
            .map(|e| e.operation);
        assert_eq!(error, Some("create"));
    }
}
