//! The byte layouts of [`Message`](super::command::Message) (PROTOCOLS.md §3; field order
//! and widths as in zigpy-znp's `commands/*.py`). [`super::command`] declares every command once, in the `znp_messages!`
//! table and the `mt_struct!` structures: its frame type, subsystem, id, name and fields, each
//! field with its wire name and, where the width alone does not say it, its kind. From that one
//! declaration come the enum, `Message::header`, the payload encoder and the decoder, so a
//! layout is written once and read and written the same way.
//!
//! A field is read and written by its type ([`Field`]: the integers, byte arrays and
//! [`AddrModeAddress`]) or, after `as`, by one of the kinds here: [`bytes8`], [`bytes16`],
//! [`rest`], [`clusters`] and [`u16_list`]. `SYS.Version`'s answer, whose last fields old
//! firmware leaves out, is laid out by hand.

use super::command::{AddrModeAddress, SysVersion};
use crate::wire::{PutLe, Reader, Truncated};

/// A field read and written by its type alone.
pub(super) trait Field: Sized {
    /// Reads the field named `field`.
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, Truncated>;
    /// Appends the field.
    fn write(&self, out: &mut Vec<u8>);
}

/// [`Field`] for a little-endian integer: the [`Reader`] accessor and the [`PutLe`] writer.
macro_rules! integer_field {
    ($($t:ty => $read:ident, $put:ident;)*) => {
        $(
            impl Field for $t {
                fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, Truncated> {
                    r.$read(field)
                }
                fn write(&self, out: &mut Vec<u8>) {
                    out.$put(*self);
                }
            }
        )*
    };
}

integer_field! {
    u8 => u8, put_u8_le;
    u16 => u16, put_u16_le;
    u32 => u32, put_u32_le;
    u64 => u64, put_u64_le;
}

