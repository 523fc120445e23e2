//! EZSP, the EmberZNet Serial Protocol (Silicon Labs UG100; SiSDK EZSP reference for v14+):
//! the frames an ASH DATA frame carries between the host and a Silicon Labs NCP.
//!
//! - [`frame`]: the frame header in its three formats (legacy v4, v5–7, extended v8+), the
//!   frame-control bits and [`frame::FrameId`].
//! - [`command`]: the commands, responses and callbacks an OTA server needs, for protocol
//!   versions 8–17 (EmberZNet 6.10 to 8.2; the frames we use keep one layout from v8 to v13
//!   — see docs/EZSP-VERSIONS.md — and the layouts split at v14: `sl_status_t`, u16 message tags, the new
//!   `sendBroadcast` and `incomingMessageHandler` layouts), in both roles (host and NCP).
//! - [`types`]: EmberApsFrame, EUI-64, network parameters, the configuration/value/policy ids.
//! - [`status`]: EmberStatus, EzspStatus, `sl_status_t` and the unified [`status::Status`].
//! - [`session`]: the sans-IO host side: sequence numbers, pending commands, callbacks,
//!   version negotiation and per-command timeouts.
//!
//! ```
//! use zigbee_otad::ezsp::{EzspVersion, command::{Command, Frame, Body}};
//! let v13 = EzspVersion::new(13).unwrap();
//! let mut out = Vec::new();
//! Command::NetworkState.encode_frame(v13, 2, &mut out).unwrap();
//! assert_eq!(out, [0x02, 0x00, 0x01, 0x18, 0x00]);
//! let frame = Frame::decode(v13, &out).unwrap();
//! assert_eq!(frame.body, Body::Command(Command::NetworkState));
//! ```

pub mod command;
pub mod frame;
mod macros;
mod params;
pub mod session;
pub mod status;
pub mod types;

use std::fmt;

use crate::wire::Truncated;

pub use session::{Event, Session, SessionConfig, SessionError};

/// A negotiated EZSP protocol version this crate can speak: 8 through 17.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EzspVersion(u8);

impl EzspVersion {
    /// Oldest supported version (EmberZNet 6.10, the first with the extended frame header).
    pub const MIN: u8 = 8;
    /// Newest supported version (EmberZNet 8.2 / SiSDK 2025.6).
    pub const MAX: u8 = 17;
    /// Version 8.
    pub const V8: Self = Self(8);
    /// Version 12 (EmberZNet 7.3), the last before the Security Manager-only key frames.
    pub const V12: Self = Self(12);
    /// Version 13.
    pub const V13: Self = Self(13);
    /// Version 14, the first with `sl_status_t` statuses.
    pub const V14: Self = Self(14);
    /// Version 16.
    pub const V16: Self = Self(16);
    /// Version 17.
    pub const V17: Self = Self(17);

    /// Accepts 8..=17 and refuses any other version.
    pub fn new(version: u8) -> Result<Self, UnsupportedVersion> {
        if (Self::MIN..=Self::MAX).contains(&version) {
            Ok(Self(version))
        } else {
            Err(UnsupportedVersion { version })
        }
    }

    /// The protocol version number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// True from v14: statuses are four-byte `sl_status_t`, message tags are u16.
    pub fn uses_sl_status(self) -> bool {
        self.0 >= 14
    }
}

impl fmt::Display for EzspVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The NCP speaks an EZSP version outside 8..=17.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error(
    "EZSP protocol version {version} is not supported (this host speaks versions {min} to {max})",
    min = EzspVersion::MIN,
    max = EzspVersion::MAX
)]
pub struct UnsupportedVersion {
    /// The version the NCP reported.
    pub version: u8,
}

/// Why bytes from the other side are not a valid EZSP frame.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended inside a field.
    #[error("{context}: {source}")]
    Truncated {
        /// The frame part or command being decoded.
        context: &'static str,
        /// The field, its offset in the frame and the bytes missing.
        source: Truncated,
    },
    /// Bytes were left after the last field.
    #[error("{context}: {count} unexpected trailing bytes at offset {offset}")]
    TrailingBytes {
        /// The command being decoded.
        context: &'static str,
        /// Offset in the frame of the first extra byte.
        offset: usize,
        /// How many extra bytes.
        count: usize,
    },
    /// A field holds a value its type cannot take.
    #[error("{context}: {field} at offset {offset} is {value:#x}: {reason}")]
    InvalidField {
        /// The frame part or command being decoded.
        context: &'static str,
        /// The field.
        field: &'static str,
        /// Offset of the field in the frame.
        offset: usize,
        /// The value found.
        value: u64,
        /// What was expected.
        reason: &'static str,
    },
}

/// Why a value cannot be encoded in the requested layout.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The field has no representation in this version's (or header format's) layout.
    #[error("{context}: {field} = {value:#x} cannot be encoded for EZSP v{version}: {reason}")]
    NotRepresentable {
        /// The command or frame part being encoded.
        context: &'static str,
        /// The field.
        field: &'static str,
        /// The value that does not fit.
        value: u64,
        /// The protocol version of the layout.
        version: u8,
        /// Why not.
        reason: &'static str,
    },
    /// A length-prefixed field is longer than its u8 length can say.
    #[error("{context}: {field} is {len} bytes; a u8 length prefix allows at most 255")]
    TooLong {
        /// The command being encoded.
        context: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}
