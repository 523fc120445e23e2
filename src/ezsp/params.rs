//! Reading and writing command parameters with errors that name the command, the field and
//! the byte offset within the whole EZSP frame.

use super::status::{EmberStatus, EzspStatus, SlStatus, Status};
use super::{DecodeError, EncodeError, EzspVersion};
use crate::wire::{PutLe, Reader, Truncated};

/// Which one-byte status a field holds before v14 (from v14 every status is `sl_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusKind {
    Ember,
    Ezsp,
}

/// A bounds-checked reader over a frame's parameters.
#[derive(Debug)]
pub(crate) struct ParamReader<'a> {
    reader: Reader<'a>,
    context: &'static str,
    base: usize,
    version: EzspVersion,
}

impl<'a> ParamReader<'a> {
    /// `base` is the offset of `parameters` in the frame (the header length).
    pub(crate) fn new(
        parameters: &'a [u8],
        base: usize,
        context: &'static str,
        version: EzspVersion,
    ) -> Self {
        ParamReader {
            reader: Reader::new(parameters),
            context,
            base,
            version,
        }
    }

    pub(crate) fn version(&self) -> EzspVersion {
        self.version
    }

    pub(crate) fn offset(&self) -> usize {
        self.base + self.reader.position()
    }

    fn truncated(&self, mut source: Truncated) -> DecodeError {
        source.offset += self.base;
        DecodeError::Truncated {
            context: self.context,
            source,
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.reader.u8(field).map_err(|e| self.truncated(e))
    }

    pub(crate) fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        self.reader.i8(field).map_err(|e| self.truncated(e))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.reader.u16(field).map_err(|e| self.truncated(e))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.reader.u32(field).map_err(|e| self.truncated(e))
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        self.reader.array(field).map_err(|e| self.truncated(e))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let offset = self.offset();
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidField {
                context: self.context,
                field,
                offset,
                value: u64::from(other),
                reason: "a boolean must be 0 or 1",
            }),
        }
    }

    /// A u8 length followed by that many bytes.
    pub(crate) fn lv_bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.u8(field)?;
        let bytes = self
            .reader
            .take(field, usize::from(len))
            .map_err(|e| self.truncated(e))?;
        Ok(bytes.to_vec())
    }

    /// `count` little-endian u16 values.
    pub(crate) fn u16_list(
        &mut self,
        field: &'static str,
        count: u8,
    ) -> Result<Vec<u16>, DecodeError> {
        (0..count).map(|_| self.u16(field)).collect()
    }

    /// A status in this version's width; `kind` says which one-byte type applies before v14.
    pub(crate) fn status(
        &mut self,
        field: &'static str,
        kind: StatusKind,
    ) -> Result<Status, DecodeError> {
        if self.version.uses_sl_status() {
            Ok(Status::Sl(SlStatus(self.u32(field)?)))
        } else {
            let raw = self.u8(field)?;
            Ok(match kind {
                StatusKind::Ember => Status::Ember(EmberStatus(raw)),
                StatusKind::Ezsp => Status::Ezsp(EzspStatus(raw)),
            })
        }
    }

    /// A message tag: u8 before v14, u16 from v14.
    pub(crate) fn message_tag(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        if self.version.uses_sl_status() {
            self.u16(field)
        } else {
            self.u8(field).map(u16::from)
        }
    }

    /// Every parameter has been read: refuse trailing bytes.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.reader.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                context: self.context,
                offset: self.offset(),
                count: self.reader.remaining(),
            })
        }
    }
}

/// Writes parameters for one command in one version's layout.
#[derive(Debug)]
pub(crate) struct ParamWriter<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    context: &'static str,
    version: EzspVersion,
}

