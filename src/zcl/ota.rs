//! OTA Upgrade cluster 0x0019 commands (ZCL8 chapter 11, the OTA Upgrade cluster's command
//! frames; PROTOCOLS.md §8): every command 0x00–0x09 in both directions with its optional
//! fields, and [`OtaFrame`], a whole ZCL frame of this cluster.
//!
//! Each command has `decode(payload)`, `encode(&self, &mut Vec<u8>)` and `encoded_len()`;
//! payloads are little-endian. Decoders ignore bytes after the last known field (see the
//! module docs of [`crate::zcl`]); [`OtaFrame`] keeps them so frames re-encode exactly.
//!
//! ```
//! use zigbee_otad::zcl::ota::{OtaCommand, OtaFrame, QueryNextImageResponse};
//!
//! // A device asks for a new image (Legrand, captured in a zigpy log) ...
//! let request = OtaFrame::decode_request(&[
//!     0x01, 0x87, 0x01, 0x00, 0x21, 0x10, 0x11, 0x00, 0xFF, 0x43, 0x53, 0x00,
//! ]).unwrap();
//! let OtaCommand::QueryNextImageRequest(query) = &request.command else { panic!() };
//! assert_eq!((query.manufacturer_code, query.image_type), (0x1021, 0x0011));
//!
//! // ... and the server answers that it has none, with the request's TSN.
//! let answer = request.reply(OtaCommand::QueryNextImageResponse(
//!     QueryNextImageResponse::NO_IMAGE_AVAILABLE,
//! ));
//! let mut bytes = Vec::new();
//! answer.encode(&mut bytes);
//! assert_eq!(bytes, [0x19, 0x87, 0x02, 0x98]);
//! assert_eq!(OtaFrame::decode(&bytes).unwrap(), answer);
//! ```

use serde::{Serialize, Serializer};
use std::fmt;
use thiserror::Error;

use super::{
    CommandId, DecodeError, DefaultResponse, Direction, FrameType, GeneralCommandId, Ieee,
    ZclHeader, ZclStatus, default_response, wire_enum,
};
use crate::wire::{PutLe, Reader, hex_spaced};

/// The OTA Upgrade cluster id.
pub const CLUSTER_ID: u16 = 0x0019;

wire_enum! {
    /// OTA Upgrade cluster command ids (ZCL8 chapter 11, OTA Upgrade cluster commands). Ids 0x00, 0x02, 0x05,
    /// 0x07 and 0x09 are sent by the server, the others by the client.
    OtaCommandId {
        /// Image Notify (server to client).
        IMAGE_NOTIFY = 0x00,
        /// Query Next Image Request (client to server).
        QUERY_NEXT_IMAGE_REQUEST = 0x01,
        /// Query Next Image Response (server to client).
        QUERY_NEXT_IMAGE_RESPONSE = 0x02,
        /// Image Block Request (client to server).
        IMAGE_BLOCK_REQUEST = 0x03,
        /// Image Page Request (client to server).
        IMAGE_PAGE_REQUEST = 0x04,
        /// Image Block Response (server to client).
        IMAGE_BLOCK_RESPONSE = 0x05,
        /// Upgrade End Request (client to server).
        UPGRADE_END_REQUEST = 0x06,
        /// Upgrade End Response (server to client).
        UPGRADE_END_RESPONSE = 0x07,
        /// Query Device Specific File Request (client to server).
        QUERY_DEVICE_SPECIFIC_FILE_REQUEST = 0x08,
        /// Query Device Specific File Response (server to client).
        QUERY_DEVICE_SPECIFIC_FILE_RESPONSE = 0x09,
    }
}

impl From<OtaCommandId> for CommandId {
    fn from(value: OtaCommandId) -> Self {
        CommandId(value.0)
    }
}

/// Serialises byte strings as spaced uppercase hex in the JSON report.
fn serialize_hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex_spaced(bytes))
}

/// Field-control bit 0 of the Query Next Image Request: hardware version present.
const HARDWARE_VERSION_PRESENT: u8 = 0b01;
/// Field-control bit 0 of the Image Block and Image Page Requests: requester's IEEE present.
const REQUEST_NODE_ADDRESS_PRESENT: u8 = 0b01;
/// Field-control bit 1 of the Image Block Request: minimum block period present.
const MINIMUM_BLOCK_PERIOD_PRESENT: u8 = 0b10;

fn read_ieee(reader: &mut Reader<'_>, field: &'static str) -> Result<Ieee, DecodeError> {
    Ok(Ieee(reader.u64(field)?))
}

// ---------------------------------------------------------------------------------------------
// 0x00 Image Notify

