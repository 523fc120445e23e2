//! Identifiers every layer shares, defined once: the IEEE (EUI-64) and NWK addresses, manufacturer
//! codes with the one table of their names (so `inspect`, `decode` and `status` print the same
//! names), and the profile and cluster ids the OTA server lives on (Zigbee spec §2.2.4, ZCL8
//! §2.2, the OTA Upgrade cluster in ZCL8 chapter 11).
//!
//! ```
//! use zigbee_otad::zigbee::{Ieee, ManufacturerCode, Nwk};
//! let ieee: Ieee = "00:0d:6f:00:00:19:8b:36".parse().unwrap();
//! assert_eq!(ieee.to_string(), "00:0d:6f:00:00:19:8b:36");
//! assert_eq!(Nwk(0x1234).to_string(), "0x1234");
//! assert_eq!(ManufacturerCode(0x117C).to_string(), "0x117C (IKEA)");
//! ```

use std::fmt;

use serde::Serialize;
use thiserror::Error;

use crate::wire::wire_enum;

/// The Home Automation profile (0x0104), which the OTA Upgrade cluster lives in.
pub const PROFILE_HOME_AUTOMATION: u16 = 0x0104;
/// The Zigbee Device Object profile (0x0000).
pub const PROFILE_ZDO: u16 = 0x0000;
/// The OTA Upgrade cluster (0x0019).
pub const CLUSTER_OTA_UPGRADE: u16 = 0x0019;
/// The Basic cluster (0x0000).
pub const CLUSTER_BASIC: u16 = 0x0000;

/// An IEEE (EUI-64) address: the one type for it in ZCL, EZSP (`EmberEUI64`), ZNP, the
/// coordinator and the simulator. Little-endian on the air (eight bytes, least significant
/// first); shown most significant byte first, colon-separated in lowercase
/// (`00:0d:6f:00:00:19:8b:36`), as zigpy prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ieee(pub u64);

impl Ieee {
    /// Bytes on the air (little-endian).
    pub const ENCODED_LEN: usize = 8;

    /// From the eight bytes on the air (least significant first).
    pub const fn from_le_bytes(bytes: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(bytes))
    }

    /// The eight bytes on the air (least significant first).
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for Ieee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.to_be_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Text that is not an IEEE address in its display form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not an IEEE address like 00:11:22:33:44:55:66:77")]
pub struct ParseIeeeError(pub String);

impl std::str::FromStr for Ieee {
    type Err = ParseIeeeError;

    /// The display form, most significant byte first (`00:0d:6f:00:00:19:8b:36`); `:`, `-` and
    /// spaces between bytes are optional.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = crate::wire::parse_hex(text).map_err(|_| ParseIeeeError(text.to_owned()))?;
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| ParseIeeeError(text.to_owned()))?;
        Ok(Ieee(u64::from_be_bytes(array)))
    }
}

impl fmt::Debug for Ieee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ieee({self})")
    }
}

impl Serialize for Ieee {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ieee {
    /// The display form, as [`Ieee::from_str`](std::str::FromStr) reads it (also as a map key).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A 16-bit Zigbee network (NWK, short) address: the one type for it in ZCL, EZSP
/// (`EmberNodeId`), ZNP, the coordinator and the simulator.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Nwk(pub u16);

impl Nwk {
    /// The coordinator's own address.
    pub const COORDINATOR: Self = Self(0x0000);
    /// Broadcast to every device (sleepy ones included).
    pub const BROADCAST_ALL: Self = Self(0xFFFF);
    /// Broadcast to every device whose receiver is on when idle.
    pub const BROADCAST_RX_ON_WHEN_IDLE: Self = Self(0xFFFD);
    /// Broadcast to routers and the coordinator.
    pub const BROADCAST_ROUTERS: Self = Self(0xFFFC);
    /// "No node" / unknown (EZSP's `EMBER_NULL_NODE_ID`, also `sendBroadcast`'s "no alias").
    pub const NULL: Self = Self(0xFFFF);

    /// True for the broadcast addresses 0xFFF8..=0xFFFF.
    pub fn is_broadcast(self) -> bool {
        self.0 >= 0xFFF8
    }
}

impl fmt::Display for Nwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.0)
    }
}

impl fmt::Debug for Nwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nwk(0x{:04X})", self.0)
    }
}

