//! Catalog hot paths: the best-image lookup a device's Query Next Image waits on, and parsing
//! the zigbee-OTA index at refresh time.
//!
//! The lookup runs against a synthetic catalog of 20,000 entries (the parser's cap), 5,000
//! devices × 4 versions, plus wildcard entries. The parse benchmark uses the real index.json
//! from ../shared/testdata when present and is skipped otherwise.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use zigbee_otad::catalog::merged::MergedCatalog;
use zigbee_otad::catalog::model::{
    CatalogEntry, DeviceQuery, HashAlgorithm, ImageHash, ImageSize, Locator, Provenance,
    Restrictions, SourceKind, WILDCARD,
};
use zigbee_otad::catalog::provider::{SourceCatalog, zigbee_ota_index};

fn synthetic_catalog() -> MergedCatalog {
    let provenance = Provenance {
        source: "bench".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    let mut entries = Vec::new();
    for device in 0u32..5000 {
        for version in 0u32..4 {
            let manufacturer_code = 0x1000 + (device % 200) as u16;
            let image_type = (device / 200) as u16;
            let mut restrictions = Restrictions::default();
            if version == 3 {
                restrictions.hardware_version_min = Some(1);
                restrictions.hardware_version_max = Some(3);
            }
            entries.push(CatalogEntry {
                provenance: provenance.clone(),
                manufacturer_code,
                image_type,
                file_version: version * 10,
                size: ImageSize::HeaderImageSize(200_000),
                hash: ImageHash::compute(
                    HashAlgorithm::Sha512,
                    &[device.to_le_bytes(), version.to_le_bytes()].concat(),
                ),
                locator: Locator::Url(format!("https://example.org/{device}/{version}")),
                restrictions,
                display_name: None,
                release_notes: None,
            });
        }
    }
    let templates: Vec<CatalogEntry> = entries.iter().take(25).cloned().collect();
    for (image_type, mut wildcard) in (0u16..).zip(templates) {
        wildcard.manufacturer_code = WILDCARD;
        wildcard.image_type = image_type;
        wildcard.file_version = 5;
        entries.push(wildcard);
    }
    MergedCatalog::new([SourceCatalog {
        provenance,
        entries,
    }])
}

fn lookup(c: &mut Criterion) {
    let catalog = synthetic_catalog();
    let device = DeviceQuery {
        manufacturer_code: 0x1000 + 77,
        image_type: 12,
        current_file_version: 0,
        hardware_version: Some(2),
        ..DeviceQuery::default()
    };
    assert!(catalog.best_image(&device).is_ok());
    c.bench_function("best_image/20k entries", |b| {
        b.iter(|| catalog.best_image(black_box(&device)))
    });
    let unknown = DeviceQuery {
        manufacturer_code: 0x7777,
        image_type: 0x7777,
        ..device
    };
    c.bench_function("best_image/unknown device", |b| {
        b.iter(|| catalog.best_image(black_box(&unknown)))
    });
}

fn parse_index(c: &mut Criterion) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/catalogs/index.json");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("SKIPPED parse benchmark: {} is absent", path.display());
        return;
    };
    let provenance = Provenance {
        source: "zigbee-ota".into(),
        kind: SourceKind::ZigbeeOtaIndex,
    };
    c.bench_function("zigbee_ota_index::parse/897 real entries", |b| {
        b.iter(|| zigbee_ota_index::parse(black_box(&bytes), &provenance))
    });
}

criterion_group!(benches, lookup, parse_index);
criterion_main!(benches);
