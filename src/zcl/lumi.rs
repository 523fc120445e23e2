//! The LUMI (Aqara) manufacturer-specific cluster 0xFCC0, as far as OTA needs it: the file
//! version some Aqara devices report there because the one in their OTA requests is wrong
//! (zigbee-herdsman-converters' `lumi` converters and its zigbee-OTA provider, Z2M #15745 and
//! #16345):
//!
//! * attribute 0x00EE, `uint32` (ZCL8 Table 2-10 type 0x23): the running file version, as the
//!   E1 radiator thermostat (`lumi.airrtc.agl001`) reports it;
//! * attribute 0x00F7, an octet string (0x41) holding LUMI's "heartbeat": a list of
//!   `key u8, ZCL type u8, value` records, where key 13 (`uint32`) is the running file
//!   version (the E1 curtain driver, `lumi.curtain.acn003` and `lumi.curtain.agl001`).
//!
//! Both arrive in a Report Attributes (ZCL8 §2.5.11) or a Read Attributes Response (§2.5.2).
//! Hostile input: every length is checked, a record of a type whose size is unknown ends the
//! walk (nothing after it can be framed), and an error names the field.
//!
//! ```
//! use zigbee_otad::zcl::lumi;
//! // Report Attributes, manufacturer 0x115F: 0x00F7 = [key 3 (int8) 0x2A, key 13 (uint32) 27].
//! let frame = [0x1C, 0x5F, 0x11, 0x07, 0x0A, 0xF7, 0x00, 0x41, 0x09,
//!     0x03, 0x28, 0x2A, 0x0D, 0x23, 0x1B, 0x00, 0x00, 0x00];
//! assert_eq!(lumi::reported_file_version(&frame), Ok(Some(27)));
//! ```

use super::{CommandId, DecodeError, Direction, FrameType, ZclHeader};
use crate::wire::Reader;

/// The LUMI manufacturer-specific cluster.
pub const CLUSTER_ID: u16 = 0xFCC0;
/// LUMI's manufacturer code.
pub const MANUFACTURER_CODE: u16 = 0x115F;
/// The running file version (`uint32`).
pub const ATTR_FILE_VERSION: u16 = 0x00EE;
/// The heartbeat record list (octet string).
pub const ATTR_HEARTBEAT: u16 = 0x00F7;
/// The heartbeat key of the running file version.
pub const HEARTBEAT_FILE_VERSION: u8 = 13;

/// Models whose OTA requests carry a wrong file version (zigbee-herdsman-converters'
/// zigbee-OTA provider, `isNewImageAvailable`); the right one is reported here.
pub const WRONG_OTA_VERSION_MODELS: [&str; 3] = [
    "lumi.airrtc.agl001",
    "lumi.curtain.acn003",
    "lumi.curtain.agl001",
];

/// Of those, the models that keep the version in attribute 0x00EE, which can be read (the E1
/// thermostat); the curtain drivers only send it in their heartbeat.
pub const READABLE_VERSION_MODELS: [&str; 1] = ["lumi.airrtc.agl001"];

const READ_ATTRIBUTES: u8 = 0x00;
const READ_ATTRIBUTES_RESPONSE: u8 = 0x01;
const REPORT_ATTRIBUTES: u8 = 0x0A;
const TYPE_UINT32: u8 = 0x23;
const TYPE_OCTET_STRING: u8 = 0x41;
const TYPE_CHAR_STRING: u8 = 0x42;
const TYPE_LONG_OCTET_STRING: u8 = 0x43;
const TYPE_LONG_CHAR_STRING: u8 = 0x44;
const SUCCESS: u8 = 0x00;

/// A manufacturer-specific (LUMI, 0x115F) Read Attributes request for
/// [`ATTR_FILE_VERSION`], client to server, Default Response disabled.
pub fn read_file_version_request(tsn: u8) -> Vec<u8> {
    let header = ZclHeader {
        frame_type: FrameType::GLOBAL,
        manufacturer_code: Some(MANUFACTURER_CODE),
        direction: Direction::CLIENT_TO_SERVER,
        disable_default_response: true,
        reserved_bits: 0,
        tsn,
        command_id: CommandId(READ_ATTRIBUTES),
    };
    let mut out = Vec::with_capacity(header.encoded_len() + 2);
    header.encode(&mut out);
    out.extend_from_slice(&ATTR_FILE_VERSION.to_le_bytes());
    out
}