wire_enum! {
    /// Zigbee manufacturer code (the OTA header's offset 10, the ZCL header's manufacturer code).
    /// The names are the vendors most OTA images come from (the zigbee-OTA index's vendor
    /// folders); `0xFFFF` is the wildcard.
    #[derive(Default)]
    ManufacturerCode(u16) {
        /// Silicon Labs (Ember).
        SILICON_LABS = 0x1002 => "Silicon Labs (Ember)",
        /// Philips/Signify.
        PHILIPS = 0x100B => "Philips/Signify",
        /// Develco.
        DEVELCO = 0x1015 => "Develco",
        /// Legrand.
        LEGRAND = 0x1021 => "Legrand",
        /// Jennic/NXP.
        JENNIC = 0x1037 => "Jennic/NXP",
        /// Schneider Electric.
        SCHNEIDER = 0x105E => "Schneider Electric",
        /// Computime/Salus.
        SALUS = 0x1078 => "Computime/Salus",
        /// ubisys.
        UBISYS = 0x10F2 => "ubisys",
        /// OSRAM.
        OSRAM = 0x110C => "OSRAM",
        /// dresden elektronik.
        DRESDEN_ELEKTRONIK = 0x1135 => "dresden elektronik",
        /// Telink.
        TELINK = 0x1141 => "Telink",
        /// Danalock.
        DANALOCK = 0x115C => "Danalock",
        /// LUMI/Xiaomi.
        LUMI = 0x115F => "LUMI/Xiaomi",
        /// Sengled.
        SENGLED = 0x1160 => "Sengled",
        /// Innr.
        INNR = 0x1166 => "Innr",
        /// Insta.
        INSTA = 0x117A => "Insta",
        /// IKEA.
        IKEA = 0x117C => "IKEA",
        /// LEDVANCE.
        LEDVANCE = 0x1189 => "LEDVANCE",
        /// Bosch.
        BOSCH = 0x1209 => "Bosch",
        /// Heiman.
        HEIMAN = 0x120B => "Heiman",
        /// Namron.
        NAMRON = 0x1224 => "Namron",
        /// Inovelli.
        INOVELLI = 0x122F => "Inovelli",
        /// Third Reality.
        THIRD_REALITY = 0x1233 => "Third Reality",
        /// Danfoss.
        DANFOSS = 0x1246 => "Danfoss",
        /// Gledopto.
        GLEDOPTO = 0x124F => "Gledopto",
        /// Niko.
        NIKO = 0x125F => "Niko",
        /// SONOFF.
        SONOFF = 0x1286 => "SONOFF",
        /// NodOn.
        NODON = 0x128B => "NodOn",
        /// Aeotec.
        AEOTEC = 0x1310 => "Aeotec",
        /// Datek.
        DATEK = 0x1337 => "Datek",
        /// SDevices.
        SDEVICES = 0x152F => "SDevices",
        /// wildcard.
        WILDCARD = 0xFFFF => "wildcard",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manufacturer_names_are_unique_and_sorted() {
        let names = [
            ManufacturerCode::SILICON_LABS,
            ManufacturerCode::PHILIPS,
            ManufacturerCode::DEVELCO,
            ManufacturerCode::LEGRAND,
            ManufacturerCode::JENNIC,
            ManufacturerCode::SCHNEIDER,
            ManufacturerCode::SALUS,
            ManufacturerCode::UBISYS,
            ManufacturerCode::OSRAM,
            ManufacturerCode::DRESDEN_ELEKTRONIK,
            ManufacturerCode::TELINK,
            ManufacturerCode::DANALOCK,
            ManufacturerCode::LUMI,
            ManufacturerCode::SENGLED,
            ManufacturerCode::INNR,
            ManufacturerCode::INSTA,
            ManufacturerCode::IKEA,
            ManufacturerCode::LEDVANCE,
            ManufacturerCode::BOSCH,
            ManufacturerCode::HEIMAN,
            ManufacturerCode::NAMRON,
            ManufacturerCode::INOVELLI,
            ManufacturerCode::THIRD_REALITY,
            ManufacturerCode::DANFOSS,
            ManufacturerCode::GLEDOPTO,
            ManufacturerCode::NIKO,
            ManufacturerCode::SONOFF,
            ManufacturerCode::NODON,
            ManufacturerCode::AEOTEC,
            ManufacturerCode::DATEK,
            ManufacturerCode::SDEVICES,
            ManufacturerCode::WILDCARD,
        ];
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ManufacturerCode(0x115F).name(), Some("LUMI/Xiaomi"));
        assert_eq!(ManufacturerCode(0x4703).name(), None);
    }

    #[test]
    fn addresses_print_as_zigpy_does() {
        assert_eq!(
            Ieee(0x000D_6F00_0019_8B36).to_string(),
            "00:0d:6f:00:00:19:8b:36"
        );
        assert_eq!(format!("{:?}", Nwk(0xFFFD)), "Nwk(0xFFFD)");
        assert!(Nwk::BROADCAST_ROUTERS.is_broadcast() && !Nwk(0x1234).is_broadcast());
        assert!("00:11".parse::<Ieee>().is_err());
    }
}
