//! The merged catalog: every source's entries indexed by (manufacturer code, image type), and
//! the choice of the best image for a device (ZCL §11.13.4 Query Next Image: the server picks
//! an image for the device's manufacturer code, image type, current file version and, when
//! sent, hardware version).
//!
//! * Lookups are a handful of hash-map probes: the exact key and the wildcard keys
//!   (manufacturer 0xFFFF, image type 0xFFFF).
//! * Only versions newer than the device's are offered; downgrades and pinning are policy
//!   decisions taken by the server.
//! * Restrictions are applied before choosing, so one version shipped for two hardware ranges
//!   (ubisys) gives each device its own file.
//! * The same version listed with two different digests of the same algorithm (two sources
//!   disagreeing, or one source contradicting itself) is offered from neither, and the reason
//!   says which sources and digests; only the most specific listings of that version are
//!   compared (an exact manufacturer/type listing is preferred over a wildcard one, which
//!   does not contradict it). Digests of different algorithms (LEDVANCE sha256 versus
//!   zigbee-OTA sha512) cannot be compared; then the exact match wins over a wildcard, and the
//!   earlier-configured source over a later one.

use std::collections::HashMap;

use super::model::{
    CatalogEntry, DeviceQuery, ImageHash, Provenance, RestrictionMismatch, WILDCARD,
};
use super::provider::SourceCatalog;

/// Why a device gets no image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoImage {
    /// No source lists anything for this manufacturer code and image type.
    #[error("no source lists an image for this manufacturer code and image type")]
    NothingListed,
    /// Nothing newer than the device's current version is listed.
    #[error("up to date: newest listed version is {newest_listed:#010x}")]
    UpToDate {
        /// The newest version listed for the device.
        newest_listed: u32,
    },
    /// Newer images exist, but their restrictions exclude this device.
    #[error("newer images exist but exclude this device ({mismatch:?})")]
    Restricted {
        /// The restriction that excluded the newest candidate.
        mismatch: RestrictionMismatch,
    },
    /// The best version is listed with conflicting digests; neither is offered.
    #[error("version {file_version:#010x} is listed with conflicting digests: {listings:?}")]
    Conflict {
        /// The version in question.
        file_version: u32,
        /// Every listing of that version: who listed it and with which digest.
        listings: Vec<(Provenance, ImageHash)>,
    },
}

/// All sources' entries, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct MergedCatalog {
    /// (manufacturer code, image type) → positions in `entries`, newest first.
    by_key: HashMap<(u16, u16), Vec<usize>>,
    /// Entries in source order (earlier sources first).
    entries: Vec<CatalogEntry>,
}

impl MergedCatalog {
    /// Merges sources; their order is their priority when digests cannot be compared.
    pub fn new(sources: impl IntoIterator<Item = SourceCatalog>) -> Self {
        let entries: Vec<CatalogEntry> = sources
            .into_iter()
            .flat_map(|source| source.entries)
            .collect();
        let mut by_key: HashMap<(u16, u16), Vec<usize>> = HashMap::new();
        for (position, entry) in entries.iter().enumerate() {
            by_key
                .entry((entry.manufacturer_code, entry.image_type))
                .or_default()
                .push(position);
        }
        for positions in by_key.values_mut() {
            // Stable: equal versions keep source order.
            positions.sort_by_key(|&position| {
                std::cmp::Reverse(entries.get(position).map_or(0, |e| e.file_version))
            });
        }
        MergedCatalog { by_key, entries }
    }

