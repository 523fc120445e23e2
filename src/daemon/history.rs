//! The transfer history in `state_dir`: a bounded, crash-safe append log.
//!
//! Layout: `history.log` (the current segment) and `history.log.1` (the one before). Each
//! segment starts with the 8-byte magic `ZOTAHIS1`; then records, each framed as
//! `length u32 LE | CRC-32 (IEEE) of the payload u32 LE | payload (JSON, ≤ 64 KiB)`. A record is
//! written with one `write` and an fsync, so `kill -9` can leave at most one torn frame at the
//! tail: the reader stops at the first frame that is short or fails its CRC, and the writer cuts
//! such a tail off before it appends. When the current segment passes [`SEGMENT_BYTES`] it is
//! renamed over the previous one (one atomic rename) and a new one is started, so the history
//! never holds more than two segments.
//!
//! ```
//! use zigbee_otad::daemon::history::{decode_log, encode_record, HistoryRecord, MAGIC};
//!
//! let record = HistoryRecord { ieee: Some("00:11:22:33:44:55:66:77".into()), to_version: 2, ..Default::default() };
//! let mut log = MAGIC.to_vec();
//! log.extend(encode_record(&record));
//! log.extend_from_slice(&[9, 0, 0]); // a torn tail
//! let decoded = decode_log(&log).unwrap();
//! assert_eq!(decoded.records, vec![record]);
//! assert_eq!(decoded.ignored_bytes, 3);
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::zcl::Ieee;

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"ZOTAHIS1";
/// A segment is rotated once it is larger than this (two segments are kept).
pub const SEGMENT_BYTES: u64 = 1024 * 1024;
/// The largest payload a frame may declare.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The current segment's file name in `state_dir`.
pub const FILE_NAME: &str = "history.log";

/// One transfer as it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The device's IEEE address, colon hex, when known.
    pub ieee: Option<String>,
    /// Its network address.
    pub nwk: u16,
    /// The image's manufacturer code.
    pub manufacturer_code: u16,
    /// The image type.
    pub image_type: u16,
    /// The version the device ran, when known.
    pub from_version: Option<u32>,
    /// The image's file version.
    pub to_version: u32,
    /// The image, `mmmm/tttt/vvvvvvvv`.
    pub image: String,
    /// Bytes served (the highest offset reached).
    pub bytes: u32,
    /// The image size.
    pub image_size: u32,
    /// When it started, Unix seconds.
    pub start_unix: u64,
    /// When it ended, Unix seconds.
    pub end_unix: u64,
    /// `downloaded`, `finished`, `failed`, `cancelled`.
    pub outcome: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// One framed record, ready to append.
pub fn encode_record(record: &HistoryRecord) -> Vec<u8> {
    let payload = serde_json::to_vec(record).unwrap_or_default();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// What a segment holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedLog {
    /// The whole records, in order.
    pub records: Vec<HistoryRecord>,
    /// Where the whole records end (a writer truncates the file here before appending).
    pub valid_len: usize,
    /// Bytes after them that do not form a whole, valid record (a torn tail).
    pub ignored_bytes: usize,
}

/// A segment that is not a history log at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a zigbee-otad history log (it does not start with {MAGIC:?})")]
pub struct NotAHistoryLog;

/// Decodes a segment. An empty input is an empty log.
pub fn decode_log(bytes: &[u8]) -> Result<DecodedLog, NotAHistoryLog> {
    if bytes.is_empty() {
        return Ok(DecodedLog::default());
    }
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(NotAHistoryLog);
    };
    let mut records = Vec::new();
    let mut valid_len = MAGIC.len();
    while let Some((header, after)) = rest.split_first_chunk::<8>() {
        let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
        let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if len > MAX_RECORD_BYTES || len > after.len() {
            break;
        }
        let (payload, next) = after.split_at(len);
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<HistoryRecord>(payload) else {
            break;
        };
        records.push(record);
        valid_len += 8 + len;
        rest = next;
    }
    Ok(DecodedLog {
        records,
        valid_len,
        ignored_bytes: bytes.len() - valid_len,
    })
}

/// Which records `history` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this device.
    pub ieee: Option<Ieee>,
    /// Only records that ended at or after this Unix time.
    pub since_unix: Option<u64>,
}

impl Filter {
    /// From the command line's text; errors say what was wrong.
    pub fn parse(ieee: Option<&str>, since: Option<&str>) -> Result<Filter, String> {
        let ieee = ieee
            .map(|text| text.parse::<Ieee>().map_err(|e| e.to_string()))
            .transpose()?;
        let since_unix = since.map(parse_rfc3339).transpose()?;
        Ok(Filter { ieee, since_unix })
    }

    fn keeps(&self, record: &HistoryRecord) -> bool {
        let ieee_matches = self.ieee.is_none_or(|wanted| {
            record
                .ieee
                .as_deref()
                .and_then(|text| text.parse::<Ieee>().ok())
                == Some(wanted)
        });
        ieee_matches && self.since_unix.is_none_or(|since| record.end_unix >= since)
    }
}

/// Unix seconds from an RFC 3339 time with any offset (`2026-12-07T03:00:00+01:00`, `...Z`).
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let timestamp: jiff::Timestamp = text.trim().parse().map_err(|e| {
        format!("`{text}` is not an RFC 3339 time like 2026-12-07T03:00:00Z or 2026-12-07T04:00:00+01:00 ({e})")
    })?;
    u64::try_from(timestamp.as_second()).map_err(|_| format!("`{text}` is before 1970"))
}

