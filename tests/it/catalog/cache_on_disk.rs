//! The on-disk cache: half-written, corrupt and tampered files are never picked up.

use std::fs;
use std::time::{Duration, UNIX_EPOCH};

use zigbee_otad::catalog::cache::{Cache, RemovalReason, StoredCatalog, Validators, Verify};
use zigbee_otad::catalog::model::{
    CatalogEntry, HashAlgorithm, ImageHash, ImageSize, Locator, Provenance, Restrictions,
    SourceKind,
};

fn entry_for(bytes: &[u8]) -> CatalogEntry {
    CatalogEntry {
        provenance: Provenance {
            source: "ledvance".into(),
            kind: SourceKind::Ledvance,
        },
        manufacturer_code: 0x1189,
        image_type: 25,
        file_version: 0x0010_2428,
        size: ImageSize::FileLength(bytes.len() as u64),
        hash: ImageHash::compute(HashAlgorithm::Sha256, bytes),
        locator: Locator::Url("https://example.org/download".into()),
        restrictions: Restrictions::default(),
        display_name: None,
        release_notes: None,
    }
}

/// A crash mid-write leaves a temp file with part of an image: it is never taken for the
/// image, and the next open removes it. Corrupt and foreign files go too.
#[test]
fn half_written_and_corrupt_files_are_never_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let image: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let entry = entry_for(&image);
    let key = entry.hash.cache_key();
    let images = dir.path().join("images");
    let catalogs = dir.path().join("catalogs");
    fs::create_dir_all(&images).unwrap();
    fs::create_dir_all(&catalogs).unwrap();
    // What an interrupted write leaves: the temp name, half the bytes.
    fs::write(images.join(format!(".tmp-{key}-1-0")), &image[..5000]).unwrap();
    // Even a complete temp file is not trusted: only a rename publishes.
    fs::write(images.join(format!(".tmp-{key}-1-1")), &image).unwrap();
    // Rot: the right name with the wrong bytes.
    let other = entry_for(b"other image");
    fs::write(images.join(other.hash.cache_key()), b"other imagX").unwrap();
    // A name this cache never writes (e.g. a catalog's file name).
    fs::write(
        images.join("A19_RGBW_IMG0019_00102428-encrypted.ota"),
        &image,
    )
    .unwrap();
    // A truncated catalog envelope.
    fs::write(catalogs.join("ledvance.json"), b"{\"source\":\"ledv").unwrap();
    fs::write(catalogs.join(".tmp-ledvance.json-1-2"), b"{}").unwrap();

    // A plain open trusts the digest-named file (hashed when stored); asked to re-verify,
    // the open finds the rot.
    let (trusting, mut removed) = Cache::open(dir.path(), 1 << 30).unwrap();
    assert!(trusting.has_image(&other.hash));
    let (mut cache, rot) = Cache::open_with(dir.path(), 1 << 30, Verify::Rehash).unwrap();
    assert_eq!(rot.len(), 1);
    removed.extend(rot);
    assert!(!cache.has_image(&entry.hash));
    assert!(cache.image_path(&entry).is_none());
    assert!(!cache.has_image(&other.hash));
    assert!(cache.catalog("ledvance").is_none());
    let mut reasons: Vec<RemovalReason> = removed.iter().map(|r| r.reason).collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        vec![
            RemovalReason::Corrupt,
            RemovalReason::Corrupt,
            RemovalReason::Foreign,
            RemovalReason::PartialWrite,
            RemovalReason::PartialWrite,
            RemovalReason::PartialWrite,
        ]
    );
    assert_eq!(fs::read_dir(&images).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&catalogs).unwrap().count(), 0);

    // A proper store then works and leaves no temp file behind.
    cache.store_image(&entry, &image).unwrap();
    let names: Vec<String> = fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![key]);
}

/// A catalog whose body was altered on disk fails its digest and is dropped.
#[test]
fn tampered_catalog_body_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cache, _) = Cache::open(dir.path(), 1 << 20).unwrap();
    cache
        .store_catalog(StoredCatalog {
            source: "ledvance".into(),
            kind: SourceKind::Ledvance,
            url: "https://example.org/firmwares".into(),
            validators: Validators::default(),
            fetched_at: UNIX_EPOCH + Duration::from_secs(1_795_651_200),
            body: b"{\"firmwares\":[]}".to_vec(),
        })
        .unwrap();
    let path = dir.path().join("catalogs/ledvance.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("firmwares\\\":[]", "firmwares\\\":[1]")).unwrap();
    let (cache, removed) = Cache::open(dir.path(), 1 << 20).unwrap();
    assert!(cache.catalog("ledvance").is_none());
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].reason, RemovalReason::Corrupt);
}
