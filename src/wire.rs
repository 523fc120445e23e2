//! Bounds-checked little-endian reading and writing shared by every wire decoder.
//!
//! Every protocol in this crate (ZCL, the OTA file, EZSP, ASH) is little-endian except where a
//! spec says otherwise (EBL tags use big-endian lengths; ASH's CRC is big-endian). [`Reader`] never
//! panics and never reads past its slice: each accessor returns [`Truncated`] naming what was
//! being read and where, so decoders can turn it into a precise error.
//!
//! ```
//! use zigbee_otad::wire::Reader;
//! let mut r = Reader::new(&[0x34, 0x12, 0xAA]);
//! assert_eq!(r.u16("cluster").unwrap(), 0x1234);
//! assert_eq!(r.u8("status").unwrap(), 0xAA);
//! assert!(r.u8("extra").is_err());
//! ```

use std::fmt;

pub(crate) mod fields;

/// The one wire-enum macro (rustls' `enum_builder!`, ARCHITECTURE.md principle 5): declares
/// `pub struct Name(pub repr)` with named constants, [`KNOWN`](#KNOWN), `name()`, conversions to
/// and from the raw integer, `Debug`, `Display` and serde's `{"value": n, "name": "NAME" | null}`.
/// Unknown values are kept as they are. A constant's name is its identifier, or the text after
/// `=>`; values must be distinct.
///
/// Three renderings, all in hex with the width of `repr`:
/// - by default `Debug` is `Name(0x117C IKEA)` / `Name(0x4703)` and `Display` is `0x117C (IKEA)`
///   / `0x4703`;
/// - with `, names_first` after the type (ZCL's statuses and command ids, as `decode zcl`, the
///   transcripts and the logs print them) `Debug` is `ABORT(0x95)` / `Name(0x42)` and `Display`
///   is `ABORT (0x95)` / `0x42`;
/// - with `, names_only` (ZNP's subsystems, which prefix every command name: `SYS.0x01 SREQ`)
///   `Debug` is `SYS` / `Name(0x1F)` and `Display` is `SYS` / `0x1F`.
///
/// ```text
/// wire_enum! {
///     /// A ZCL status code.
///     ZclStatus(u8), names_first {
///         /// Operation was successful.
///         SUCCESS = 0x00,
///     }
/// }
/// wire_enum! {
///     /// Zigbee manufacturer code.
///     ManufacturerCode(u16) {
///         /// IKEA of Sweden.
///         IKEA = 0x117C => "IKEA",
///     }
/// }
/// ```
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) $(, $style:ident)? {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr $(=> $text:literal)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $(
                $(#[$cmeta])*
                #[doc = concat!("`", stringify!($konst), "`")]
                pub const $konst: Self = Self($value);
            )*

            /// Every named value, for tests and tooling.
            pub const KNOWN: &'static [Self] = &[$(Self::$konst),*];

            /// The specification's name for this value, or `None` when it is not one we know.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$konst => Some($crate::wire::wire_enum!(@text $konst $($text)?)),)*
                    _ => None,
                }
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let (value, bytes) = (self.0.into(), ::core::mem::size_of::<$repr>());
                $crate::wire::wire_enum!(@style $($style)?)
                    .write(f, Some(stringify!($name)), self.name(), value, bytes)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let (value, bytes) = (self.0.into(), ::core::mem::size_of::<$repr>());
                $crate::wire::wire_enum!(@style $($style)?).write(f, None, self.name(), value, bytes)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeStruct;
                let mut s = serializer.serialize_struct(stringify!($name), 2)?;
                s.serialize_field("value", &self.0)?;
                s.serialize_field("name", &self.name())?;
                s.end()
            }
        }
    };
    (@text $konst:ident $text:literal) => { $text };
    (@text $konst:ident) => { stringify!($konst) };
    (@style) => { $crate::wire::Rendering::HexFirst };
    (@style names_first) => { $crate::wire::Rendering::NamesFirst };
    (@style names_only) => { $crate::wire::Rendering::NamesOnly };
}
pub(crate) use wire_enum;

/// How a [`wire_enum!`] type prints (see the macro's docs for the three styles): the one
/// routine behind every wire enum's `Debug` and `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendering {
    /// `Name(0x117C IKEA)` / `0x117C (IKEA)`.
    HexFirst,
    /// `ABORT(0x95)` / `ABORT (0x95)`.
    NamesFirst,
    /// `SYS` / `SYS`.
    NamesOnly,
}