    /// Every entry, in source order (for `catalog list`).
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no source listed anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best image for `device`: the newest version above its current one that its
    /// restrictions allow, or the reason there is none.
    pub fn best_image(&self, device: &DeviceQuery<'_>) -> Result<&CatalogEntry, NoImage> {
        let mut keys = vec![
            (device.manufacturer_code, device.image_type),
            (WILDCARD, device.image_type),
            (device.manufacturer_code, WILDCARD),
            (WILDCARD, WILDCARD),
        ];
        keys.sort_unstable();
        keys.dedup();
        // (specificity rank: 0 = exact, higher = more wildcard, entry position)
        let mut candidates: Vec<(u8, usize)> = Vec::new();
        for key in keys {
            let rank = u8::from(key.0 == WILDCARD && device.manufacturer_code != WILDCARD)
                + u8::from(key.1 == WILDCARD && device.image_type != WILDCARD);
            if let Some(positions) = self.by_key.get(&key) {
                candidates.extend(positions.iter().map(|&position| (rank, position)));
            }
        }
        candidates.sort_unstable_by_key(|&(_, position)| position);
        let listed: Vec<(u8, &CatalogEntry)> = candidates
            .into_iter()
            .filter_map(|(rank, position)| self.entries.get(position).map(|e| (rank, e)))
            .collect();
        let Some(newest_listed) = listed.iter().map(|(_, e)| e.file_version).max() else {
            return Err(NoImage::NothingListed);
        };
        let newer: Vec<(u8, &CatalogEntry)> = listed
            .into_iter()
            .filter(|(_, e)| e.file_version > device.current_file_version)
            .collect();
        if newer.is_empty() {
            return Err(NoImage::UpToDate { newest_listed });
        }
        let mut first_mismatch = None;
        let allowed: Vec<(u8, &CatalogEntry)> = newer
            .into_iter()
            .filter(|(_, e)| match e.restrictions.check(device) {
                Ok(()) => true,
                Err(mismatch) => {
                    first_mismatch.get_or_insert(mismatch);
                    false
                }
            })
            .collect();
        let Some(best_version) = allowed.iter().map(|(_, e)| e.file_version).max() else {
            // Every newer entry was excluded, so a mismatch was recorded.
            return Err(first_mismatch.map_or(NoImage::NothingListed, |mismatch| {
                NoImage::Restricted { mismatch }
            }));
        };
        // Among the listings of the best version, the most specific (exact key over wildcard)
        // speak for the device; a generic wildcard image does not contradict a specific one.
        let at_best: Vec<&CatalogEntry> = {
            let at_version = || {
                allowed
                    .iter()
                    .filter(|(_, e)| e.file_version == best_version)
            };
            let most_specific = at_version().map(|(rank, _)| *rank).min().unwrap_or(0);
            at_version()
                .filter(|(rank, _)| *rank == most_specific)
                .map(|(_, e)| *e)
                .collect()
        };
        let conflicting = at_best.iter().any(|a| {
            at_best
                .iter()
                .any(|b| a.hash.algorithm() == b.hash.algorithm() && a.hash != b.hash)
        });
        if conflicting {
            return Err(NoImage::Conflict {
                file_version: best_version,
                listings: at_best
                    .iter()
                    .map(|e| (e.provenance.clone(), e.hash))
                    .collect(),
            });
        }
        // Source order decides among listings that cannot be compared.
        at_best.first().copied().ok_or(NoImage::NothingListed)
    }

    /// The images the given devices would be offered, without duplicates: what the IO layer
    /// downloads (lazily: nothing for devices nobody has).
    pub fn images_for<'a, 'd>(
        &'a self,
        devices: impl IntoIterator<Item = &'d DeviceQuery<'d>>,
    ) -> Vec<&'a CatalogEntry> {
        let mut wanted: Vec<&CatalogEntry> = Vec::new();
        for device in devices {
            if let Ok(entry) = self.best_image(device)
                && !wanted.iter().any(|known| known.hash == entry.hash)
            {
                wanted.push(entry);
            }
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{HashAlgorithm, ImageSize, Locator, Restrictions, SourceKind};

    fn source(name: &str) -> Provenance {
        Provenance {
            source: name.into(),
            kind: SourceKind::ZigbeeOtaIndex,
        }
    }

    fn entry(from: &str, mfr: u16, image_type: u16, version: u32, content: &[u8]) -> CatalogEntry {
        CatalogEntry {
            provenance: source(from),
            manufacturer_code: mfr,
            image_type,
            file_version: version,
            size: ImageSize::FileLength(content.len() as u64),
            hash: ImageHash::compute(HashAlgorithm::Sha512, content),
            locator: Locator::Url(format!("https://example.org/{from}/{version}")),
            restrictions: Restrictions::default(),
            display_name: None,
            release_notes: None,
        }
    }

    fn catalog(entries: Vec<CatalogEntry>) -> MergedCatalog {
        let mut sources: Vec<SourceCatalog> = Vec::new();
        for e in entries {
            match sources.iter_mut().find(|s| s.provenance == e.provenance) {
                Some(s) => s.entries.push(e),
                None => sources.push(SourceCatalog {
                    provenance: e.provenance.clone(),
                    entries: vec![e],
                }),
            }
        }
        MergedCatalog::new(sources)
    }

    fn device(mfr: u16, image_type: u16, version: u32) -> DeviceQuery<'static> {
        DeviceQuery {
            manufacturer_code: mfr,
            image_type,
            current_file_version: version,
            ..DeviceQuery::default()
        }
    }