/// Image Notify (0x00, server to client): asks clients to query for a new image.
///
/// The payload type (0–3) is not stored: it is the number of the optional fields present,
/// which must be filled in order (`manufacturer_code`, then `image_type`, then
/// `new_file_version`); [`encode`](Self::encode) stops at the first `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        let mut reader = Reader::new(payload);
        let payload_type = reader.u8("payload_type")?;
        if payload_type > 3 {
            return Err(DecodeError::InvalidValue {
                field: "payload_type",
                offset: 0,
                value: payload_type.into(),
                reason: "payload types 0-3 are defined",
            });
        }
        let query_jitter = reader.u8("query_jitter")?;
        let manufacturer_code = if payload_type >= 1 {
            Some(reader.u16("manufacturer_code")?)
        } else {
            None
        };
        let image_type = if payload_type >= 2 {
            Some(reader.u16("image_type")?)
        } else {
            None
        };
        let new_file_version = if payload_type >= 3 {
            Some(reader.u32("new_file_version")?)
        } else {
            None
        };
        Ok(ImageNotify {
            query_jitter,
            manufacturer_code,
            image_type,
            new_file_version,
        })
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

// ---------------------------------------------------------------------------------------------
// 0x01 Query Next Image Request

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
        let mut reader = Reader::new(payload);
        let field_control = reader.u8("field_control")?;
        let manufacturer_code = reader.u16("manufacturer_code")?;
        let image_type = reader.u16("image_type")?;
        let current_file_version = reader.u32("current_file_version")?;
        let hardware_version = if field_control & HARDWARE_VERSION_PRESENT != 0 {
            Some(reader.u16("hardware_version")?)
        } else {
            None
        };
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
        let presence = if self.hardware_version.is_some() {
            HARDWARE_VERSION_PRESENT
        } else {
            0
        };
        (self.field_control & !HARDWARE_VERSION_PRESENT) | presence
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

fn decode_query_response(payload: &[u8]) -> Result<Result<OfferedImage, ZclStatus>, DecodeError> {
    let mut reader = Reader::new(payload);
    let status = ZclStatus(reader.u8("status")?);
    if !status.is_success() {
        return Ok(Err(status));
    }
    Ok(Ok((
        reader.u16("manufacturer_code")?,
        reader.u16("image_type")?,
        reader.u32("file_version")?,
        reader.u32("image_size")?,
    )))
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
                Ok(match decode_query_response(payload)? {
                    Ok((manufacturer_code, image_type, file_version, image_size)) => {
                        Self::Success {
                            manufacturer_code,
                            image_type,
                            file_version,
                            image_size,
                        }
                    }
                    Err(status) => Self::OtherStatus { status },
                })
            }

            /// Appends the payload.
            pub fn encode(&self, out: &mut Vec<u8>) {
                let offer = match *self {
                    Self::Success {
                        manufacturer_code,
                        image_type,
                        file_version,
                        image_size,
                    } => Ok((manufacturer_code, image_type, file_version, image_size)),
                    Self::OtherStatus { status } => Err(status),
                };
                encode_query_response(offer, out);
            }

            /// Payload bytes: 13 for SUCCESS, else 1.
            pub fn encoded_len(&self) -> usize {
                match self {
                    Self::Success { .. } => 13,
                    Self::OtherStatus { .. } => 1,
                }
            }
        }
    };
}
query_response_codec!(QueryNextImageResponse);
query_response_codec!(QueryDeviceSpecificFileResponse);

// ---------------------------------------------------------------------------------------------
// 0x03 Image Block Request

/// Image Block Request (0x03, client to server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageBlockRequest {
    /// The field control byte as received. On encode, bit 0 follows `request_node_address`,
    /// bit 1 is set when `minimum_block_period` is present and otherwise kept as received (see
    /// [`minimum_block_period_omitted`](Self::minimum_block_period_omitted)); reserved bits
    /// are kept.
    pub field_control: u8,
    /// Manufacturer code of the image.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version of the image being downloaded.
    pub file_version: u32,
    /// Offset of the requested block in the OTA file.
    pub file_offset: u32,
    /// The most data bytes the client accepts in the response.
    pub maximum_data_size: u8,
    /// The requester's IEEE address, when field-control bit 0 is set.
    pub request_node_address: Option<Ieee>,
    /// The client's minimum block period (milliseconds in older specs, seconds in newer
    /// ones), when field-control bit 1 is set and the two bytes are there.
    pub minimum_block_period: Option<u16>,
}

impl ImageBlockRequest {
    /// Payload bytes without optional fields.
    pub const MIN_LEN: usize = 14;

