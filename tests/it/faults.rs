//! Process-level fault tests: the real `zigbee-otad` binary against faults that only a real
//! file system can produce.
//!
//! The cache disk fills up: a 1 MiB tmpfs, mounted in a private mount namespace (`unshare
//! --mount`, with `--user --map-root-user` so that no root is needed where user namespaces are
//! allowed; the mount vanishes with the namespace), holds the state and cache directories. It is
//! filled so that a 600 KB image download hits ENOSPC. Skipped, with a message, where neither
//! kind of namespace can be made.
#![allow(clippy::disallowed_methods)] // real processes on real time

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{offline_config, zigbee_ota_index};
use axum::Router;
use axum::routing::get;
use zigbee_otad::catalog::limiter::Ledger;
use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash};

const BIN: &str = env!("CARGO_BIN_EXE_zigbee-otad");

/// Serves `/index.json` and `/fw.ota` on 127.0.0.1, counting every request.
fn serve(runtime: &tokio::runtime::Runtime, image: Vec<u8>, requests: Arc<AtomicUsize>) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sha512 = ImageHash::compute(HashAlgorithm::Sha512, &image).to_hex();
    let index = zigbee_ota_index(&format!("{base}/fw.ota"), &image, 66, 7, &sha512);
    let counted = requests.clone();
    let app = Router::new()
        .route(
            "/index.json",
            get(move || {
                requests.fetch_add(1, Ordering::SeqCst);
                async move { index }
            }),
        )
        .route(
            "/fw.ota",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { image }
            }),
        );
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/index.json")
}

/// Runs inside the namespace: mount, fill, refresh (fails), free, refresh (succeeds), fill to
/// the last page, refresh (must make no call). Each step's report, error output, cache listing
/// and ledger land in `$OUT` as `<step>.json`, `.err`, `.images` and `.ledger`.
const SCRIPT: &str = r#"
M="$1"; BIN="$2"; CFG="$3"; OUT="$4"
mount -t tmpfs -o size=1m tmpfs "$M" || exit 77
mkdir -p "$M/state" "$M/cache"
cp "$OUT/known-devices.json" "$M/state/"
# About 300 KiB stay free: the index, the ledger and the known devices fit, the image does not.
dd if=/dev/zero of="$M/filler" bs=1024 count=700 2>/dev/null
refresh() {
  "$BIN" catalog refresh --config "$CFG" --json > "$OUT/$1.json" 2> "$OUT/$1.err"
  ls -A "$M/cache/images" > "$OUT/$1.images"
  cp "$M/state/ledger-zigbee-ota-index.json" "$OUT/$1.ledger" 2>/dev/null
}
refresh full
rm "$M/filler"
sleep 1.2
refresh freed
sleep 1.2
# Every page taken: not even the ledger can be written now.
dd if=/dev/zero of="$M/filler" bs=4096 2>/dev/null
refresh nothing-left
exit 0
"#;

fn ledger(path: &Path) -> Ledger {
    Ledger::from_json(&std::fs::read(path).unwrap()).unwrap()
}

/// ENOSPC during an image download: the refresh reports the file and the cause, nothing
/// partial is left or picked up, the call and its bytes are in the ledger; once space is free
/// the next refresh stores the image; and with no space even for the ledger, no call is made
/// at all (the ledger could not have recorded it).
#[test]
fn a_full_cache_disk_fails_the_download_cleanly_and_the_next_refresh_recovers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let image = super::catalog_kill::image();
    let requests = Arc::new(AtomicUsize::new(0));
    let url = serve(&runtime, image.clone(), requests.clone());
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("known-devices.json"),
        r#"{"devices":[{"manufacturer_code":4489,"image_type":66,"current_file_version":1,"hardware_version":null}]}"#,
    )
    .unwrap();
    let config = offline_config(
        dir.path(),
        &mount,
        &format!("[[catalog.source]]\nkind = \"zigbee-ota-index\"\nurl = \"{url}\"\n"),
    );

    let namespaces: [&[&str]; 2] = [&["--user", "--map-root-user", "--mount"], &["--mount"]];
    let mut ran = false;
    for flags in namespaces {
        let status = Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", SCRIPT, "sh"])
            .arg(&mount)
            .arg(BIN)
            .arg(&config)
            .arg(&out)
            .status();
        match status {
            Ok(status) if status.success() => {
                eprintln!("ran in `unshare {}`", flags.join(" "));
                ran = true;
                break;
            }
            Ok(status) => eprintln!("unshare {flags:?}: {status}"),
            Err(e) => eprintln!("unshare {flags:?}: {e}"),
        }
    }
    if !ran {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs in a private namespace here (needs `unshare` and \
             user namespaces or root)"
        );
        return;
    }
    let text = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();

    // Full: the index call and the download were made, the store failed with ENOSPC, naming
    // the file; no image (and no temp file) is in the cache; both calls are in the ledger.
    let full = text("full.json");
    assert!(
        full.contains("No space left on device"),
        "{full}\n{}",
        text("full.err")
    );
    assert!(full.contains("/cache/images/.tmp-"), "{full}");
    assert_eq!(text("full.images"), "", "a partial image was left behind");
    let after_full = ledger(&out.join("full.ledger"));
    assert_eq!(after_full.calls, 2, "{after_full:?}");
    // The download streams to disk and stops at the first failed write: the bytes that
    // crossed the link until then count, never more than the image.
    assert!(
        after_full.bytes > 0 && after_full.bytes <= image.len() as u64,
        "{after_full:?}"
    );

    // Space freed: the next refresh stores the verified image under its digest.
    let freed = text("freed.json");
    assert!(!freed.contains("No space left"), "{freed}");
    let key = ImageHash::compute(HashAlgorithm::Sha512, &image).cache_key();
    assert_eq!(text("freed.images").trim(), key);
    let after_freed = ledger(&out.join("freed.ledger"));
    assert_eq!(after_freed.calls, 4, "{after_freed:?}");

    // No page left: the write-ahead ledger fails, so the index call is not made.
    let nothing_left = text("nothing-left.json");
    assert!(nothing_left.contains("call not made"), "{nothing_left}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        4,
        "a call was made without a ledger"
    );
    assert_eq!(ledger(&out.join("nothing-left.ledger")), after_freed);
}
