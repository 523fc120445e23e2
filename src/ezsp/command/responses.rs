//! The parameters of NCP → host responses (UG100), named in the frame table in [`super`].

use super::super::params::{ParamReader, ParamWriter, StatusKind};
use super::super::status::Status;
use super::super::types::{Ieee, NetworkParameters, NodeType, Nwk};
use super::super::{DecodeError, EncodeError, EzspVersion};

// ---------------------------------------------------------------------------------------------
// Responses (NCP → host, answering a command)

/// The answer to `version`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionResponse {
    /// The NCP's EZSP protocol version.
    pub protocol_version: u8,
    /// Stack type (2 = mesh).
    pub stack_type: u8,
    /// Stack version, one nibble per digit (0x7440 = 7.4.4.0).
    pub stack_version: u16,
}

impl VersionResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.u8("protocolVersion")?,
            stack_type: r.u8("stackType")?,
            stack_version: r.u16("stackVersion")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.protocol_version);
        w.u8(self.stack_type);
        w.u16(self.stack_version);
        Ok(())
    }

    /// The whole legacy-format response (`seq 80 00 …`), as an NCP answers the host's first
    /// `version`.
    pub fn encode_legacy_frame(&self, sequence: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[sequence, 0x80, 0x00, self.protocol_version, self.stack_type]);
        out.extend_from_slice(&self.stack_version.to_le_bytes());
    }
}
parameters_codec!(VersionResponse, "version response");

/// The answer to `getConfigurationValue`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetConfigurationValueResponse {
    /// EzspStatus before v14.
    pub status: Status,
    /// The value.
    pub value: u16,
}

impl GetConfigurationValueResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ezsp)?,
            value: r.u16("value")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ezsp, self.status)?;
        w.u16(self.value);
        Ok(())
    }
}
parameters_codec!(
    GetConfigurationValueResponse,
    "getConfigurationValue response"
);

/// The answer to `getValue`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GetValueResponse {
    /// EzspStatus before v14.
    pub status: Status,
    /// The value bytes.
    pub value: Vec<u8>,
}

impl GetValueResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ezsp)?,
            value: r.lv_bytes("value")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ezsp, self.status)?;
        w.lv_bytes("value", &self.value)
    }
}
parameters_codec!(GetValueResponse, "getValue response");

/// The answer to `getNetworkParameters`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetNetworkParametersResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// This node's role (1 = coordinator).
    pub node_type: NodeType,
    /// The network.
    pub parameters: NetworkParameters,
}

impl GetNetworkParametersResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            node_type: NodeType(r.u8("nodeType")?),
            parameters: NetworkParameters::read(r)?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.u8(self.node_type.0);
        self.parameters.write(w);
        Ok(())
    }
}
parameters_codec!(
    GetNetworkParametersResponse,
    "getNetworkParameters response"
);

/// The answer to `sendUnicast` and `sendBroadcast`: queued or not (delivery is reported
/// later by `messageSentHandler`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SendResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// The APS sequence number given to the message.
    pub sequence: u8,
}

impl SendResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            sequence: r.u8("sequence")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.u8(self.sequence);
        Ok(())
    }
}
parameters_codec!(SendResponse, "send response");

/// The answer to `lookupNodeIdByEui64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupNodeIdByEui64Response {
    /// v14+ only (`None` before v14, where an unknown device reads as node id 0xFFFF).
    pub status: Option<Status>,
    /// The node id, 0xFFFF when unknown.
    pub node_id: Nwk,
}

impl LookupNodeIdByEui64Response {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let status = if r.version().uses_sl_status() {
            Some(r.status("status", StatusKind::Ember)?)
        } else {
            None
        };
        Ok(Self {
            status,
            node_id: Nwk(r.u16("nodeId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        match (w.version().uses_sl_status(), self.status) {
            (true, Some(status)) => w.status("status", StatusKind::Ember, status)?,
            (false, None) => {}
            (true, None) => {
                return Err(w.not_representable("status", 0, "v14 and later require a status"));
            }
            (false, Some(_)) => {
                return Err(w.not_representable("status", 0, "there is no status before v14"));
            }
        }
        w.u16(self.node_id.0);
        Ok(())
    }
}
parameters_codec!(LookupNodeIdByEui64Response, "lookupNodeIdByEui64 response");

/// The answer to `lookupEui64ByNodeId`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupEui64ByNodeIdResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// The EUI-64 when found.
    pub eui64: Ieee,
}

impl LookupEui64ByNodeIdResponse {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            eui64: Ieee::read(r, "eui64")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.bytes(&self.eui64.to_le_bytes());
        Ok(())
    }
}
parameters_codec!(LookupEui64ByNodeIdResponse, "lookupEui64ByNodeId response");
