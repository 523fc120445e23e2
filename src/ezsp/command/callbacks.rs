//! The parameters of unsolicited NCP → host callbacks (UG100), named in the frame table in
//! [`super`].

use super::super::params::{ParamReader, ParamWriter, StatusKind};
use super::super::status::Status;
use super::super::types::{
    ApsFrame, DeviceAnnounce, DeviceUpdate, Ieee, IncomingMessageType, JoinDecision, NodeType, Nwk,
    OutgoingMessageType,
};
use super::super::{DecodeError, EncodeError, EzspVersion};

// ---------------------------------------------------------------------------------------------
// Callbacks (NCP → host, unsolicited)

/// `messageSentHandler` (0x003F): the delivery result of a `sendUnicast`/`sendBroadcast`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MessageSentHandler {
    /// How the message was addressed.
    pub message_type: OutgoingMessageType,
    /// Destination node id (or index).
    pub index_or_destination: Nwk,
    /// The APS header that was sent.
    pub aps_frame: ApsFrame,
    /// The tag given to the send command.
    pub message_tag: u16,
    /// Delivery result (EmberStatus before v14; DELIVERY_FAILED 0x66 / 0x0C02).
    pub status: Status,
    /// The payload, when the message-contents policy asks for it.
    pub message_contents: Vec<u8>,
}

impl MessageSentHandler {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        if r.version().uses_sl_status() {
            let status = r.status("status", StatusKind::Ember)?;
            Ok(Self {
                message_type: OutgoingMessageType(r.u8("type")?),
                index_or_destination: Nwk(r.u16("indexOrDestination")?),
                aps_frame: ApsFrame::read(r)?,
                message_tag: r.message_tag("messageTag")?,
                status,
                message_contents: r.lv_bytes("messageContents")?,
            })
        } else {
            Ok(Self {
                message_type: OutgoingMessageType(r.u8("type")?),
                index_or_destination: Nwk(r.u16("indexOrDestination")?),
                aps_frame: ApsFrame::read(r)?,
                message_tag: r.message_tag("messageTag")?,
                status: r.status("status", StatusKind::Ember)?,
                message_contents: r.lv_bytes("messageContents")?,
            })
        }
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        let status_first = w.version().uses_sl_status();
        if status_first {
            w.status("status", StatusKind::Ember, self.status)?;
        }
        w.u8(self.message_type.0);
        w.u16(self.index_or_destination.0);
        self.aps_frame.write(w);
        w.message_tag("messageTag", self.message_tag)?;
        if !status_first {
            w.status("status", StatusKind::Ember, self.status)?;
        }
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(MessageSentHandler, "messageSentHandler");

/// `incomingMessageHandler` (0x0045): a message for one of the host's endpoints (or a ZDO
/// message the stack passes up, such as a device announce).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IncomingMessageHandler {
    /// Unicast, broadcast, multicast…
    pub message_type: IncomingMessageType,
    /// APS header as received.
    pub aps_frame: ApsFrame,
    /// Link quality of the last hop.
    pub last_hop_lqi: u8,
    /// RSSI of the last hop, dBm.
    pub last_hop_rssi: i8,
    /// Sender's node id.
    pub sender: Nwk,
    /// Sender's EUI-64 (v14+; `None` before v14).
    pub sender_eui64: Option<Ieee>,
    /// Binding table index of the sender, 0xFF for none.
    pub binding_index: u8,
    /// Address table index of the sender, 0xFF for none.
    pub address_index: u8,
    /// Receive timestamp (v14+; `None` before v14).
    pub timestamp: Option<u32>,
    /// The APS payload.
    pub message_contents: Vec<u8>,
}