    /// True when field-control bit 1 announces a minimum block period that the frame omits:
    /// a known device bug (zigbee-herdsman tolerates it too, Z2M #28217), accepted here.
    pub fn minimum_block_period_omitted(&self) -> bool {
        self.field_control & MINIMUM_BLOCK_PERIOD_PRESENT != 0
            && self.minimum_block_period.is_none()
    }

    /// Decodes the payload. A truncated fixed field or IEEE address is MALFORMED_COMMAND; an
    /// announced minimum block period with no bytes left is accepted as absent, with one byte
    /// left it is MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        let field_control = reader.u8("field_control")?;
        let manufacturer_code = reader.u16("manufacturer_code")?;
        let image_type = reader.u16("image_type")?;
        let file_version = reader.u32("file_version")?;
        let file_offset = reader.u32("file_offset")?;
        let maximum_data_size = reader.u8("maximum_data_size")?;
        let request_node_address = if field_control & REQUEST_NODE_ADDRESS_PRESENT != 0 {
            Some(read_ieee(&mut reader, "request_node_address")?)
        } else {
            None
        };
        let minimum_block_period =
            if field_control & MINIMUM_BLOCK_PERIOD_PRESENT != 0 && !reader.is_empty() {
                Some(reader.u16("minimum_block_period")?)
            } else {
                None
            };
        Ok(ImageBlockRequest {
            field_control,
            manufacturer_code,
            image_type,
            file_version,
            file_offset,
            maximum_data_size,
            request_node_address,
            minimum_block_period,
        })
    }

    /// The field control byte written on the air.
    pub fn encoded_field_control(&self) -> u8 {
        let mut fc = self.field_control & !REQUEST_NODE_ADDRESS_PRESENT;
        if self.request_node_address.is_some() {
            fc |= REQUEST_NODE_ADDRESS_PRESENT;
        }
        if self.minimum_block_period.is_some() {
            fc |= MINIMUM_BLOCK_PERIOD_PRESENT;
        }
        fc
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.encoded_field_control());
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.file_version);
        out.put_u32_le(self.file_offset);
        out.put_u8_le(self.maximum_data_size);
        if let Some(ieee) = self.request_node_address {
            out.put_u64_le(ieee.0);
        }
        if let Some(period) = self.minimum_block_period {
            out.put_u16_le(period);
        }
    }

    /// Payload bytes: 14, plus 8 for the IEEE address, plus 2 for the minimum block period.
    pub fn encoded_len(&self) -> usize {
        Self::MIN_LEN
            + if self.request_node_address.is_some() {
                Ieee::ENCODED_LEN
            } else {
                0
            }
            + if self.minimum_block_period.is_some() {
                2
            } else {
                0
            }
    }
}

// ---------------------------------------------------------------------------------------------
// 0x04 Image Page Request

/// Image Page Request (0x04, client to server): asks for `page_size` bytes sent
/// as unsolicited Image Block Responses `response_spacing` milliseconds apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePageRequest {
    /// The field control byte as received; bit 0 follows `request_node_address` on encode,
    /// reserved bits are kept.
    pub field_control: u8,
    /// Manufacturer code of the image.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version of the image being downloaded.
    pub file_version: u32,
    /// Offset of the page in the OTA file.
    pub file_offset: u32,
    /// The most data bytes per Image Block Response.
    pub maximum_data_size: u8,
    /// Bytes in the page.
    pub page_size: u16,
    /// Milliseconds between the Image Block Responses of the page.
    pub response_spacing: u16,
    /// The requester's IEEE address, when field-control bit 0 is set.
    pub request_node_address: Option<Ieee>,
}

impl ImagePageRequest {
    /// Payload bytes without the IEEE address.
    pub const MIN_LEN: usize = 18;

