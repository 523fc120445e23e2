//! Parts of the simulated ZNP kept out of `znp.rs`: the ZDO loopback of data requests to the
//! stick itself, and the MT requests that have no typed [`Message`] because only other hosts
//! send them: zigbee-herdsman's `zstack` adapter (10.9.5, `adapter/z-stack/adapter/manager.js`,
//! `zStackAdapter.js`) asks for the extended address, the device info, the active endpoints,
//! groups and the extended network info while it starts. Layouts as TI's `MT_ZDO.c`/`MT_UTIL.c`
//! and herdsman's `znp/definition.js` give them.

use super::SimZnp;
use crate::wire::{PutLe, Reader};
use crate::znp::command::{Message, status};
use crate::znp::frame::{Frame, FrameType, Subsystem};

/// `DeviceState` of a started coordinator, and of one holding (not started).
const STATE_COORDINATOR: u8 = 0x09;
const STATE_HOLD: u8 = 0x00;
/// `UTIL.GetDeviceInfo` device types the firmware can be: coordinator, router, end device.
const DEVICE_TYPES: u8 = 0x07;

fn srsp(subsystem: Subsystem, id: u8, payload: Vec<u8>) -> Message {
    Message::Other(Frame::new(FrameType::Srsp, subsystem, id, payload))
}

impl SimZnp {
    /// The answers to an untyped SREQ, or `None` when the stick does not know it.
    pub(super) fn answer_extra(&mut self, frame: &Frame) -> Option<Vec<Message>> {
        if frame.frame_type != FrameType::Sreq {
            return None;
        }
        let mut r = Reader::new(&frame.payload);
        let ieee = self.config.ieee.0;
        let state = if self.network_up {
            STATE_COORDINATOR
        } else {
            STATE_HOLD
        };
        Some(match (frame.subsystem, frame.id) {
            // SYS.GetExtAddr
            (Subsystem::SYS, 0x04) => vec![srsp(Subsystem::SYS, 0x04, ieee.to_le_bytes().to_vec())],
            // SYS.StackTune: the value it was given.
            (Subsystem::SYS, 0x0F) => vec![srsp(Subsystem::SYS, 0x0F, vec![0])],
            // UTIL.GetDeviceInfo
            (Subsystem::UTIL, 0x00) => {
                let mut out = vec![status::SUCCESS];
                out.put_u64_le(ieee);
                out.put_u16_le(0x0000);
                out.extend_from_slice(&[DEVICE_TYPES, state, 0]);
                vec![srsp(Subsystem::UTIL, 0x00, out)]
            }
            // UTIL.LEDControl
            (Subsystem::UTIL, 0x0A) => vec![srsp(Subsystem::UTIL, 0x0A, vec![status::SUCCESS])],
            // ZDO.ActiveEpReq: DstAddr, NWKAddrOfInterest -> status, then ZDO.ActiveEpRsp.
            (Subsystem::ZDO, 0x05) => {
                let destination = r.u16("DstAddr").ok()?;
                let of_interest = r.u16("NWKAddrOfInterest").ok()?;
                let endpoints: Vec<u8> = if of_interest == 0 {
                    self.endpoints.iter().map(|e| e.endpoint).collect()
                } else {
                    self.radio
                        .devices()
                        .iter()
                        .filter(|d| d.config().nwk.0 == of_interest)
                        .map(|d| d.config().endpoint)
                        .collect()
                };
                let mut out = Vec::new();
                out.put_u16_le(destination);
                out.push(status::SUCCESS);
                out.put_u16_le(of_interest);
                out.push(u8::try_from(endpoints.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&endpoints);
                vec![
                    srsp(Subsystem::ZDO, 0x05, vec![status::SUCCESS]),
                    Message::Other(Frame::new(FrameType::Areq, Subsystem::ZDO, 0x85, out)),
                ]
            }
            // ZDO.ExtFindGroup: Endpoint, GroupId -> status, group id, name.
            (Subsystem::ZDO, 0x4A) => {
                let endpoint = r.u8("Endpoint").ok()?;
                let group = r.u16("GroupId").ok()?;
                let found = self.groups.contains(&(endpoint, group));
                let mut out = vec![if found {
                    status::SUCCESS
                } else {
                    status::FAILURE
                }];
                out.put_u16_le(group);
                out.push(0);
                vec![srsp(Subsystem::ZDO, 0x4A, out)]
            }
            // ZDO.ExtAddGroup: Endpoint, GroupId, name.
            (Subsystem::ZDO, 0x4B) => {
                let endpoint = r.u8("Endpoint").ok()?;
                let group = r.u16("GroupId").ok()?;
                self.groups.push((endpoint, group));
                vec![srsp(Subsystem::ZDO, 0x4B, vec![status::SUCCESS])]
            }
            // ZDO.ExtNwkInfo: short address, state, PAN, parent, extended PAN, parent IEEE,
            // channel.
            (Subsystem::ZDO, 0x50) => {
                let network = self.stored_network().unwrap_or_default();
                let mut out = Vec::new();
                out.put_u16_le(0x0000);
                out.push(state);
                out.put_u16_le(network.pan_id);
                out.put_u16_le(0x0000);
                out.put_u64_le(network.extended_pan_id);
                out.put_u64_le(ieee);
                out.push(network.channel);
                vec![srsp(Subsystem::ZDO, 0x50, out)]
            }
            _ => return None,
        })
    }
}

/// TI's manufacturer code, in the node descriptor of the stick's own ZDO.
const TEXAS_INSTRUMENTS: u16 = 0x0000;

impl SimZnp {
    /// An AF data request to the stick's own address: Z-Stack delivers it locally and makes the
    /// `AF.DataConfirm` itself (`AF_DataRequest` in TI's `af.c`). A ZDO request (endpoint 0)
    /// is answered by the stick's ZDO ([`crate::sim::zdo`]: node, active endpoint and simple
    /// descriptors of the endpoints the host registered), and the answer reaches the host as
    /// `ZDO.MsgCbIncoming`, which zigpy-znp turns into the answer to its request (zigpy reads
    /// the coordinator's descriptors this way when it starts).
    pub(super) fn loop_back(&mut self, endpoints: (u8, u8), cluster: u16, data: &[u8], tsn: u8) {
        let (src_endpoint, dst_endpoint) = endpoints;
        if dst_endpoint == 0 {
            let node = crate::sim::zdo::OwnNode {
                manufacturer_code: TEXAS_INSTRUMENTS,
                ieee: self.config.ieee.0.to_le_bytes(),
                endpoints: self
                    .endpoints
                    .iter()
                    .map(|e| crate::ezsp::command::AddEndpoint {
                        endpoint: e.endpoint,
                        profile_id: e.profile,
                        device_id: e.device_id,
                        device_version: e.device_version,
                        input_clusters: e.input_clusters.clone(),
                        output_clusters: e.output_clusters.clone(),
                    })
                    .collect(),
            };
            if let Some((answer_cluster, payload)) = crate::sim::zdo::answer(&node, cluster, data)
                && let Some((&sequence, rest)) = payload.split_first()
            {
                self.send(Message::ZdoMsgCbIncoming {
                    source: 0x0000,
                    was_broadcast: 0,
                    cluster: answer_cluster,
                    security_use: 0,
                    sequence,
                    mac_destination: 0x0000,
                    data: rest.to_vec(),
                });
            }
        }
        self.send(Message::AfDataConfirm {
            status: status::SUCCESS,
            endpoint: src_endpoint,
            tsn,
        });
    }
}
