//! A catalog source served over HTTPS by a server whose certificate a private CA signed (as
//! IKEA's firmware host is signed by IKEA's own root): refused under the system roots, fetched
//! once the source's `ca_file` names the CA, and only for that source. The server is a real
//! `openssl s_server` on 127.0.0.1; the certificates are made by `openssl` at test time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use zigbee_otad::catalog::scheduler::ImageHolds;
use zigbee_otad::catalog::service::{
    CatalogOutcome, CatalogService, Clock, RefreshReport, ServiceOptions, VirtualClock,
};
use zigbee_otad::config::Config;

use crate::common::{free_port, vectors_dir};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `openssl s_server -WWW` serving `dir` on 127.0.0.1 with `cert`/`key`; waits until it
/// accepts connections.
async fn serve_https(dir: &Path, cert: &Path, key: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let server = Server(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (server, port);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("openssl s_server did not listen on {port}");
}

fn config(dir: &Path, port: u16, ca_file: Option<&Path>) -> Config {
    let ca = ca_file.map_or(String::new(), |p| {
        format!("ca_file = \"{}\"\n", p.display())
    });
    let text = format!(
        r#"state_dir = "{state}"
[coordinator]
port = "/dev/null"
[catalog]
cache_dir = "{cache}"
[[catalog.source]]
kind = "ikea"
name = "ikea-private-ca"
url = "https://127.0.0.1:{port}/version_info.json"
{ca}
[[catalog.source]]
kind = "ikea"
name = "ikea-system-roots"
url = "https://localhost:{port}/version_info.json"
"#,
        state = dir.join("state").display(),
        cache = dir.join("cache").display(),
    );
    Config::from_toml_str(&text, "test").unwrap()
}

async fn refresh(config: &Config) -> RefreshReport {
    let clock = VirtualClock::new(UNIX_EPOCH + Duration::from_secs(1_795_651_200));
    let mut service = CatalogService::open_with(
        config,
        ServiceOptions {
            clock: Clock::Virtual(clock),
            ..ServiceOptions::default()
        },
    )
    .unwrap();
    service.refresh(&[], &ImageHolds::default()).await
}

fn feed_dir(root: &Path) -> PathBuf {
    let www = root.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::copy(
        vectors_dir().join("providers/ikea_version_info_dirigera.json"),
        www.join("version_info.json"),
    )
    .unwrap();
    www
}

#[tokio::test]
async fn a_source_trusts_its_ca_file_and_only_that_source_does() {
    if !openssl_available() {
        eprintln!("SKIPPED: openssl is not installed; the private-CA HTTPS test cannot run");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::mqtt::make_ca_and_broker_cert(&root.path().join("pki"), "ikea");
    let www = feed_dir(root.path());
    let (_server, port) = serve_https(&www, &cert, &key).await;

    // Without the CA: the system roots (plus IKEA's own root) do not know this server.
    let plain = refresh(&config(&root.path().join("plain"), port, None)).await;
    for line in &plain.sources {
        assert!(
            matches!(&line.catalog, CatalogOutcome::Failed { error } if error.to_lowercase().contains("certificate")),
            "{plain}"
        );
    }

    // With it: the source that names the CA fetches its feed; the other source still does
    // not trust the server (the CA is added for that one source only).
    let trusted = refresh(&config(&root.path().join("trusted"), port, Some(&ca))).await;
    assert!(
        matches!(trusted.sources[0].catalog, CatalogOutcome::Changed { .. }),
        "{trusted}"
    );
    assert!(trusted.sources[0].entries > 0, "{trusted}");
    assert!(
        matches!(&trusted.sources[1].catalog, CatalogOutcome::Failed { error } if error.to_lowercase().contains("certificate")),
        "{trusted}"
    );
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_refused_at_open() {
    let root = tempfile::tempdir().unwrap();
    let not_pem = root.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let config = config(&root.path().join("data"), 443, Some(&not_pem));
    let error = CatalogService::open_with(&config, ServiceOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("catalog.source[0].ca_file") && error.contains("ca.pem"),
        "{error}"
    );
    let missing = config_with_missing(&root.path().join("data2"));
    let error = CatalogService::open_with(&missing, ServiceOptions::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("catalog.source[0].ca_file"), "{error}");
}

fn config_with_missing(dir: &Path) -> Config {
    config(dir, 443, Some(&dir.join("absent.pem")))
}
