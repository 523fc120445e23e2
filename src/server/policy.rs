//! Choosing an image for a Query Next Image Request (ZCL8 §11.13.4–11.13.5): manufacturer,
//! image type, file version, hardware version, upgrade file destination, the deny list, pins,
//! per-device overrides and the catalog's restrictions. Pure: values in, a decision out.
//!
//! Two images with the same manufacturer, type and version but different bytes (two sources
//! disagree) are both refused, with [`NoImageReason::Conflict`] naming the sources, as zigpy
//! does for equal versions with different hashes.

use std::fmt;
use std::sync::Arc;

use super::Ieee;
use super::config::ServerConfig;
use super::image::OtaImage;

/// The wildcard manufacturer code / image type of an OTA header (one constant, the catalog's).
pub use crate::catalog::model::WILDCARD;

/// What the device told us about itself (Query Next Image Request or Query Device Specific
/// File Request, plus what the daemon knows of the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceQuery<'a> {
    /// The device's IEEE address, when known.
    pub ieee: Option<Ieee>,
    /// Its manufacturer code.
    pub manufacturer_code: u16,
    /// Its image type.
    pub image_type: u16,
    /// The file version it runs.
    pub current_file_version: u32,
    /// Its hardware version, if it sent one.
    pub hardware_version: Option<u16>,
    /// Its model identifier (Basic cluster), when the daemon knows it.
    pub model: Option<&'a str>,
    /// Its manufacturer name (Basic cluster), when the daemon knows it.
    pub manufacturer_name: Option<&'a str>,
    /// The running file version a vendor cluster reported, for the models whose OTA requests
    /// carry a wrong one (see [`super::vendor_rules`]).
    pub vendor_file_version: Option<u32>,
}

/// Why one image is not for this device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Another manufacturer's image.
    ManufacturerMismatch,
    /// Another image type.
    ImageTypeMismatch,
    /// The upgrade file destination names another device (or the device's IEEE is unknown).
    AddressedToAnotherDevice,
    /// The device's hardware version is outside the header's or the catalog's range (or the
    /// device did not say which hardware it is while the image requires a range).
    HardwareVersion {
        /// What the device sent.
        device: Option<u16>,
        /// The range required.
        range: (Option<u16>, Option<u16>),
    },
    /// The catalog offers this image only to devices in another version range.
    CurrentVersionRestricted,
    /// The catalog restricts the image to models the device is not (or its model is unknown).
    Model,
    /// The catalog restricts the image to manufacturer names the device's is not (or its
    /// name is unknown).
    ManufacturerName,
    /// On the deny list.
    Denied(String),
    /// The device runs this version already and reinstalls are not allowed.
    SameVersion,
    /// Older than what the device runs and downgrades are not allowed.
    Downgrade,
    /// A pin holds the device on another version.
    Pinned(u32),
}

/// Why a query gets NO_IMAGE_AVAILABLE.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoImageReason {
    /// The device is disabled by a per-device override.
    DeviceDisabled,
    /// No image for this manufacturer and image type at all.
    NoImageForDevice,
    /// Images exist for the device's manufacturer and type; the best one was refused for this.
    Rejected {
        /// The refused image's file version.
        file_version: u32,
        /// Why.
        rejection: Rejection,
    },
    /// The policy allows the image, but the installer's decisions keep it back (approval,
    /// hold, cancel).
    Installer {
        /// The image's file version.
        file_version: u32,
        /// Why.
        withheld: super::control::Withheld,
    },
    /// A per-vendor rule keeps the device from any offer for now (see
    /// [`super::vendor_rules`]).
    VendorRule {
        /// Why.
        reason: &'static str,
    },
    /// Two sources carry the same version with different bytes; neither is offered.
    Conflict {
        /// The disputed file version.
        file_version: u32,
        /// The sources that disagree ("source location", one per distinct image).
        sources: Vec<String>,
    },
}

