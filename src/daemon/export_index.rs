//! What the index export serves, without any IO: the verified images we hold, described as a
//! zigbee-OTA `index.json` (CATALOGS.md, "zigbee-OTA `index.json`"; read by Zigbee2MQTT's
//! zigbee-herdsman and by zigpy's `z2m` provider) and as a zigpy index (zigpy's
//! `RemoteZigpyProvider` format, `{"firmwares": [...]}` with a `sha3-256:` checksum), plus the
//! small pieces of HTTP the server needs (ETag, `Range`), decided here so they are unit-tested.
//!
//! Every image is named by the SHA-512 of the exact bytes served, and is looked up by that
//! digest: a request path never becomes a file path.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha3::Digest as _;

use crate::catalog::model::{HashAlgorithm, ImageHash};
use crate::ota::OtaFile;
use crate::server::OtaImage;

use super::images::{ImageNotes, LibraryView};

/// One image as the export serves it.
#[derive(Debug, Clone)]
pub struct ExportImage {
    /// The image served (the same bytes the OTA server streams to devices), read from its
    /// file at each request rather than held in memory.
    pub image: Arc<OtaImage>,
    /// Its size in bytes.
    pub size: u32,
    /// SHA-512 of `bytes`, lowercase hex: the image's name in `/images/<sha512>.ota`.
    pub sha512: String,
    /// SHA3-256 of `bytes`, lowercase hex (zigpy's checksum).
    pub sha3_256: String,
    /// Manufacturer code, image type, file version.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
    /// The OTA header's text, if printable.
    pub header_string: Option<String>,
    /// A display file name.
    pub file_name: String,
    /// Who the image is for, and from which versions (catalog restrictions and the header's
    /// hardware range).
    pub min_file_version: Option<u32>,
    /// Highest current version the image is offered to.
    pub max_file_version: Option<u32>,
    /// Lowest hardware version.
    pub hardware_version_min: Option<u16>,
    /// Highest hardware version.
    pub hardware_version_max: Option<u16>,
    /// Model ids (Basic cluster `ModelIdentifier`); empty means any.
    pub model_ids: Vec<String>,
    /// Manufacturer names (Basic cluster `ManufacturerName`); empty means any.
    pub manufacturer_names: Vec<String>,
    /// Release notes from the catalog (text or a URL).
    pub release_notes: Option<String>,
}

/// Everything the export serves, built once per library load.
#[derive(Debug, Default)]
pub struct ExportCatalog {
    /// By SHA-512 hex.
    images: BTreeMap<String, Arc<ExportImage>>,
    /// Images left out, with the reason (device-specific images have no place in an index).
    pub left_out: Vec<String>,
}

impl ExportCatalog {
    /// Describes every image in `library`: hashes each (call it off the serving thread).
    pub fn build(library: &LibraryView) -> ExportCatalog {
        let mut catalog = ExportCatalog::default();
        for image in &library.images {
            if let Some(ieee) = image.destination() {
                catalog.left_out.push(format!(
                    "{}: made for one device ({ieee}); not exported",
                    image.key()
                ));
                continue;
            }
            let notes = library.notes.get(&image.provenance().location);
            let export = describe(image, notes);
            catalog
                .images
                .entry(export.sha512.clone())
                .or_insert_with(|| Arc::new(export));
        }
        catalog
    }

    /// The image whose SHA-512 is `sha512_hex` (lowercase hex), if we hold it.
    pub fn image(&self, sha512_hex: &str) -> Option<&Arc<ExportImage>> {
        self.images.get(sha512_hex)
    }

    /// How many images are exported.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// No image is exported.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The zigbee-OTA `index.json`: one entry per image and model id, `url` under `base_url`.
    pub fn zigbee_ota_index(&self, base_url: &str) -> Vec<u8> {
        let mut entries = Vec::new();
        for image in self.images.values() {
            let models: Vec<Option<&String>> = if image.model_ids.is_empty() {
                vec![None]
            } else {
                image.model_ids.iter().map(Some).collect()
            };
            for model in models {
                let mut entry = Map::new();
                entry.insert("fileName".into(), json!(image.file_name));
                entry.insert("fileVersion".into(), json!(image.file_version));
                entry.insert("fileSize".into(), json!(image.size));
                entry.insert("url".into(), json!(image_url(base_url, &image.sha512)));
                entry.insert("imageType".into(), json!(image.image_type));
                entry.insert("manufacturerCode".into(), json!(image.manufacturer_code));
                entry.insert("sha512".into(), json!(image.sha512));
                if let Some(text) = &image.header_string {
                    entry.insert("otaHeaderString".into(), json!(text));
                }
                insert_some(&mut entry, "hardwareVersionMin", image.hardware_version_min);
                insert_some(&mut entry, "hardwareVersionMax", image.hardware_version_max);
                insert_some(&mut entry, "minFileVersion", image.min_file_version);
                insert_some(&mut entry, "maxFileVersion", image.max_file_version);
                if let Some(model) = model {
                    entry.insert("modelId".into(), json!(model));
                }
                if !image.manufacturer_names.is_empty() {
                    entry.insert("manufacturerName".into(), json!(image.manufacturer_names));
                }
                if let Some(notes) = &image.release_notes {
                    entry.insert("releaseNotes".into(), json!(notes));
                }
                entries.push(Value::Object(entry));
            }
        }
        to_json_bytes(&Value::Array(entries))
    }