    /// Decodes the payload; any truncated field is MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        let field_control = reader.u8("field_control")?;
        Ok(ImagePageRequest {
            field_control,
            manufacturer_code: reader.u16("manufacturer_code")?,
            image_type: reader.u16("image_type")?,
            file_version: reader.u32("file_version")?,
            file_offset: reader.u32("file_offset")?,
            maximum_data_size: reader.u8("maximum_data_size")?,
            page_size: reader.u16("page_size")?,
            response_spacing: reader.u16("response_spacing")?,
            request_node_address: if field_control & REQUEST_NODE_ADDRESS_PRESENT != 0 {
                Some(read_ieee(&mut reader, "request_node_address")?)
            } else {
                None
            },
        })
    }

    /// The field control byte written on the air.
    pub fn encoded_field_control(&self) -> u8 {
        let presence = if self.request_node_address.is_some() {
            REQUEST_NODE_ADDRESS_PRESENT
        } else {
            0
        };
        (self.field_control & !REQUEST_NODE_ADDRESS_PRESENT) | presence
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.encoded_field_control());
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.file_version);
        out.put_u32_le(self.file_offset);
        out.put_u8_le(self.maximum_data_size);
        out.put_u16_le(self.page_size);
        out.put_u16_le(self.response_spacing);
        if let Some(ieee) = self.request_node_address {
            out.put_u64_le(ieee.0);
        }
    }

    /// Payload bytes: 18, or 26 with the IEEE address.
    pub fn encoded_len(&self) -> usize {
        Self::MIN_LEN
            + if self.request_node_address.is_some() {
                Ieee::ENCODED_LEN
            } else {
                0
            }
    }
}

// ---------------------------------------------------------------------------------------------
// 0x05 Image Block Response

/// The data of an Image Block Response: at most 255 bytes, since its length travels in one
/// byte.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BlockData(Vec<u8>);

/// More than 255 bytes were given as block data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("block data of {0} bytes does not fit the one-byte data size field (max 255)")]
pub struct BlockTooLong(pub usize);

impl BlockData {
    /// The most bytes a block can carry.
    pub const MAX_LEN: usize = 255;

    /// Copies `data` into a block, refusing more than 255 bytes.
    pub fn new(data: &[u8]) -> Result<Self, BlockTooLong> {
        Self::try_from(data.to_vec())
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The length as written in the data size field.
    pub fn data_size(&self) -> u8 {
        u8::try_from(self.0.len()).unwrap_or(u8::MAX)
    }
}

impl TryFrom<Vec<u8>> for BlockData {
    type Error = BlockTooLong;

    fn try_from(data: Vec<u8>) -> Result<Self, BlockTooLong> {
        if data.len() > Self::MAX_LEN {
            Err(BlockTooLong(data.len()))
        } else {
            Ok(BlockData(data))
        }
    }
}

impl std::ops::Deref for BlockData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for BlockData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BlockData({} bytes: {})",
            self.0.len(),
            hex_spaced(&self.0)
        )
    }
}

impl Serialize for BlockData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_hex(&self.0, serializer)
    }
}

/// Image Block Response (0x05, server to client). Its layout depends on the
/// status, so it is an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ImageBlockResponse {
    /// SUCCESS: a block of the image.
    Success {
        /// Manufacturer code of the image.
        manufacturer_code: u16,
        /// Image type.
        image_type: u16,
        /// File version of the image.
        file_version: u32,
        /// Offset of `data` in the OTA file.
        file_offset: u32,
        /// The block (data size byte, then the bytes).
        data: BlockData,
    },
    /// WAIT_FOR_DATA: the client should ask again later.
    WaitForData {
        /// The server's UTC time (seconds since 2000-01-01), or 0 to make `request_time`
        /// relative.
        current_time: u32,
        /// When the client should ask again (UTC, or seconds from now if `current_time` is 0).
        request_time: u32,
        /// Optional: the minimum block period the client should use from now on.
        minimum_block_period: Option<u16>,
    },
    /// ABORT: the client should stop the download.
    Abort,
    /// Any other status (zigpy sends MALFORMED_COMMAND, for instance): status only. Do not
    /// build this with SUCCESS, WAIT_FOR_DATA or ABORT, which have their own variants.
    OtherStatus {
        /// The status.
        status: ZclStatus,
    },
}

impl ImageBlockResponse {
    /// Bytes of a SUCCESS response before the data.
    pub const SUCCESS_HEADER_LEN: usize = 14;

    /// The status byte.
    pub fn status(&self) -> ZclStatus {
        match self {
            Self::Success { .. } => ZclStatus::SUCCESS,
            Self::WaitForData { .. } => ZclStatus::WAIT_FOR_DATA,
            Self::Abort => ZclStatus::ABORT,
            Self::OtherStatus { status } => *status,
        }
    }