impl fmt::Display for NoImageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoImageReason::DeviceDisabled => f.write_str("updates disabled for this device"),
            NoImageReason::NoImageForDevice => {
                f.write_str("no image for this manufacturer and image type")
            }
            NoImageReason::Rejected {
                file_version,
                rejection,
            } => write!(f, "best image {file_version:#010x} refused: {rejection:?}"),
            NoImageReason::Installer {
                file_version,
                withheld,
            } => write!(f, "image {file_version:#010x} available, {withheld}"),
            NoImageReason::VendorRule { reason } => f.write_str(reason),
            NoImageReason::Conflict {
                file_version,
                sources,
            } => write!(
                f,
                "version {file_version:#010x} has different bytes in {}; offering neither",
                sources.join(" and ")
            ),
        }
    }
}

/// Checks one image against a device; `Ok` when it may be offered (before conflict and pin
/// resolution, which need the whole candidate set).
pub fn check_image(
    image: &OtaImage,
    query: &DeviceQuery<'_>,
    config: &ServerConfig,
) -> Result<(), Rejection> {
    check_image_against(image, query, config, Some(query.current_file_version))
}

/// [`check_image`] for a device whose running version is unknown (a block request for an
/// image not offered in this run, e.g. a download resumed across a daemon restart): every
/// rule that does not need the running version still applies (identity, destination,
/// hardware, models, deny list, pins).
pub fn check_image_version_unknown(
    image: &OtaImage,
    query: &DeviceQuery<'_>,
    config: &ServerConfig,
) -> Result<(), Rejection> {
    check_image_against(image, query, config, None)
}

/// The check every block and page request passes, the same rules as the offer: the device is
/// not disabled and the image passes [`check_image`] for what the device asked when it was
/// offered (`version_known`), else [`check_image_version_unknown`].
pub fn check_transfer(
    image: &OtaImage,
    query: &DeviceQuery<'_>,
    version_known: bool,
    config: &ServerConfig,
) -> Result<(), NoImageReason> {
    if config
        .device_override(query.ieee)
        .is_some_and(|o| o.disabled)
    {
        return Err(NoImageReason::DeviceDisabled);
    }
    let current = version_known.then_some(query.current_file_version);
    check_image_against(image, query, config, current).map_err(|rejection| {
        NoImageReason::Rejected {
            file_version: image.key().file_version,
            rejection,
        }
    })
}

