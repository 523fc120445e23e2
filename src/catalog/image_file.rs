//! An image's served bytes read from its file a block at a time (issue 18, "Cache": the image
//! library is not held in RAM). The daemon verifies each file once when it loads the library
//! (digest, OTA header, payload check) and then serves blocks with bounded positional reads
//! (`pread`) through [`ImageFile`], the server's [`ImageReader`].
//!
//! A file is opened at its first read and stays open, so a cache file pruned or replaced by a
//! rename keeps serving the bytes that were verified. A file changed in place (its length or
//! modification time differs from what was verified) is refused: those bytes were never
//! checked. Each read is at most one block (or one whole image for the index export).

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::server::ImageReader;

/// The served bytes of one verified image file: `len` bytes from `start` (the OTA magic).
#[derive(Debug)]
pub struct ImageFile {
    path: PathBuf,
    start: u64,
    len: u64,
    verified: Stamp,
    file: Mutex<Option<File>>,
}

/// What identifies the file's contents as verified: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(metadata: &Metadata) -> Stamp {
        Stamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

impl ImageFile {
    /// The bytes `start..start + len` of `path`, which had `metadata` when it was read and
    /// verified (take the metadata before reading the bytes).
    pub fn new(path: &Path, metadata: &Metadata, start: u64, len: u64) -> ImageFile {
        ImageFile {
            path: path.to_owned(),
            start,
            len,
            verified: Stamp::of(metadata),
            file: Mutex::new(None),
        }
    }
}

impl ImageReader for ImageFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let wanted = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset.saturating_add(wanted) > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{wanted} bytes at {offset} are past the image's {}",
                    self.len
                ),
            ));
        }
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match guard.take() {
            Some(file) => file,
            None => File::open(&self.path)?,
        };
        if Stamp::of(&file.metadata()?) != self.verified {
            return Err(io::Error::other(format!(
                "{} changed since it was verified",
                self.path.display()
            )));
        }
        let result = file.read_exact_at(buf, self.start.saturating_add(offset));
        *guard = Some(file);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_verified_range_and_refuses_a_file_changed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.ota");
        std::fs::write(&path, b"prefix:0123456789").unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        let image = ImageFile::new(&path, &metadata, 7, 10);
        let mut buf = [0u8; 4];
        image.read_exact_at(3, &mut buf).unwrap();
        assert_eq!(&buf, b"3456");
        assert!(image.read_exact_at(8, &mut buf).is_err(), "past the end");

        // Replaced by a rename: the open file keeps serving what was verified.
        let other = dir.path().join("new.ota");
        std::fs::write(&other, b"something else entirely").unwrap();
        std::fs::rename(&other, &path).unwrap();
        image.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"0123");

        // Changed in place (a new open sees a new length): refused.
        let fresh = ImageFile::new(&path, &metadata, 7, 10);
        assert!(fresh.read_exact_at(0, &mut buf).is_err());
    }
}
