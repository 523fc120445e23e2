//! The demo's stand-in for the cloud: a loopback HTTP/1.1 server (hyper) that plays the two
//! catalogs the daemon reads in the field, with the shapes CATALOGS.md gives:
//!
//! * the LEDVANCE API: `GET /v1/zigbee/firmwares` (`{"firmwares":[…]}` with `identity`,
//!   `shA256`, `length`, `fullName`) and its download form
//!   `GET /v1/zigbee/firmwares/download?Company=&Product=&Version=a.b.c.d`;
//! * a zigbee-OTA `index.json` (`fileName`, `fileVersion`, `fileSize`, `url`, `sha512`, and the
//!   `modelId`/`manufacturerName` restrictions), with its images under `/images/<file name>`.
//!
//! It serves fixed bytes from memory by exact path and query (nothing is ever a file path) and
//! counts the requests, so the demo can show that the daemon kept within the rate limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::catalog::model::{HashAlgorithm, ImageHash};

/// Where the LEDVANCE catalog lives on the demo server.
pub const LEDVANCE_PATH: &str = "/v1/zigbee/firmwares";
/// Where the zigbee-OTA index lives on the demo server.
pub const INDEX_PATH: &str = "/index.json";

/// One image the demo's LEDVANCE API lists.
#[derive(Debug, Clone)]
pub struct LedvanceImage {
    /// `identity.company` (the manufacturer code).
    pub company: u16,
    /// `identity.product` (the image type).
    pub product: u16,
    /// The OTA file version (packed into `identity.version`).
    pub file_version: u32,
    /// `productName`.
    pub product_name: String,
    /// The OTA file.
    pub bytes: Vec<u8>,
}

/// One image the demo's zigbee-OTA index lists, with its restrictions.
#[derive(Debug, Clone)]
pub struct IndexImage {
    /// `fileName`, also its path under `/images/`.
    pub file_name: String,
    /// `manufacturerCode`.
    pub manufacturer_code: u16,
    /// `imageType`.
    pub image_type: u16,
    /// `fileVersion`.
    pub file_version: u32,
    /// `modelId`, when the entry is for one model only.
    pub model_id: Option<String>,
    /// `manufacturerName`, when the entry is for these manufacturer names only.
    pub manufacturer_names: Vec<String>,
    /// The OTA file.
    pub bytes: Vec<u8>,
}

/// The running demo cloud.
#[derive(Debug)]
pub struct DemoCloud {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DemoCloud {
    /// Binds a loopback port and serves `ledvance` and `index` until dropped.
    pub async fn start(
        ledvance: &[LedvanceImage],
        index: &[IndexImage],
    ) -> std::io::Result<DemoCloud> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let routes = Arc::new(routes(&base_url, ledvance, index));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let routes = routes.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let answer = answer(&routes, &request);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "demo cloud: connection ended");
                    }
                });
            }
        });
        Ok(DemoCloud {
            base_url,
            requests,
            task,
        })
    }

    /// Requests answered so far (catalogs and downloads).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for DemoCloud {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the server answers, by path and query exactly as requested.