fn check_image_against(
    image: &OtaImage,
    query: &DeviceQuery<'_>,
    config: &ServerConfig,
    current: Option<u32>,
) -> Result<(), Rejection> {
    let key = image.key();
    if key.manufacturer_code != WILDCARD && key.manufacturer_code != query.manufacturer_code {
        return Err(Rejection::ManufacturerMismatch);
    }
    if key.image_type != WILDCARD && key.image_type != query.image_type {
        return Err(Rejection::ImageTypeMismatch);
    }
    if let Some(destination) = image.destination()
        && query.ieee != Some(destination)
    {
        return Err(Rejection::AddressedToAnotherDevice);
    }
    let restrictions = image.restrictions();
    let header_range = image.hardware_versions();
    for range in [
        header_range.map(|(min, max)| (Some(min), Some(max))),
        Some((
            restrictions.min_hardware_version,
            restrictions.max_hardware_version,
        )),
    ]
    .into_iter()
    .flatten()
    {
        let fits = match (range, query.hardware_version) {
            ((None, None), _) => true,
            (_, None) => false,
            ((min, max), Some(hw)) => {
                min.is_none_or(|min| hw >= min) && max.is_none_or(|max| hw <= max)
            }
        };
        if !fits {
            return Err(Rejection::HardwareVersion {
                device: query.hardware_version,
                range,
            });
        }
    }
    if let Some(current) = current
        && (restrictions
            .min_current_version
            .is_some_and(|min| current < min)
            || restrictions
                .max_current_version
                .is_some_and(|max| current > max))
    {
        return Err(Rejection::CurrentVersionRestricted);
    }
    if !restrictions.models.is_empty()
        && !query
            .model
            .is_some_and(|model| restrictions.models.iter().any(|m| m == model))
    {
        return Err(Rejection::Model);
    }
    if !restrictions.manufacturer_names.is_empty()
        && !query.manufacturer_name.is_some_and(|name| {
            restrictions
                .manufacturer_names
                .iter()
                .any(|listed| listed == name)
        })
    {
        return Err(Rejection::ManufacturerName);
    }
    if let Some(rule) = config.deny.iter().find(|rule| {
        rule.matches(query.manufacturer_code, query.image_type, key.file_version)
            || rule.matches(key.manufacturer_code, key.image_type, key.file_version)
    }) {
        return Err(Rejection::Denied(rule.reason.clone()));
    }
    let device_override = config.device_override(query.ieee);
    let pin = device_override.and_then(|o| o.pinned_version).or_else(|| {
        config
            .pins
            .iter()
            .find(|pin| {
                pin.manufacturer_code == query.manufacturer_code
                    && pin.image_type == query.image_type
            })
            .map(|pin| pin.file_version)
    });
    if let Some(pinned) = pin
        && pinned != key.file_version
    {
        return Err(Rejection::Pinned(pinned));
    }
    let allow_reinstall = device_override
        .and_then(|o| o.allow_reinstall)
        .unwrap_or(config.allow_reinstall);
    let allow_downgrade = device_override
        .and_then(|o| o.allow_downgrade)
        .unwrap_or(config.allow_downgrade);
    if let Some(current) = current {
        if key.file_version == current && !allow_reinstall {
            return Err(Rejection::SameVersion);
        }
        if key.file_version < current && !allow_downgrade {
            return Err(Rejection::Downgrade);
        }
    }
    Ok(())
}

