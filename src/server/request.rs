//! The server's view of the OTA commands (ZCL8 §11.13): requests reduced to what the decisions
//! need, and the messages the server sends. The `zcl` module owns the wire formats; `frame`
//! converts between the two, so sessions and policy never see field-control bits or bytes.

use bytes::Bytes;

use super::image::ImageKey;
use super::{Ieee, ZclStatus};
use crate::zcl::CommandId;

/// The request's ZCL header (a reply reuses its TSN and manufacturer code).
pub(crate) type RequestHeader = crate::zcl::ZclHeader;

/// A decoded client → server OTA request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    QueryNextImage {
        manufacturer_code: u16,
        image_type: u16,
        current_file_version: u32,
        hardware_version: Option<u16>,
    },
    ImageBlock {
        file: ImageKey,
        offset: u32,
        maximum_data_size: u8,
        minimum_block_period: Option<u16>,
    },
    ImagePage {
        file: ImageKey,
        offset: u32,
        maximum_data_size: u8,
        page_size: u16,
        response_spacing_ms: u16,
    },
    UpgradeEnd {
        status: ZclStatus,
        file: ImageKey,
    },
    QueryDeviceSpecificFile {
        requester: Ieee,
        manufacturer_code: u16,
        image_type: u16,
        current_file_version: u32,
    },
}

/// An Image Block Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockReply {
    Data {
        file: ImageKey,
        offset: u32,
        data: Bytes,
    },
    WaitForData {
        /// Seconds (relative: current_time is 0).
        request_time: u32,
        minimum_block_period: Option<u16>,
    },
    /// ABORT, MALFORMED_COMMAND, ...: the status byte alone.
    Status(ZclStatus),
}

/// A server → client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Query Next Image Response: SUCCESS with the image, or a status alone.
    QueryNextImageResponse(Result<(ImageKey, u32), ZclStatus>),
    ImageBlockResponse(BlockReply),
    UpgradeEndResponse {
        file: ImageKey,
        /// Seconds, relative (current_time is 0); 0xFFFFFFFF: wait for a command.
        upgrade_time: u32,
    },
    QueryDeviceSpecificFileResponse(Result<(ImageKey, u32), ZclStatus>),
    DefaultResponse {
        command_id: CommandId,
        status: ZclStatus,
    },
    ImageNotify {
        query_jitter: u8,
    },
}

/// Whose TSN a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// An answer to this request.
    Request(RequestHeader),
    /// A command sent on the server's own initiative, with a TSN of its own.
    Unsolicited { tsn: u8 },
}