    /// Decodes the payload. A SUCCESS whose data is shorter than its data size field, or a
    /// WAIT_FOR_DATA with one byte of minimum block period, is MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        let status = ZclStatus(reader.u8("status")?);
        Ok(match status {
            ZclStatus::SUCCESS => {
                let manufacturer_code = reader.u16("manufacturer_code")?;
                let image_type = reader.u16("image_type")?;
                let file_version = reader.u32("file_version")?;
                let file_offset = reader.u32("file_offset")?;
                let data_size = reader.u8("data_size")?;
                let data = reader.take("data", usize::from(data_size))?;
                Self::Success {
                    manufacturer_code,
                    image_type,
                    file_version,
                    file_offset,
                    data: BlockData(data.to_vec()),
                }
            }
            ZclStatus::WAIT_FOR_DATA => Self::WaitForData {
                current_time: reader.u32("current_time")?,
                request_time: reader.u32("request_time")?,
                minimum_block_period: if reader.is_empty() {
                    None
                } else {
                    Some(reader.u16("minimum_block_period")?)
                },
            },
            ZclStatus::ABORT => Self::Abort,
            status => Self::OtherStatus { status },
        })
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.status().0);
        match self {
            Self::Success {
                manufacturer_code,
                image_type,
                file_version,
                file_offset,
                data,
            } => {
                out.put_u16_le(*manufacturer_code);
                out.put_u16_le(*image_type);
                out.put_u32_le(*file_version);
                out.put_u32_le(*file_offset);
                out.put_u8_le(data.data_size());
                out.extend_from_slice(data.as_slice());
            }
            Self::WaitForData {
                current_time,
                request_time,
                minimum_block_period,
            } => {
                out.put_u32_le(*current_time);
                out.put_u32_le(*request_time);
                if let Some(period) = minimum_block_period {
                    out.put_u16_le(*period);
                }
            }
            Self::Abort | Self::OtherStatus { .. } => {}
        }
    }

    /// Payload bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Success { data, .. } => Self::SUCCESS_HEADER_LEN + data.len(),
            Self::WaitForData {
                minimum_block_period,
                ..
            } => 9 + if minimum_block_period.is_some() { 2 } else { 0 },
            Self::Abort | Self::OtherStatus { .. } => 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 0x06 Upgrade End Request, 0x07 Upgrade End Response

/// Upgrade End Request (0x06, client to server): the client finished (or gave
/// up) downloading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeEndRequest {
    /// SUCCESS, INVALID_IMAGE, REQUIRE_MORE_IMAGE or ABORT.
    pub status: ZclStatus,
    /// Manufacturer code of the image.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version of the image.
    pub file_version: u32,
}

impl UpgradeEndRequest {
    /// Payload bytes.
    pub const ENCODED_LEN: usize = 9;

    /// The statuses ZCL8 allows in this command.
    pub const ALLOWED_STATUSES: [ZclStatus; 4] = [
        ZclStatus::SUCCESS,
        ZclStatus::INVALID_IMAGE,
        ZclStatus::REQUIRE_MORE_IMAGE,
        ZclStatus::ABORT,
    ];

    /// Decodes the payload. A status other than the four allowed is INVALID_VALUE; a
    /// truncated field is MALFORMED_COMMAND.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        let status = ZclStatus(reader.u8("status")?);
        if !Self::ALLOWED_STATUSES.contains(&status) {
            return Err(DecodeError::InvalidValue {
                field: "status",
                offset: 0,
                value: status.0.into(),
                reason: "SUCCESS, INVALID_IMAGE, REQUIRE_MORE_IMAGE or ABORT",
            });
        }
        Ok(UpgradeEndRequest {
            status,
            manufacturer_code: reader.u16("manufacturer_code")?,
            image_type: reader.u16("image_type")?,
            file_version: reader.u32("file_version")?,
        })
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.status.0);
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.file_version);
    }

    /// Payload bytes: always 9.
    pub fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

/// Upgrade End Response (0x07, server to client): when to switch to the new
/// image. It has no status byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeEndResponse {
    /// Manufacturer code of the image.
    pub manufacturer_code: u16,
    /// Image type.
    pub image_type: u16,
    /// File version of the image.
    pub file_version: u32,
    /// The server's UTC time (seconds since 2000-01-01), or 0 to make `upgrade_time` relative.
    pub current_time: u32,
    /// When to upgrade (UTC, or seconds from now if `current_time` is 0); 0xFFFFFFFF means
    /// wait for a later Upgrade End Response.
    pub upgrade_time: u32,
}

impl UpgradeEndResponse {
    /// Payload bytes.
    pub const ENCODED_LEN: usize = 16;

    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        Ok(UpgradeEndResponse {
            manufacturer_code: reader.u16("manufacturer_code")?,
            image_type: reader.u16("image_type")?,
            file_version: reader.u32("file_version")?,
            current_time: reader.u32("current_time")?,
            upgrade_time: reader.u32("upgrade_time")?,
        })
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16_le(self.manufacturer_code);
        out.put_u16_le(self.image_type);
        out.put_u32_le(self.file_version);
        out.put_u32_le(self.current_time);
        out.put_u32_le(self.upgrade_time);
    }

    /// Payload bytes: always 16.
    pub fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

