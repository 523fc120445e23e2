//! Fuzz entry points for the `catalog` module: the bounded JSON parser (against serde_json),
//! the LEDVANCE parsers (the list and the documented `newer` answers) and the index parser,
//! the vendor feed parsers, the pins loader and the limiter's ledger loader on arbitrary bytes.

use crate::catalog::limiter::{Ledger, Limiter, LimiterConfig};
use crate::catalog::model::{ImageSize, Locator, Provenance, SourceKind};
use crate::catalog::provider::{ledvance, ledvance_newer, zigbee_ota_index};

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
    // The documented `newer` answers: whatever they hold, the document a round assembles from
    // them reads back, and the LEDVANCE parser takes it like the list.
    if let Ok(items) = ledvance_newer::read_answer(data) {
        let query = ledvance_newer::NewerQuery {
            company: 0x1189,
            product: 1,
            version: 0,
        };
        let document = ledvance_newer::assemble(Some(data), &[(query, items)]);
        assert!(ledvance_newer::read_answer(&document).is_ok());
        assert!(
            ledvance::parse(
                &document,
                "https://localhost/v1/zigbee/firmwares",
                &ledvance_source
            )
            .is_ok()
        );
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

/// Runs the vendor feed parsers (IKEA, Inovelli, Third Reality, Sonoff) and the cache's pins
/// loader on `data`, and the unpinned-download check on it as a file. None may panic; every
/// entry accepted must keep the invariants the cache and the HTTP edge rely on.
pub fn parse_vendor_feeds(data: &[u8]) {
    use crate::catalog::model::ImageHash;
    use crate::catalog::partial_image::MAX_IMAGE_DOWNLOAD_BYTES;
    use crate::catalog::pins::{ExpectedImage, Pins};
    use crate::catalog::provider::{ikea, inovelli, sonoff, thirdreality};

    type Parser = fn(
        &[u8],
        &Provenance,
    ) -> Result<
        crate::catalog::provider::ParsedCatalog,
        crate::catalog::provider::CatalogParseError,
    >;
    let parsers: [(SourceKind, Parser); 4] = [
        (SourceKind::Ikea, ikea::parse),
        (SourceKind::Inovelli, inovelli::parse),
        (SourceKind::ThirdReality, thirdreality::parse),
        (SourceKind::Sonoff, sonoff::parse),
    ];
    for (kind, parse) in parsers {
        let source = Provenance {
            source: format!("fuzz-{kind}"),
            kind,
        };
        let Ok(parsed) = parse(data, &source) else {
            continue;
        };
        for entry in &parsed.entries {
            assert_eq!(entry.provenance, source);
            match entry.size {
                ImageSize::FileLength(n) => assert!(n <= MAX_IMAGE_DOWNLOAD_BYTES),
                ImageSize::HeaderImageSize(n) => assert!(n <= u64::from(u32::MAX)),
                ImageSize::Unpublished => {}
            }
            assert!(
                matches!(entry.locator, Locator::Url(_)),
                "a feed entry without a URL"
            );
            let Locator::Url(url) = &entry.locator else {
                continue;
            };
            if kind == SourceKind::Ikea {
                assert!(
                    url.starts_with("https://"),
                    "IKEA URLs are upgraded to https"
                );
                assert!(!ikea::BRICKING_IMAGE_TYPES.contains(&entry.image_type));
            } else {
                assert!(
                    entry.restrictions.model_id.is_some(),
                    "vendor entries name their model"
                );
            }
            if entry.hash.is_unpinned() {
                assert_eq!(
                    entry.hash,
                    ImageHash::unpinned(
                        kind,
                        url,
                        entry.manufacturer_code,
                        entry.image_type,
                        entry.file_version
                    )
                );
                assert!(!entry.hash.matches(data));
            }
        }
    }
    if let Ok(pins) = Pins::from_json(data) {
        assert_eq!(Pins::from_json(pins.to_json().as_bytes()), Ok(pins));
    }
    let expected = ExpectedImage {
        manufacturer_code: 0x117C,
        image_type: 0x2801,
        file_version: 1,
        size: ImageSize::Unpublished,
    };
    let _ = expected.verify(data);
}
