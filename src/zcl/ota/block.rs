//! Image Block Request (0x03), Image Page Request (0x04) and Image Block Response (0x05): the
//! block protocol of ZCL8 §11.13.6–8.

use nom::Parser;
use nom::combinator::cond;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use std::fmt;
use thiserror::Error;

use super::{
    DecodeError, Ieee, MINIMUM_BLOCK_PERIOD_PRESENT, REQUEST_NODE_ADDRESS_PRESENT, Violation,
    ZclStatus, ieee, parse_payload, serialize_hex, strict, with_presence_bit,
};
use crate::wire::PutLe;
use crate::wire::fields::{bytes, u8, u16, u32};
use crate::wire::hex_spaced;

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
        let fields = parse_payload(payload, |input| {
            let (input, field_control) = u8("field_control")(input)?;
            let (input, fixed) = (
                u16("manufacturer_code"),
                u16("image_type"),
                u32("file_version"),
                u32("file_offset"),
                u8("maximum_data_size"),
            )
                .parse_complete(input)?;
            let (input, request_node_address) = cond(
                field_control & REQUEST_NODE_ADDRESS_PRESENT != 0,
                ieee("request_node_address"),
            )
            .parse_complete(input)?;
            let period_announced = field_control & MINIMUM_BLOCK_PERIOD_PRESENT != 0;
            let (input, minimum_block_period) = cond(
                period_announced && !input.is_empty(),
                u16("minimum_block_period"),
            )
            .parse_complete(input)?;
            Ok((
                input,
                (
                    field_control,
                    fixed,
                    request_node_address,
                    minimum_block_period,
                ),
            ))
        })?;
        let (field_control, fixed, request_node_address, minimum_block_period) = fields;
        let (manufacturer_code, image_type, file_version, file_offset, maximum_data_size) = fixed;
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
        let fc = with_presence_bit(
            self.field_control,
            REQUEST_NODE_ADDRESS_PRESENT,
            self.request_node_address.is_some(),
        );
        // Bit 1 stays as received when the period is absent: it may announce an omitted one.
        if self.minimum_block_period.is_some() {
            fc | MINIMUM_BLOCK_PERIOD_PRESENT
        } else {
            fc
        }
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
        let fields = parse_payload(payload, |input| {
            let (input, field_control) = u8("field_control")(input)?;
            let (input, fixed) = (
                u16("manufacturer_code"),
                u16("image_type"),
                u32("file_version"),
                u32("file_offset"),
                u8("maximum_data_size"),
                u16("page_size"),
                u16("response_spacing"),
            )
                .parse_complete(input)?;
            let (input, request_node_address) = cond(
                field_control & REQUEST_NODE_ADDRESS_PRESENT != 0,
                ieee("request_node_address"),
            )
            .parse_complete(input)?;
            Ok((input, (field_control, fixed, request_node_address)))
        })?;
        let (field_control, fixed, request_node_address) = fields;
        let (
            manufacturer_code,
            image_type,
            file_version,
            file_offset,
            maximum_data_size,
            page_size,
            response_spacing,
        ) = fixed;
        Ok(ImagePageRequest {
            field_control,
            manufacturer_code,
            image_type,
            file_version,
            file_offset,
            maximum_data_size,
            page_size,
            response_spacing,
            request_node_address,
        })
    }

    /// The field control byte written on the air.
    pub fn encoded_field_control(&self) -> u8 {
        with_presence_bit(
            self.field_control,
            REQUEST_NODE_ADDRESS_PRESENT,
            self.request_node_address.is_some(),
        )
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
        strict(Self::parse(payload)?)
    }

    /// Decodes the payload, reporting a status other than SUCCESS, WAIT_FOR_DATA or ABORT
    /// (the three ZCL8 allows here; zigpy sends MALFORMED_COMMAND, for instance).
    pub fn parse(payload: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
        let status = ZclStatus(parse_payload(payload, u8("status"))?);
        let body = payload.get(1..).unwrap_or_default();
        let response = match status {
            ZclStatus::SUCCESS => {
                let fields = parse_payload(body, |input| {
                    let (input, fixed) = (
                        u16("manufacturer_code"),
                        u16("image_type"),
                        u32("file_version"),
                        u32("file_offset"),
                    )
                        .parse_complete(input)?;
                    let (input, data_size) = u8("data_size")(input)?;
                    let (input, data) = bytes("data", usize::from(data_size))(input)?;
                    Ok((input, (fixed, data)))
                })
                .map_err(|e| e.offset_by(1))?;
                let ((manufacturer_code, image_type, file_version, file_offset), data) = fields;
                Self::Success {
                    manufacturer_code,
                    image_type,
                    file_version,
                    file_offset,
                    data: BlockData(data.to_vec()),
                }
            }
            ZclStatus::WAIT_FOR_DATA => {
                let fields = parse_payload(body, |input| {
                    let (input, times) =
                        (u32("current_time"), u32("request_time")).parse_complete(input)?;
                    let (input, period) = cond(!input.is_empty(), u16("minimum_block_period"))
                        .parse_complete(input)?;
                    Ok((input, (times, period)))
                })
                .map_err(|e| e.offset_by(1))?;
                let ((current_time, request_time), minimum_block_period) = fields;
                Self::WaitForData {
                    current_time,
                    request_time,
                    minimum_block_period,
                }
            }
            ZclStatus::ABORT => Self::Abort,
            status => Self::OtherStatus { status },
        };
        let mut violations = Vec::new();
        if let Self::OtherStatus { status } = response {
            violations.push(Violation {
                field: "status",
                offset: 0,
                value: status.0.into(),
                allowed: "SUCCESS, WAIT_FOR_DATA or ABORT",
                refused: false,
            });
        }
        Ok((response, violations))
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

impl Serialize for ImageBlockResponse {
    /// The status as `{value, name}`, then the fields its layout carries.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.status();
        match self {
            Self::Success {
                manufacturer_code,
                image_type,
                file_version,
                file_offset,
                data,
            } => {
                let mut out = serializer.serialize_struct("ImageBlockResponse", 7)?;
                out.serialize_field("status", &status)?;
                out.serialize_field("manufacturer_code", manufacturer_code)?;
                out.serialize_field("image_type", image_type)?;
                out.serialize_field("file_version", file_version)?;
                out.serialize_field("file_offset", file_offset)?;
                out.serialize_field("data_size", &data.data_size())?;
                out.serialize_field("data", data)?;
                out.end()
            }
            Self::WaitForData {
                current_time,
                request_time,
                minimum_block_period,
            } => {
                let mut out = serializer.serialize_struct("ImageBlockResponse", 4)?;
                out.serialize_field("status", &status)?;
                out.serialize_field("current_time", current_time)?;
                out.serialize_field("request_time", request_time)?;
                out.serialize_field("minimum_block_period", minimum_block_period)?;
                out.end()
            }
            Self::Abort | Self::OtherStatus { .. } => {
                let mut out = serializer.serialize_struct("ImageBlockResponse", 1)?;
                out.serialize_field("status", &status)?;
                out.end()
            }
        }
    }
}
