//! Parse + payload check of OTA files: the real corpus in `../shared/testdata/ota-corpus/images`
//! when present, else synthetic GBL/EBL files of similar size. `tests/vectors/bench_zigpy_ota.py`
//! times zigpy's `parse_ota_image` + `validate_ota_image` over the same corpus for comparison.

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zigbee_otad::ota::payload::{self, EblBuilder, GblBuilder};
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFile, OtaFileBuilder, OtaHeader, TagId,
};

fn corpus() -> Option<Vec<(String, Bytes)>> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/ota-corpus/images");
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut files: Vec<(String, Bytes)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let bytes = std::fs::read(entry.path()).ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                Bytes::from(bytes),
            ))
        })
        .collect();
    files.sort();
    Some(files)
}

fn synthetic() -> Vec<(String, Bytes)> {
    let header = OtaHeader::new(ManufacturerCode::IKEA, ImageType(1), FileVersion(1));
    let program: Vec<u8> = (0..60_000u32).map(|i| (i * 31) as u8).collect();
    let mut gbl = GblBuilder::new();
    let mut ebl = EblBuilder::new();
    for chunk in program.chunks(4096) {
        gbl = gbl.tag([0xFE, 0x01, 0x01, 0xFE], chunk.to_vec());
    }
    for chunk in program.chunks(128) {
        ebl = ebl.tag([0xFE, 0x01], chunk.to_vec());
    }
    [
        ("synthetic-gbl", gbl.build()),
        ("synthetic-ebl", ebl.build()),
    ]
    .into_iter()
    .map(|(name, payload)| {
        let file = OtaFileBuilder::new(header.clone())
            .sub_element(TagId::UPGRADE_IMAGE, payload)
            .build();
        (name.to_owned(), Bytes::from(file))
    })
    .collect()
}

fn parse_and_check(c: &mut Criterion) {
    let files = corpus().unwrap_or_else(|| {
        eprintln!(
            "SKIPPED corpus: ../shared/testdata/ota-corpus is absent; benchmarking synthetic files"
        );
        synthetic()
    });
    let total: usize = files.iter().map(|(_, bytes)| bytes.len()).sum();
    eprintln!("ota_parse: {} files, {total} bytes", files.len());

    let mut group = c.benchmark_group("ota_parse");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("all_files_parse_and_check", |b| {
        b.iter(|| {
            for (_, bytes) in &files {
                let _ = black_box(OtaFile::parse(bytes.clone()));
            }
        })
    });

    // What the daemon's image loader does before offering a file: parse, then verify_integrity
    // (adds the SHA-256 block hashes of IKEA NGIS containers; the payload check is cached).
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("all_files_parse_and_verify_integrity", |b| {
        b.iter(|| {
            for (_, bytes) in &files {
                if let Ok(file) = OtaFile::parse(bytes.clone()) {
                    let _ = black_box(file.verify_integrity());
                }
            }
        })
    });

    // The floor: checking the upgrade images alone (CRC-32 over every GBL/EBL byte).
    let upgrade_images: Vec<Bytes> = files
        .iter()
        .filter_map(|(_, bytes)| OtaFile::parse(bytes.clone()).ok())
        .flat_map(|file| {
            file.sub_elements()
                .iter()
                .filter(|e| e.tag == TagId::UPGRADE_IMAGE)
                .map(|e| Bytes::copy_from_slice(file.sub_element_data(e)))
                .collect::<Vec<_>>()
        })
        .collect();
    let checked: usize = upgrade_images.iter().map(Bytes::len).sum();
    eprintln!(
        "ota_parse: {} upgrade images, {checked} bytes",
        upgrade_images.len()
    );
    group.throughput(Throughput::Bytes(checked as u64));
    group.bench_function("upgrade_images_payload_check_only", |b| {
        b.iter(|| {
            for image in &upgrade_images {
                let _ = black_box(payload::check(image));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse_and_check);
criterion_main!(benches);
