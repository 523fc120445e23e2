//! Human-readable rendering of ZCL OTA frames for logs and `zigbee-otad decode zcl`: codes in
//! hex, with the names of known statuses, commands and manufacturers.
//!
//! ```
//! use zigbee_otad::zcl::ota::OtaFrame;
//! let frame = OtaFrame::decode(&[0x19, 0x3B, 0x00, 0x00, 0x64]).unwrap();
//! assert_eq!(
//!     frame.to_string(),
//!     "cluster-specific server->client tsn=59 ddr=1 IMAGE_NOTIFY(0x00): payload_type=0 query_jitter=100"
//! );
//! ```

use std::fmt;

use super::ota::{
    ImageBlockRequest, ImageBlockResponse, ImageNotify, ImagePageRequest, OtaCommand, OtaCommandId,
    OtaFrame, QueryDeviceSpecificFileRequest, QueryDeviceSpecificFileResponse,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndRequest, UpgradeEndResponse,
};
use super::{DefaultResponse, Direction, FrameType, GeneralCommandId, ZclHeader};
use crate::wire::hex_spaced;
use crate::zigbee::ManufacturerCode;

/// The name of a manufacturer code, when it is one of the common OTA vendors (the one table in
/// [`crate::zigbee::ManufacturerCode`]).
pub fn manufacturer_name(code: u16) -> Option<&'static str> {
    crate::zigbee::ManufacturerCode(code).name()
}

/// Writes ` field=value` only when the value is present.
fn optional<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    field: &str,
    value: Option<T>,
) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {field}={value}"),
        None => Ok(()),
    }
}

/// Writes the fields that name an image.
fn image(
    f: &mut fmt::Formatter<'_>,
    manufacturer: u16,
    image_type: u16,
    version: u32,
) -> fmt::Result {
    write!(
        f,
        "manufacturer={} image_type=0x{image_type:04X} file_version=0x{version:08X}",
        ManufacturerCode(manufacturer)
    )
}

impl fmt::Display for ZclHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frame_type {
            FrameType::GLOBAL => f.write_str("global")?,
            FrameType::CLUSTER_SPECIFIC => f.write_str("cluster-specific")?,
            other => write!(f, "reserved-frame-type-{}", other.0)?,
        }
        if self.direction == Direction::SERVER_TO_CLIENT {
            f.write_str(" server->client")?;
        } else {
            f.write_str(" client->server")?;
        }
        if let Some(code) = self.manufacturer_code {
            write!(f, " manufacturer-specific={}", ManufacturerCode(code))?;
        }
        write!(
            f,
            " tsn={} ddr={}",
            self.tsn,
            u8::from(self.disable_default_response)
        )?;
        if self.reserved_bits != 0 {
            write!(f, " reserved_bits=0b{:03b}", self.reserved_bits)?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageNotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload_type={} query_jitter={}",
            self.payload_type(),
            self.query_jitter
        )?;
        optional(
            f,
            "manufacturer",
            self.manufacturer_code.map(ManufacturerCode),
        )?;
        optional(
            f,
            "image_type",
            self.image_type.map(|t| format!("0x{t:04X}")),
        )?;
        optional(
            f,
            "new_file_version",
            self.new_file_version.map(|v| format!("0x{v:08X}")),
        )
    }
}

impl fmt::Display for QueryNextImageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field_control=0x{:02X} ", self.field_control)?;
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.current_file_version,
        )?;
        optional(
            f,
            "hardware_version",
            self.hardware_version.map(|v| format!("0x{v:04X}")),
        )
    }
}

macro_rules! display_query_response {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Success {
                        manufacturer_code,
                        image_type,
                        file_version,
                        image_size,
                    } => {
                        write!(f, "status={} ", self.status())?;
                        image(f, *manufacturer_code, *image_type, *file_version)?;
                        write!(f, " image_size={image_size}")
                    }
                    Self::OtherStatus { status } => write!(f, "status={status}"),
                }
            }
        }
    };
}
display_query_response!(QueryNextImageResponse);
display_query_response!(QueryDeviceSpecificFileResponse);

impl fmt::Display for ImageBlockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field_control=0x{:02X} ", self.field_control)?;
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.file_version,
        )?;
        write!(
            f,
            " file_offset={} maximum_data_size={}",
            self.file_offset, self.maximum_data_size
        )?;
        optional(f, "request_node_address", self.request_node_address)?;
        optional(f, "minimum_block_period", self.minimum_block_period)?;
        if self.minimum_block_period_omitted() {
            f.write_str(" (minimum_block_period announced but omitted)")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImagePageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field_control=0x{:02X} ", self.field_control)?;
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.file_version,
        )?;
        write!(
            f,
            " file_offset={} maximum_data_size={} page_size={} response_spacing={}ms",
            self.file_offset, self.maximum_data_size, self.page_size, self.response_spacing
        )?;
        optional(f, "request_node_address", self.request_node_address)
    }
}