impl IncomingMessageHandler {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let message_type = IncomingMessageType(r.u8("type")?);
        let aps_frame = ApsFrame::read(r)?;
        if r.version().uses_sl_status() {
            let sender = Nwk(r.u16("sender")?);
            let sender_eui64 = Some(Ieee::read(r, "senderEui64")?);
            let binding_index = r.u8("bindingIndex")?;
            let address_index = r.u8("addressIndex")?;
            let last_hop_lqi = r.u8("lastHopLqi")?;
            let last_hop_rssi = r.i8("lastHopRssi")?;
            let timestamp = Some(r.u32("lastHopTimestamp")?);
            Ok(Self {
                message_type,
                aps_frame,
                last_hop_lqi,
                last_hop_rssi,
                sender,
                sender_eui64,
                binding_index,
                address_index,
                timestamp,
                message_contents: r.lv_bytes("messageContents")?,
            })
        } else {
            Ok(Self {
                message_type,
                aps_frame,
                last_hop_lqi: r.u8("lastHopLqi")?,
                last_hop_rssi: r.i8("lastHopRssi")?,
                sender: Nwk(r.u16("sender")?),
                sender_eui64: None,
                binding_index: r.u8("bindingIndex")?,
                address_index: r.u8("addressIndex")?,
                timestamp: None,
                message_contents: r.lv_bytes("messageContents")?,
            })
        }
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.message_type.0);
        self.aps_frame.write(w);
        if w.version().uses_sl_status() {
            let (Some(eui64), Some(timestamp)) = (self.sender_eui64, self.timestamp) else {
                return Err(w.not_representable(
                    "senderEui64/lastHopTimestamp",
                    0,
                    "v14 and later carry the sender's EUI-64 and a timestamp",
                ));
            };
            w.u16(self.sender.0);
            w.bytes(&eui64.to_le_bytes());
            w.u8(self.binding_index);
            w.u8(self.address_index);
            w.u8(self.last_hop_lqi);
            w.i8(self.last_hop_rssi);
            w.u32(timestamp);
        } else {
            if self.sender_eui64.is_some() || self.timestamp.is_some() {
                return Err(w.not_representable(
                    "senderEui64/lastHopTimestamp",
                    0,
                    "there is no sender EUI-64 or timestamp before v14",
                ));
            }
            w.u8(self.last_hop_lqi);
            w.i8(self.last_hop_rssi);
            w.u16(self.sender.0);
            w.u8(self.binding_index);
            w.u8(self.address_index);
        }
        w.lv_bytes("messageContents", &self.message_contents)
    }

    /// The ZDO device announce this message carries, if it is one (profile 0, cluster
    /// 0x0013) and well formed.
    pub fn device_announce(&self) -> Option<DeviceAnnounce> {
        if self.aps_frame.profile_id == DeviceAnnounce::PROFILE_ID
            && self.aps_frame.cluster_id == DeviceAnnounce::CLUSTER_ID
        {
            DeviceAnnounce::decode(&self.message_contents).ok()
        } else {
            None
        }
    }
}
parameters_codec!(IncomingMessageHandler, "incomingMessageHandler");

/// `trustCenterJoinHandler` (0x0024): a device joined, rejoined or left (seen by the TC).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrustCenterJoinHandler {
    /// The device's node id.
    pub new_node_id: Nwk,
    /// The device's EUI-64.
    pub new_node_eui64: Ieee,
    /// What happened.
    pub status: DeviceUpdate,
    /// What the trust center decided.
    pub policy_decision: JoinDecision,
    /// The parent the device joined through.
    pub parent_of_new_node_id: Nwk,
}

impl TrustCenterJoinHandler {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            new_node_id: Nwk(r.u16("newNodeId")?),
            new_node_eui64: Ieee::read(r, "newNodeEui64")?,
            status: DeviceUpdate(r.u8("status")?),
            policy_decision: JoinDecision(r.u8("policyDecision")?),
            parent_of_new_node_id: Nwk(r.u16("parentOfNewNodeId")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.new_node_id.0);
        w.bytes(&self.new_node_eui64.to_le_bytes());
        w.u8(self.status.0);
        w.u8(self.policy_decision.0);
        w.u16(self.parent_of_new_node_id.0);
        Ok(())
    }
}
parameters_codec!(TrustCenterJoinHandler, "trustCenterJoinHandler");

/// `childJoinHandler` (0x0023): a child of the coordinator joined or left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChildJoinHandler {
    /// Child table index.
    pub index: u8,
    /// True on join, false on leave.
    pub joining: bool,
    /// The child's node id.
    pub child_id: Nwk,
    /// The child's EUI-64.
    pub child_eui64: Ieee,
    /// The child's type.
    pub child_type: NodeType,
}

impl ChildJoinHandler {
    pub(super) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            index: r.u8("index")?,
            joining: r.bool("joining")?,
            child_id: Nwk(r.u16("childId")?),
            child_eui64: Ieee::read(r, "childEui64")?,
            child_type: NodeType(r.u8("childType")?),
        })
    }
    pub(super) fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.index);
        w.u8(u8::from(self.joining));
        w.u16(self.child_id.0);
        w.bytes(&self.child_eui64.to_le_bytes());
        w.u8(self.child_type.0);
        Ok(())
    }
}
parameters_codec!(ChildJoinHandler, "childJoinHandler");
