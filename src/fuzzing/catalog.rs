//! Fuzz entry points for the `catalog` module: the bounded JSON parser (against serde_json),
//! both catalog parsers and the limiter's ledger loader on arbitrary bytes.

use crate::catalog::limiter::{Ledger, Limiter, LimiterConfig};
use crate::catalog::model::{ImageSize, Locator, Provenance, SourceKind};
use crate::catalog::provider::{ledvance, zigbee_ota_index};

/// Runs the LEDVANCE and zigbee-OTA index parsers and the ledger loader on `data`. None may
/// panic; every entry accepted must respect the documented bounds, and a loaded ledger must
/// drive a limiter without panicking.
pub fn parse_json(data: &[u8]) {
    // The bounded parser agrees with serde_json wherever it accepts a document.
    if let Ok(ours) = crate::catalog::provider::bounded_json::parse_document(data, usize::MAX) {
        assert!(
            matches!(serde_json::from_slice::<serde_json::Value>(data), Ok(theirs) if theirs == ours)
        );
    }
    if let Ok(ledger) = Ledger::from_json(data) {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_651_200);
        let mut limiter = Limiter::with_ledger(LimiterConfig::ledvance(), ledger);
        let _ = limiter.check(now);
        let _ = limiter.poll_timeout(now);
        if let Ok(permit) = limiter.begin_call(now, 1000) {
            assert!(permit.byte_allowance <= 1000);
        }
    }
    let ledvance_source = Provenance {
        source: "fuzz-ledvance".into(),
        kind: SourceKind::Ledvance,
    };
    if let Ok(parsed) = ledvance::parse(
        data,
        "https://localhost/v1/zigbee/firmwares",
        &ledvance_source,
    ) {
        for entry in &parsed.entries {
            assert!(
                matches!(entry.size, ImageSize::FileLength(n) if n <= ledvance::MAX_IMAGE_BYTES)
            );
            assert!(
                matches!(&entry.locator, Locator::Url(url) if url.contains("/download?Company="))
            );
        }
        for pair in parsed.entries.windows(2) {
            if let [a, b] = pair {
                let key =
                    |e: &crate::catalog::model::CatalogEntry| (e.manufacturer_code, e.image_type);
                assert!(key(a) < key(b) || (key(a) == key(b) && a.file_version >= b.file_version));
            }
        }
    }
    let index_source = Provenance {
        source: "fuzz-index".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    if let Ok(parsed) = zigbee_ota_index::parse(data, &index_source) {
        for entry in &parsed.entries {
            let r = &entry.restrictions;
            if let (Some(min), Some(max)) = (r.hardware_version_min, r.hardware_version_max) {
                assert!(min <= max);
            }
            if let (Some(min), Some(max)) = (r.min_file_version, r.max_file_version) {
                assert!(min <= max);
            }
        }
    }
}