impl<const N: usize> Field for [u8; N] {
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, Truncated> {
        r.array(field)
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

/// One mode byte, then eight address bytes.
impl Field for AddrModeAddress {
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, Truncated> {
        Ok(AddrModeAddress {
            mode: r.u8(field)?,
            address: r.u64(field)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.mode);
        out.put_u64_le(self.address);
    }
}

/// A kind for bytes after a length of type `$len` (cut at `$len::MAX` bytes when written).
macro_rules! length_prefixed {
    ($(#[$meta:meta])* $kind:ident: $len:ty) => {
        $(#[$meta])*
        pub(super) mod $kind {
            use super::{Field, Reader, Truncated};

            pub(in crate::znp) fn read(
                r: &mut Reader<'_>,
                field: &'static str,
            ) -> Result<Vec<u8>, Truncated> {
                let len = <$len as Field>::read(r, field)?;
                Ok(r.take(field, usize::from(len))?.to_vec())
            }

            pub(in crate::znp) fn write(bytes: &[u8], out: &mut Vec<u8>) {
                let len = <$len>::try_from(bytes.len()).unwrap_or(<$len>::MAX);
                len.write(out);
                out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
            }
        }
    };
}

length_prefixed!(
    /// Bytes after a one-byte length.
    bytes8: u8
);
length_prefixed!(
    /// Bytes after a little-endian two-byte length.
    bytes16: u16
);

/// Every byte left in the frame.
pub(super) mod rest {
    use super::{Reader, Truncated};

    pub(in crate::znp) fn read(
        r: &mut Reader<'_>,
        _field: &'static str,
    ) -> Result<Vec<u8>, Truncated> {
        Ok(r.rest().to_vec())
    }

    pub(in crate::znp) fn write(bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
    }
}

/// A one-byte count, then that many cluster ids (cut at 255 when written).
pub(super) mod clusters {
    use super::{PutLe, Reader, Truncated};

    pub(in crate::znp) fn read(
        r: &mut Reader<'_>,
        field: &'static str,
    ) -> Result<Vec<u16>, Truncated> {
        let count = r.u8(field)?;
        (0..count).map(|_| r.u16(field)).collect()
    }

    pub(in crate::znp) fn write(clusters: &[u16], out: &mut Vec<u8>) {
        let count = u8::try_from(clusters.len()).unwrap_or(u8::MAX);
        out.push(count);
        for cluster in clusters.iter().take(usize::from(count)) {
            out.put_u16_le(*cluster);
        }
    }
}

/// Little-endian `u16`s to the end of the frame.
pub(super) mod u16_list {
    use super::{PutLe, Reader, Truncated};

    pub(in crate::znp) fn read(
        r: &mut Reader<'_>,
        field: &'static str,
    ) -> Result<Vec<u16>, Truncated> {
        let mut values = Vec::new();
        while !r.is_empty() {
            values.push(r.u16(field)?);
        }
        Ok(values)
    }

    pub(in crate::znp) fn write(values: &[u16], out: &mut Vec<u8>) {
        for value in values {
            out.put_u16_le(*value);
        }
    }
}

/// `SYS.Version`'s answer: five bytes read as one field, then the build fields old firmware
/// leaves out.
impl SysVersion {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        let [transport_rev, product_id, major, minor, maint] = r.array("Version")?;
        let extra = if r.is_empty() {
            None
        } else {
            Some((
                r.u32("CodeRevision")?,
                r.u8("BootloaderBuildType")?,
                r.u32("BootloaderRevision")?,
            ))
        };
        Ok(SysVersion {
            transport_rev,
            product_id,
            major,
            minor,
            maint,
            extra,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.transport_rev,
            self.product_id,
            self.major,
            self.minor,
            self.maint,
        ]);
        if let Some((code, build, boot)) = self.extra {
            out.put_u32_le(code);
            out.push(build);
            out.put_u32_le(boot);
        }
    }
}

/// Reads one field: by its kind after `as`, or by its type.
macro_rules! field_read {
    ($r:ident, $wire:literal, $t:ty, $kind:ident) => {
        $crate::znp::codec::$kind::read($r, $wire)
    };
    ($r:ident, $wire:literal, $t:ty) => {
        <$t as $crate::znp::codec::Field>::read($r, $wire)
    };
}

/// Writes one field (see [`field_read!`]).
macro_rules! field_write {
    ($out:ident, $value:expr, $t:ty, $kind:ident) => {
        $crate::znp::codec::$kind::write($value, $out)
    };
    ($out:ident, $value:expr, $t:ty) => {
        <$t as $crate::znp::codec::Field>::write($value, $out)
    };
}

/// A structure a message carries whole: the struct, and crate-private `read` and `write` that
/// follow its fields in order.
macro_rules! mt_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $f:ident : $t:ty = $wire:literal $(as $kind:ident)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $f: $t, )*
        }

        impl $name {
            pub(super) fn read(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::wire::Truncated> {
                Ok($name {
                    $( $f: $crate::znp::codec::field_read!(r, $wire, $t $(, $kind)?)?, )*
                })
            }

            pub(super) fn write(&self, out: &mut Vec<u8>) {
                $( $crate::znp::codec::field_write!(out, &self.$f, $t $(, $kind)?); )*
            }
        }
    };
}

/// The table of MT commands: one line per command,
///
/// ```text
/// Variant = (FrameType, SUBSYSTEM, 0xID) "name" [(Struct) | { field: Type = "WireName" [as kind], … }];
/// ```
///
/// generating `Message` (with the variants every table has: `NvValueResponse`, the answer to
/// the three NV reads; `StatusResponse`, an SRSP that is a bare status; `Other`, any frame the
/// table does not name), `Message::header`, `Message::payload`, and the `command_name` and
/// `decode_fields` that `Message::decode` runs.
macro_rules! znp_messages {
    (
        $(#[$emeta:meta])*
        pub enum Message {
            $(
                $(#[$vmeta:meta])*
                $var:ident = ($ft:ident, $sub:ident, $id:literal) $name:literal
                $(($ty:ty))?
                $({ $( $(#[$fmeta:meta])* $f:ident : $t:ty = $wire:literal $(as $kind:ident)? ),* $(,)? })?;
            )*
        }
    ) => {
        $(#[$emeta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $(
                $(#[$vmeta])*
                $var $(($ty))? $({ $( $(#[$fmeta])* $f: $t ),* })?,
            )*
            /// The answer to every NV read: a status and bytes (8-bit length).
            NvValueResponse {
                /// `SYS.OSALNVRead` (0x08), `SYS.OSALNVReadExt` (0x1C) or `SYS.NVRead` (0x33).
                id: u8,
                /// Status.
                status: u8,
                /// Bytes.
                value: Vec<u8>,
            },
            /// An SRSP carrying only a status (AF.Register, AF.DataRequest, NV writes, ...).
            StatusResponse {
                /// Subsystem of the request.
                subsystem: Subsystem,
                /// Id of the request.
                id: u8,
                /// Status.
                status: u8,
            },
            /// A frame this module has no type for.
            Other(Frame),
        }

        impl Message {
            /// Type, subsystem and id of the frame this message travels in.
            pub fn header(&self) -> (FrameType, Subsystem, u8) {
                match self {
                    $( Message::$var { .. } => (FrameType::$ft, Subsystem::$sub, $id), )*
                    Message::NvValueResponse { id, .. } => (FrameType::Srsp, Subsystem::SYS, *id),
                    Message::StatusResponse { subsystem, id, .. } => (FrameType::Srsp, *subsystem, *id),
                    Message::Other(frame) => (frame.frame_type, frame.subsystem, frame.id),
                }
            }

            /// The DATA field.
            pub fn payload(&self) -> Vec<u8> {
                let mut bytes = Vec::new();
                let out = &mut bytes;
                match self {
                    $(
                        $crate::znp::codec::variant_pattern!(p; $var $(($ty))? $({ $($f),* })?) => {
                            $crate::znp::codec::variant_write!(p, out; $(($ty))? $({ $( $f : $t $(as $kind)? ),* })?)
                        }
                    )*
                    Message::NvValueResponse { status, value, .. } => {
                        out.push(*status);
                        $crate::znp::codec::bytes8::write(value, out);
                    }
                    Message::StatusResponse { status, .. } => out.push(*status),
                    Message::Other(frame) => out.extend_from_slice(&frame.payload),
                }
                bytes
            }
        }

        /// The name of a command the table decodes, or `None` to keep it as [`Message::Other`].
        pub(super) fn command_name(key: (FrameType, Subsystem, u8)) -> Option<&'static str> {
            Some(match key {
                $( (FrameType::$ft, Subsystem::$sub, $id) => $name, )*
                (FrameType::Srsp, Subsystem::SYS, 0x08 | 0x1C | 0x33) => "SYS NV read SRSP",
                (FrameType::Srsp, subsystem, id) if is_status_only_response(subsystem, id) => "status SRSP",
                _ => return None,
            })
        }

        /// Reads the fields of the command `key` names ([`command_name`] says which it knows).
        pub(super) fn decode_fields(
            key: (FrameType, Subsystem, u8),
            r: &mut $crate::wire::Reader<'_>,
        ) -> Result<Message, $crate::wire::Truncated> {
            Ok(match key {
                $(
                    (FrameType::$ft, Subsystem::$sub, $id) => $crate::znp::codec::variant_read!(r; $var $(($ty))?
                        $({ $( $f : $t = $wire $(as $kind)? ),* })?),
                )*
                (FrameType::Srsp, Subsystem::SYS, id @ (0x08 | 0x1C | 0x33)) => Message::NvValueResponse {
                    id,
                    status: r.u8("Status")?,
                    value: $crate::znp::codec::bytes8::read(r, "Value")?,
                },
                (FrameType::Srsp, subsystem, id) => Message::StatusResponse {
                    subsystem,
                    id,
                    status: r.u8("Status")?,
                },
                (frame_type, subsystem, id) => {
                    Message::Other(Frame::new(frame_type, subsystem, id, r.rest().to_vec()))
                }
            })
        }
    };
}

/// The pattern of one table variant, binding its structure to `$p` or its fields by name.
macro_rules! variant_pattern {
    ($p:ident; $v:ident) => {
        Message::$v
    };
    ($p:ident; $v:ident ($ty:ty)) => {
        Message::$v($p)
    };
    ($p:ident; $v:ident { $($f:ident),* }) => {
        Message::$v { $($f),* }
    };
}

/// Writes what [`variant_pattern!`] bound.
macro_rules! variant_write {
    ($p:ident, $out:ident;) => {{}};
    ($p:ident, $out:ident; ($ty:ty)) => {
        $p.write($out)
    };
    ($p:ident, $out:ident; { $( $f:ident : $t:ty $(as $kind:ident)? ),* }) => {{
        $( $crate::znp::codec::field_write!($out, $f, $t $(, $kind)?); )*
    }};
}

/// Reads one table variant.
macro_rules! variant_read {
    ($r:ident; $v:ident) => {
        Message::$v
    };
    ($r:ident; $v:ident ($ty:ty)) => {
        Message::$v(<$ty>::read($r)?)
    };
    ($r:ident; $v:ident { $( $f:ident : $t:ty = $wire:literal $(as $kind:ident)? ),* }) => {
        Message::$v { $( $f: $crate::znp::codec::field_read!($r, $wire, $t $(, $kind)?)? ),* }
    };
}

pub(super) use {
    field_read, field_write, mt_struct, variant_pattern, variant_read, variant_write, znp_messages,
};
