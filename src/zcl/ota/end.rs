//! Upgrade End Request and Response (0x06, 0x07; ZCL8 §11.13.9): the end of a download, and when
//! to switch to the new image.

use serde::Serialize;

use super::{DecodeError, Violation, ZclStatus, parse_payload, strict};
use crate::wire::PutLe;
use crate::wire::fields::{u8, u16, u32};

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
        strict(Self::parse(payload)?)
    }

    /// Decodes the payload, keeping a status other than the four allowed as a refused
    /// [`Violation`].
    pub fn parse(payload: &[u8]) -> Result<(Self, Vec<Violation>), DecodeError> {
        let fields = parse_payload(
            payload,
            (
                u8("status"),
                u16("manufacturer_code"),
                u16("image_type"),
                u32("file_version"),
            ),
        )?;
        let (status, manufacturer_code, image_type, file_version) = fields;
        let status = ZclStatus(status);
        let mut violations = Vec::new();
        if !Self::ALLOWED_STATUSES.contains(&status) {
            violations.push(Violation {
                field: "status",
                offset: 0,
                value: status.0.into(),
                allowed: "SUCCESS, INVALID_IMAGE, REQUIRE_MORE_IMAGE or ABORT",
                refused: true,
            });
        }
        let request = UpgradeEndRequest {
            status,
            manufacturer_code,
            image_type,
            file_version,
        };
        Ok((request, violations))
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
        let fields = parse_payload(
            payload,
            (
                u16("manufacturer_code"),
                u16("image_type"),
                u32("file_version"),
                u32("current_time"),
                u32("upgrade_time"),
            ),
        )?;
        let (manufacturer_code, image_type, file_version, current_time, upgrade_time) = fields;
        Ok(UpgradeEndResponse {
            manufacturer_code,
            image_type,
            file_version,
            current_time,
            upgrade_time,
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
