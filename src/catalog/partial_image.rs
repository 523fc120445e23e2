//! An image download on its way into the cache (issue 18): the body is streamed to a temporary
//! file in the cache's image folder while it is hashed, under a hard byte cap, so a download
//! never sits in memory and an endless or oversized body is cut off at the cap. Only
//! [`Cache::commit_image`](super::cache::Cache::commit_image) turns it into a cache entry,
//! after the size and digest check; dropped, it removes its temporary file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::model::{ImageHash, ImageSize};
use super::pins::ExpectedImage;

/// The largest image accepted from any source: no OTA file is bigger (the OTA header's own
/// sanity cap, `ota::file`).
pub const MAX_IMAGE_DOWNLOAD_BYTES: u64 = 16 * 1024 * 1024;

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha3_256(sha3::Sha3_256),
}

/// A download being written. See the module docs.
pub struct PartialImage {
    pub(super) temp: PathBuf,
    file: Option<File>,
    hasher: Hasher,
    written: u64,
    limit: u64,
    pub(super) expected_hash: ImageHash,
    pub(super) expected_size: ImageSize,
    /// What the entry says the file is (checked when it has no published digest).
    pub(super) expected_image: ExpectedImage,
}

impl std::fmt::Debug for PartialImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialImage")
            .field("temp", &self.temp)
            .field("written", &self.written)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// The body went past the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap {
    /// The cap.
    pub limit: u64,
}

impl PartialImage {
    /// Creates the temporary file `temp` (which must not exist) for an image with this digest
    /// (or unpinned key) and what its entry says it is; at most `min(size's download limit,
    /// MAX_IMAGE_DOWNLOAD_BYTES)` bytes.
    pub(super) fn create(
        temp: PathBuf,
        expected_hash: ImageHash,
        expected_image: ExpectedImage,
    ) -> io::Result<Self> {
        let expected_size = expected_image.size;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        // An unpinned entry is hashed with SHA-512: that digest becomes its pin.
        let hasher = match expected_hash {
            ImageHash::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
            ImageHash::Sha512(_) | ImageHash::Unpinned(_) => Hasher::Sha512(sha2::Sha512::new()),
            ImageHash::Sha3_256(_) => Hasher::Sha3_256(sha3::Sha3_256::new()),
        };
        Ok(PartialImage {
            temp,
            file: Some(file),
            hasher,
            written: 0,
            limit: expected_size.download_limit().min(MAX_IMAGE_DOWNLOAD_BYTES),
            expected_hash,
            expected_size,
            expected_image,
        })
    }

    /// The most bytes this download may deliver.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends a chunk of the body; `Err` when it would pass the cap (nothing more is kept).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), PartialWriteError> {
        let length = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        if self.written.saturating_add(length) > self.limit {
            return Err(PartialWriteError::OverCap(OverCap { limit: self.limit }));
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| PartialWriteError::Io(io::Error::other("download already finished")))?;
        file.write_all(chunk).map_err(PartialWriteError::Io)?;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::Sha512(h) => h.update(chunk),
            Hasher::Sha3_256(h) => h.update(chunk),
        }
        self.written += length;
        Ok(())
    }

    /// Flushes the file to disk and returns the digest of what was written.
    pub(super) fn finish(&mut self) -> io::Result<ImageHash> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        let hasher = std::mem::replace(&mut self.hasher, Hasher::Sha256(sha2::Sha256::new()));
        Ok(match hasher {
            Hasher::Sha256(h) => ImageHash::Sha256(h.finalize().into()),
            Hasher::Sha512(h) => ImageHash::Sha512(h.finalize().into()),
            Hasher::Sha3_256(h) => ImageHash::Sha3_256(h.finalize().into()),
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

impl Drop for PartialImage {
    fn drop(&mut self) {
        // Committed downloads were renamed away; anything else is garbage.
        let _ = fs::remove_file(&self.temp);
    }
}

/// A chunk could not be written.
#[derive(Debug)]
pub enum PartialWriteError {
    /// The body passed the cap.
    OverCap(OverCap),
    /// The file system failed.
    Io(io::Error),
}