fn previous_segment(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn read_segment(path: &Path) -> io::Result<DecodedLog> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DecodedLog::default()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    decode_log(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Every record kept at `path` (both segments, oldest first) that `filter` keeps.
pub fn read(path: &Path, filter: &Filter) -> io::Result<Vec<HistoryRecord>> {
    let mut records = read_segment(&previous_segment(path))?.records;
    records.extend(read_segment(path)?.records);
    records.retain(|r| filter.keeps(r));
    Ok(records)
}

/// Appends records to the log; opened once by the daemon's writer thread.
#[derive(Debug)]
pub struct HistoryWriter {
    path: PathBuf,
    file: File,
    len: u64,
}

impl HistoryWriter {
    /// Opens (or creates) the log, cutting off a torn tail left by a crash.
    pub fn open(path: &Path) -> io::Result<HistoryWriter> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let decoded = decode_log(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        if bytes.is_empty() {
            file.write_all(MAGIC)?;
            file.sync_all()?;
        } else if decoded.ignored_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = decoded.ignored_bytes,
                "history: cutting off a torn record left by a crash"
            );
            file.set_len(u64::try_from(decoded.valid_len).unwrap_or(u64::MAX))?;
            file.sync_all()?;
        }
        let len = file.seek(SeekFrom::End(0))?;
        Ok(HistoryWriter {
            path: path.to_owned(),
            file,
            len,
        })
    }

    /// Appends one record (one write, then fsync); rotates the segment when it is full.
    pub fn append(&mut self, record: &HistoryRecord) -> io::Result<()> {
        if self.len > SEGMENT_BYTES {
            self.rotate()?;
        }
        let frame = encode_record(record);
        self.file.write_all(&frame)?;
        self.file.sync_data()?;
        self.len += u64::try_from(frame.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        std::fs::rename(&self.path, previous_segment(&self.path))?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)?;
        file.write_all(MAGIC)?;
        file.sync_all()?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = file;
        self.len = u64::try_from(MAGIC.len()).unwrap_or(8);
        Ok(())
    }
}

/// The history as `zigbee-otad history` prints it: one line per record.
pub fn render(records: &[HistoryRecord]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if records.is_empty() {
        out.push_str("no transfers recorded\n");
    }
    for r in records {
        let _ = writeln!(
            out,
            "{} {} {} {} -> v{:08X} ({}) {}/{} B {}{}",
            crate::server::control::format_unix(r.end_unix),
            r.ieee.as_deref().unwrap_or("-"),
            r.image,
            r.from_version
                .map_or("v?".to_owned(), |v| format!("v{v:08X}")),
            r.to_version,
            r.outcome,
            r.bytes,
            r.image_size,
            humantime::format_duration(std::time::Duration::from_secs(
                r.end_unix.saturating_sub(r.start_unix)
            )),
            r.reason
                .as_deref()
                .map_or(String::new(), |reason| format!(": {reason}")),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> HistoryRecord {
        HistoryRecord {
            ieee: Some("00:11:22:33:44:55:66:77".into()),
            to_version: n,
            end_unix: u64::from(n),
            outcome: "finished".into(),
            ..HistoryRecord::default()
        }
    }

    #[test]
    fn every_cut_of_the_log_keeps_the_whole_records_before_it() {
        let mut log = MAGIC.to_vec();
        let mut ends = Vec::new();
        for n in 0..3 {
            log.extend(encode_record(&record(n)));
            ends.push(log.len());
        }
        for cut in MAGIC.len()..=log.len() {
            let decoded = decode_log(&log[..cut]).unwrap();
            let whole = ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(decoded.records.len(), whole, "cut at {cut}");
            assert_eq!(decoded.valid_len + decoded.ignored_bytes, cut);
        }
        // A flipped bit stops the reader at that record.
        let mut bad = log.clone();
        let at = ends[0] + 12;
        bad[at] ^= 0x01;
        assert_eq!(decode_log(&bad).unwrap().records.len(), 1);
        assert_eq!(decode_log(b"not a log"), Err(NotAHistoryLog));
        assert_eq!(decode_log(b"").unwrap(), DecodedLog::default());
    }

    #[test]
    fn the_writer_cuts_a_torn_tail_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut writer = HistoryWriter::open(&path).unwrap();
        writer.append(&record(1)).unwrap();
        drop(writer);
        // A crash in the middle of the second record.
        let torn = encode_record(&record(2));
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(file);
        let mut writer = HistoryWriter::open(&path).unwrap();
        writer.append(&record(3)).unwrap();
        let all = read(&path, &Filter::default()).unwrap();
        assert_eq!(
            all.iter().map(|r| r.to_version).collect::<Vec<_>>(),
            vec![1, 3]
        );
        // Past a segment's size the old one moves aside; both are read, oldest first.
        writer.len = SEGMENT_BYTES + 1;
        writer.append(&record(4)).unwrap();
        assert!(previous_segment(&path).exists());
        let all = read(&path, &Filter::default()).unwrap();
        assert_eq!(
            all.iter().map(|r| r.to_version).collect::<Vec<_>>(),
            vec![1, 3, 4]
        );
        let since = Filter::parse(None, Some("1970-01-01T00:00:03Z")).unwrap();
        assert_eq!(read(&path, &since).unwrap().len(), 2);
        let other = Filter::parse(Some("00:00:00:00:00:00:00:01"), None).unwrap();
        assert!(read(&path, &other).unwrap().is_empty());
    }

    #[test]
    fn times_take_any_offset() {
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(parse_rfc3339("2026-12-07T00:30:00Z"), Ok(1_796_603_400));
        assert!(parse_rfc3339("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(Filter::parse(Some("00:11"), None).is_err());
    }
}
