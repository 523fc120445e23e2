//! Integration tests for the `catalog` module, by topic: the parsers against the real catalogs in
//! `../shared/testdata/catalogs`, the monthly limiter, the on-disk cache, the HTTP edge against a
//! local server, and matching over the merged real catalogs.

use zigbee_otad::catalog::model::{Provenance, SourceKind};

mod cache_on_disk;
mod http_edge;
mod limiter_month;
mod matching;
mod parsers;

const LEDVANCE_URL: &str = "https://api.update.ledvance.com/v1/zigbee/firmwares";
const LEDVANCE_FILES: [&str; 2] = [
    "ledvance-zigpy-tests-firmwares.json",
    "ledvance-zigbee-OTA-cache.json",
];

fn ledvance_source() -> Provenance {
    Provenance {
        source: "ledvance".into(),
        kind: SourceKind::Ledvance,
    }
}
