//! Between the wire and the server (ZCL8 §2.4 frames, §2.5.12 Default Response, §11.13 OTA
//! commands): decodes a received frame with the `zcl` module into a [`Request`], or into the
//! Default Response it earns; encodes the server's [`Message`]s with the `zcl` encoders.

use bytes::Bytes;

use super::request::{BlockReply, Message, ReplyTo, Request, RequestHeader};
use super::{ImageKey, ZclStatus};
use crate::zcl::ota::{
    BlockData, ImageBlockResponse, ImageNotify, OtaCommand, OtaFrame,
    QueryDeviceSpecificFileResponse, QueryNextImageResponse, UpgradeEndResponse,
};
use crate::zcl::{DefaultResponse, FrameType, ZclHeader};

/// What a received frame asks of the server.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A request to handle.
    Request(RequestHeader, Request),
    /// A request refused with a Default Response of this status (MALFORMED_COMMAND,
    /// UNSUP_COMMAND, ...).
    Reply(RequestHeader, ZclStatus),
    /// Nothing to do (a Default Response from the device, an unreadable header).
    Ignore(&'static str),
}

/// Decodes a frame received by the server.
pub(crate) fn decode_request(bytes: &[u8]) -> Decoded {
    let frame = match OtaFrame::decode_request(bytes) {
        Ok(frame) => frame,
        Err(error) => {
            return match error.header {
                Some(header) if !header.is_default_response() => {
                    Decoded::Reply(header, error.status())
                }
                Some(_) => Decoded::Ignore("malformed Default Response"),
                None => Decoded::Ignore("no readable ZCL header"),
            };
        }
    };
    let header = frame.header;
    let request = match frame.command {
        OtaCommand::QueryNextImageRequest(q) => Request::QueryNextImage {
            manufacturer_code: q.manufacturer_code,
            image_type: q.image_type,
            current_file_version: q.current_file_version,
            hardware_version: q.hardware_version,
        },
        OtaCommand::ImageBlockRequest(b) => Request::ImageBlock {
            file: ImageKey {
                manufacturer_code: b.manufacturer_code,
                image_type: b.image_type,
                file_version: b.file_version,
            },
            offset: b.file_offset,
            maximum_data_size: b.maximum_data_size,
            minimum_block_period: b.minimum_block_period,
        },
        OtaCommand::ImagePageRequest(p) => Request::ImagePage {
            file: ImageKey {
                manufacturer_code: p.manufacturer_code,
                image_type: p.image_type,
                file_version: p.file_version,
            },
            offset: p.file_offset,
            maximum_data_size: p.maximum_data_size,
            page_size: p.page_size,
            response_spacing_ms: p.response_spacing,
        },
        OtaCommand::UpgradeEndRequest(u) => Request::UpgradeEnd {
            status: u.status,
            file: ImageKey {
                manufacturer_code: u.manufacturer_code,
                image_type: u.image_type,
                file_version: u.file_version,
            },
        },
        OtaCommand::QueryDeviceSpecificFileRequest(q) => Request::QueryDeviceSpecificFile {
            requester: q.request_node_address,
            manufacturer_code: q.manufacturer_code,
            image_type: q.image_type,
            current_file_version: q.file_version,
        },
        OtaCommand::DefaultResponse(_) => return Decoded::Ignore("Default Response from device"),
        _ => return Decoded::Reply(header, ZclStatus::UNSUP_COMMAND),
    };
    Decoded::Request(header, request)
}

fn offer(result: Result<(ImageKey, u32), ZclStatus>) -> Result<(ImageKey, u32), ZclStatus> {
    // SUCCESS cannot travel without the image; never build the status-only form with it.
    match result {
        Err(ZclStatus::SUCCESS) => Err(ZclStatus::FAILURE),
        other => other,
    }
}

/// The `zcl` command for a message.
fn command(message: &Message) -> OtaCommand {
    match message {
        Message::QueryNextImageResponse(result) => {
            OtaCommand::QueryNextImageResponse(match offer(*result) {
                Ok((key, image_size)) => QueryNextImageResponse::Success {
                    manufacturer_code: key.manufacturer_code,
                    image_type: key.image_type,
                    file_version: key.file_version,
                    image_size,
                },
                Err(status) => QueryNextImageResponse::OtherStatus { status },
            })
        }
        Message::QueryDeviceSpecificFileResponse(result) => {
            OtaCommand::QueryDeviceSpecificFileResponse(match offer(*result) {
                Ok((key, image_size)) => QueryDeviceSpecificFileResponse::Success {
                    manufacturer_code: key.manufacturer_code,
                    image_type: key.image_type,
                    file_version: key.file_version,
                    image_size,
                },
                Err(status) => QueryDeviceSpecificFileResponse::OtherStatus { status },
            })
        }
        Message::ImageBlockResponse(reply) => OtaCommand::ImageBlockResponse(match reply {
            BlockReply::Data { file, offset, data } => ImageBlockResponse::Success {
                manufacturer_code: file.manufacturer_code,
                image_type: file.image_type,
                file_version: file.file_version,
                file_offset: *offset,
                // Blocks are cut to at most `u8::MAX` bytes by the block-size decision.
                data: BlockData::new(data).unwrap_or_default(),
            },
            BlockReply::WaitForData {
                request_time,
                minimum_block_period,
            } => ImageBlockResponse::WaitForData {
                current_time: 0,
                request_time: *request_time,
                minimum_block_period: *minimum_block_period,
            },
            BlockReply::Status(ZclStatus::ABORT) => ImageBlockResponse::Abort,
            BlockReply::Status(status) => ImageBlockResponse::OtherStatus { status: *status },
        }),
        Message::UpgradeEndResponse { file, upgrade_time } => {
            OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
                manufacturer_code: file.manufacturer_code,
                image_type: file.image_type,
                file_version: file.file_version,
                current_time: 0,
                upgrade_time: *upgrade_time,
            })
        }
        Message::DefaultResponse { command_id, status } => {
            OtaCommand::DefaultResponse(DefaultResponse {
                command_id: *command_id,
                status: *status,
            })
        }
        Message::ImageNotify { query_jitter } => OtaCommand::ImageNotify(ImageNotify {
            query_jitter: *query_jitter,
            manufacturer_code: None,
            image_type: None,
            new_file_version: None,
        }),
    }
}

/// Encodes a message as a whole ZCL frame: a reply reuses the request's TSN (and manufacturer
/// code); a command of our own gets a server-to-client header with its own TSN.
pub(crate) fn encode_message(reply_to: &ReplyTo, message: &Message) -> Bytes {
    let command = command(message);
    let frame = match reply_to {
        ReplyTo::Request(request) => {
            let frame_type = if matches!(command, OtaCommand::DefaultResponse(_)) {
                FrameType::GLOBAL
            } else {
                FrameType::CLUSTER_SPECIFIC
            };
            OtaFrame::new(request.reply(frame_type, command.command_id()), command)
        }
        ReplyTo::Unsolicited { tsn } => OtaFrame::new(
            ZclHeader::server_command(*tsn, command.command_id()),
            command,
        ),
    };
    let mut out = Vec::with_capacity(frame.encoded_len());
    frame.encode(&mut out);
    Bytes::from(out)
}