impl Rendering {
    /// Writes `value` (`bytes` wide, named `name` when known): its `Debug` form when
    /// `debug_type` names the type, else its `Display` form.
    pub(crate) fn write(
        self,
        f: &mut fmt::Formatter<'_>,
        debug_type: Option<&str>,
        name: Option<&str>,
        value: u64,
        bytes: usize,
    ) -> fmt::Result {
        let w = bytes * 2;
        match (self, name, debug_type) {
            (Rendering::HexFirst, Some(name), Some(ty)) => write!(f, "{ty}(0x{value:0w$X} {name})"),
            (Rendering::HexFirst, Some(name), None) => write!(f, "0x{value:0w$X} ({name})"),
            (Rendering::NamesFirst, Some(name), Some(_)) => write!(f, "{name}(0x{value:0w$X})"),
            (Rendering::NamesFirst, Some(name), None) => write!(f, "{name} (0x{value:0w$X})"),
            (Rendering::NamesOnly, Some(name), _) => f.write_str(name),
            (_, None, Some(ty)) => write!(f, "{ty}(0x{value:0w$X})"),
            (_, None, None) => write!(f, "0x{value:0w$X}"),
        }
    }
}

/// A read ran past the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// What the decoder was reading (a field name).
    pub field: &'static str,
    /// Byte offset in the input where the field starts.
    pub offset: usize,
    /// Bytes the field needs.
    pub needed: usize,
    /// Bytes that were left.
    pub available: usize,
}

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {} needs {} bytes, only {} left",
            self.field, self.offset, self.needed, self.available
        )
    }
}

impl std::error::Error for Truncated {}

/// A cursor over a byte slice with bounds-checked little-endian accessors.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { input, position: 0 }
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.position)
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes `len` bytes.
    pub fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], Truncated> {
        let start = self.position;
        let slice = start
            .checked_add(len)
            .and_then(|end| self.input.get(start..end))
            .ok_or(Truncated {
                field,
                offset: start,
                needed: len,
                available: self.remaining(),
            })?;
        self.position += len;
        Ok(slice)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Truncated> {
        let slice = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.input.get(self.position..).unwrap_or_default();
        self.position = self.input.len();
        rest
    }

    /// Looks at the remaining bytes without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.input.get(self.position..).unwrap_or_default()
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, Truncated> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads an `i8`.
    pub fn i8(&mut self, field: &'static str) -> Result<i8, Truncated> {
        Ok(i8::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u16`.
    pub fn u16_be(&mut self, field: &'static str) -> Result<u16, Truncated> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32_be(&mut self, field: &'static str) -> Result<u32, Truncated> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
}

/// Little-endian writers for `Vec<u8>` (encoders build frames into a `Vec` or `BytesMut`).
pub trait PutLe {
    /// Appends a `u8`.
    fn put_u8_le(&mut self, value: u8);
    /// Appends a little-endian `u16`.
    fn put_u16_le(&mut self, value: u16);
    /// Appends a little-endian `u32`.
    fn put_u32_le(&mut self, value: u32);
    /// Appends a little-endian `u64`.
    fn put_u64_le(&mut self, value: u64);
}

impl PutLe for Vec<u8> {
    fn put_u8_le(&mut self, value: u8) {
        self.push(value);
    }
    fn put_u16_le(&mut self, value: u16) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u32_le(&mut self, value: u32) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u64_le(&mut self, value: u64) {
        self.extend_from_slice(&value.to_le_bytes());
    }
}

/// Formats bytes as uppercase hex separated by spaces (`"1E F1 EE 0B"`), for logs and the CLI.
pub fn hex_spaced(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Parses hex text, ignoring whitespace, `:` and `-` separators and an optional `0x` prefix.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: Vec<u8> = body
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':' && *c != b'-')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s =
                std::str::from_utf8(pair).map_err(|_| format!("non-ASCII at digit {}", i * 2))?;
            u8::from_str_radix(s, 16).map_err(|_| format!("`{s}` at digit {} is not hex", i * 2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_names_field_and_offset() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        let err = r.u32("file_version").unwrap_err();
        assert_eq!(err.offset, 1);
        assert_eq!(err.needed, 4);
        assert_eq!(err.available, 2);
        assert_eq!(
            err.to_string(),
            "file_version at offset 1 needs 4 bytes, only 2 left"
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 2);
    }

    #[test]
    fn huge_take_does_not_overflow() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        assert!(r.take("x", usize::MAX).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let bytes = parse_hex("0x19 10:00-00 64").unwrap();
        assert_eq!(bytes, [0x19, 0x10, 0x00, 0x00, 0x64]);
        assert_eq!(hex_spaced(&bytes), "19 10 00 00 64");
        assert!(parse_hex("123").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
