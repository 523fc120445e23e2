//! The text form of a simulated device (`--device` on `zigbee-otad simulate`): manufacturer
//! code, image type and file version as a Query Next Image Request carries them (ZCL8 §11.13.4),
//! the hardware version and block size, and the Basic cluster identity it answers (ZCL8 §3.2:
//! ModelIdentifier, ManufacturerName, PowerSource). Parsing names the field that was wrong;
//! [`fmt::Display`] is the summary the simulator prints.

use std::fmt;
use std::str::FromStr;

use crate::zcl::basic::BasicIdentity;

/// PowerSource values (ZCL8 Table 3-9) the spec's `power=` names.
const POWER_MAINS: u8 = 0x01;
const POWER_BATTERY: u8 = 0x03;
/// What a simulated device is, as the CLI writes it:
/// `MFR:TYPE:VERSION[:HW[:MAXDATA]][,model=TEXT][,manufacturer_name=TEXT][,power=mains|battery]`,
/// each number decimal or `0x` hex. The identity is what its Basic cluster answers (a
/// battery-powered device answers only while awake, shortly after it has sent something).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDeviceSpec {
    /// Manufacturer code.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// The file version it runs.
    pub file_version: u32,
    /// Hardware version, sent in the Query Next Image Request when given.
    pub hardware_version: Option<u16>,
    /// The most data bytes it asks for per block.
    pub max_data_size: u8,
    /// What its Basic cluster says (model, manufacturer name, power source).
    pub identity: BasicIdentity,
}

impl SimDeviceSpec {
    /// The block size devices commonly ask for when the spec does not say (zigpy's cap, 50).
    pub const DEFAULT_MAX_DATA_SIZE: u8 = 50;
}

/// A `--device` spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "device spec `{spec}`: {reason} (expected MFR:TYPE:VERSION[:HW[:MAXDATA]][,model=TEXT][,manufacturer_name=TEXT][,power=mains|battery])"
)]
pub struct SpecError {
    /// The text given.
    pub spec: String,
    /// What was wrong.
    pub reason: String,
}

fn parse_number(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|e| format!("`{text}`: {e}"))
}

/// The `index`-th of the `:`-separated `fields`, decimal or `0x` hex, at most `max`; `None`
/// when absent. The error names the field (`name`) for the spec's parse error.
pub(crate) fn bounded_field(
    fields: &[&str],
    index: usize,
    name: &str,
    max: u64,
) -> Result<Option<u64>, String> {
    let Some(text) = fields.get(index) else {
        return Ok(None);
    };
    let value = parse_number(text).map_err(|e| format!("{name} {e}"))?;
    if value > max {
        return Err(format!("{name} {value:#X} exceeds {max:#X}"));
    }
    Ok(Some(value))
}

impl FromStr for SimDeviceSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| SpecError {
            spec: spec.to_string(),
            reason,
        };
        let mut parts = spec.split(',');
        let numbers = parts.next().unwrap_or_default();
        let mut identity = BasicIdentity::default();
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| error(format!("`{part}` is not KEY=VALUE")))?;
            if value.is_empty() || value.len() > 32 {
                return Err(error(format!("{key} must be 1 to 32 bytes")));
            }
            match key {
                "model" => identity.model_id = Some(value.to_owned()),
                "manufacturer_name" => identity.manufacturer_name = Some(value.to_owned()),
                "power" => {
                    identity.power_source = Some(match value {
                        "mains" => POWER_MAINS,
                        "battery" => POWER_BATTERY,
                        other => return Err(error(format!("power `{other}`: mains or battery"))),
                    })
                }
                other => return Err(error(format!("unknown key `{other}`"))),
            }
        }
        let fields: Vec<&str> = numbers.split(':').collect();
        if !(3..=5).contains(&fields.len()) {
            return Err(error(format!("{} fields", fields.len())));
        }
        let field = |index: usize, name: &str, max: u64| {
            bounded_field(&fields, index, name, max).map_err(error)
        };
        let max_data_size = field(4, "max data size", u64::from(u8::MAX))?
            .map_or(Ok(Self::DEFAULT_MAX_DATA_SIZE), u8::try_from)
            .map_err(|e| error(e.to_string()))?;
        if max_data_size == 0 {
            return Err(error("max data size must be at least 1".into()));
        }
        // `field` bounds every value, so the narrowing conversions below cannot fail.
        let narrow = |value: Option<u64>| value.unwrap_or_default();
        Ok(SimDeviceSpec {
            manufacturer_code: u16::try_from(narrow(field(0, "manufacturer code", 0xFFFF)?))
                .unwrap_or_default(),
            image_type: u16::try_from(narrow(field(1, "image type", 0xFFFF)?)).unwrap_or_default(),
            file_version: u32::try_from(narrow(field(2, "file version", 0xFFFF_FFFF)?))
                .unwrap_or_default(),
            hardware_version: field(3, "hardware version", 0xFFFF)?
                .map(|v| u16::try_from(v).unwrap_or_default()),
            max_data_size,
            identity,
        })
    }
}