impl fmt::Display for ImageBlockResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status={}", self.status())?;
        match self {
            Self::Success {
                manufacturer_code,
                image_type,
                file_version,
                file_offset,
                data,
            } => {
                f.write_str(" ")?;
                image(f, *manufacturer_code, *image_type, *file_version)?;
                write!(
                    f,
                    " file_offset={file_offset} data_size={} data=[{}]",
                    data.len(),
                    hex_spaced(data)
                )
            }
            Self::WaitForData {
                current_time,
                request_time,
                minimum_block_period,
            } => {
                write!(
                    f,
                    " current_time={current_time} request_time={request_time}"
                )?;
                optional(f, "minimum_block_period", *minimum_block_period)
            }
            Self::Abort | Self::OtherStatus { .. } => Ok(()),
        }
    }
}

impl fmt::Display for UpgradeEndRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status={} ", self.status)?;
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.file_version,
        )
    }
}

impl fmt::Display for UpgradeEndResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.file_version,
        )?;
        write!(
            f,
            " current_time={} upgrade_time={}",
            self.current_time, self.upgrade_time
        )?;
        if self.upgrade_time == u32::MAX {
            f.write_str(" (wait for a later Upgrade End Response)")?;
        }
        Ok(())
    }
}

impl fmt::Display for QueryDeviceSpecificFileRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request_node_address={} ", self.request_node_address)?;
        image(
            f,
            self.manufacturer_code,
            self.image_type,
            self.file_version,
        )?;
        write!(
            f,
            " current_zigbee_stack_version=0x{:04X}",
            self.current_zigbee_stack_version
        )
    }
}

impl fmt::Display for DefaultResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command_id=0x{:02X} status={}",
            self.command_id.0, self.status
        )
    }
}

impl fmt::Display for OtaCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.command_id().0;
        match self {
            OtaCommand::DefaultResponse(c) => {
                write!(f, "{:?}: {c}", GeneralCommandId(id))
            }
            OtaCommand::Unknown { payload, .. } => {
                write!(f, "command 0x{id:02X}: payload=[{}]", hex_spaced(payload))
            }
            OtaCommand::ImageNotify(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::QueryNextImageRequest(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::QueryNextImageResponse(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::ImageBlockRequest(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::ImagePageRequest(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::ImageBlockResponse(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::UpgradeEndRequest(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::UpgradeEndResponse(c) => write!(f, "{:?}: {c}", OtaCommandId(id)),
            OtaCommand::QueryDeviceSpecificFileRequest(c) => {
                write!(f, "{:?}: {c}", OtaCommandId(id))
            }
            OtaCommand::QueryDeviceSpecificFileResponse(c) => {
                write!(f, "{:?}: {c}", OtaCommandId(id))
            }
        }
    }
}

impl fmt::Display for OtaFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.header, self.command)?;
        if !self.trailing.is_empty() {
            write!(f, " trailing=[{}]", hex_spaced(&self.trailing))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manufacturer_names_come_from_the_one_table() {
        assert_eq!(manufacturer_name(0x117C), Some("IKEA"));
        assert_eq!(manufacturer_name(0x0001), None);
    }

    #[test]
    fn block_request_reads_at_a_glance() {
        let frame = OtaFrame::decode(&[
            0x01, 0x08, 0x03, 0x00, 0x7C, 0x11, 0x04, 0x42, 0x23, 0x96, 0x02, 0x20, 0x50, 0x00,
            0x00, 0x00, 0x3F,
        ])
        .unwrap();
        assert_eq!(
            frame.to_string(),
            "cluster-specific client->server tsn=8 ddr=0 IMAGE_BLOCK_REQUEST(0x03): \
             field_control=0x00 manufacturer=0x117C (IKEA) image_type=0x4204 \
             file_version=0x20029623 file_offset=80 maximum_data_size=63"
        );
    }

    #[test]
    fn default_response_and_unknown_commands_read_at_a_glance() {
        let frame = OtaFrame::decode(&[0x18, 0x05, 0x0B, 0x05, 0x95, 0xAA]).unwrap();
        assert_eq!(
            frame.to_string(),
            "global server->client tsn=5 ddr=1 DEFAULT_RESPONSE(0x0B): command_id=0x05 \
             status=ABORT (0x95) trailing=[AA]"
        );
        let frame = OtaFrame::decode(&[0x05, 0x7C, 0x11, 0x01, 0x01, 0x02]).unwrap();
        assert_eq!(
            frame.to_string(),
            "cluster-specific client->server manufacturer-specific=0x117C (IKEA) tsn=1 ddr=0 \
             command 0x01: payload=[02]"
        );
    }
}
