//! The Basic cluster (0x0000) attributes that say what a device is (ZCL8 §3.2.2.2:
//! ManufacturerName 0x0004, ModelIdentifier 0x0005, DateCode 0x0006, PowerSource 0x0007,
//! SWBuildID 0x4000), and the global Read Attributes command and response that fetch them
//! (ZCL8 §2.5.1–2.5.2).
//!
//! The response decoder takes hostile input: every length is bounds-checked, a record whose
//! status is not SUCCESS is skipped, an attribute of an unexpected data type is ignored, and
//! a data type whose length it cannot know ends the decoding with the records read so far
//! (the fields that matter come first in what we ask for). Strings are cut at the first NUL
//! (Tuya and LUMI pad them) and read as UTF-8, lossily.
//!
//! ```
//! use zigbee_otad::zcl::basic::{self, BasicIdentity};
//!
//! let request = basic::read_identity_request(7);
//! assert_eq!(request, [0x10, 0x07, 0x00, 0x04, 0x00, 0x05, 0x00, 0x06, 0x00, 0x07, 0x00, 0x00, 0x40]);
//! // A response naming the manufacturer and model, with the date code unsupported (0x86).
//! let response = [
//!     0x18, 0x07, 0x01, 0x04, 0x00, 0x00, 0x42, 0x04, b'L', b'U', b'M', b'I',
//!     0x05, 0x00, 0x00, 0x42, 0x05, b'l', b'u', b'm', b'i', 0x00, 0x06, 0x00, 0x86,
//! ];
//! let identity = basic::decode_read_response(&response).unwrap().1;
//! assert_eq!(identity.manufacturer_name.as_deref(), Some("LUMI"));
//! assert_eq!(identity.model_id.as_deref(), Some("lumi"));
//! assert_eq!(identity.date_code, None);
//! ```

use serde::{Deserialize, Serialize};

use super::{DecodeError, Direction, FrameType, ZclHeader, ZclStatus};
use crate::wire::{PutLe, Reader};

/// The Basic cluster id.
pub const CLUSTER_ID: u16 = 0x0000;
/// ManufacturerName, a character string.
pub const ATTR_MANUFACTURER_NAME: u16 = 0x0004;
/// ModelIdentifier, a character string.
pub const ATTR_MODEL_IDENTIFIER: u16 = 0x0005;
/// DateCode, a character string.
pub const ATTR_DATE_CODE: u16 = 0x0006;
/// PowerSource, an enum8.
pub const ATTR_POWER_SOURCE: u16 = 0x0007;
/// SWBuildID, a character string.
pub const ATTR_SW_BUILD_ID: u16 = 0x4000;
/// The attributes read for a device's identity, in the order asked.
pub const IDENTITY_ATTRIBUTES: [u16; 5] = [
    ATTR_MANUFACTURER_NAME,
    ATTR_MODEL_IDENTIFIER,
    ATTR_DATE_CODE,
    ATTR_POWER_SOURCE,
    ATTR_SW_BUILD_ID,
];

/// Global command ids used here.
const READ_ATTRIBUTES: u8 = 0x00;
const READ_ATTRIBUTES_RESPONSE: u8 = 0x01;
/// ZCL data types (ZCL8 Table 2-10) the identity attributes use.
const TYPE_CHAR_STRING: u8 = 0x42;
const TYPE_LONG_CHAR_STRING: u8 = 0x44;
const TYPE_ENUM8: u8 = 0x30;
/// Longest string kept (a ZCL character string holds at most 254 octets).
const MAX_TEXT: usize = 254;

/// What the Basic cluster says a device is. Every field is optional: devices leave some out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BasicIdentity {
    /// ManufacturerName (0x0004), e.g. `_TZ3000_abcdefgh` or `LUMI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer_name: Option<String>,
    /// ModelIdentifier (0x0005), e.g. `TS011F` or `lumi.airrtc.agl001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// DateCode (0x0006).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_code: Option<String>,
    /// PowerSource (0x0007), the raw enum8 (bit 7: a secondary battery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_source: Option<u8>,
    /// SWBuildID (0x4000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw_build_id: Option<String>,
    /// Not a Basic attribute: the running file version a vendor cluster reports where the one
    /// in the device's OTA requests is known wrong (LUMI 0xFCC0, see [`super::lumi`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_file_version: Option<u32>,
}