    #[test]
    fn newest_allowed_version_wins() {
        let merged = catalog(vec![
            entry("a", 0x1189, 25, 3, b"v3"),
            entry("a", 0x1189, 25, 7, b"v7"),
            entry("a", 0x1189, 25, 5, b"v5"),
            entry("a", 0x1189, 26, 9, b"other type"),
        ]);
        let best = merged.best_image(&device(0x1189, 25, 4)).unwrap();
        assert_eq!(best.file_version, 7);
        assert_eq!(best.provenance, source("a"));
        assert_eq!(
            merged.best_image(&device(0x1189, 25, 7)),
            Err(NoImage::UpToDate { newest_listed: 7 })
        );
        assert_eq!(
            merged.best_image(&device(0x1189, 99, 0)),
            Err(NoImage::NothingListed)
        );
    }

    #[test]
    fn wildcard_manufacturer_matches_and_exact_wins_ties() {
        let merged = catalog(vec![
            entry("wild", WILDCARD, 25, 8, b"wild"),
            entry("exact", 0x1234, 25, 8, b"exact"),
        ]);
        let chosen = merged.best_image(&device(0x1234, 25, 1)).unwrap();
        assert_eq!(chosen.provenance, source("exact"));
        // A device of another manufacturer still gets the wildcard image.
        let chosen = merged.best_image(&device(0x9999, 25, 1)).unwrap();
        assert_eq!(chosen.provenance, source("wild"));
    }

    #[test]
    fn conflicting_digests_offer_neither() {
        let merged = catalog(vec![
            entry("a", 0x1189, 25, 7, b"one build"),
            entry("b", 0x1189, 25, 7, b"another build"),
            entry("a", 0x1189, 25, 6, b"older"),
        ]);
        match merged.best_image(&device(0x1189, 25, 1)) {
            Err(NoImage::Conflict {
                file_version,
                listings,
            }) => {
                assert_eq!(file_version, 7);
                let names: Vec<&str> = listings.iter().map(|(p, _)| p.source.as_str()).collect();
                assert_eq!(names, vec!["a", "b"]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // The same digest from two sources is no conflict; the first source is kept.
        let agreeing = catalog(vec![
            entry("a", 0x1189, 25, 7, b"same"),
            entry("b", 0x1189, 25, 7, b"same"),
        ]);
        let chosen = agreeing.best_image(&device(0x1189, 25, 1)).unwrap();
        assert_eq!(chosen.provenance, source("a"));
    }

    #[test]
    fn restrictions_split_one_version_by_hardware() {
        let mut low = entry("ubisys", 0x10F2, 0x7B32, 0x0260_0460, b"hw 0..1");
        low.restrictions.hardware_version_min = Some(0);
        low.restrictions.hardware_version_max = Some(1);
        let mut high = entry("ubisys", 0x10F2, 0x7B32, 0x0260_0460, b"hw 2..7");
        high.restrictions.hardware_version_min = Some(2);
        high.restrictions.hardware_version_max = Some(7);
        let merged = catalog(vec![low.clone(), high.clone()]);
        let mut query = device(0x10F2, 0x7B32, 1);
        query.hardware_version = Some(1);
        assert_eq!(merged.best_image(&query), Ok(&low));
        query.hardware_version = Some(5);
        assert_eq!(merged.best_image(&query), Ok(&high));
        query.hardware_version = Some(9);
        assert_eq!(
            merged.best_image(&query),
            Err(NoImage::Restricted {
                mismatch: RestrictionMismatch::HardwareVersion
            })
        );
        query.hardware_version = None;
        assert!(matches!(
            merged.best_image(&query),
            Err(NoImage::Restricted { .. })
        ));
    }

    #[test]
    fn restricted_newest_falls_back_to_an_allowed_older_version() {
        let mut newest = entry("z", 0x115F, 1, 30, b"needs min 20");
        newest.restrictions.min_file_version = Some(20);
        let merged = catalog(vec![newest, entry("z", 0x115F, 1, 20, b"stepping stone")]);
        assert_eq!(
            merged
                .best_image(&device(0x115F, 1, 10))
                .unwrap()
                .file_version,
            20
        );
        assert_eq!(
            merged
                .best_image(&device(0x115F, 1, 20))
                .unwrap()
                .file_version,
            30
        );
    }

    #[test]
    fn images_for_known_devices_only_once() {
        let merged = catalog(vec![
            entry("a", 1, 1, 2, b"a"),
            entry("a", 2, 2, 2, b"b"),
            entry("a", 3, 3, 2, b"never asked"),
        ]);
        let devices = [
            device(1, 1, 1),
            device(1, 1, 0),
            device(2, 2, 1),
            device(9, 9, 1),
        ];
        let wanted: Vec<u16> = merged
            .images_for(devices.iter())
            .iter()
            .map(|e| e.manufacturer_code)
            .collect();
        assert_eq!(wanted, vec![1, 2]);
    }
}
