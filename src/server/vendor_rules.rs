//! Per-vendor rules applied before an image is chosen (ZCL8 §11.13.4 leaves the "current file
//! version" to the device; some devices get it wrong). Pure: a query in, the version to judge
//! by (or why nothing may be offered) out. The other per-vendor rules are settings with
//! defaults in [`ServerConfig`](super::config::ServerConfig): idle timeouts (Bosch, Legrand,
//! SONOFF image type 8199), block-size caps (Insta, dresden elektronik, Busch-Jaeger, Legrand)
//! and the IKEA deny list.
//!
//! **Aqara/LUMI models that report a wrong file version.** The E1 radiator thermostat
//! (`lumi.airrtc.agl001`) and the E1 curtain driver (`lumi.curtain.acn003`,
//! `lumi.curtain.agl001`) put a wrong version in their Query Next Image Requests; the real one
//! arrives in the LUMI cluster 0xFCC0 ([`crate::zcl::lumi`]). zigbee-herdsman-converters judges
//! these models by that version when it has it and by the wrong one otherwise (Z2M #15745,
//! #16345: devices offered the image they already run, over and over). Decided here: judge by
//! the LUMI version when known; while it is not, offer nothing (NO_IMAGE_AVAILABLE), because
//! the wrong version can make the device reinstall the same image for ever or take an older
//! one. These devices send the 0xFCC0 report by themselves, and the thermostat is also asked
//! for it right after it speaks (see [`crate::identity`]), so the wait is short. Devices of other models, or whose model is not yet read, are judged as they report.
//!
//! **Decided against** (reasons in the README; the Legrand case has a test in
//! `tests/it/vendor_rules.rs`, the header string is covered by the reach test over the real
//! index, whose devices carry none):
//! herdsman's Legrand "offset 50, 12 bytes" answer (64 bytes from offset 78, a deliberate
//! buffer overflow on the device: against ZCL8 §11.13.8, and nothing to build on), and
//! `otaHeaderString` matching (herdsman applies it only when a device definition names a
//! header string; the index never requires it).

use super::policy::{DeviceQuery, NoImageReason};

/// Models whose OTA requests carry a wrong file version (zigbee-herdsman-converters'
/// zigbee-OTA provider, `isNewImageAvailable`).
pub use crate::zcl::lumi::WRONG_OTA_VERSION_MODELS as LUMI_WRONG_FILE_VERSION_MODELS;

/// Why a LUMI model is offered nothing yet.
pub const LUMI_VERSION_UNKNOWN: &str = "this Aqara model reports a wrong file version in its OTA requests; nothing is offered until its LUMI cluster (0xFCC0) reports the real one";

/// The file version to judge `query` by: the one it reported, or the vendor attribute's where
/// the reported one is known wrong.
pub fn running_version(query: &DeviceQuery<'_>) -> Result<u32, NoImageReason> {
    let wrong = query
        .model
        .is_some_and(|model| LUMI_WRONG_FILE_VERSION_MODELS.contains(&model));
    if !wrong {
        return Ok(query.current_file_version);
    }
    query.vendor_file_version.ok_or(NoImageReason::VendorRule {
        reason: LUMI_VERSION_UNKNOWN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(model: Option<&'static str>, vendor: Option<u32>) -> DeviceQuery<'static> {
        DeviceQuery {
            ieee: None,
            manufacturer_code: 0x115F,
            image_type: 0x2000,
            current_file_version: 0x0000_0019,
            hardware_version: None,
            model,
            manufacturer_name: Some("LUMI"),
            vendor_file_version: vendor,
        }
    }

    #[test]
    fn listed_lumi_models_are_judged_by_their_lumi_version_or_not_at_all() {
        for model in LUMI_WRONG_FILE_VERSION_MODELS {
            assert_eq!(running_version(&query(Some(model), Some(0x1B))), Ok(0x1B));
            assert_eq!(
                running_version(&query(Some(model), None)),
                Err(NoImageReason::VendorRule {
                    reason: LUMI_VERSION_UNKNOWN
                })
            );
        }
    }

    #[test]
    fn other_devices_are_judged_as_they_report() {
        assert_eq!(
            running_version(&query(Some("lumi.motion.ac01"), Some(7))),
            Ok(0x19)
        );
        assert_eq!(running_version(&query(None, Some(7))), Ok(0x19));
    }
}