impl BasicIdentity {
    /// PowerSource in words (ZCL8 Table 3-9), or `None` when the device did not say.
    pub fn power_source_name(&self) -> Option<&'static str> {
        self.power_source.map(power_source_name)
    }

    /// True when the device runs on a battery (primary source 3), so it sleeps.
    pub fn is_battery(&self) -> bool {
        self.power_source.is_some_and(|p| p & 0x7F == 0x03)
    }

    /// Copies the fields `other` has over this one's.
    pub fn merge(&mut self, other: BasicIdentity) {
        let BasicIdentity {
            manufacturer_name,
            model_id,
            date_code,
            power_source,
            sw_build_id,
            vendor_file_version,
        } = other;
        self.manufacturer_name = manufacturer_name.or(self.manufacturer_name.take());
        self.model_id = model_id.or(self.model_id.take());
        self.date_code = date_code.or(self.date_code.take());
        self.power_source = power_source.or(self.power_source.take());
        self.sw_build_id = sw_build_id.or(self.sw_build_id.take());
        self.vendor_file_version = vendor_file_version.or(self.vendor_file_version);
    }
}

/// PowerSource in words (ZCL8 Table 3-9; bit 7, a secondary battery, is ignored).
pub fn power_source_name(value: u8) -> &'static str {
    match value & 0x7F {
        0x01 => "mains (single phase)",
        0x02 => "mains (3 phase)",
        0x03 => "battery",
        0x04 => "dc source",
        0x05 => "emergency mains (constant)",
        0x06 => "emergency mains (transfer switch)",
        _ => "unknown",
    }
}

/// A Read Attributes request for [`IDENTITY_ATTRIBUTES`] (client to server, global command 0,
/// Default Response disabled), with transaction sequence number `tsn`.
pub fn read_identity_request(tsn: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + 2 * IDENTITY_ATTRIBUTES.len());
    read_request_header(tsn).encode(&mut out);
    for attribute in IDENTITY_ATTRIBUTES {
        out.put_u16_le(attribute);
    }
    out
}

fn read_request_header(tsn: u8) -> ZclHeader {
    ZclHeader {
        frame_type: FrameType::GLOBAL,
        manufacturer_code: None,
        direction: Direction::CLIENT_TO_SERVER,
        disable_default_response: true,
        reserved_bits: 0,
        tsn,
        command_id: super::CommandId(READ_ATTRIBUTES),
    }
}

/// Encodes a Read Attributes Response (server to client) for `identity`, answering the
/// attributes asked in `request` (a whole Read Attributes frame); attributes the identity
/// lacks are answered UNSUPPORTED_ATTRIBUTE. `None` when `request` is not a Read Attributes
/// request. Used by the simulated devices, which answer as real ones do.
pub fn encode_read_response(request: &[u8], identity: &BasicIdentity) -> Option<Vec<u8>> {
    let (header, payload) = ZclHeader::decode(request).ok()?;
    if header.frame_type != FrameType::GLOBAL
        || header.command_id.0 != READ_ATTRIBUTES
        || header.direction != Direction::CLIENT_TO_SERVER
        || header.manufacturer_code.is_some()
    {
        return None;
    }
    let mut out = Vec::new();
    header
        .reply(
            FrameType::GLOBAL,
            super::CommandId(READ_ATTRIBUTES_RESPONSE),
        )
        .encode(&mut out);
    for pair in payload.chunks_exact(2) {
        let attribute = u16::from_le_bytes([pair.first().copied()?, pair.get(1).copied()?]);
        out.put_u16_le(attribute);
        let text = match attribute {
            ATTR_MANUFACTURER_NAME => identity.manufacturer_name.as_deref(),
            ATTR_MODEL_IDENTIFIER => identity.model_id.as_deref(),
            ATTR_DATE_CODE => identity.date_code.as_deref(),
            ATTR_SW_BUILD_ID => identity.sw_build_id.as_deref(),
            _ => None,
        };
        match (attribute, text, identity.power_source) {
            (ATTR_POWER_SOURCE, _, Some(power)) => {
                out.put_u8_le(ZclStatus::SUCCESS.0);
                out.put_u8_le(TYPE_ENUM8);
                out.put_u8_le(power);
            }
            (_, Some(text), _) => {
                let bytes = text.as_bytes();
                let bytes = bytes.get(..bytes.len().min(MAX_TEXT)).unwrap_or_default();
                out.put_u8_le(ZclStatus::SUCCESS.0);
                out.put_u8_le(TYPE_CHAR_STRING);
                out.put_u8_le(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(bytes);
            }
            _ => out.put_u8_le(ZclStatus::UNSUPPORTED_ATTRIBUTE.0),
        }
    }
    Some(out)
}

/// What a frame from the device's Basic cluster answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicReply {
    /// A Read Attributes Response: the identity it carried (possibly empty).
    Attributes(BasicIdentity),
    /// A Default Response with a status other than SUCCESS (UNSUP_GENERAL_COMMAND,
    /// UNSUPPORTED_CLUSTER, …): the device will not answer this read on this endpoint.
    Refused(ZclStatus),
}

