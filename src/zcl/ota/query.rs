//! Query Next Image Request and Response (0x01, 0x02; ZCL8 §11.13.4–5) and Query Device Specific
//! File Request and Response (0x08, 0x09; ZCL8 §11.13.10–11).

use nom::Parser;
use nom::combinator::cond;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use super::{
    DecodeError, HARDWARE_VERSION_PRESENT, Ieee, Violation, ZclStatus, ieee, parse_payload, strict,
    with_presence_bit,
};
use crate::wire::PutLe;
use crate::wire::fields::{u8, u16, u32};

/// Query Next Image Request (0x01, client to server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryNextImageRequest {
    /// The field control byte as received. Bit 0 (hardware version present) is rewritten from
    /// `hardware_version` on encode; the reserved bits are kept.
    pub field_control: u8,
    /// The client's manufacturer code.
    pub manufacturer_code: u16,
    /// The client's image type.
    pub image_type: u16,
    /// The file version the client runs.
    pub current_file_version: u32,
    /// The client's hardware version, when field-control bit 0 is set.
    pub hardware_version: Option<u16>,
}

impl QueryNextImageRequest {
    /// Decodes the payload. Missing fixed fields, or a hardware version announced and absent,
    /// are MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let (field_control, manufacturer_code, image_type, current_file_version, hardware_version) =
            parse_payload(payload, |input| {
                let (input, field_control) = u8("field_control")(input)?;
                let (input, (manufacturer_code, image_type, current_file_version)) = (
                    u16("manufacturer_code"),
                    u16("image_type"),
                    u32("current_file_version"),
                )
                    .parse_complete(input)?;
                let (input, hardware_version) = cond(
                    field_control & HARDWARE_VERSION_PRESENT != 0,
                    u16("hardware_version"),
                )
                .parse_complete(input)?;
                let fields = (
                    field_control,
                    manufacturer_code,
                    image_type,
                    current_file_version,
                    hardware_version,
                );
                Ok((input, fields))
            })?;
        Ok(QueryNextImageRequest {
            field_control,
            manufacturer_code,
            image_type,
            current_file_version,
            hardware_version,
        })
    }

    /// The field control byte written on the air.
    pub fn encoded_field_control(&self) -> u8 {
        with_presence_bit(
            self.field_control,
            HARDWARE_VERSION_PRESENT,
            self.hardware_version.is_some(),
        )
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.encoded_field_control());
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.current_file_version);
        if let Some(version) = self.hardware_version {
            out.put_u16_le(version);
        }
    }

    /// Payload bytes: 9, or 11 with the hardware version.
    pub fn encoded_len(&self) -> usize {
        9 + if self.hardware_version.is_some() {
            2
        } else {
            0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 0x02 Query Next Image Response and 0x09 Query Device Specific File Response

/// Query Next Image Response (0x02, server to client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryNextImageResponse {
    /// Status SUCCESS: the image the client should download.
    Success {
        /// The image's manufacturer code.
        manufacturer_code: u16,
        /// The image's type.
        image_type: u16,
        /// The image's file version.
        file_version: u32,
        /// Total size of the OTA file in bytes.
        image_size: u32,
    },
    /// Any other status (NO_IMAGE_AVAILABLE, NOT_AUTHORIZED, ...): status only. Do not build
    /// this with SUCCESS, which the wire cannot tell from the `Success` variant.
    OtherStatus {
        /// The status.
        status: ZclStatus,
    },
}

/// Query Device Specific File Response (0x09, server to client): laid out
/// like [`QueryNextImageResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryDeviceSpecificFileResponse {
    /// Status SUCCESS: the file the client should download.
    Success {
        /// The file's manufacturer code.
        manufacturer_code: u16,
        /// The file's type (0xFFC0–0xFFFE).
        image_type: u16,
        /// The file's version.
        file_version: u32,
        /// Total size of the file in bytes.
        image_size: u32,
    },
    /// Any other status (NO_IMAGE_AVAILABLE, NOT_AUTHORIZED, ...): status only.
    OtherStatus {
        /// The status.
        status: ZclStatus,
    },
}

/// The fields after a SUCCESS status in both query responses.
type OfferedImage = (u16, u16, u32, u32);

/// The statuses ZCL8 allows in both query responses.
const QUERY_RESPONSE_STATUSES: [ZclStatus; 3] = [
    ZclStatus::SUCCESS,
    ZclStatus::NO_IMAGE_AVAILABLE,
    ZclStatus::NOT_AUTHORIZED,
];

/// Reads a query response: the status, then the four fields only after SUCCESS. A status the
/// spec does not list is reported, not refused (the server never receives these).
fn parse_query_response(
    payload: &[u8],
) -> Result<(Result<OfferedImage, ZclStatus>, Vec<Violation>), DecodeError> {
    let status = ZclStatus(parse_payload(payload, u8("status"))?);
    let mut violations = Vec::new();
    if !QUERY_RESPONSE_STATUSES.contains(&status) {
        violations.push(Violation {
            field: "status",
            offset: 0,
            value: status.0.into(),
            allowed: "SUCCESS, NO_IMAGE_AVAILABLE or NOT_AUTHORIZED",
            refused: false,
        });
    }
    if !status.is_success() {
        return Ok((Err(status), violations));
    }
    let offer = parse_payload(
        payload,
        (
            u8("status"),
            u16("manufacturer_code"),
            u16("image_type"),
            u32("file_version"),
            u32("image_size"),
        ),
    )?;
    let (_, manufacturer_code, image_type, file_version, image_size) = offer;
    Ok((
        Ok((manufacturer_code, image_type, file_version, image_size)),
        violations,
    ))
}

