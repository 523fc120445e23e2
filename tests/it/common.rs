//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/testdata` beside the repository, or `None` (with a note on stderr) when absent.
pub fn shared_testdata() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; this test needs the shared real-world testdata",
            dir.display()
        );
        None
    }
}

/// The project's own committed vectors under `tests/vectors/`.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Writes `dir/config.toml` for commands that never open the coordinator (`catalog refresh`,
/// the image loader): state and cache under `data`, the status socket under `dir`, and
/// `sources` as `[[catalog.source]]` tables. Returns its path.
pub fn offline_config(dir: &std::path::Path, data: &std::path::Path, sources: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = \"{data}/state\"\n\
             [coordinator]\nport = \"/dev/null\"\n\
             [catalog]\ncache_dir = \"{data}/cache\"\n\
             {sources}\
             [status]\nsocket = \"{root}/status.sock\"\n",
            data = data.display(),
            root = dir.display(),
        ),
    )
    .unwrap();
    path
}

/// A zigbee-OTA index (`index.json`) with one entry for `image` (manufacturer 0x1189), served
/// from `file_url`, published with `sha512` (hex).
pub fn zigbee_ota_index(
    file_url: &str,
    image: &[u8],
    image_type: u16,
    file_version: u32,
    sha512: &str,
) -> String {
    format!(
        r#"[{{"fileName":"fw.ota","fileVersion":{file_version},"fileSize":{size},"url":"{file_url}",
            "imageType":{image_type},"manufacturerCode":4489,"sha512":"{sha512}"}}]"#,
        size = image.len(),
    )
}

/// Where `.ci/run` installs zigbee-herdsman 10.9.5 (`ZIGBEE_HERDSMAN_DIR`, or its default
/// scratch dir), if it is there: the folder whose `node_modules` holds it.
pub fn herdsman_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ZIGBEE_HERDSMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("zigbee-otad-ci-herdsman"));
    dir.join("node_modules/zigbee-herdsman/package.json")
        .is_file()
        .then_some(dir)
}

/// A loopback TCP port that was free a moment ago (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A runtime of its own (kept alive by the caller) with a listener on a free loopback port and
/// its base URL (`http://127.0.0.1:PORT`), for a test's HTTP server whose pages name the URL.
pub fn loopback_listener() -> (tokio::runtime::Runtime, tokio::net::TcpListener, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (runtime, listener, base)
}
