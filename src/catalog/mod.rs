//! Firmware catalogs: where images come from and which one a device should get.
//!
//! Follows CATALOGS.md (the LEDVANCE API and the zigbee-OTA `index.json`) and ZCL §11 (OTA
//! Upgrade cluster: manufacturer code, image type, file version, wildcards).
//!
//! * [`model`]: a catalog entry with provenance, digest, locator and restrictions (sans-IO).
//! * [`provider`]: parsers for each source's catalog (sans-IO), and [`provider::http`], the
//!   HTTP edge that fetches catalogs and images within the limits (IO).
//! * [`limiter`]: per-source call interval, monthly quotas, `Retry-After` and backoff (sans-IO).
//! * [`merged`]: all sources merged; the best image for a device, restrictions applied (sans-IO).
//! * [`claims`]: which devices' claims may start downloads (confirmed devices, hourly budget).
//! * [`image_file`]: a verified image served from its file with bounded reads.
//! * [`cache`]: the on-disk cache of catalogs and images, written atomically, verified at open.
//! * [`pins`]: how an image whose catalog publishes no digest is verified and pinned.
//! * [`scheduler`]: when the service runs: refresh interval, retries, image holds (sans-IO).
//! * [`service`]: the scheduled refresh, lazy downloads and the persisted quota ledgers (IO).
//! * [`report`]: the `catalog list` and `catalog refresh` backends.
//! * [`matching`]: the `catalog match` backend (what a device would get, and why).
//!
//! ```
//! use zigbee_otad::catalog::model::{Provenance, SourceKind};
//! use zigbee_otad::catalog::provider::ledvance::{self, LedvanceVersion};
//!
//! let version = LedvanceVersion { major: 0, minor: 16, build: 36, revision: 40 };
//! assert_eq!(version.file_version(), 0x0010_2428);
//! assert_eq!(LedvanceVersion::from_file_version(0x0010_2428), version);
//!
//! let body = br#"{"firmwares":[{"identity":{"company":4489,"product":25,
//!   "version":{"major":0,"minor":16,"build":36,"revision":40}},
//!   "shA256":"ffe0298312f63fa0be5e568886e419d714146652ff4747a8afed2de221ad43ee",
//!   "fullName":"A19 RGBW/00102428/A19_RGBW_IMG0019_00102428-encrypted.ota","length":180052}]}"#;
//! let source = Provenance { source: "ledvance".into(), kind: SourceKind::Ledvance };
//! let catalog = ledvance::parse(body, "https://api.update.ledvance.com/v1/zigbee/firmwares", &source)?;
//! assert_eq!(catalog.entries[0].file_version, version.file_version());
//!
//! // The limiter's ledger encodes to JSON for the state directory and decodes back.
//! use std::time::{Duration, UNIX_EPOCH};
//! use zigbee_otad::catalog::limiter::{Ledger, Limiter, LimiterConfig};
//! let now = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
//! let mut limiter = Limiter::new(LimiterConfig::ledvance(), now);
//! let permit = limiter.begin_call(now, 150_000).expect("the first call is allowed");
//! limiter.record_bytes(now, permit.byte_allowance);
//! let saved = limiter.ledger().to_json();
//! assert_eq!(&Ledger::from_json(saved.as_bytes())?, limiter.ledger());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
pub mod claims;
pub mod image_file;
pub mod limiter;
pub mod matching;
pub mod merged;
pub mod model;
pub mod partial_image;
pub mod pins;
pub mod provider;
pub mod report;
pub mod scheduler;
pub mod service;
pub mod sources;