// ---------------------------------------------------------------------------------------------
// 0x08 Query Device Specific File Request

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
        let mut reader = Reader::new(payload);
        let request_node_address = read_ieee(&mut reader, "request_node_address")?;
        let manufacturer_code = reader.u16("manufacturer_code")?;
        let image_type_offset = reader.position();
        let image_type = reader.u16("image_type")?;
        let file_version = reader.u32("file_version")?;
        let current_zigbee_stack_version = reader.u16("current_zigbee_stack_version")?;
        if !Self::DEVICE_SPECIFIC_IMAGE_TYPES.contains(&image_type) {
            return Err(DecodeError::InvalidValue {
                field: "image_type",
                offset: image_type_offset,
                value: image_type.into(),
                reason: "device-specific file types are 0xFFC0-0xFFFE",
            });
        }
        Ok(QueryDeviceSpecificFileRequest {
            request_node_address,
            manufacturer_code,
            image_type,
            file_version,
            current_zigbee_stack_version,
        })
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

// ---------------------------------------------------------------------------------------------
// Whole frames

/// The command of an OTA-cluster frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum OtaCommand {
    /// 0x00, server to client.
    ImageNotify(ImageNotify),
    /// 0x01, client to server.
    QueryNextImageRequest(QueryNextImageRequest),
    /// 0x02, server to client.
    QueryNextImageResponse(QueryNextImageResponse),
    /// 0x03, client to server.
    ImageBlockRequest(ImageBlockRequest),
    /// 0x04, client to server.
    ImagePageRequest(ImagePageRequest),
    /// 0x05, server to client.
    ImageBlockResponse(ImageBlockResponse),
    /// 0x06, client to server.
    UpgradeEndRequest(UpgradeEndRequest),
    /// 0x07, server to client.
    UpgradeEndResponse(UpgradeEndResponse),
    /// 0x08, client to server.
    QueryDeviceSpecificFileRequest(QueryDeviceSpecificFileRequest),
    /// 0x09, server to client.
    QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse),
    /// Global command 0x0B.
    DefaultResponse(DefaultResponse),
    /// Anything else: another global command, an id this cluster does not define for the
    /// frame's direction, a manufacturer-specific cluster command, or a reserved frame type.
    Unknown {
        /// The command id from the header.
        command_id: CommandId,
        /// The whole payload.
        #[serde(serialize_with = "serialize_hex")]
        payload: Vec<u8>,
    },
}

