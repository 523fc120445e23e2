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
use thiserror::Error;

use super::{
    CommandId, DecodeError, DefaultResponse, Direction, FrameType, GeneralCommandId, Ieee,
    ZclHeader, ZclStatus, default_response,
};
use crate::wire::fields::{self, Parsed, Short};
use crate::wire::hex_spaced;
use crate::wire::wire_enum;

mod block;
mod end;
mod notify;
mod query;

pub use block::{BlockData, BlockTooLong, ImageBlockRequest, ImageBlockResponse, ImagePageRequest};
pub use end::{UpgradeEndRequest, UpgradeEndResponse};
pub use notify::ImageNotify;
pub use query::{
    QueryDeviceSpecificFileRequest, QueryDeviceSpecificFileResponse, QueryNextImageRequest,
    QueryNextImageResponse,
};

/// The OTA Upgrade cluster id.
pub const CLUSTER_ID: u16 = crate::zigbee::CLUSTER_OTA_UPGRADE;

wire_enum! {
    /// OTA Upgrade cluster command ids (ZCL8 chapter 11, OTA Upgrade cluster commands). Ids 0x00, 0x02, 0x05,
    /// 0x07 and 0x09 are sent by the server, the others by the client.
    OtaCommandId(u8), names_first {
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

/// `field_control` as written on the air: `bit` set when its optional field is `present`,
/// cleared when it is not; every other bit kept.
fn with_presence_bit(field_control: u8, bit: u8, present: bool) -> u8 {
    if present {
        field_control | bit
    } else {
        field_control & !bit
    }
}

/// An IEEE address field.
fn ieee<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> Parsed<'a, Ieee> {
    move |input| {
        let (rest, value) = fields::u64(field)(input)?;
        Ok((rest, Ieee(value)))
    }
}

/// Runs a command's field parser over its payload: a field that runs short is
/// MALFORMED_COMMAND, with the field's name and offset.
fn parse_payload<'a, T>(
    payload: &'a [u8],
    parser: impl nom::Parser<&'a [u8], Output = T, Error = Short<'a>>,
) -> Result<T, DecodeError> {
    Ok(fields::finish(payload, parser)?.0)
}

/// A value the wire carried that the spec does not allow there. Decoding keeps it (a troubleshooter
/// wants to see it), and [`OtaFrame::inspect`] lists it; the strict decoders the server uses
/// refuse the frame when `refused` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The spec's name of the field.
    pub field: &'static str,
    /// Byte offset of the field (from the start of the payload, or of the frame once
    /// [`OtaFrame::inspect`] returns it).
    pub offset: usize,
    /// The value found.
    pub value: u32,
    /// What the spec allows.
    pub allowed: &'static str,
    /// True when the OTA server refuses a request carrying it (answering INVALID_VALUE); false
    /// when it is only reported.
    pub refused: bool,
}

impl Violation {
    /// The error a strict decoder returns for this violation.
    fn to_error(&self) -> DecodeError {
        DecodeError::InvalidValue {
            field: self.field,
            offset: self.offset,
            value: self.value,
            reason: self.allowed,
        }
    }
}

