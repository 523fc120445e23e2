//! `kill -9` in the middle of a catalog refresh, many times: the cache on disk is always the old
//! state or the new one — never a half-written catalog or image that would be offered.
//!
//! A local zigbee-OTA-style index server on 127.0.0.1 serves one index and one 600 KB image,
//! trickled out in chunks so that the download takes about a second. `zigbee-otad catalog
//! refresh` (the real binary) runs against it and is killed with SIGKILL at a different moment
//! each time; after every kill the cache is reopened and must hold only verified files.
#![allow(clippy::disallowed_methods)] // real processes on real time

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{offline_config, zigbee_ota_index};
use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use zigbee_otad::catalog::cache::{Cache, RemovalReason};
use zigbee_otad::catalog::model::{HashAlgorithm, ImageHash};
use zigbee_otad::config::Config;
use zigbee_otad::daemon::images;
use zigbee_otad::ota::{
    FileVersion, ImageType, ManufacturerCode, OtaFileBuilder, OtaHeader, TagId, payload::GblBuilder,
};

const BIN: &str = env!("CARGO_BIN_EXE_zigbee-otad");

pub(crate) fn image() -> Vec<u8> {
    let header = OtaHeader::new(ManufacturerCode(0x1189), ImageType(0x0042), FileVersion(7));
    let firmware: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let gbl = GblBuilder::new()
        .tag([0xFE, 0x01, 0x01, 0xFE], firmware)
        .build();
    OtaFileBuilder::new(header)
        .sub_element(TagId::UPGRADE_IMAGE, gbl)
        .build()
}

/// Serves `/index.json` and `/fw.ota` (the latter in 16 KiB chunks 25 ms apart).
pub(crate) fn serve(runtime: &tokio::runtime::Runtime, image: Vec<u8>) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sha512 = ImageHash::compute(HashAlgorithm::Sha512, &image).to_hex();
    let index = zigbee_ota_index(&format!("{base}/fw.ota"), &image, 66, 7, &sha512);
    let app = Router::new()
        .route("/index.json", get(move || async move { index }))
        .route(
            "/fw.ota",
            get(move || {
                let image = image.clone();
                async move {
                    let chunks = image
                        .chunks(16 * 1024)
                        .map(<[u8]>::to_vec)
                        .collect::<Vec<_>>();
                    let body = trickle::Trickle::new(chunks, Duration::from_millis(25));
                    Response::builder()
                        .header("content-length", image.len().to_string())
                        .body(Body::new(body))
                        .unwrap()
                }
            }),
        );
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/index.json")
}

/// A response body that hands out its chunks with a pause before each.
mod trickle {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    pub(crate) struct Trickle {
        chunks: std::vec::IntoIter<Vec<u8>>,
        pause: Duration,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    }

    impl Trickle {
        pub(crate) fn new(chunks: Vec<Vec<u8>>, pause: Duration) -> Trickle {
            Trickle {
                chunks: chunks.into_iter(),
                pause,
                sleep: None,
            }
        }
    }

    impl http_body::Body for Trickle {
        type Data = bytes::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            let pause = self.pause;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            Poll::Ready(
                self.chunks
                    .next()
                    .map(|chunk| Ok(http_body::Frame::data(bytes::Bytes::from(chunk)))),
            )
        }
    }
}

pub(crate) fn config(dir: &std::path::Path, url: &str) -> (Config, std::path::PathBuf) {
    let path = offline_config(
        dir,
        dir,
        &format!("[[catalog.source]]\nkind = \"zigbee-ota-index\"\nurl = \"{url}\"\n"),
    );
    (Config::load(&path).unwrap(), path)
}

/// Reopens the cache the way the daemon does at start and checks it holds nothing half-written
/// except temp files (which are never offered and are removed here).
fn assert_cache_consistent(config: &Config, round: usize) {
    let (cache, removed) = Cache::open(&config.catalog.cache_dir, 64 * 1024 * 1024)
        .unwrap_or_else(|e| panic!("round {round}: the cache does not open: {e}"));
    for r in &removed {
        assert_eq!(
            r.reason,
            RemovalReason::PartialWrite,
            "round {round}: {} was {:?} after a kill",
            r.path.display(),
            r.reason
        );
    }
    // Whatever the daemon would serve parses and matches its catalog hash (images::load checks).
    let library = images::load(config);
    for image in &library.images {
        assert_eq!(image.key().file_version, 7, "round {round}");
    }
    drop(cache);
}

#[test]
fn kill_9_during_refresh_leaves_the_old_or_the_new_cache() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let image = image();
    let url = serve(&runtime, image.clone());
    let dir = tempfile::tempdir().unwrap();
    let (config, path) = config(dir.path(), &url);
    std::fs::create_dir_all(&config.state_dir).unwrap();
    std::fs::write(
        config.state_dir.join("known-devices.json"),
        r#"{"devices":[{"manufacturer_code":4489,"image_type":66,"current_file_version":1,"hardware_version":null}]}"#,
    )
    .unwrap();

    // Kill moments spread over a whole refresh (index call, 1 s interval, ~1 s download).
    let mut state = 0x2545_F491u32;
    // How the kills fell: before the index was stored, while the image was downloading (index
    // stored, image not yet), after the image was stored.
    let mut landed = [0usize; 3];
    for round in 0..12 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let kill_after = Duration::from_millis(u64::from(state % 4000));
        let mut child = Command::new(BIN)
            .args(["catalog", "refresh", "--config", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut finished = false;
        while started.elapsed() < kill_after {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !finished {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        if !finished {
            let index_stored = config
                .catalog
                .cache_dir
                .join("catalogs/zigbee-ota-index.json")
                .exists();
            let image_stored = std::fs::read_dir(config.catalog.cache_dir.join("images"))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
                })
                .unwrap_or(false);
            landed[usize::from(index_stored) + usize::from(image_stored)] += 1;
        }
        assert_cache_consistent(&config, round);
        // Forget the image between rounds so every round downloads again.
        if let Ok(entries) = std::fs::read_dir(config.catalog.cache_dir.join("images")) {
            for entry in entries.filter_map(Result::ok) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let _ = std::fs::remove_file(config.state_dir.join("ledger-zigbee-ota-index.json"));
        let _ = std::fs::remove_file(
            config
                .catalog
                .cache_dir
                .join("catalogs/zigbee-ota-index.json"),
        );
    }
    eprintln!(
        "kills: {} before the index was stored, {} during the image download, {} after",
        landed[0], landed[1], landed[2]
    );

    // Left alone, a refresh completes and the image is served from the cache.
    let status = Command::new(BIN)
        .args(["catalog", "refresh", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let library = images::load(&config);
    assert_eq!(library.images.len(), 1, "{:?}", library.skipped);
    assert_eq!(
        library.images[0].read_all().unwrap().as_ref(),
        image.as_slice()
    );
}