impl OtaCommand {
    /// Decodes `payload` as the command `header` names. Which command an id means depends on
    /// the frame type and direction; manufacturer-specific cluster commands and ids this
    /// cluster does not define decode as [`OtaCommand::Unknown`]. A Default Response decodes
    /// with or without a manufacturer code (it carries the code of the manufacturer-specific
    /// command it answers). Trailing bytes are ignored (compare
    /// `encoded_len()` with the payload length to find them).
    pub fn decode(header: &ZclHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        let unknown = || OtaCommand::Unknown {
            command_id: header.command_id,
            payload: payload.to_vec(),
        };
        let id = header.command_id.0;
        let standard = header.manufacturer_code.is_none();
        Ok(match (header.frame_type, header.direction) {
            (FrameType::GLOBAL, _) if id == GeneralCommandId::DEFAULT_RESPONSE.0 => {
                OtaCommand::DefaultResponse(DefaultResponse::decode(payload)?)
            }
            (FrameType::CLUSTER_SPECIFIC, Direction::CLIENT_TO_SERVER) if standard => {
                match OtaCommandId(id) {
                    OtaCommandId::QUERY_NEXT_IMAGE_REQUEST => {
                        OtaCommand::QueryNextImageRequest(QueryNextImageRequest::decode(payload)?)
                    }
                    OtaCommandId::IMAGE_BLOCK_REQUEST => {
                        OtaCommand::ImageBlockRequest(ImageBlockRequest::decode(payload)?)
                    }
                    OtaCommandId::IMAGE_PAGE_REQUEST => {
                        OtaCommand::ImagePageRequest(ImagePageRequest::decode(payload)?)
                    }
                    OtaCommandId::UPGRADE_END_REQUEST => {
                        OtaCommand::UpgradeEndRequest(UpgradeEndRequest::decode(payload)?)
                    }
                    OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_REQUEST => {
                        OtaCommand::QueryDeviceSpecificFileRequest(
                            QueryDeviceSpecificFileRequest::decode(payload)?,
                        )
                    }
                    _ => unknown(),
                }
            }
            (FrameType::CLUSTER_SPECIFIC, Direction::SERVER_TO_CLIENT) if standard => {
                match OtaCommandId(id) {
                    OtaCommandId::IMAGE_NOTIFY => {
                        OtaCommand::ImageNotify(ImageNotify::decode(payload)?)
                    }
                    OtaCommandId::QUERY_NEXT_IMAGE_RESPONSE => {
                        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::decode(payload)?)
                    }
                    OtaCommandId::IMAGE_BLOCK_RESPONSE => {
                        OtaCommand::ImageBlockResponse(ImageBlockResponse::decode(payload)?)
                    }
                    OtaCommandId::UPGRADE_END_RESPONSE => {
                        OtaCommand::UpgradeEndResponse(UpgradeEndResponse::decode(payload)?)
                    }
                    OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_RESPONSE => {
                        OtaCommand::QueryDeviceSpecificFileResponse(
                            QueryDeviceSpecificFileResponse::decode(payload)?,
                        )
                    }
                    _ => unknown(),
                }
            }
            _ => unknown(),
        })
    }

    /// The command id this command is sent with.
    pub fn command_id(&self) -> CommandId {
        let ota = |id: OtaCommandId| CommandId::from(id);
        match self {
            OtaCommand::ImageNotify(_) => ota(OtaCommandId::IMAGE_NOTIFY),
            OtaCommand::QueryNextImageRequest(_) => ota(OtaCommandId::QUERY_NEXT_IMAGE_REQUEST),
            OtaCommand::QueryNextImageResponse(_) => ota(OtaCommandId::QUERY_NEXT_IMAGE_RESPONSE),
            OtaCommand::ImageBlockRequest(_) => ota(OtaCommandId::IMAGE_BLOCK_REQUEST),
            OtaCommand::ImagePageRequest(_) => ota(OtaCommandId::IMAGE_PAGE_REQUEST),
            OtaCommand::ImageBlockResponse(_) => ota(OtaCommandId::IMAGE_BLOCK_RESPONSE),
            OtaCommand::UpgradeEndRequest(_) => ota(OtaCommandId::UPGRADE_END_REQUEST),
            OtaCommand::UpgradeEndResponse(_) => ota(OtaCommandId::UPGRADE_END_RESPONSE),
            OtaCommand::QueryDeviceSpecificFileRequest(_) => {
                ota(OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_REQUEST)
            }
            OtaCommand::QueryDeviceSpecificFileResponse(_) => {
                ota(OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_RESPONSE)
            }
            OtaCommand::DefaultResponse(_) => GeneralCommandId::DEFAULT_RESPONSE.into(),
            OtaCommand::Unknown { command_id, .. } => *command_id,
        }
    }

    /// True for the five commands a client sends to the OTA server.
    pub fn is_client_request(&self) -> bool {
        matches!(
            self,
            OtaCommand::QueryNextImageRequest(_)
                | OtaCommand::ImageBlockRequest(_)
                | OtaCommand::ImagePageRequest(_)
                | OtaCommand::UpgradeEndRequest(_)
                | OtaCommand::QueryDeviceSpecificFileRequest(_)
        )
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OtaCommand::ImageNotify(c) => c.encode(out),
            OtaCommand::QueryNextImageRequest(c) => c.encode(out),
            OtaCommand::QueryNextImageResponse(c) => c.encode(out),
            OtaCommand::ImageBlockRequest(c) => c.encode(out),
            OtaCommand::ImagePageRequest(c) => c.encode(out),
            OtaCommand::ImageBlockResponse(c) => c.encode(out),
            OtaCommand::UpgradeEndRequest(c) => c.encode(out),
            OtaCommand::UpgradeEndResponse(c) => c.encode(out),
            OtaCommand::QueryDeviceSpecificFileRequest(c) => c.encode(out),
            OtaCommand::QueryDeviceSpecificFileResponse(c) => c.encode(out),
            OtaCommand::DefaultResponse(c) => c.encode(out),
            OtaCommand::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// Payload bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            OtaCommand::ImageNotify(c) => c.encoded_len(),
            OtaCommand::QueryNextImageRequest(c) => c.encoded_len(),
            OtaCommand::QueryNextImageResponse(c) => c.encoded_len(),
            OtaCommand::ImageBlockRequest(c) => c.encoded_len(),
            OtaCommand::ImagePageRequest(c) => c.encoded_len(),
            OtaCommand::ImageBlockResponse(c) => c.encoded_len(),
            OtaCommand::UpgradeEndRequest(c) => c.encoded_len(),
            OtaCommand::UpgradeEndResponse(c) => c.encoded_len(),
            OtaCommand::QueryDeviceSpecificFileRequest(c) => c.encoded_len(),
            OtaCommand::QueryDeviceSpecificFileResponse(c) => c.encoded_len(),
            OtaCommand::DefaultResponse(c) => c.encoded_len(),
            OtaCommand::Unknown { payload, .. } => payload.len(),
        }
    }
}