/// Chooses the image to offer: among the images that pass [`check_image`], the highest
/// version, preferring one addressed to this very device; a version whose candidates differ in
/// their bytes is dropped whole. `Err` says why nothing is offered.
pub fn choose_image(
    images: &[Arc<OtaImage>],
    query: &DeviceQuery<'_>,
    config: &ServerConfig,
) -> Result<Arc<OtaImage>, NoImageReason> {
    if config
        .device_override(query.ieee)
        .is_some_and(|o| o.disabled)
    {
        return Err(NoImageReason::DeviceDisabled);
    }
    let running = super::vendor_rules::running_version(query)?;
    let judged = DeviceQuery {
        current_file_version: running,
        ..*query
    };
    let query = &judged;
    let mut candidates: Vec<&Arc<OtaImage>> = Vec::new();
    let mut best_rejected: Option<(u32, Rejection)> = None;
    for image in images {
        match check_image(image, query, config) {
            Ok(()) => candidates.push(image),
            Err(Rejection::ManufacturerMismatch | Rejection::ImageTypeMismatch) => {}
            Err(rejection) => {
                let version = image.key().file_version;
                if best_rejected.as_ref().is_none_or(|(v, _)| version > *v) {
                    best_rejected = Some((version, rejection));
                }
            }
        }
    }
    // Highest version first; at equal versions, images addressed to this device first.
    candidates.sort_by_key(|image| {
        (
            std::cmp::Reverse(image.key().file_version),
            image.destination().is_none(),
        )
    });
    let mut conflict: Option<NoImageReason> = None;
    for group in candidates.chunk_by(|a, b| a.key().file_version == b.key().file_version) {
        let Some(first) = group.first() else {
            continue;
        };
        let disagree = group.iter().any(|image| !image.same_bytes(first));
        if !disagree {
            return Ok(Arc::clone(first));
        }
        tracing::warn!(
            image = %first.key(),
            "sources disagree on the bytes of this version; offering neither"
        );
        if conflict.is_none() {
            let mut sources: Vec<String> = Vec::new();
            for image in group {
                let p = image.provenance();
                let name = format!("{} {}", p.source, p.location).trim().to_owned();
                if !sources.contains(&name) {
                    sources.push(name);
                }
            }
            conflict = Some(NoImageReason::Conflict {
                file_version: first.key().file_version,
                sources,
            });
        }
    }
    if let Some(conflict) = conflict {
        return Err(conflict);
    }
    match best_rejected {
        Some((file_version, rejection)) => Err(NoImageReason::Rejected {
            file_version,
            rejection,
        }),
        None => Err(NoImageReason::NoImageForDevice),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::{DeviceOverride, VersionPin};
    use crate::server::image::{CatalogRestrictions, ImageKey, Provenance};
    use bytes::Bytes;

    const MFR: u16 = 0x1189;
    const TYPE: u16 = 0x0042;

    fn image(manufacturer_code: u16, image_type: u16, file_version: u32, fill: u8) -> OtaImage {
        OtaImage::new(
            ImageKey {
                manufacturer_code,
                image_type,
                file_version,
            },
            Bytes::from(vec![fill; 64]),
        )
        .unwrap()
    }

    fn device(current_file_version: u32) -> DeviceQuery<'static> {
        DeviceQuery {
            ieee: Some(Ieee(0x0011_2233_4455_6677)),
            manufacturer_code: MFR,
            image_type: TYPE,
            current_file_version,
            hardware_version: None,
            model: None,
            manufacturer_name: None,
            vendor_file_version: None,
        }
    }

    #[test]
    fn lumi_models_with_a_wrong_reported_version_are_judged_by_the_lumi_cluster() {
        let config = ServerConfig::default();
        // The curtain driver reports 0x19 in its OTA requests; it really runs 0x1B.
        let curtain = DeviceQuery {
            model: Some("lumi.curtain.acn003"),
            ..device(0x19)
        };
        let images = || vec![image(MFR, TYPE, 0x1B, 1), image(MFR, TYPE, 0x1A, 2)];
        // Version unknown: nothing (offering 0x1B by the wrong version would reinstall it).
        assert!(matches!(
            choose(images(), &curtain, &config),
            Err(NoImageReason::VendorRule { .. })
        ));
        // Known and current: nothing newer.
        let current = DeviceQuery {
            vendor_file_version: Some(0x1B),
            ..curtain
        };
        assert!(choose(images(), &current, &config).is_err());
        // Known and older: the newer image.
        let older = DeviceQuery {
            vendor_file_version: Some(0x1A),
            ..curtain
        };
        assert_eq!(choose(images(), &older, &config), Ok(0x1B));
        // Another model is judged as it reports.
        assert_eq!(choose(images(), &device(0x19), &config), Ok(0x1B));
    }

    fn choose(
        images: Vec<OtaImage>,
        query: &DeviceQuery<'_>,
        config: &ServerConfig,
    ) -> Result<u32, NoImageReason> {
        let images: Vec<_> = images.into_iter().map(Arc::new).collect();
        choose_image(&images, query, config).map(|i| i.key().file_version)
    }

    #[test]
    fn newest_matching_image_wins() {
        let config = ServerConfig::default();
        let images = vec![
            image(MFR, TYPE, 2, 0),
            image(MFR, TYPE, 5, 0),
            image(MFR, TYPE, 4, 0),
            image(MFR, TYPE + 1, 9, 0),
            image(MFR + 1, TYPE, 9, 0),
        ];
        assert_eq!(choose(images, &device(3), &config), Ok(5));
    }

    #[test]
    fn wildcard_manufacturer_and_type_match_everyone() {
        let config = ServerConfig::default();
        assert_eq!(
            choose(vec![image(WILDCARD, TYPE, 5, 0)], &device(3), &config),
            Ok(5)
        );
        assert_eq!(
            choose(vec![image(MFR, WILDCARD, 5, 0)], &device(3), &config),
            Ok(5)
        );
    }

    #[test]
    fn nothing_for_the_device_says_so() {
        let config = ServerConfig::default();
        assert_eq!(
            choose(vec![image(MFR + 1, TYPE, 5, 0)], &device(3), &config),
            Err(NoImageReason::NoImageForDevice)
        );
        assert_eq!(
            choose(vec![image(MFR, TYPE, 3, 0)], &device(3), &config),
            Err(NoImageReason::Rejected {
                file_version: 3,
                rejection: Rejection::SameVersion
            })
        );
    }

    #[test]
    fn downgrade_and_reinstall_only_when_allowed() {
        let mut config = ServerConfig::default();
        assert_eq!(
            choose(vec![image(MFR, TYPE, 2, 0)], &device(3), &config),
            Err(NoImageReason::Rejected {
                file_version: 2,
                rejection: Rejection::Downgrade
            })
        );
        config.allow_downgrade = true;
        assert_eq!(
            choose(vec![image(MFR, TYPE, 2, 0)], &device(3), &config),
            Ok(2)
        );
        assert!(choose(vec![image(MFR, TYPE, 3, 0)], &device(3), &config).is_err());
        config.allow_reinstall = true;
        assert_eq!(
            choose(vec![image(MFR, TYPE, 3, 0)], &device(3), &config),
            Ok(3)
        );
    }

    #[test]
    fn hardware_range_of_header_and_catalog() {
        let config = ServerConfig::default();
        let ranged = || image(MFR, TYPE, 5, 0).with_hardware_versions(0x0100, 0x01FF);
        let mut query = device(3);
        // A device that does not say its hardware version cannot prove it fits.
        assert!(matches!(
            choose(vec![ranged()], &query, &config),
            Err(NoImageReason::Rejected {
                rejection: Rejection::HardwareVersion { device: None, .. },
                ..
            })
        ));
        query.hardware_version = Some(0x0150);
        assert_eq!(choose(vec![ranged()], &query, &config), Ok(5));
        query.hardware_version = Some(0x0200);
        assert!(choose(vec![ranged()], &query, &config).is_err());
        let catalog_ranged = image(MFR, TYPE, 5, 0).with_restrictions(CatalogRestrictions {
            max_hardware_version: Some(0x0100),
            ..CatalogRestrictions::default()
        });
        assert!(choose(vec![catalog_ranged], &query, &config).is_err());
    }

    #[test]
    fn upgrade_file_destination_limits_the_image_to_one_device() {
        let config = ServerConfig::default();
        let mine = image(MFR, TYPE, 5, 1).with_destination(Ieee(0x0011_2233_4455_6677));
        let theirs = image(MFR, TYPE, 6, 2).with_destination(Ieee(0x99));
        assert_eq!(
            choose(vec![mine.clone(), theirs], &device(3), &config),
            Ok(5)
        );
        // At equal versions the device-specific image is preferred.
        let generic = image(MFR, TYPE, 5, 1);
        let images: Vec<_> = vec![generic, mine].into_iter().map(Arc::new).collect();
        let chosen = choose_image(&images, &device(3), &config).unwrap();
        assert!(chosen.destination().is_some());
    }

    #[test]
    fn deny_list_blocks_known_bricking_images_by_default() {
        let config = ServerConfig::default();
        let ikea = DeviceQuery {
            manufacturer_code: 0x117C,
            image_type: 0x2200,
            ..device(1)
        };
        let result = choose(vec![image(0x117C, 0x2200, 5, 0)], &ikea, &config);
        assert!(matches!(
            result,
            Err(NoImageReason::Rejected {
                rejection: Rejection::Denied(_),
                ..
            })
        ));
    }

    #[test]
    fn pins_and_overrides() {
        let mut config = ServerConfig::default();
        config.pins.push(VersionPin {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: 4,
        });
        let images = || vec![image(MFR, TYPE, 4, 0), image(MFR, TYPE, 5, 0)];
        assert_eq!(choose(images(), &device(3), &config), Ok(4));
        let ieee = Ieee(0x0011_2233_4455_6677);
        config.device_overrides.insert(
            ieee,
            DeviceOverride {
                pinned_version: Some(5),
                ..DeviceOverride::default()
            },
        );
        assert_eq!(choose(images(), &device(3), &config), Ok(5));
        config.device_overrides.insert(
            ieee,
            DeviceOverride {
                disabled: true,
                ..DeviceOverride::default()
            },
        );
        assert_eq!(
            choose(images(), &device(3), &config),
            Err(NoImageReason::DeviceDisabled)
        );
    }

    #[test]
    fn catalog_restrictions_on_current_version_and_model() {
        let config = ServerConfig::default();
        let restricted = |min, max, models: &[&str]| {
            image(MFR, TYPE, 9, 0).with_restrictions(CatalogRestrictions {
                min_current_version: min,
                max_current_version: max,
                models: models.iter().map(|m| m.to_string()).collect(),
                ..CatalogRestrictions::default()
            })
        };
        assert!(choose(vec![restricted(Some(4), None, &[])], &device(3), &config).is_err());
        assert!(choose(vec![restricted(None, Some(2), &[])], &device(3), &config).is_err());
        assert_eq!(
            choose(vec![restricted(Some(3), Some(3), &[])], &device(3), &config),
            Ok(9)
        );
        // A model restriction needs the device's model to be known and listed.
        assert!(choose(vec![restricted(None, None, &["A19"])], &device(3), &config).is_err());
        let a19 = DeviceQuery {
            model: Some("A19"),
            ..device(3)
        };
        assert_eq!(
            choose(vec![restricted(None, None, &["A19"])], &a19, &config),
            Ok(9)
        );
    }

    #[test]
    fn manufacturer_name_restriction_needs_a_listed_name() {
        let config = ServerConfig::default();
        let tuya = || {
            image(MFR, TYPE, 9, 0).with_restrictions(CatalogRestrictions {
                manufacturer_names: vec!["_TZ3000_aaaa".into(), "_TZ3000_bbbb".into()],
                ..CatalogRestrictions::default()
            })
        };
        let unknown = device(3);
        assert_eq!(
            choose(vec![tuya()], &unknown, &config),
            Err(NoImageReason::Rejected {
                file_version: 9,
                rejection: Rejection::ManufacturerName
            })
        );
        let other = DeviceQuery {
            manufacturer_name: Some("_TZ3000_cccc"),
            ..device(3)
        };
        assert!(choose(vec![tuya()], &other, &config).is_err());
        let listed = DeviceQuery {
            manufacturer_name: Some("_TZ3000_bbbb"),
            ..device(3)
        };
        assert_eq!(choose(vec![tuya()], &listed, &config), Ok(9));
        // An unknown name withholds only the restricted image: an unrestricted one is offered.
        assert_eq!(
            choose(vec![tuya(), image(MFR, TYPE, 7, 1)], &unknown, &config),
            Ok(7)
        );
    }

    #[test]
    fn same_version_with_different_bytes_is_refused_and_an_older_agreeing_one_offered() {
        let config = ServerConfig::default();
        let from = |source: &str, fill| {
            image(MFR, TYPE, 5, fill).with_provenance(Provenance {
                source: source.into(),
                location: format!("{source}.ota"),
            })
        };
        let conflict = choose(
            vec![from("ledvance", 1), from("index", 2)],
            &device(3),
            &config,
        );
        match conflict {
            Err(NoImageReason::Conflict {
                file_version,
                sources,
            }) => {
                assert_eq!(file_version, 5);
                assert_eq!(sources, vec!["ledvance ledvance.ota", "index index.ota"]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // The same bytes from two sources are fine.
        assert_eq!(
            choose(
                vec![from("ledvance", 1), from("index", 1)],
                &device(3),
                &config
            ),
            Ok(5)
        );
        // An older version both agree on is still an upgrade.
        let older = image(MFR, TYPE, 4, 7);
        assert_eq!(
            choose(
                vec![from("ledvance", 1), from("index", 2), older],
                &device(3),
                &config
            ),
            Ok(4)
        );
    }
}