/// Decodes a server-to-client Read Attributes Response (or a Default Response refusing the
/// read) of the Basic cluster: the header and what it says. Records of other attributes,
/// records that failed, and values of an unexpected type are skipped.
pub fn decode_read_response(frame: &[u8]) -> Result<(ZclHeader, BasicIdentity), DecodeError> {
    match decode_reply(frame)? {
        (header, BasicReply::Attributes(identity)) => Ok((header, identity)),
        (header, BasicReply::Refused(_)) => Err(unsupported(&header)),
    }
}

fn unsupported(header: &ZclHeader) -> DecodeError {
    DecodeError::UnsupportedCommand {
        frame_type: header.frame_type,
        direction: header.direction,
        command_id: header.command_id,
        manufacturer_specific: header.manufacturer_code.is_some(),
    }
}

/// Decodes a global server-to-client frame of the Basic cluster that answers a read.
pub fn decode_reply(frame: &[u8]) -> Result<(ZclHeader, BasicReply), DecodeError> {
    let (header, payload) = ZclHeader::decode(frame)?;
    if header.frame_type != FrameType::GLOBAL
        || header.direction != Direction::SERVER_TO_CLIENT
        || header.manufacturer_code.is_some()
    {
        return Err(unsupported(&header));
    }
    let base = frame.len() - payload.len();
    if header.is_default_response() {
        let response = super::DefaultResponse::decode(payload).map_err(|e| e.offset_by(base))?;
        return Ok((header, BasicReply::Refused(response.status)));
    }
    if header.command_id.0 != READ_ATTRIBUTES_RESPONSE {
        return Err(unsupported(&header));
    }
    let identity = decode_records(payload).map_err(|e| e.offset_by(base))?;
    Ok((header, BasicReply::Attributes(identity)))
}

fn decode_records(payload: &[u8]) -> Result<BasicIdentity, DecodeError> {
    let mut reader = Reader::new(payload);
    let mut identity = BasicIdentity::default();
    while !reader.is_empty() {
        let attribute = reader.u16("attribute_identifier")?;
        let status = reader.u8("status")?;
        if status != ZclStatus::SUCCESS.0 {
            continue;
        }
        let type_offset = reader.position();
        let data_type = reader.u8("attribute_data_type")?;
        let value = match data_type {
            TYPE_CHAR_STRING => {
                let len = reader.u8("string_length")?;
                // 0xFF marks an invalid (absent) string.
                let len = if len == 0xFF { 0 } else { usize::from(len) };
                Value::Text(reader.take("string", len)?)
            }
            TYPE_LONG_CHAR_STRING => {
                let len = reader.u16("long_string_length")?;
                let len = if len == 0xFFFF { 0 } else { usize::from(len) };
                Value::Text(reader.take("long_string", len)?)
            }
            0x08 | 0x10 | 0x18 | 0x20 | 0x28 | TYPE_ENUM8 => {
                Value::Byte(reader.u8("attribute_value")?)
            }
            0x09 | 0x19 | 0x21 | 0x29 | 0x31 => {
                reader.take("attribute_value", 2)?;
                Value::Other
            }
            0x0B | 0x1B | 0x23 | 0x2B => {
                reader.take("attribute_value", 4)?;
                Value::Other
            }
            _ => {
                // A type whose size we do not know: the rest cannot be framed. Keep what we
                // have when it is something; else say which type stopped us.
                if identity == BasicIdentity::default() {
                    return Err(DecodeError::InvalidValue {
                        field: "attribute_data_type",
                        offset: type_offset,
                        value: u32::from(data_type),
                        reason: "not a type the Basic identity attributes use",
                    });
                }
                break;
            }
        };
        match (attribute, value) {
            (ATTR_MANUFACTURER_NAME, Value::Text(bytes)) => {
                identity.manufacturer_name = text(bytes);
            }
            (ATTR_MODEL_IDENTIFIER, Value::Text(bytes)) => identity.model_id = text(bytes),
            (ATTR_DATE_CODE, Value::Text(bytes)) => identity.date_code = text(bytes),
            (ATTR_SW_BUILD_ID, Value::Text(bytes)) => identity.sw_build_id = text(bytes),
            (ATTR_POWER_SOURCE, Value::Byte(byte)) => identity.power_source = Some(byte),
            _ => {}
        }
    }
    Ok(identity)
}