/// A whole ZCL frame of the OTA Upgrade cluster: header, command and any trailing bytes.
/// `decode` followed by `encode` gives back the input byte-for-byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtaFrame {
    /// The ZCL header.
    pub header: ZclHeader,
    /// The command, chosen by frame type, direction and command id.
    pub command: OtaCommand,
    /// Bytes after the command's last known field (a newer spec revision's additions, or a
    /// device's padding). Empty in frames this crate builds. A WAIT_FOR_DATA Image Block
    /// Response without a minimum block period cannot carry any: its optional field is
    /// recognised by position, so they would be read back as that field.
    #[serde(serialize_with = "serialize_hex")]
    pub trailing: Vec<u8>,
}

impl OtaFrame {
    /// A frame with `header`'s command id set from `command`, and no trailing bytes.
    pub fn new(header: ZclHeader, command: OtaCommand) -> Self {
        OtaFrame {
            header: ZclHeader {
                command_id: command.command_id(),
                ..header
            },
            command,
            trailing: Vec::new(),
        }
    }

    /// The reply to this frame carrying `command`: same TSN, direction flipped, Default
    /// Response disabled (see [`ZclHeader::reply`]), frame type from the command.
    pub fn reply(&self, command: OtaCommand) -> Self {
        let frame_type = if matches!(command, OtaCommand::DefaultResponse(_)) {
            FrameType::GLOBAL
        } else {
            FrameType::CLUSTER_SPECIFIC
        };
        let header = self.header.reply(frame_type, command.command_id());
        OtaFrame::new(header, command)
    }

    /// Decodes a frame. Errors carry offsets from the start of the frame.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (header, payload) = ZclHeader::decode(bytes)?;
        Self::decode_payload(header, payload)
    }

    fn decode_payload(header: ZclHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        let command =
            OtaCommand::decode(&header, payload).map_err(|e| e.offset_by(header.encoded_len()))?;
        let trailing = payload
            .get(command.encoded_len()..)
            .unwrap_or_default()
            .to_vec();
        Ok(OtaFrame {
            header,
            command,
            trailing,
        })
    }

    /// Decodes a frame received by the OTA server and checks that it is something the server
    /// handles: one of the five client requests, or a Default Response. Anything else is
    /// [`DecodeError::UnsupportedCommand`] (answered with UNSUP_COMMAND). The error keeps the
    /// header when it could be decoded, so the server can answer with
    /// [`RequestError::default_response`].
    pub fn decode_request(bytes: &[u8]) -> Result<Self, RequestError> {
        let (header, payload) = ZclHeader::decode(bytes).map_err(|error| RequestError {
            header: None,
            error,
        })?;
        let with_header = |error| RequestError {
            header: Some(header),
            error,
        };
        let frame = Self::decode_payload(header, payload).map_err(with_header)?;
        if frame.command.is_client_request()
            || matches!(frame.command, OtaCommand::DefaultResponse(_))
        {
            Ok(frame)
        } else {
            Err(with_header(DecodeError::UnsupportedCommand {
                frame_type: header.frame_type,
                direction: header.direction,
                command_id: header.command_id,
                manufacturer_specific: header.manufacturer_code.is_some(),
            }))
        }
    }

    /// Appends the frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        self.command.encode(out);
        out.extend_from_slice(&self.trailing);
    }

    /// Bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        self.header.encoded_len() + self.command.encoded_len() + self.trailing.len()
    }
}

/// A frame the OTA server could not accept, with the header when it was readable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{error}")]
pub struct RequestError {
    /// The header, when the frame had a complete one.
    pub header: Option<ZclHeader>,
    /// What was wrong.
    pub error: DecodeError,
}

impl RequestError {
    /// The status to answer with.
    pub fn status(&self) -> ZclStatus {
        ZclStatus::from(&self.error)
    }

    /// The Default Response frame the server owes the sender, or `None` when there is none
    /// to send (no readable header, or the frame was itself a Default Response).
    pub fn default_response(&self) -> Option<OtaFrame> {
        let (header, response) = default_response(self.header.as_ref()?, self.status())?;
        Some(OtaFrame::new(header, OtaCommand::DefaultResponse(response)))
    }
}

#[cfg(test)]
mod tests;
