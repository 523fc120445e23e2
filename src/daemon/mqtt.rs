//! The MQTT client task: thin glue between rumqttc and the sans-IO [`HaPublisher`].
//!
//! It runs beside the main loop and never on its path: it reads the status snapshots the main
//! loop publishes anyway (a `watch`, so a slow or absent broker costs the main loop nothing),
//! sends Install presses through the same bounded control channel the status socket uses, and
//! reconnects with a doubling backoff (0.5 s to 30 s). TLS (`mqtts://`) uses our rustls with the
//! ring provider and either `ca_file` or the system's trust store. The password is read from
//! `password_file` once and never logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration,
    Transport,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::ha::{HaPublisher, HaSettings, InstallCommand, ReleaseInfo};
use super::images::LibraryView;
use super::socket::{ControlRequest, Request};
use super::status::StatusSnapshot;
use crate::config::MqttSection;
use crate::server::ImageKey;

/// Requests rumqttc holds between us and the socket; the rest wait in the publisher's queue
/// (one message per topic).
const CLIENT_QUEUE: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What pressing Install asks of the daemon: approve the image available to the device and
/// apply it if it is already downloaded (`OtaServer::install`); the device is told to ask now
/// (Image Notify), which starts the transfer.
fn install_request(command: InstallCommand) -> Request {
    Request::Install {
        ieee: command.ieee.to_string(),
    }
}

/// Connects to the broker in `section` and keeps Home Assistant up to date until the task is
/// dropped. A configuration it cannot use (an unreadable password or CA file) is logged and the
/// task ends; serving goes on.
pub async fn run(
    section: MqttSection,
    mut snapshots: watch::Receiver<StatusSnapshot>,
    mut library: watch::Receiver<Arc<LibraryView>>,
    control: mpsc::Sender<ControlRequest>,
) {
    let mut publisher = HaPublisher::new(HaSettings {
        base_topic: section.base_topic.clone(),
        discovery_prefix: section.discovery_prefix.clone(),
        sw_version: env!("CARGO_PKG_VERSION").to_owned(),
    });
    let options = match mqtt_options(&section, publisher.availability_topic()) {
        Ok(options) => options,
        Err(error) => {
            tracing::error!("MQTT disabled: {error}");
            return;
        }
    };
    tracing::info!(url = %section.url, "MQTT: connecting");
    let (client, mut eventloop) = AsyncClient::new(options, CLIENT_QUEUE);
    let mut releases = release_map(&library.borrow_and_update());
    let mut retry_in = FIRST_RETRY;
    let mut reconnect_at: Option<Instant> = None;
    let mut down_since_logged = false;
    loop {
        while let Some(publication) = publisher.poll_publication() {
            let sent = client.try_publish(
                publication.topic.clone(),
                QoS::AtLeastOnce,
                publication.retain,
                publication.payload.clone(),
            );
            if sent.is_err() {
                publisher.requeue(publication);
                break;
            }
        }
        while let Some(command) = publisher.poll_install() {
            let control = control.clone();
            tokio::spawn(forward_install(command, control));
        }
        let far = Instant::now() + Duration::from_secs(3600);
        let progress_due = publisher.poll_timeout().map_or(far, Instant::from_std);
        tokio::select! {
            event = eventloop.poll(), if reconnect_at.is_none() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(url = %section.url, "MQTT: connected");
                    retry_in = FIRST_RETRY;
                    down_since_logged = false;
                    publisher.on_connected();
                    if let Err(error) = client.try_subscribe(publisher.command_filter(), QoS::AtLeastOnce) {
                        tracing::warn!(%error, "MQTT: cannot subscribe to Install presses");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    if let Some(command) = publisher.on_message(&message.topic, &message.payload) {
                        tracing::info!(ieee = %command.ieee, "MQTT: Install pressed");
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    publisher.on_disconnected();
                    log_down(&section.url, &error, &mut down_since_logged, retry_in);
                    reconnect_at = Some(Instant::now() + retry_in);
                    retry_in = (retry_in * 2).min(MAX_RETRY);
                }
            },
            _ = tokio::time::sleep_until(reconnect_at.unwrap_or(far)), if reconnect_at.is_some() => {
                reconnect_at = None;
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return;
                }
                let snapshot = snapshots.borrow_and_update().clone();
                publisher.on_snapshot(&snapshot, &releases, Instant::now().into_std());
            }
            changed = library.changed() => {
                if changed.is_err() {
                    return;
                }
                releases = release_map(&library.borrow_and_update());
            }
            _ = tokio::time::sleep_until(progress_due) => {
                publisher.handle_timeout(Instant::now().into_std());
            }
        }
    }
}

