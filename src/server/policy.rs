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

/// The wildcard manufacturer code / image type of an OTA header.
pub const WILDCARD: u16 = 0xFFFF;

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
    let current = query.current_file_version;
    if restrictions
        .min_current_version
        .is_some_and(|min| current < min)
        || restrictions
            .max_current_version
            .is_some_and(|max| current > max)
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
    if key.file_version == current && !allow_reinstall {
        return Err(Rejection::SameVersion);
    }
    if key.file_version < current && !allow_downgrade {
        return Err(Rejection::Downgrade);
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
        let disagree = group.iter().any(|image| image.bytes() != first.bytes());
        if !disagree {
            return Ok(Arc::clone(first));
        }
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
