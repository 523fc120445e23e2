//! Wire newtypes of the OTA upgrade file header and sub-elements (ZCL8 §11.4.2, §11.4.3).
//!
//! Each is a transparent newtype in rustls style: unknown values round-trip, named constants cover
//! the values the spec (or the field) gives a name, and `Debug` prints hex plus the name when known.

use std::fmt;

use crate::wire::wire_enum;
pub use crate::zigbee::ManufacturerCode;

wire_enum! {
    /// Image type (header offset 12): manufacturer-specific up to `0xFFBF`, then the spec's types.
    #[derive(Default)]
    ImageType(u16) {
        /// Security credential image.
        SECURITY_CREDENTIAL = 0xFFC0 => "security credential",
        /// Configuration image.
        CONFIGURATION = 0xFFC1 => "configuration",
        /// Log file.
        LOG = 0xFFC2 => "log",
        /// Picture.
        PICTURE = 0xFFC3 => "picture",
        /// Wildcard: matches any image type.
        WILDCARD = 0xFFFF => "wildcard",
    }
}

wire_enum! {
    /// Sub-element tag identifier (ZCL8 §11.4.4); `0xF000..=0xFFFF` is manufacturer-specific.
    #[derive(Default)]
    TagId(u16) {
        /// The firmware image the device installs.
        UPGRADE_IMAGE = 0x0000 => "UPGRADE_IMAGE",
        /// ECDSA signature, crypto suite 1 (signer IEEE + 42 bytes).
        ECDSA_SIGNATURE_CS1 = 0x0001 => "ECDSA_SIGNATURE_CS1",
        /// ECDSA signing certificate, crypto suite 1 (48 bytes).
        ECDSA_SIGNING_CERTIFICATE_CS1 = 0x0002 => "ECDSA_SIGNING_CERTIFICATE_CS1",
        /// Image integrity code (16-byte hash).
        IMAGE_INTEGRITY_CODE = 0x0003 => "IMAGE_INTEGRITY_CODE",
        /// Picture data.
        PICTURE_DATA = 0x0004 => "PICTURE_DATA",
        /// ECDSA signature, crypto suite 2 (signer IEEE + 72 bytes).
        ECDSA_SIGNATURE_CS2 = 0x0005 => "ECDSA_SIGNATURE_CS2",
        /// ECDSA signing certificate, crypto suite 2 (74 bytes).
        ECDSA_SIGNING_CERTIFICATE_CS2 = 0x0006 => "ECDSA_SIGNING_CERTIFICATE_CS2",
        /// Telink's encrypted image: in Telink files it carries 2 extra "tag info" bytes.
        TELINK_ENCRYPTED = 0xF000 => "manufacturer-specific/Telink",
    }
}

impl TagId {
    /// First tag of the manufacturer-specific range.
    pub const MANUFACTURER_SPECIFIC_FIRST: Self = Self(0xF000);

    /// True for `0xF000..=0xFFFF`.
    pub fn is_manufacturer_specific(self) -> bool {
        self >= Self::MANUFACTURER_SPECIFIC_FIRST
    }
}

/// File version (header offset 14). The spec recommends the layout application release, application
/// build, stack release, stack build (one byte each, most significant first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileVersion(pub u32);

impl FileVersion {
    /// The four recommended bytes: application release, application build, stack release, stack build.
    pub fn parts(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for FileVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileVersion(0x{:08X})", self.0)
    }
}

impl fmt::Display for FileVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

impl From<u32> for FileVersion {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

wire_enum! {
    /// Zigbee stack version (header offset 18).
    #[derive(Default)]
    StackVersion(u16) {
        /// ZigBee 2006.
        ZIGBEE_2006 = 0x0000 => "ZigBee 2006",
        /// ZigBee 2007.
        ZIGBEE_2007 = 0x0001 => "ZigBee 2007",
        /// ZigBee PRO.
        ZIGBEE_PRO = 0x0002 => "ZigBee PRO",
        /// ZigBee IP.
        ZIGBEE_IP = 0x0003 => "ZigBee IP",
    }
}

wire_enum! {
    /// OTA header version (header offset 4).
    #[derive(Default)]
    HeaderVersion(u16) {
        /// The Zigbee OTA header version.
        ZIGBEE = 0x0100 => "Zigbee",
        /// Used by Silicon Labs' Thread OTA files.
        THREAD = 0x0200 => "Thread",
    }
}

wire_enum! {
    /// Security credential version (optional header field, field control bit 0).
    #[derive(Default)]
    SecurityCredentialVersion(u8) {
        /// Smart Energy 1.0.
        SE_1_0 = 0x00 => "SE 1.0",
        /// Smart Energy 1.1.
        SE_1_1 = 0x01 => "SE 1.1",
        /// Smart Energy 2.0.
        SE_2_0 = 0x02 => "SE 2.0",
        /// Smart Energy 1.2.
        SE_1_2 = 0x03 => "SE 1.2",
    }
}

/// Hardware version (optional header fields, field control bit 2): version in the high byte,
/// revision in the low byte.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HardwareVersion(pub u16);

impl HardwareVersion {
    /// The version (high byte).
    pub fn version(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// The revision (low byte).
    pub fn revision(self) -> u8 {
        self.0.to_be_bytes()[1]
    }
}

impl fmt::Debug for HardwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HardwareVersion(0x{:04X} v{} r{})",
            self.0,
            self.version(),
            self.revision()
        )
    }
}

impl fmt::Display for HardwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_hex_and_name() {
        assert_eq!(
            format!("{:?}", ManufacturerCode::IKEA),
            "ManufacturerCode(0x117C IKEA)"
        );
        assert_eq!(
            format!("{:?}", ManufacturerCode(0x4703)),
            "ManufacturerCode(0x4703)"
        );
        assert_eq!(
            format!("{}", TagId(0x0003)),
            "0x0003 (IMAGE_INTEGRITY_CODE)"
        );
        assert_eq!(
            format!("{:?}", FileVersion(0x23093631)),
            "FileVersion(0x23093631)"
        );
        assert_eq!(
            format!("{:?}", SecurityCredentialVersion(7)),
            "SecurityCredentialVersion(0x07)"
        );
    }

    #[test]
    fn tag_ranges_and_parts() {
        assert!(TagId(0xF7BD).is_manufacturer_specific());
        assert!(!TagId::ECDSA_SIGNATURE_CS2.is_manufacturer_specific());
        assert_eq!(FileVersion(0x01020304).parts(), [1, 2, 3, 4]);
        let hw = HardwareVersion(0x0205);
        assert_eq!((hw.version(), hw.revision()), (2, 5));
    }
}