fn log_down(url: &str, error: &ConnectionError, logged: &mut bool, retry_in: Duration) {
    if *logged {
        tracing::debug!(%url, %error, "MQTT: still not connected");
    } else {
        *logged = true;
        tracing::warn!(
            %url,
            %error,
            "MQTT: broker unreachable; retrying in {} and backing off (serving is not affected)",
            humantime::format_duration(retry_in)
        );
    }
}

/// Hands one Install press to the main loop and logs its answer; waits for a slot in the
/// control channel rather than dropping the press.
async fn forward_install(command: InstallCommand, control: mpsc::Sender<ControlRequest>) {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest {
        request: install_request(command),
        reply,
    };
    if control.send(request).await.is_err() {
        return;
    }
    match answer.await {
        Ok(Ok(answer)) => {
            tracing::info!(ieee = %command.ieee, "MQTT Install: {}", answer.message);
        }
        Ok(Err(error)) => tracing::warn!(ieee = %command.ieee, "MQTT Install refused: {error}"),
        Err(_) => {}
    }
}

fn release_map(library: &LibraryView) -> HashMap<ImageKey, ReleaseInfo> {
    library
        .images
        .iter()
        .map(|image| {
            let notes = library.notes.get(&image.provenance().location);
            (
                image.key(),
                ReleaseInfo {
                    title: notes.and_then(|n| n.file_name.clone()),
                    notes: notes.and_then(|n| n.release_notes.clone()),
                },
            )
        })
        .collect()
}

/// rumqttc options: client id, keep-alive, clean session, the last will, credentials, TLS.
fn mqtt_options(section: &MqttSection, availability_topic: String) -> Result<MqttOptions, String> {
    let broker = section.broker()?;
    let mut options = MqttOptions::new(section.client_id.clone(), broker.host.clone(), broker.port);
    options.set_keep_alive(KEEP_ALIVE);
    options.set_clean_session(true);
    options.set_last_will(LastWill::new(
        availability_topic,
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(username) = &section.username {
        let password = match &section.password_file {
            Some(path) => read_password(path)?,
            None => String::new(),
        };
        options.set_credentials(username.clone(), password);
    }
    if broker.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(section.ca_file.as_deref())?),
        )));
    }
    Ok(options)
}

/// The first line of the password file (the error names the file, never its content).
fn read_password(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("password_file {}: {error}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|error| format!("ca_file {}: {error}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|error| format!("ca_file {}: {error}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|error| format!("ca_file {}: {error}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "ca_file {}: no PEM certificate in it",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no system CA certificates found; set `ca_file`".to_owned());
            }
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|error| format!("TLS: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str) -> MqttSection {
        toml::from_str(&format!("url = \"{url}\"")).unwrap()
    }

    #[test]
    fn tls_needs_a_readable_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = section("mqtts://broker.lan");
        s.ca_file = Some(dir.path().join("missing.pem"));
        let error = mqtt_options(&s, "a".into()).unwrap_err();
        assert!(error.contains("missing.pem"), "{error}");
        std::fs::write(dir.path().join("empty.pem"), "not a certificate").unwrap();
        s.ca_file = Some(dir.path().join("empty.pem"));
        let error = mqtt_options(&s, "a".into()).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn the_password_is_never_in_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        assert_eq!(read_password(&path).unwrap(), "s3cret");
        let error = read_password(&dir.path().join("nope")).unwrap_err();
        assert!(error.contains("nope") && !error.contains("s3cret"));
        let mut s = section("mqtt://127.0.0.1");
        s.username = Some("ha".into());
        s.password_file = Some(path);
        let options = mqtt_options(&s, "a".into()).unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(
            options.credentials().map(|c| c.username),
            Some("ha".to_owned())
        );
    }
}