/// Turns a lenient parse into a strict one: the first violation the server refuses is an error.
fn strict<T>((value, violations): (T, Vec<Violation>)) -> Result<T, DecodeError> {
    match violations.iter().find(|v| v.refused) {
        Some(violation) => Err(violation.to_error()),
        None => Ok(value),
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
        strict(Self::parse(header, payload)?)
    }

    /// Decodes like [`decode`](Self::decode), but keeps values outside the spec's ranges and
    /// lists them (offsets from the start of `payload`).
    pub fn parse(
        header: &ZclHeader,
        payload: &[u8],
    ) -> Result<(Self, Vec<Violation>), DecodeError> {
        let unknown = || OtaCommand::Unknown {
            command_id: header.command_id,
            payload: payload.to_vec(),
        };
        let clean = |command| (command, Vec::new());
        let id = header.command_id.0;
        let standard = header.manufacturer_code.is_none();
        Ok(match (header.frame_type, header.direction) {
            (FrameType::GLOBAL, _) if id == GeneralCommandId::DEFAULT_RESPONSE.0 => clean(
                OtaCommand::DefaultResponse(DefaultResponse::decode(payload)?),
            ),
            (FrameType::CLUSTER_SPECIFIC, Direction::CLIENT_TO_SERVER) if standard => {
                match OtaCommandId(id) {
                    OtaCommandId::QUERY_NEXT_IMAGE_REQUEST => clean(
                        OtaCommand::QueryNextImageRequest(QueryNextImageRequest::decode(payload)?),
                    ),
                    OtaCommandId::IMAGE_BLOCK_REQUEST => clean(OtaCommand::ImageBlockRequest(
                        ImageBlockRequest::decode(payload)?,
                    )),
                    OtaCommandId::IMAGE_PAGE_REQUEST => clean(OtaCommand::ImagePageRequest(
                        ImagePageRequest::decode(payload)?,
                    )),
                    OtaCommandId::UPGRADE_END_REQUEST => {
                        let (request, violations) = UpgradeEndRequest::parse(payload)?;
                        (OtaCommand::UpgradeEndRequest(request), violations)
                    }
                    OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_REQUEST => {
                        let (request, violations) = QueryDeviceSpecificFileRequest::parse(payload)?;
                        (
                            OtaCommand::QueryDeviceSpecificFileRequest(request),
                            violations,
                        )
                    }
                    _ => clean(unknown()),
                }
            }
            (FrameType::CLUSTER_SPECIFIC, Direction::SERVER_TO_CLIENT) if standard => {
                match OtaCommandId(id) {
                    OtaCommandId::IMAGE_NOTIFY => {
                        let (notify, violations) = ImageNotify::parse(payload)?;
                        (OtaCommand::ImageNotify(notify), violations)
                    }
                    OtaCommandId::QUERY_NEXT_IMAGE_RESPONSE => {
                        let (response, violations) = QueryNextImageResponse::parse(payload)?;
                        (OtaCommand::QueryNextImageResponse(response), violations)
                    }
                    OtaCommandId::IMAGE_BLOCK_RESPONSE => {
                        let (response, violations) = ImageBlockResponse::parse(payload)?;
                        (OtaCommand::ImageBlockResponse(response), violations)
                    }
                    OtaCommandId::UPGRADE_END_RESPONSE => clean(OtaCommand::UpgradeEndResponse(
                        UpgradeEndResponse::decode(payload)?,
                    )),
                    OtaCommandId::QUERY_DEVICE_SPECIFIC_FILE_RESPONSE => {
                        let (response, violations) =
                            QueryDeviceSpecificFileResponse::parse(payload)?;
                        (
                            OtaCommand::QueryDeviceSpecificFileResponse(response),
                            violations,
                        )
                    }
                    _ => clean(unknown()),
                }
            }
            _ => clean(unknown()),
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
        strict(Self::parse_payload(header, payload)?)
    }

    fn parse_payload(
        header: ZclHeader,
        payload: &[u8],
    ) -> Result<(Self, Vec<Violation>), DecodeError> {
        let base = header.encoded_len();
        let (command, mut violations) =
            OtaCommand::parse(&header, payload).map_err(|e| e.offset_by(base))?;
        for violation in &mut violations {
            violation.offset += base;
        }
        let trailing = payload
            .get(command.encoded_len()..)
            .unwrap_or_default()
            .to_vec();
        let frame = OtaFrame {
            header,
            command,
            trailing,
        };
        Ok((frame, violations))
    }

    /// Decodes a frame for troubleshooting: values the spec does not allow (an Upgrade End
    /// status of 0x98, a device-specific file type outside 0xFFC0–0xFFFE, ...) are kept and
    /// listed as [`Violation`]s with offsets from the start of the frame, instead of failing
    /// the decode. Only a frame that cannot be read at all is an error.
    ///
    /// ```
    /// use zigbee_otad::zcl::ota::{OtaCommand, OtaFrame};
    /// // Upgrade End Request with status NO_IMAGE_AVAILABLE (0x98), which the spec does not allow.
    /// let bytes = [0x01, 0x10, 0x06, 0x98, 0x89, 0x11, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00];
    /// assert!(OtaFrame::decode(&bytes).is_err());
    /// let (frame, violations) = OtaFrame::inspect(&bytes).unwrap();
    /// assert!(matches!(frame.command, OtaCommand::UpgradeEndRequest(_)));
    /// assert_eq!((violations[0].field, violations[0].offset, violations[0].value), ("status", 3, 0x98));
    /// ```
    pub fn inspect(bytes: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
        let (header, payload) = ZclHeader::decode(bytes)?;
        Self::parse_payload(header, payload)
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