impl<'a> ParamWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, context: &'static str, version: EzspVersion) -> Self {
        ParamWriter {
            out,
            context,
            version,
        }
    }

    pub(crate) fn version(&self) -> EzspVersion {
        self.version
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.put_u8_le(value);
    }

    pub(crate) fn i8(&mut self, value: i8) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.out.put_u16_le(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.out.put_u32_le(value);
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    pub(crate) fn lv_bytes(
        &mut self,
        field: &'static str,
        value: &[u8],
    ) -> Result<(), EncodeError> {
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::TooLong {
            context: self.context,
            field,
            len: value.len(),
        })?;
        self.u8(len);
        self.bytes(value);
        Ok(())
    }

    /// A u8 count for a list that is written later.
    pub(crate) fn count(&mut self, field: &'static str, len: usize) -> Result<(), EncodeError> {
        let count = u8::try_from(len).map_err(|_| EncodeError::TooLong {
            context: self.context,
            field,
            len,
        })?;
        self.u8(count);
        Ok(())
    }

    pub(crate) fn not_representable(
        &self,
        field: &'static str,
        value: u64,
        reason: &'static str,
    ) -> EncodeError {
        EncodeError::NotRepresentable {
            context: self.context,
            field,
            value,
            version: self.version.get(),
            reason,
        }
    }

    /// Writes `status` in this version's width, converting through the unified view when the
    /// value was given in the other version's type and an equivalent exists.
    pub(crate) fn status(
        &mut self,
        field: &'static str,
        kind: StatusKind,
        status: Status,
    ) -> Result<(), EncodeError> {
        if self.version.uses_sl_status() {
            let sl = status.to_sl().ok_or_else(|| {
                self.not_representable(
                    field,
                    raw_status(status),
                    "this status has no sl_status_t equivalent",
                )
            })?;
            self.u32(sl.0);
            return Ok(());
        }
        let byte = match (kind, status) {
            (StatusKind::Ember, Status::Ember(ember)) => Some(ember.0),
            (StatusKind::Ezsp, Status::Ezsp(ezsp)) => Some(ezsp.0),
            (StatusKind::Ember, Status::Sl(sl)) => EmberStatus::from_sl(sl).map(|s| s.0),
            (StatusKind::Ezsp, Status::Sl(sl)) => EzspStatus::from_sl(sl).map(|s| s.0),
            (StatusKind::Ember, Status::Ezsp(_)) | (StatusKind::Ezsp, Status::Ember(_)) => None,
        };
        let byte = byte.ok_or_else(|| {
            self.not_representable(
                field,
                raw_status(status),
                match kind {
                    StatusKind::Ember => "this field is an EmberStatus before v14",
                    StatusKind::Ezsp => "this field is an EzspStatus before v14",
                },
            )
        })?;
        self.u8(byte);
        Ok(())
    }

    /// A message tag: u8 before v14, u16 from v14.
    pub(crate) fn message_tag(&mut self, field: &'static str, tag: u16) -> Result<(), EncodeError> {
        if self.version.uses_sl_status() {
            self.u16(tag);
        } else {
            let byte = u8::try_from(tag).map_err(|_| {
                self.not_representable(
                    field,
                    u64::from(tag),
                    "message tags are one byte before v14",
                )
            })?;
            self.u8(byte);
        }
        Ok(())
    }
}

fn raw_status(status: Status) -> u64 {
    match status {
        Status::Ember(s) => u64::from(s.0),
        Status::Ezsp(s) => u64::from(s.0),
        Status::Sl(s) => u64::from(s.0),
    }
}

/// A parameter type that reads and writes itself: the type of an inline field in the frame
/// table (`ezsp_frames!`).
pub(crate) trait Field: Sized {
    fn read_field(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError>;
    fn write_field(&self, w: &mut ParamWriter<'_>, field: &'static str) -> Result<(), EncodeError>;
}

impl Field for u8 {
    fn read_field(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.u8(field)
    }
    fn write_field(&self, w: &mut ParamWriter<'_>, _: &'static str) -> Result<(), EncodeError> {
        w.u8(*self);
        Ok(())
    }
}

impl Field for super::types::Nwk {
    fn read_field(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self(r.u16(field)?))
    }
    fn write_field(&self, w: &mut ParamWriter<'_>, _: &'static str) -> Result<(), EncodeError> {
        w.u16(self.0);
        Ok(())
    }
}

impl Field for super::types::Ieee {
    fn read_field(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Self::read(r, field)
    }
    fn write_field(&self, w: &mut ParamWriter<'_>, _: &'static str) -> Result<(), EncodeError> {
        w.bytes(&self.to_le_bytes());
        Ok(())
    }
}

impl Field for super::types::NetworkStatus {
    fn read_field(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self(r.u8(field)?))
    }
    fn write_field(&self, w: &mut ParamWriter<'_>, _: &'static str) -> Result<(), EncodeError> {
        w.u8(self.0);
        Ok(())
    }
}