enum Value<'a> {
    Text(&'a [u8]),
    Byte(u8),
    Other,
}

/// A string attribute as text: cut at the first NUL, lossy UTF-8, trailing spaces trimmed;
/// `None` when nothing is left.
fn text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = bytes.get(..end.min(MAX_TEXT)).unwrap_or_default();
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    // Each invalid byte became a 3-byte U+FFFD: keep the text within what one ZCL string can
    // carry, cut at a character boundary, so it can be written back unchanged.
    while text.len() > MAX_TEXT {
        text.pop();
    }
    let text = text.trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The header of a Read Attributes request we sent, for matching: global, client to server.
pub fn is_read_request(frame: &[u8]) -> bool {
    ZclHeader::decode(frame).is_ok_and(|(h, _)| {
        h.frame_type == FrameType::GLOBAL
            && h.direction == Direction::CLIENT_TO_SERVER
            && h.command_id.0 == READ_ATTRIBUTES
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuya() -> BasicIdentity {
        BasicIdentity {
            manufacturer_name: Some("_TZ3000_okaz9tjs".into()),
            model_id: Some("TS011F".into()),
            date_code: None,
            power_source: Some(1),
            sw_build_id: Some("0122052017".into()),
            vendor_file_version: None,
        }
    }

    #[test]
    fn request_response_round_trip() {
        let request = read_identity_request(0x42);
        assert!(is_read_request(&request));
        let response = encode_read_response(&request, &tuya()).unwrap();
        let (header, identity) = decode_read_response(&response).unwrap();
        assert_eq!(header.tsn, 0x42);
        assert_eq!(identity, tuya());
        assert_eq!(identity.power_source_name(), Some("mains (single phase)"));
        assert!(!identity.is_battery());
    }

    #[test]
    fn invalid_bytes_never_make_a_string_longer_than_the_wire_carries() {
        let long = [0xFFu8; 200];
        let decoded = text(&long).unwrap_or_default();
        assert!(decoded.len() <= MAX_TEXT, "{}", decoded.len());
    }

    #[test]
    fn nul_padding_and_invalid_strings() {
        // Model "TS0601\0\0", manufacturer as an invalid string (length 0xFF).
        let frame = [
            0x18, 1, 0x01, 0x05, 0x00, 0x00, 0x42, 0x08, b'T', b'S', b'0', b'6', b'0', b'1', 0, 0,
            0x04, 0x00, 0x00, 0x42, 0xFF,
        ];
        let identity = decode_read_response(&frame).unwrap().1;
        assert_eq!(identity.model_id.as_deref(), Some("TS0601"));
        assert_eq!(identity.manufacturer_name, None);
    }

    #[test]
    fn truncated_and_unknown_types_are_errors_not_panics() {
        let frame = [0x18, 1, 0x01, 0x05, 0x00, 0x00, 0x42, 0x08, b'T'];
        assert!(matches!(
            decode_read_response(&frame),
            Err(DecodeError::Truncated(_))
        ));
        let frame = [0x18, 1, 0x01, 0x05, 0x00, 0x00, 0xE2, 1, 2, 3];
        assert!(matches!(
            decode_read_response(&frame),
            Err(DecodeError::InvalidValue { offset: 6, .. })
        ));
        // A refusal is told apart from a malformed frame.
        let refusal = [0x18, 1, 0x0B, 0x00, 0x82];
        assert_eq!(
            decode_reply(&refusal).unwrap().1,
            BasicReply::Refused(ZclStatus(0x82))
        );
        // A request is not a response.
        assert!(decode_reply(&read_identity_request(1)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = decode_reply(&bytes);
            let _ = encode_read_response(&bytes, &tuya());
        }
    }
}