    /// zigpy's own index format (`zigpy_remote` provider): hardware ranges included, which
    /// zigpy's `z2m` provider does not read.
    pub fn zigpy_index(&self, base_url: &str) -> Vec<u8> {
        let firmwares: Vec<Value> = self
            .images
            .values()
            .map(|image| {
                let mut entry = Map::new();
                entry.insert(
                    "binary_url".into(),
                    json!(image_url(base_url, &image.sha512)),
                );
                entry.insert("file_version".into(), json!(image.file_version));
                entry.insert("file_size".into(), json!(image.size));
                entry.insert("image_type".into(), json!(image.image_type));
                entry.insert("manufacturer_id".into(), json!(image.manufacturer_code));
                entry.insert(
                    "checksum".into(),
                    json!(format!("sha3-256:{}", image.sha3_256)),
                );
                if !image.manufacturer_names.is_empty() {
                    entry.insert("manufacturer_names".into(), json!(image.manufacturer_names));
                }
                if !image.model_ids.is_empty() {
                    entry.insert("model_names".into(), json!(image.model_ids));
                }
                insert_some(
                    &mut entry,
                    "min_hardware_version",
                    image.hardware_version_min,
                );
                insert_some(
                    &mut entry,
                    "max_hardware_version",
                    image.hardware_version_max,
                );
                insert_some(
                    &mut entry,
                    "min_current_file_version",
                    image.min_file_version,
                );
                insert_some(
                    &mut entry,
                    "max_current_file_version",
                    image.max_file_version,
                );
                if let Some(notes) = &image.release_notes {
                    entry.insert("release_notes".into(), json!(notes));
                }
                Value::Object(entry)
            })
            .collect();
        to_json_bytes(&json!({ "firmwares": firmwares }))
    }
}

fn insert_some<T: Into<Value>>(entry: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        entry.insert(key.to_owned(), value.into());
    }
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// Where an image is served.
pub fn image_url(base_url: &str, sha512_hex: &str) -> String {
    format!("{}/images/{sha512_hex}.ota", base_url.trim_end_matches('/'))
}

