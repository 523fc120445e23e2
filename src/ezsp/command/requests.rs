//! The parameters of host → NCP commands (UG100; layouts per version as in bellows'
//! `ezsp/v8`…`v17` command tables). Each struct is named in the frame table in [`super`].

use super::super::params::{ParamReader, ParamWriter};
use super::super::types::{
    ApsFrame, ConfigId, DecisionId, Ieee, InitialSecurityState, NetworkInitBitmask,
    NetworkParameters, Nwk, OutgoingMessageType, PolicyId, ValueId,
};
use super::super::{DecodeError, EncodeError, EzspVersion};

// ---------------------------------------------------------------------------------------------
// Requests (host → NCP)

/// `version` (0x0000): the first command after every reset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionRequest {
    /// The version the host wants to speak.
    pub desired_protocol_version: u8,
}

impl VersionRequest {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            desired_protocol_version: r.u8("desiredProtocolVersion")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.desired_protocol_version);
        Ok(())
    }

    /// The whole legacy-format frame (`seq 00 00 desired`) every host sends first.
    pub fn encode_legacy_frame(&self, sequence: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[sequence, 0x00, 0x00, self.desired_protocol_version]);
    }
}
parameters_codec!(VersionRequest, "version");

/// `getConfigurationValue` (0x0052).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetConfigurationValue {
    /// Which value.
    pub config_id: ConfigId,
}

impl GetConfigurationValue {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            config_id: ConfigId(r.u8("configId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.config_id.0);
        Ok(())
    }
}
parameters_codec!(GetConfigurationValue, "getConfigurationValue");

/// `setConfigurationValue` (0x0053).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetConfigurationValue {
    /// Which value.
    pub config_id: ConfigId,
    /// The new value.
    pub value: u16,
}

impl SetConfigurationValue {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            config_id: ConfigId(r.u8("configId")?),
            value: r.u16("value")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.config_id.0);
        w.u16(self.value);
        Ok(())
    }
}
parameters_codec!(SetConfigurationValue, "setConfigurationValue");

/// `getValue` (0x00AA).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetValue {
    /// Which value.
    pub value_id: ValueId,
}

impl GetValue {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            value_id: ValueId(r.u8("valueId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.value_id.0);
        Ok(())
    }
}
parameters_codec!(GetValue, "getValue");

/// `setValue` (0x00AB).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SetValue {
    /// Which value.
    pub value_id: ValueId,
    /// The new value (at most 255 bytes).
    pub value: Vec<u8>,
}

impl SetValue {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            value_id: ValueId(r.u8("valueId")?),
            value: r.lv_bytes("value")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.value_id.0);
        w.lv_bytes("value", &self.value)
    }
}
parameters_codec!(SetValue, "setValue");

/// `setPolicy` (0x0055).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetPolicy {
    /// Which policy.
    pub policy_id: PolicyId,
    /// The decision (or decision bitmask for the trust-center policy).
    pub decision_id: DecisionId,
}

impl SetPolicy {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            policy_id: PolicyId(r.u8("policyId")?),
            decision_id: DecisionId(r.u8("decisionId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.policy_id.0);
        w.u8(self.decision_id.0);
        Ok(())
    }
}
parameters_codec!(SetPolicy, "setPolicy");

/// `addEndpoint` (0x0002): registers an endpoint, after every NCP reset and before
/// `networkInit`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddEndpoint {
    /// Endpoint number.
    pub endpoint: u8,
    /// Application profile.
    pub profile_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Device version.
    pub device_version: u8,
    /// Server clusters (0x0019 for an OTA server).
    pub input_clusters: Vec<u16>,
    /// Client clusters.
    pub output_clusters: Vec<u16>,
}

impl AddEndpoint {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let endpoint = r.u8("endpoint")?;
        let profile_id = r.u16("profileId")?;
        let device_id = r.u16("deviceId")?;
        let device_version = r.u8("deviceVersion")?;
        let input_count = r.u8("inputClusterCount")?;
        let output_count = r.u8("outputClusterCount")?;
        Ok(Self {
            endpoint,
            profile_id,
            device_id,
            device_version,
            input_clusters: r.u16_list("inputClusterList", input_count)?,
            output_clusters: r.u16_list("outputClusterList", output_count)?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.endpoint);
        w.u16(self.profile_id);
        w.u16(self.device_id);
        w.u8(self.device_version);
        w.count("inputClusterCount", self.input_clusters.len())?;
        w.count("outputClusterCount", self.output_clusters.len())?;
        for cluster in self.input_clusters.iter().chain(&self.output_clusters) {
            w.u16(*cluster);
        }
        Ok(())
    }
}
parameters_codec!(AddEndpoint, "addEndpoint");

/// `networkInit` (0x0017): resume the network stored in the NCP's tokens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NetworkInit {
    /// Options.
    pub bitmask: NetworkInitBitmask,
}

impl NetworkInit {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bitmask: NetworkInitBitmask(r.u16("networkInitBitmask")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.bitmask.0);
        Ok(())
    }
}
parameters_codec!(NetworkInit, "networkInit");