/// The file version a LUMI report or read response carries, if any (0 is no version).
/// Frames of other commands carry none; a frame cut short or a record of an unknown type
/// before any version is an error.
pub fn reported_file_version(frame: &[u8]) -> Result<Option<u32>, DecodeError> {
    let (header, payload) = ZclHeader::decode(frame)?;
    let base = frame.len().saturating_sub(payload.len());
    if header.frame_type != FrameType::GLOBAL {
        return Ok(None);
    }
    let with_status = match header.command_id.0 {
        READ_ATTRIBUTES_RESPONSE => true,
        REPORT_ATTRIBUTES => false,
        _ => return Ok(None),
    };
    attributes(payload, with_status).map_err(|e| e.offset_by(base))
}

fn attributes(payload: &[u8], with_status: bool) -> Result<Option<u32>, DecodeError> {
    let mut reader = Reader::new(payload);
    let mut found = None;
    while !reader.is_empty() {
        let attribute = reader.u16("attribute_identifier")?;
        if with_status && reader.u8("status")? != SUCCESS {
            continue;
        }
        let data_type = reader.u8("attribute_data_type")?;
        let offset = reader.position();
        let value = take_value(&mut reader, data_type, offset)?;
        let version = match (attribute, data_type) {
            (ATTR_FILE_VERSION, TYPE_UINT32) => uint32(value),
            (ATTR_HEARTBEAT, TYPE_OCTET_STRING) => heartbeat(value)?,
            _ => None,
        };
        found = version.filter(|&v| v != 0).or(found);
    }
    Ok(found)
}

/// The heartbeat's key 13, if present before a record that cannot be framed.
fn heartbeat(records: &[u8]) -> Result<Option<u32>, DecodeError> {
    let mut reader = Reader::new(records);
    while !reader.is_empty() {
        let key = reader.u8("heartbeat_key")?;
        let data_type = reader.u8("heartbeat_type")?;
        let offset = reader.position();
        let value = take_value(&mut reader, data_type, offset)?;
        if key == HEARTBEAT_FILE_VERSION && data_type == TYPE_UINT32 {
            return Ok(uint32(value));
        }
    }
    Ok(None)
}

fn uint32(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_le_bytes)
}

/// The bytes of one value of `data_type`.
fn take_value<'a>(
    reader: &mut Reader<'a>,
    data_type: u8,
    offset: usize,
) -> Result<&'a [u8], DecodeError> {
    let len = match data_type {
        TYPE_OCTET_STRING | TYPE_CHAR_STRING => match reader.u8("string_length")? {
            0xFF => 0,
            n => usize::from(n),
        },
        TYPE_LONG_OCTET_STRING | TYPE_LONG_CHAR_STRING => match reader.u16("string_length")? {
            0xFFFF => 0,
            n => usize::from(n),
        },
        other => fixed_size(other).ok_or(DecodeError::InvalidValue {
            field: "attribute_data_type",
            offset: offset.saturating_sub(1),
            value: u32::from(other),
            reason: "a type whose size is unknown; the records after it cannot be framed",
        })?,
    };
    Ok(reader.take("attribute_value", len)?)
}