type Routes = HashMap<String, (&'static str, Bytes)>;

fn answer(routes: &Routes, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let (status, content_type, body) = match routes.get(target) {
        Some((content_type, body)) => (StatusCode::OK, *content_type, body.clone()),
        None => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn routes(base_url: &str, ledvance: &[LedvanceImage], index: &[IndexImage]) -> Routes {
    let mut routes = Routes::new();
    let mut firmwares = Vec::new();
    for image in ledvance {
        let [major, minor, build, revision] = image.file_version.to_be_bytes();
        let file_name = format!(
            "{}_IMG{:04X}_{:08X}.ota",
            image.product_name.replace(' ', "_"),
            image.product,
            image.file_version
        );
        firmwares.push(serde_json::json!({
            "blob": null,
            "identity": {
                "company": image.company,
                "product": image.product,
                "version": {"major": major, "minor": minor, "build": build, "revision": revision},
            },
            "releaseNotes": "Demo release: better colour mixing.",
            "shA256": ImageHash::compute(HashAlgorithm::Sha256, &image.bytes).to_hex(),
            "name": file_name,
            "productName": image.product_name,
            "fullName": format!("{}/{:08X}/{}", image.product_name, image.file_version, file_name),
            "extension": ".ota",
            "released": "2026-11-30T12:00:00",
            "salesRegion": "eu",
            "length": image.bytes.len(),
        }));
        routes.insert(
            format!(
                "{LEDVANCE_PATH}/download?Company={}&Product={}&Version={major}.{minor}.{build}.{revision}",
                image.company, image.product
            ),
            ("application/octet-stream", Bytes::from(image.bytes.clone())),
        );
    }
    routes.insert(
        LEDVANCE_PATH.to_owned(),
        (
            "application/json",
            Bytes::from(serde_json::json!({ "firmwares": firmwares }).to_string()),
        ),
    );

    let mut entries = Vec::new();
    for image in index {
        let mut entry = serde_json::Map::new();
        entry.insert("fileName".into(), image.file_name.clone().into());
        entry.insert("fileVersion".into(), image.file_version.into());
        entry.insert("fileSize".into(), image.bytes.len().into());
        entry.insert(
            "url".into(),
            format!("{base_url}/images/{}", image.file_name).into(),
        );
        entry.insert("imageType".into(), image.image_type.into());
        entry.insert("manufacturerCode".into(), image.manufacturer_code.into());
        entry.insert(
            "sha512".into(),
            ImageHash::compute(HashAlgorithm::Sha512, &image.bytes)
                .to_hex()
                .into(),
        );
        entry.insert("otaHeaderString".into(), "zigbee-otad demo".into());
        if let Some(model) = &image.model_id {
            entry.insert("modelId".into(), model.clone().into());
        }
        if !image.manufacturer_names.is_empty() {
            entry.insert(
                "manufacturerName".into(),
                image.manufacturer_names.clone().into(),
            );
        }
        entries.push(entry);
        routes.insert(
            format!("/images/{}", image.file_name),
            ("application/octet-stream", Bytes::from(image.bytes.clone())),
        );
    }
    routes.insert(
        INDEX_PATH.to_owned(),
        (
            "application/json",
            Bytes::from(serde_json::Value::from(entries).to_string()),
        ),
    );
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{Provenance, SourceKind};
    use crate::catalog::provider::{ledvance, zigbee_ota_index};

    fn provenance(kind: SourceKind) -> Provenance {
        Provenance {
            source: "demo".into(),
            kind,
        }
    }

    /// What the demo cloud serves is read by our own catalog parsers, and the LEDVANCE
    /// download URL they build is one the server answers.
    #[test]
    fn the_served_catalogs_parse_and_their_urls_resolve() {
        let base = "http://127.0.0.1:9";
        let led = LedvanceImage {
            company: 0x1189,
            product: 0x00CD,
            file_version: 0x0102_0400,
            product_name: "A60 demo".into(),
            bytes: vec![1, 2, 3],
        };
        let tuya = IndexImage {
            file_name: "tuya.ota".into(),
            manufacturer_code: 0x1141,
            image_type: 0xD3A3,
            file_version: 2,
            model_id: Some("TS0505B".into()),
            manufacturer_names: vec!["_TZ3210_demo".into()],
            bytes: vec![4, 5, 6, 7],
        };
        let routes = routes(base, &[led], &[tuya]);
        let catalog_url = format!("{base}{LEDVANCE_PATH}");
        let parsed = ledvance::parse(
            &routes[LEDVANCE_PATH].1,
            &catalog_url,
            &provenance(SourceKind::Ledvance),
        )
        .unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].file_version, 0x0102_0400);
        let download = ledvance::download_url(
            &catalog_url,
            0x1189,
            0x00CD,
            ledvance::LedvanceVersion::from_file_version(0x0102_0400),
        );
        assert!(routes.contains_key(download.trim_start_matches(base)));

        let parsed = zigbee_ota_index::parse(
            &routes[INDEX_PATH].1,
            &provenance(SourceKind::ZigbeeOtaIndex),
        )
        .unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(
            parsed.entries[0].restrictions.model_id.as_deref(),
            Some("TS0505B")
        );
        assert!(routes.contains_key("/images/tuya.ota"));
    }
}