/// `formNetwork` (0x001E): form a new network as coordinator (after
/// `setInitialSecurityState`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FormNetwork {
    /// The network to form.
    pub parameters: NetworkParameters,
}

impl FormNetwork {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            parameters: NetworkParameters::read(r)?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        self.parameters.write(w);
        Ok(())
    }
}
parameters_codec!(FormNetwork, "formNetwork");

/// `permitJoining` (0x0022).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PermitJoining {
    /// Seconds to allow joins; 0 closes, 0xFF opens until closed.
    pub duration: u8,
}

impl PermitJoining {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            duration: r.u8("duration")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.duration);
        Ok(())
    }
}
parameters_codec!(PermitJoining, "permitJoining");

/// `sendUnicast` (0x0034).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SendUnicast {
    /// How to address the message (normally [`OutgoingMessageType::DIRECT`]).
    pub message_type: OutgoingMessageType,
    /// Destination node id (or address-table / binding index).
    pub index_or_destination: Nwk,
    /// APS header.
    pub aps_frame: ApsFrame,
    /// Tag echoed in `messageSentHandler` (u8 before v14, u16 from v14).
    pub message_tag: u16,
    /// The APS payload (a ZCL frame).
    pub message_contents: Vec<u8>,
}

impl SendUnicast {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            message_type: OutgoingMessageType(r.u8("type")?),
            index_or_destination: Nwk(r.u16("indexOrDestination")?),
            aps_frame: ApsFrame::read(r)?,
            message_tag: r.message_tag("messageTag")?,
            message_contents: r.lv_bytes("messageContents")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.message_type.0);
        w.u16(self.index_or_destination.0);
        self.aps_frame.write(w);
        w.message_tag("messageTag", self.message_tag)?;
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(SendUnicast, "sendUnicast");

/// `sendBroadcast` (0x0036).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SendBroadcast {
    /// Source alias (v14+; [`Nwk::NULL`] for none, the only value before v14).
    pub alias: Nwk,
    /// 0xFFFF all, 0xFFFD receivers on when idle, 0xFFFC routers.
    pub destination: Nwk,
    /// Network sequence number for the alias (v14+; 0 before v14).
    pub nwk_sequence: u8,
    /// APS header.
    pub aps_frame: ApsFrame,
    /// Maximum hops (0 = the stack's maximum).
    pub radius: u8,
    /// Tag echoed in `messageSentHandler` (u8 before v14, u16 from v14).
    pub message_tag: u16,
    /// The APS payload.
    pub message_contents: Vec<u8>,
}

impl SendBroadcast {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let (alias, destination, nwk_sequence) = if r.version().uses_sl_status() {
            (
                Nwk(r.u16("alias")?),
                Nwk(r.u16("destination")?),
                r.u8("nwkSequence")?,
            )
        } else {
            (Nwk::NULL, Nwk(r.u16("destination")?), 0)
        };
        Ok(Self {
            alias,
            destination,
            nwk_sequence,
            aps_frame: ApsFrame::read(r)?,
            radius: r.u8("radius")?,
            message_tag: r.message_tag("messageTag")?,
            message_contents: r.lv_bytes("messageContents")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        if w.version().uses_sl_status() {
            w.u16(self.alias.0);
            w.u16(self.destination.0);
            w.u8(self.nwk_sequence);
        } else {
            if self.alias != Nwk::NULL {
                return Err(w.not_representable(
                    "alias",
                    u64::from(self.alias.0),
                    "sendBroadcast has no alias before v14",
                ));
            }
            if self.nwk_sequence != 0 {
                return Err(w.not_representable(
                    "nwkSequence",
                    u64::from(self.nwk_sequence),
                    "sendBroadcast has no sequence before v14",
                ));
            }
            w.u16(self.destination.0);
        }
        self.aps_frame.write(w);
        w.u8(self.radius);
        w.message_tag("messageTag", self.message_tag)?;
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(SendBroadcast, "sendBroadcast");

/// `lookupNodeIdByEui64` (0x0060).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupNodeIdByEui64 {
    /// The device to look up.
    pub eui64: Ieee,
}

impl LookupNodeIdByEui64 {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            eui64: Ieee::read(r, "eui64")?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.bytes(&self.eui64.to_le_bytes());
        Ok(())
    }
}
parameters_codec!(LookupNodeIdByEui64, "lookupNodeIdByEui64");

/// `lookupEui64ByNodeId` (0x0061).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupEui64ByNodeId {
    /// The device to look up.
    pub node_id: Nwk,
}

impl LookupEui64ByNodeId {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: Nwk(r.u16("nodeId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.node_id.0);
        Ok(())
    }
}
parameters_codec!(LookupEui64ByNodeId, "lookupEui64ByNodeId");

/// `setInitialSecurityState` (0x0068), before `formNetwork`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetInitialSecurityState {
    /// Keys and security mode.
    pub state: InitialSecurityState,
}

impl SetInitialSecurityState {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            state: InitialSecurityState::read(r)?,
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        self.state.write(w);
        Ok(())
    }
}
parameters_codec!(SetInitialSecurityState, "setInitialSecurityState");