/// The size of a fixed-length ZCL data type (ZCL8 Table 2-10).
fn fixed_size(data_type: u8) -> Option<usize> {
    Some(match data_type {
        0x08..=0x0F => usize::from(data_type - 0x07),
        0x10 => 1,
        0x18..=0x1F => usize::from(data_type - 0x17),
        0x20..=0x27 => usize::from(data_type - 0x1F),
        0x28..=0x2F => usize::from(data_type - 0x27),
        0x30 => 1,
        0x31 | 0x38 | 0xE8 | 0xE9 => 2,
        0x39 | 0xE0 | 0xE1 | 0xE2 | 0xEA => 4,
        0x3A | 0xF0 => 8,
        0xF1 => 16,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Report Attributes frame from LUMI (manufacturer-specific, server to client).
    fn report(records: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x1C, 0x5F, 0x11, 0x07, REPORT_ATTRIBUTES];
        frame.extend_from_slice(records);
        frame
    }

    /// The curtain driver's heartbeat, as herdsman-converters documents one (keys 3, 5, 9, 10,
    /// 12, 13, 17, 100, 101, 149, 150, 152, 151, 154), version 0x0000001B.
    fn heartbeat_record() -> Vec<u8> {
        let records: &[u8] = &[
            0x03, 0x28, 0x2A, 0x05, 0x21, 0x23, 0x00, 0x09, 0x21, 0x00, 0x0D, 0x0A, 0x21, 0x99,
            0x84, 0x0C, 0x20, 0x0A, 0x0D, 0x23, 0x1B, 0x00, 0x00, 0x00, 0x11, 0x23, 0x01, 0x00,
            0x00, 0x00, 0x64, 0x10, 0x00, 0x65, 0x10, 0x00, 0x95, 0x39, 0xC1, 0xCC, 0xB6, 0x42,
            0x96, 0x39, 0x9A, 0xA9, 0x08, 0x45, 0x98, 0x39, 0x00, 0x00, 0x00, 0x00, 0x97, 0x39,
            0x00, 0x00, 0x00, 0x00, 0x9A, 0x20, 0x00,
        ];
        let mut attribute = vec![0xF7, 0x00, TYPE_OCTET_STRING, records.len() as u8];
        attribute.extend_from_slice(records);
        attribute
    }

    #[test]
    fn the_read_request_is_manufacturer_specific_for_0x00ee() {
        assert_eq!(
            read_file_version_request(0x42),
            [0x14, 0x5F, 0x11, 0x42, READ_ATTRIBUTES, 0xEE, 0x00]
        );
    }

    #[test]
    fn heartbeat_key_13_is_the_version() {
        assert_eq!(
            reported_file_version(&report(&heartbeat_record())),
            Ok(Some(0x1B))
        );
    }

    #[test]
    fn attribute_0x00ee_is_the_version_in_reports_and_read_responses() {
        let records = [0xEE, 0x00, TYPE_UINT32, 0x19, 0x08, 0x00, 0x00];
        assert_eq!(reported_file_version(&report(&records)), Ok(Some(0x0819)));
        let mut response = vec![0x18, 0x01, READ_ATTRIBUTES_RESPONSE, 0xEE, 0x00, SUCCESS];
        response.extend_from_slice(&records[2..]);
        assert_eq!(reported_file_version(&response), Ok(Some(0x0819)));
        // Unsupported: no version, no error.
        let refused = [0x18, 0x01, READ_ATTRIBUTES_RESPONSE, 0xEE, 0x00, 0x86];
        assert_eq!(reported_file_version(&refused), Ok(None));
    }

    #[test]
    fn other_records_commands_and_zero_carry_no_version() {
        let other = [0x0A, 0x01, 0x20, 0x05, 0xEE, 0x00, TYPE_UINT32, 0, 0, 0, 0];
        assert_eq!(reported_file_version(&report(&other)), Ok(None));
        let cluster_specific = [0x19, 0x01, 0x0A, 0xEE, 0x00, TYPE_UINT32, 1, 0, 0, 0];
        assert_eq!(reported_file_version(&cluster_specific), Ok(None));
    }

    #[test]
    fn hostile_frames_are_named_errors() {
        let mut truncated = report(&heartbeat_record());
        truncated.truncate(truncated.len() - 10);
        assert!(matches!(
            reported_file_version(&truncated),
            Err(DecodeError::Truncated(_))
        ));
        let unknown_type = [0x01, 0x00, 0x4C, 0x00];
        assert!(matches!(
            reported_file_version(&report(&unknown_type)),
            Err(DecodeError::InvalidValue {
                field: "attribute_data_type",
                offset: 7,
                ..
            })
        ));
        assert!(reported_file_version(&[0x1C]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = reported_file_version(&bytes);
        }
    }
}
