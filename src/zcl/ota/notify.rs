//! Image Notify (0x00, server to client; ZCL8 §11.13.3): tells clients to query for a new image.

use nom::combinator::cond;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{DecodeError, Violation, parse_payload, strict};
use crate::wire::PutLe;
use crate::wire::fields::{u8, u16, u32};

/// Image Notify (0x00, server to client): asks clients to query for a new image.
///
/// The payload type (0–3) is not stored: it is the number of the optional fields present,
/// which must be filled in order (`manufacturer_code`, then `image_type`, then
/// `new_file_version`); [`encode`](Self::encode) stops at the first `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNotify {
    /// 1–100: a client draws 1–100 and queries only when the draw is at most this.
    /// Not checked: the server only sends this command.
    pub query_jitter: u8,
    /// Present for payload type ≥ 1.
    pub manufacturer_code: Option<u16>,
    /// Present for payload type ≥ 2.
    pub image_type: Option<u16>,
    /// Present for payload type 3.
    pub new_file_version: Option<u32>,
}

impl ImageNotify {
    /// The payload type written on the air: how many optional fields lead without a gap.
    pub fn payload_type(&self) -> u8 {
        match (
            self.manufacturer_code,
            self.image_type,
            self.new_file_version,
        ) {
            (None, _, _) => 0,
            (Some(_), None, _) => 1,
            (Some(_), Some(_), None) => 2,
            (Some(_), Some(_), Some(_)) => 3,
        }
    }

    /// Decodes the payload. A payload type above 3 is INVALID_VALUE.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        strict(Self::parse(payload)?)
    }

    /// Decodes the payload, keeping values outside the spec's ranges as [`Violation`]s: a payload
    /// type above 3 (refused; no optional field is read) or a query jitter outside 1–100.
    pub fn parse(payload: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
        let (payload_type, query_jitter) =
            parse_payload(payload, (u8("payload_type"), u8("query_jitter")))?;
        let mut violations = Vec::new();
        if payload_type > 3 {
            violations.push(Violation {
                field: "payload_type",
                offset: 0,
                value: payload_type.into(),
                allowed: "payload types 0-3 are defined",
                refused: true,
            });
        }
        if !(1..=100).contains(&query_jitter) {
            violations.push(Violation {
                field: "query_jitter",
                offset: 1,
                value: query_jitter.into(),
                allowed: "1-100",
                refused: false,
            });
        }
        let fields = if payload_type > 3 { 0 } else { payload_type };
        let optional = parse_payload(
            payload.get(2..).unwrap_or_default(),
            (
                cond(fields >= 1, u16("manufacturer_code")),
                cond(fields >= 2, u16("image_type")),
                cond(fields >= 3, u32("new_file_version")),
            ),
        )
        .map_err(|e| e.offset_by(2))?;
        let (manufacturer_code, image_type, new_file_version) = optional;
        let notify = ImageNotify {
            query_jitter,
            manufacturer_code,
            image_type,
            new_file_version,
        };
        Ok((notify, violations))
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.payload_type());
        out.put_u8_le(self.query_jitter);
        if let Some(code) = self.manufacturer_code {
            out.put_u16_le(code);
            if let Some(image_type) = self.image_type {
                out.put_u16_le(image_type);
                if let Some(version) = self.new_file_version {
                    out.put_u32_le(version);
                }
            }
        }
    }

    /// Payload bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        match self.payload_type() {
            0 => 2,
            1 => 4,
            2 => 6,
            _ => 10,
        }
    }
}

impl Serialize for ImageNotify {
    /// Every field the wire carries, the payload type included.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("ImageNotify", 5)?;
        out.serialize_field("payload_type", &self.payload_type())?;
        out.serialize_field("query_jitter", &self.query_jitter)?;
        out.serialize_field("manufacturer_code", &self.manufacturer_code)?;
        out.serialize_field("image_type", &self.image_type)?;
        out.serialize_field("new_file_version", &self.new_file_version)?;
        out.end()
    }
}