fn describe(image: &Arc<OtaImage>, notes: Option<&ImageNotes>) -> ExportImage {
    let key = image.key();
    // Read here, off the serial thread (the export builds its index in its own task).
    let bytes = image.read_all().unwrap_or_default();
    let sha512 = ImageHash::compute(HashAlgorithm::Sha512, &bytes).to_hex();
    let sha3_256 = lower_hex(&sha3::Sha3_256::digest(&bytes));
    let header_string = OtaFile::parse(bytes.clone()).ok().and_then(|file| {
        file.header()
            .header_string_text()
            .map(|t| t.trim_end_matches('\0').trim().to_owned())
            .filter(|t| !t.is_empty())
    });
    let restrictions = image.restrictions();
    let header_range = image.hardware_versions();
    let file_name = notes.and_then(|n| n.file_name.clone()).unwrap_or_else(|| {
        format!(
            "{:04x}-{:04x}-{:08x}.ota",
            key.manufacturer_code, key.image_type, key.file_version
        )
    });
    ExportImage {
        sha512,
        sha3_256,
        manufacturer_code: key.manufacturer_code,
        image_type: key.image_type,
        file_version: key.file_version,
        header_string,
        file_name,
        min_file_version: restrictions.min_current_version,
        max_file_version: restrictions.max_current_version,
        hardware_version_min: restrictions
            .min_hardware_version
            .or(header_range.map(|r| r.0)),
        hardware_version_max: restrictions
            .max_hardware_version
            .or(header_range.map(|r| r.1)),
        model_ids: restrictions.models.clone(),
        manufacturer_names: notes
            .map(|n| n.manufacturer_names.clone())
            .unwrap_or_default(),
        release_notes: notes.and_then(|n| n.release_notes.clone()),
        size: image.size(),
        image: Arc::clone(image),
    }
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// A strong entity tag for a body named by `hex` (a digest).
pub fn etag(hex: &str) -> String {
    format!("\"{}\"", hex.get(..32).unwrap_or(hex))
}

/// SHA-256 of an index body, for its ETag.
pub fn body_digest(body: &[u8]) -> String {
    ImageHash::compute(HashAlgorithm::Sha256, body).to_hex()
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// What to send for a `Range` header against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: the whole body, 200.
    Whole,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416: the range lies outside the body.
    Unsatisfiable,
}

/// Reads a `Range: bytes=…` header (RFC 9110 §14.2). One range is served; several ranges, other
/// units or a malformed header get the whole body, as the RFC allows.
pub fn parse_range(header: &str, len: u64) -> RangeAnswer {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeAnswer::Whole,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (start, "") => match number(start) {
            None => RangeAnswer::Whole,
            Some(start) if start >= len => RangeAnswer::Unsatisfiable,
            Some(start) => RangeAnswer::Partial {
                start,
                end: len - 1,
            },
        },
        (start, end) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial {
                        start,
                        end: end.min(len - 1),
                    }
                }
            }
            _ => RangeAnswer::Whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{CatalogRestrictions, ImageKey, Provenance};
    use bytes::Bytes;

    fn library() -> LibraryView {
        let key = ImageKey {
            manufacturer_code: 0x1189,
            image_type: 0x00cd,
            file_version: 0x0348_3712,
        };
        let image = OtaImage::new(key, Bytes::from_static(b"not parsed here"))
            .unwrap()
            .with_hardware_versions(1, 3)
            .with_provenance(Provenance {
                source: "koenkk".into(),
                location: "abc".into(),
            })
            .with_restrictions(CatalogRestrictions {
                min_current_version: Some(5),
                models: vec!["TRADFRI bulb".into(), "TRADFRI bulb E27".into()],
                ..CatalogRestrictions::default()
            });
        let mut view = LibraryView {
            images: vec![image.shared()],
            ..LibraryView::default()
        };
        view.notes.insert(
            "abc".into(),
            ImageNotes {
                file_name: Some("bulb.ota".into()),
                release_notes: Some("https://example.org/notes".into()),
                manufacturer_names: vec!["IKEA of Sweden".into()],
            },
        );
        view
    }

    #[test]
    fn index_carries_fields_and_restrictions() {
        let catalog = ExportCatalog::build(&library());
        assert_eq!(catalog.len(), 1);
        let index: Value =
            serde_json::from_slice(&catalog.zigbee_ota_index("http://127.0.0.1:8765/")).unwrap();
        let entries = index.as_array().unwrap();
        assert_eq!(entries.len(), 2, "one entry per model id");
        let e = &entries[0];
        let sha = ImageHash::compute(HashAlgorithm::Sha512, b"not parsed here").to_hex();
        assert_eq!(e["sha512"], json!(sha));
        assert_eq!(
            e["url"],
            json!(format!("http://127.0.0.1:8765/images/{sha}.ota"))
        );
        assert_eq!(e["fileSize"], json!(15));
        assert_eq!(e["manufacturerCode"], json!(0x1189));
        assert_eq!(e["imageType"], json!(0xcd));
        assert_eq!(e["fileVersion"], json!(0x0348_3712));
        assert_eq!(e["minFileVersion"], json!(5));
        assert_eq!(e["hardwareVersionMin"], json!(1));
        assert_eq!(e["hardwareVersionMax"], json!(3));
        assert_eq!(e["modelId"], json!("TRADFRI bulb"));
        assert_eq!(entries[1]["modelId"], json!("TRADFRI bulb E27"));
        assert_eq!(e["manufacturerName"], json!(["IKEA of Sweden"]));
        assert_eq!(e["fileName"], json!("bulb.ota"));
        assert!(e.get("maxFileVersion").is_none());
        assert!(catalog.image(&sha).is_some());
        assert!(catalog.image("../../etc/passwd").is_none());
    }

    #[test]
    fn zigpy_index_uses_sha3() {
        let catalog = ExportCatalog::build(&library());
        let index: Value = serde_json::from_slice(&catalog.zigpy_index("http://h:1")).unwrap();
        let fw = &index["firmwares"][0];
        let expected = lower_hex(&sha3::Sha3_256::digest(b"not parsed here"));
        assert_eq!(fw["checksum"], json!(format!("sha3-256:{expected}")));
        assert_eq!(fw["min_hardware_version"], json!(1));
        assert_eq!(
            fw["model_names"],
            json!(["TRADFRI bulb", "TRADFRI bulb E27"])
        );
        assert_eq!(fw["manufacturer_id"], json!(0x1189));
        assert_eq!(fw["file_size"], json!(15));
    }

    #[test]
    fn device_specific_images_are_left_out() {
        let key = ImageKey {
            manufacturer_code: 1,
            image_type: 2,
            file_version: 3,
        };
        let image = OtaImage::new(key, Bytes::from_static(b"x"))
            .unwrap()
            .with_destination(crate::server::Ieee(7));
        let view = LibraryView {
            images: vec![image.shared()],
            ..LibraryView::default()
        };
        let catalog = ExportCatalog::build(&view);
        assert!(catalog.is_empty());
        assert_eq!(catalog.left_out.len(), 1);
    }

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(
            parse_range("bytes=90-", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-1000", 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=50-1000", 100),
            Partial { start: 50, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
        assert_eq!(parse_range("bytes=x-1", 100), Whole);
        assert_eq!(parse_range("bytes=99999999999999999999-", 100), Whole);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn entity_tags() {
        let tag = etag(&"ab".repeat(64));
        assert_eq!(tag.len(), 34);
        assert!(if_none_match(&format!("\"x\", {tag}"), &tag));
        assert!(if_none_match(&format!("W/{tag}"), &tag));
        assert!(if_none_match("*", &tag));
        assert!(!if_none_match("\"other\"", &tag));
    }
}
