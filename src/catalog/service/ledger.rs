//! The per-source quota ledgers in `state_dir/ledger-<source>.json` (CATALOGS.md, "Consequence
//! for a gateway"): read at open (a corrupt one holds the source back, see the service's
//! module docs), written ahead of each call and after it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{read_capped, write_atomically};
use crate::catalog::limiter::{Ledger, Limiter, LimiterConfig};
use crate::catalog::model::SourceKind;
use crate::config::SourceSection;

/// Largest ledger file read (the limiter rejects anything bigger than its own cap anyway).
const MAX_LEDGER_FILE_BYTES: u64 = 64 * 1024;

/// Writes the ledger as it will be once the next call has started (write-ahead): a call is
/// made only when a restart right after it would know about it. When the limiter refuses the
/// call anyway there is nothing to write. If the call then does not happen (it is deferred),
/// the file counts one call too many until the next save: the safe side.
pub(super) fn save_ledger_ahead(
    limiter: &Limiter,
    path: &Path,
    now: SystemTime,
) -> Result<(), String> {
    let mut ahead = limiter.clone();
    if ahead.begin_call(now, 0).is_err() {
        return Ok(());
    }
    write_atomically(path, ahead.ledger().to_json().as_bytes())
        .map_err(|error| format!("the ledger {} cannot be saved: {error}", path.display()))
}

/// The kind and limits of a cloud source; `None` for a local folder.
pub(super) fn cloud_kind(section: &SourceSection) -> Option<(SourceKind, LimiterConfig)> {
    let kind = section.kind;
    if !kind.has_catalog_document() {
        return None;
    }
    let limits = match kind {
        SourceKind::Ledvance => LimiterConfig::ledvance(),
        SourceKind::Ikea | SourceKind::Inovelli | SourceKind::ThirdReality | SourceKind::Sonoff => {
            LimiterConfig::vendor_feed()
        }
        _ => LimiterConfig::static_host(),
    };
    Some((kind, limits))
}

/// The limits a cloud source's ledger is measured against (for `catalog list`).
pub(crate) fn source_limits(section: &SourceSection) -> Option<LimiterConfig> {
    cloud_kind(section).map(|(_, limits)| limits)
}

/// `state_dir/ledger-<source>.json`.
pub fn ledger_path(state_dir: &Path, source: &str) -> PathBuf {
    state_dir.join(format!("ledger-{source}.json"))
}

/// Reads a ledger file: `Ok(None)` when there is none.
pub(crate) fn read_ledger(path: &Path) -> Result<Option<Ledger>, String> {
    match read_capped(path, MAX_LEDGER_FILE_BYTES) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => Ledger::from_json(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// The limiter for a source from its ledger file (see the module docs for a corrupt one).
pub(super) fn load_limiter(
    path: &Path,
    limits: LimiterConfig,
    now: SystemTime,
) -> (Limiter, Option<String>) {
    match read_ledger(path) {
        Ok(Some(ledger)) => (Limiter::with_ledger(limits, ledger), None),
        Ok(None) => (Limiter::new(limits, now), None),
        Err(error) => {
            let aside = path.with_extension("json.corrupt");
            let moved = match fs::rename(path, &aside) {
                Ok(()) => format!("moved to {}", aside.display()),
                Err(rename_error) => format!("could not be moved aside: {rename_error}"),
            };
            let note = format!(
                "ledger {} unreadable ({error}), {moved}; holding this source back for {}",
                path.display(),
                humantime::format_duration(limits.backoff_max)
            );
            tracing::error!("{note}");
            (
                Limiter::with_ledger(limits, held_back(limits, now)),
                Some(note),
            )
        }
    }
}

/// A ledger as if a call had just failed with the longest backoff.
fn held_back(limits: LimiterConfig, now: SystemTime) -> Ledger {
    let millis = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    Ledger {
        last_call_unix_ms: Some(millis(now)),
        blocked_until_unix_ms: Some(millis(now + limits.backoff_max)),
        consecutive_failures: 1,
        ..Ledger::new(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::limiter::LimitReason;
    use std::time::Duration;

    /// 2026-11-26T00:00:00Z.
    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_651_200)
    }

    #[test]
    fn corrupt_ledger_holds_the_source_back_and_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "ledvance");
        fs::write(&path, b"{not json").unwrap();
        let limits = LimiterConfig::ledvance();
        let (limiter, note) = load_limiter(&path, limits, start());
        assert!(note.unwrap().contains("unreadable"));
        assert!(!path.exists());
        assert!(dir.path().join("ledger-ledvance.json.corrupt").exists());
        let retry = limiter
            .check(start() + Duration::from_secs(3600))
            .unwrap_err();
        assert_eq!(retry.reason, LimitReason::Backoff);
        assert_eq!(retry.at, start() + limits.backoff_max);
        assert!(limiter.check(start() + limits.backoff_max).is_ok());
        assert_eq!(limiter.usage(start()), (0, 0));
    }

    #[test]
    fn missing_ledger_is_a_fresh_month_and_a_saved_one_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(dir.path(), "ledvance");
        let (mut limiter, note) = load_limiter(&path, LimiterConfig::ledvance(), start());
        assert!(note.is_none());
        assert!(limiter.check(start()).is_ok());
        limiter.begin_call(start(), 100).unwrap();
        limiter.record_bytes(start(), 42);
        write_atomically(&path, limiter.ledger().to_json().as_bytes()).unwrap();
        let (reloaded, _) = load_limiter(&path, LimiterConfig::ledvance(), start());
        assert_eq!(reloaded.ledger(), limiter.ledger());
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("ledger-ledvance.json")]);
    }
}