impl fmt::Display for SimDeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "manufacturer 0x{:04X}, image type 0x{:04X}, version 0x{:08X}",
            self.manufacturer_code, self.image_type, self.file_version
        )?;
        if let Some(hw) = self.hardware_version {
            write!(f, ", hardware 0x{hw:04X}")?;
        }
        write!(f, ", blocks of at most {} bytes", self.max_data_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every spec written in the CLI grammar, hex or decimal, parses back to itself.
        #[test]
        fn spec_text_round_trips(
            mfr in 0u16.., image_type in 0u16.., version in 0u32.., hw: Option<u16>,
            max in 1u8.., hex: bool,
        ) {
            let number = |v: u64| if hex { format!("0x{v:X}") } else { v.to_string() };
            let mut text = format!("{}:{}:{}", number(mfr.into()), number(image_type.into()), number(version.into()));
            if let Some(hw) = hw {
                text.push_str(&format!(":{}:{}", number(hw.into()), number(max.into())));
            }
            let spec: SimDeviceSpec = text.parse().unwrap();
            proptest::prop_assert_eq!(spec, SimDeviceSpec {
                manufacturer_code: mfr,
                image_type,
                file_version: version,
                hardware_version: hw,
                max_data_size: if hw.is_some() { max } else { SimDeviceSpec::DEFAULT_MAX_DATA_SIZE },
                identity: BasicIdentity::default(),
            });
        }
    }

    /// Each spec is refused with an error that contains its needle.
    fn assert_refused(cases: &[(&str, &str)]) {
        for (bad, needle) in cases {
            let err = bad.parse::<SimDeviceSpec>().unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn spec_parses_decimal_and_hex_and_names_bad_fields() {
        let spec: SimDeviceSpec = "4489:0x0005:256:0x0102:64".parse().unwrap();
        assert_eq!(
            spec,
            SimDeviceSpec {
                manufacturer_code: 0x1189,
                image_type: 5,
                file_version: 256,
                hardware_version: Some(0x0102),
                max_data_size: 64,
                identity: BasicIdentity::default(),
            }
        );
        let tuya: SimDeviceSpec =
            "0x1141:0xD3A3:1,model=TS0505B,manufacturer_name=_TZ3210_abc,power=battery"
                .parse()
                .unwrap();
        assert_eq!(tuya.identity.model_id.as_deref(), Some("TS0505B"));
        assert_eq!(
            tuya.identity.manufacturer_name.as_deref(),
            Some("_TZ3210_abc")
        );
        assert!(tuya.identity.is_battery());
        assert_refused(&[
            ("1:2:3,model", "KEY=VALUE"),
            ("1:2:3,colour=red", "unknown key"),
            ("1:2:3,power=solar", "mains or battery"),
            ("1:2:3,model=", "1 to 32 bytes"),
        ]);
        let short: SimDeviceSpec = "1:2:3".parse().unwrap();
        assert_eq!(short.hardware_version, None);
        assert_eq!(short.max_data_size, SimDeviceSpec::DEFAULT_MAX_DATA_SIZE);
        assert_refused(&[
            ("1:2", "2 fields"),
            ("1:2:3:4:5:6", "6 fields"),
            ("0x10000:1:1", "manufacturer code"),
            ("1:1:0x100000000", "file version"),
            ("1:1:1:1:256", "max data size"),
            ("1:1:1:1:0", "at least 1"),
            ("1:zz:1", "image type"),
        ]);
    }
}