/// Writes a query response as JSON: the status as `{value, name}`, then the offer's fields.
fn serialize_query_response<S: Serializer>(
    name: &'static str,
    offer: Result<OfferedImage, ZclStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match offer {
        Ok((manufacturer_code, image_type, file_version, image_size)) => {
            let mut out = serializer.serialize_struct(name, 5)?;
            out.serialize_field("status", &ZclStatus::SUCCESS)?;
            out.serialize_field("manufacturer_code", &manufacturer_code)?;
            out.serialize_field("image_type", &image_type)?;
            out.serialize_field("file_version", &file_version)?;
            out.serialize_field("image_size", &image_size)?;
            out.end()
        }
        Err(status) => {
            let mut out = serializer.serialize_struct(name, 1)?;
            out.serialize_field("status", &status)?;
            out.end()
        }
    }
}

fn encode_query_response(offer: Result<OfferedImage, ZclStatus>, out: &mut Vec<u8>) {
    match offer {
        Ok((manufacturer_code, image_type, file_version, image_size)) => {
            out.put_u8_le(ZclStatus::SUCCESS.0);
            out.put_u16_le(manufacturer_code);
            out.put_u16_le(image_type);
            out.put_u32_le(file_version);
            out.put_u32_le(image_size);
        }
        Err(status) => out.put_u8_le(status.0),
    }
}

macro_rules! query_response_codec {
    ($name:ident) => {
        impl $name {
            /// The usual answer when the server has nothing for the client.
            pub const NO_IMAGE_AVAILABLE: Self = Self::OtherStatus {
                status: ZclStatus::NO_IMAGE_AVAILABLE,
            };

            /// The status byte.
            pub fn status(&self) -> ZclStatus {
                match self {
                    Self::Success { .. } => ZclStatus::SUCCESS,
                    Self::OtherStatus { status } => *status,
                }
            }

            /// Decodes the payload: the status, then the four fields only after SUCCESS.
            pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
                strict(Self::parse(payload)?)
            }

            /// Decodes the payload, reporting a status the spec does not list for this command.
            pub fn parse(payload: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
                let (offer, violations) = parse_query_response(payload)?;
                let response = match offer {
                    Ok((manufacturer_code, image_type, file_version, image_size)) => {
                        Self::Success {
                            manufacturer_code,
                            image_type,
                            file_version,
                            image_size,
                        }
                    }
                    Err(status) => Self::OtherStatus { status },
                };
                Ok((response, violations))
            }

            /// The status and, after SUCCESS, the offered image's fields.
            fn offer(&self) -> Result<OfferedImage, ZclStatus> {
                match *self {
                    Self::Success {
                        manufacturer_code,
                        image_type,
                        file_version,
                        image_size,
                    } => Ok((manufacturer_code, image_type, file_version, image_size)),
                    Self::OtherStatus { status } => Err(status),
                }
            }

            /// Appends the payload.
            pub fn encode(&self, out: &mut Vec<u8>) {
                encode_query_response(self.offer(), out);
            }

            /// Payload bytes: 13 for SUCCESS, else 1.
            pub fn encoded_len(&self) -> usize {
                match self {
                    Self::Success { .. } => 13,
                    Self::OtherStatus { .. } => 1,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_query_response(stringify!($name), self.offer(), serializer)
            }
        }
    };
}
query_response_codec!(QueryNextImageResponse);
query_response_codec!(QueryDeviceSpecificFileResponse);

/// Query Device Specific File Request (0x08, client to server): asks for a
/// file such as a security credential or log configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryDeviceSpecificFileRequest {
    /// The requester's IEEE address.
    pub request_node_address: Ieee,
    /// Manufacturer code of the file.
    pub manufacturer_code: u16,
    /// File type: 0xFFC0–0xFFFE.
    pub image_type: u16,
    /// File version.
    pub file_version: u32,
    /// The client's Zigbee stack version.
    pub current_zigbee_stack_version: u16,
}

impl QueryDeviceSpecificFileRequest {
    /// Payload bytes.
    pub const ENCODED_LEN: usize = 18;

    /// The image types reserved for device-specific files.
    pub const DEVICE_SPECIFIC_IMAGE_TYPES: std::ops::RangeInclusive<u16> = 0xFFC0..=0xFFFE;

    /// Decodes the payload. An image type outside 0xFFC0–0xFFFE is INVALID_VALUE; a
    /// truncated field is MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        strict(Self::parse(payload)?)
    }

    /// Decodes the payload, keeping an image type outside 0xFFC0–0xFFFE as a refused
    /// [`Violation`].
    pub fn parse(payload: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
        const IMAGE_TYPE_OFFSET: usize = 10;
        let fields = parse_payload(
            payload,
            (
                ieee("request_node_address"),
                u16("manufacturer_code"),
                u16("image_type"),
                u32("file_version"),
                u16("current_zigbee_stack_version"),
            ),
        )?;
        let (request_node_address, manufacturer_code, image_type, file_version, stack_version) =
            fields;
        let mut violations = Vec::new();
        if !Self::DEVICE_SPECIFIC_IMAGE_TYPES.contains(&image_type) {
            violations.push(Violation {
                field: "image_type",
                offset: IMAGE_TYPE_OFFSET,
                value: image_type.into(),
                allowed: "device-specific file types are 0xFFC0-0xFFFE",
                refused: true,
            });
        }
        let request = QueryDeviceSpecificFileRequest {
            request_node_address,
            manufacturer_code,
            image_type,
            file_version,
            current_zigbee_stack_version: stack_version,
        };
        Ok((request, violations))
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.request_node_address.0);
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.file_version);
        out.put_u16_le(self.current_zigbee_stack_version);
    }

    /// Payload bytes: always 18.
    pub fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}
