//! nom 8 parsers for little-endian wire fields that remember which field they were reading, so
//! a short input still becomes a [`Truncated`] naming the field and its offset.
//!
//! Every parser here is a *complete-input* parser (STYLE.md, nom 8 notes): decoders only ever
//! see a whole frame or file, so running out of bytes is an error, never `Incomplete`. nom's
//! types stay inside the crate (STYLE.md rule 14): public decoders return their own errors,
//! converted from [`Short`] by [`finish`].

use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::Truncated;

/// Where a parse ran out of input: the bytes left when the field began, the field's name and
/// the bytes it needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short<'a> {
    rest: &'a [u8],
    field: &'static str,
    needed: usize,
}

impl<'a> ParseError<&'a [u8]> for Short<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        Short {
            rest: input,
            field: "input",
            needed: 1,
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result of one of these parsers.
pub(crate) type Parsed<'a, T> = IResult<&'a [u8], T, Short<'a>>;

/// Renames nom's error for a field of `needed` bytes that started at `input`.
fn named<'a, T>(
    field: &'static str,
    needed: usize,
    input: &'a [u8],
    result: IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>,
) -> Parsed<'a, T> {
    result.map_err(|error| {
        error.map(|_| Short {
            rest: input,
            field,
            needed,
        })
    })
}

/// One byte.
pub(crate) fn u8<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> Parsed<'a, u8> {
    move |input| named(field, 1, input, nom::number::complete::le_u8(input))
}

/// A little-endian `u16`.
pub(crate) fn u16<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> Parsed<'a, u16> {
    move |input| named(field, 2, input, nom::number::complete::le_u16(input))
}

/// A little-endian `u32`.
pub(crate) fn u32<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> Parsed<'a, u32> {
    move |input| named(field, 4, input, nom::number::complete::le_u32(input))
}

/// A little-endian `u64`.
pub(crate) fn u64<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> Parsed<'a, u64> {
    move |input| named(field, 8, input, nom::number::complete::le_u64(input))
}

/// Exactly `len` bytes.
pub(crate) fn bytes<'a>(
    field: &'static str,
    len: usize,
) -> impl Fn(&'a [u8]) -> Parsed<'a, &'a [u8]> {
    move |input| {
        named(
            field,
            len,
            input,
            nom::bytes::complete::take::<_, _, nom::error::Error<&[u8]>>(len).parse_complete(input),
        )
    }
}

/// Runs `parser` over the whole of `input` and hands back its output and the bytes it left;
/// running short becomes a [`Truncated`] whose offset counts from the start of `input`.
pub(crate) fn finish<'a, T>(
    input: &'a [u8],
    mut parser: impl Parser<&'a [u8], Output = T, Error = Short<'a>>,
) -> Result<(T, &'a [u8]), Truncated> {
    match parser.parse_complete(input) {
        Ok((rest, value)) => Ok((value, rest)),
        Err(nom::Err::Error(short) | nom::Err::Failure(short)) => Err(Truncated {
            field: short.field,
            offset: input.len().saturating_sub(short.rest.len()),
            needed: short.needed,
            available: short.rest.len(),
        }),
        // Complete-input parsers never ask for more; treat it as running short anyway.
        Err(nom::Err::Incomplete(_)) => Err(Truncated {
            field: "input",
            offset: input.len(),
            needed: 1,
            available: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nom::combinator::cond;

    #[test]
    fn fields_read_little_endian_and_leave_the_rest() {
        let input = [0x01, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0xEE];
        let ((a, b, c), rest) =
            finish(&input, (u8("a"), u16("b"), u32("c"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a, b, c), (1, 0x1234, 0x1234_5678));
        assert_eq!(rest, [0xEE]);
    }

    #[test]
    fn a_short_field_is_named_with_its_offset() {
        let input = [0x01, 0x34, 0x12, 0x78];
        let error = finish(&input, (u8("a"), u16("b"), u32("c"))).err();
        assert_eq!(
            error,
            Some(Truncated {
                field: "c",
                offset: 3,
                needed: 4,
                available: 1
            })
        );
    }

    #[test]
    fn conditional_and_byte_fields() {
        let input = [0x01, 0xAA, 0xBB, 0xCC];
        let ((flag, data, extra), rest) = finish(&input, |i| {
            let (i, flag) = u8("flag")(i)?;
            let (i, data) = bytes("data", 2)(i)?;
            let (i, extra) = cond(flag == 1, u8("extra")).parse_complete(i)?;
            Ok((i, (flag, data, extra)))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (flag, data, extra, rest),
            (1, &[0xAA, 0xBB][..], Some(0xCC), &[][..])
        );
        assert_eq!(
            finish(&[0x00, 0x01], (u8("a"), bytes("data", 3)))
                .err()
                .map(|t| t.offset),
            Some(1)
        );
        assert_eq!(
            finish(&[1, 0, 0, 0, 0, 0, 0, 0], u64("u"))
                .ok()
                .map(|v| v.0),
            Some(1)
        );
    }
}
