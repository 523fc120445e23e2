//! The devices the catalog downloads images for, and their file `state_dir/known-devices.json`
//! (kept so `zigbee-otad catalog list|refresh` work without the daemon). The daemon builds
//! them from what the OTA server heard (ZCL §11.13.4, Query Next Image Request fields).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ServiceError, read_capped, write_atomically};
use crate::catalog::model::DeviceQuery;

/// Largest known-devices file read.
const MAX_KNOWN_DEVICES_BYTES: u64 = 1024 * 1024;
/// Most devices kept in the known-devices file.
const MAX_KNOWN_DEVICES: usize = 4096;
/// The known-devices file in `state_dir`.
pub const KNOWN_DEVICES_FILE: &str = "known-devices.json";

/// A device the gateway has heard from, as far as choosing its image goes: what the lazy
/// downloads are for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KnownDevice {
    /// Manufacturer code from its Query Next Image Request.
    pub manufacturer_code: u16,
    /// Image type from that request.
    pub image_type: u16,
    /// The file version it runs.
    pub current_file_version: u32,
    /// Its hardware version, when it sent one.
    pub hardware_version: Option<u16>,
    /// Its Basic cluster model identifier, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Its Basic cluster manufacturer name, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer_name: Option<String>,
}

impl KnownDevice {
    /// The lookup for the merged catalog.
    pub fn query(&self) -> DeviceQuery<'_> {
        DeviceQuery {
            manufacturer_code: self.manufacturer_code,
            image_type: self.image_type,
            current_file_version: self.current_file_version,
            hardware_version: self.hardware_version,
            model_id: self.model_id.as_deref(),
            manufacturer_name: self.manufacturer_name.as_deref(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownDevicesFile {
    devices: Vec<KnownDevice>,
}

/// The devices the last daemon refresh knew (`state_dir/known-devices.json`); empty when the
/// file does not exist yet.
pub fn load_known_devices(state_dir: &Path) -> Result<Vec<KnownDevice>, ServiceError> {
    let path = state_dir.join(KNOWN_DEVICES_FILE);
    let error = |message: String| ServiceError::KnownDevices {
        path: path.clone(),
        message,
    };
    let bytes = match read_capped(&path, MAX_KNOWN_DEVICES_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Vec::new()),
        Err(io_error) => return Err(error(io_error.to_string())),
    };
    let file: KnownDevicesFile =
        serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
    if file.devices.len() > MAX_KNOWN_DEVICES {
        return Err(error(format!(
            "{} devices, more than the {MAX_KNOWN_DEVICES} kept",
            file.devices.len()
        )));
    }
    Ok(file.devices)
}

/// Writes `state_dir/known-devices.json` atomically: the devices sorted, without duplicates,
/// at most [`MAX_KNOWN_DEVICES`].
pub(super) fn save_known_devices(state_dir: &Path, devices: &[KnownDevice]) -> io::Result<()> {
    let mut devices = devices.to_vec();
    devices.sort_unstable();
    devices.dedup();
    devices.truncate(MAX_KNOWN_DEVICES);
    let json = serde_json::to_vec(&KnownDevicesFile { devices }).map_err(io::Error::other)?;
    write_atomically(&state_dir.join(KNOWN_DEVICES_FILE), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    proptest::proptest! {
        #[test]
        fn known_devices_file_round_trips(
            raw in proptest::collection::vec(
                (proptest::prelude::any::<(u16, u16, u32)>(), proptest::option::of(0u16..4)),
                0..40,
            )
        ) {
            let devices: Vec<KnownDevice> = raw
                .iter()
                .map(|&((manufacturer_code, image_type, current_file_version), hardware_version)| {
                    KnownDevice { manufacturer_code, image_type, current_file_version, hardware_version, ..KnownDevice::default() }
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            save_known_devices(dir.path(), &devices).unwrap();
            let mut expected = devices.clone();
            expected.sort_unstable();
            expected.dedup();
            proptest::prop_assert_eq!(load_known_devices(dir.path()).unwrap(), expected);
        }
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b' '; 11]).unwrap();
        assert!(read_capped(&path, 10).is_err());
        assert_eq!(read_capped(&path, 11).unwrap().unwrap().len(), 11);
        assert!(
            read_capped(&dir.path().join("absent"), 10)
                .unwrap()
                .is_none()
        );
        fs::write(
            dir.path().join(KNOWN_DEVICES_FILE),
            vec![b' '; 2 * MAX_KNOWN_DEVICES_BYTES as usize],
        )
        .unwrap();
        assert!(load_known_devices(dir.path()).is_err());
    }
}
