//! The devices and the network as the proxy learns them (UG100 `trustCenterJoinHandler`,
//! `childJoinHandler`, ZDO Device_annce in `incomingMessageHandler`, `stackStatusHandler`,
//! `getNetworkParameters`, `getEui64`, `getNodeId`, `maximumPayloadLength`): the device table
//! from joins and announces that upstream's traffic carries (observed, and passed on), and the
//! network's parameters, asked for with our own commands after each `NETWORK_UP`, which make
//! the coordinator `Up` for zigbee-otad.

use std::time::Instant;

use tracing::{debug, info};

use super::relay::{Purpose, Relay, RelayEvent};
use crate::coordinator::device_table::Learned;
use crate::coordinator::{CoordinatorState, Ieee, NetworkInfo, Nwk};
use crate::ezsp::command::{Command, Response};

/// What the network queries after `NETWORK_UP` have answered so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NetworkQuery {
    parameters: Option<(u8, u16, u64)>,
    eui64: Option<Ieee>,
    node_id: Option<Nwk>,
    max_payload: Option<usize>,
}

impl Relay {
    pub(super) fn device_joined(&mut self, nwk: Nwk, ieee: Ieee, now: Instant) {
        self.witness.saw_join(nwk, ieee, now);
        if self.devices.learn(nwk, ieee) != Learned::Unchanged {
            self.emit(RelayEvent::DeviceTableChanged);
        }
        info!("device {ieee} is {nwk}");
        self.emit(RelayEvent::DeviceJoined { nwk, ieee });
    }

    /// Learns a claimed address pair when the device table's judgement accepts it.
    pub(super) fn believe(
        &mut self,
        claimed: (Nwk, Ieee),
        sender: Nwk,
        sender_ieee: Option<Ieee>,
        now: Instant,
    ) -> bool {
        let vouched = self.witness.vouches(claimed.0, claimed.1, now);
        match self
            .devices
            .judge_announce(claimed, sender, sender_ieee, vouched)
        {
            Ok(()) => {
                if self.devices.learn(claimed.0, claimed.1) != Learned::Unchanged {
                    self.emit(RelayEvent::DeviceTableChanged);
                }
                true
            }
            Err(refused) => {
                debug!(
                    "not believed: {} as {} from {sender}: {refused}",
                    claimed.1, claimed.0
                );
                false
            }
        }
    }

    pub(super) fn network_came_up(&mut self, now: Instant) {
        self.network_query = NetworkQuery::default();
        for command in [
            Command::GetNetworkParameters,
            Command::GetEui64,
            Command::GetNodeId,
            Command::MaximumPayloadLength,
        ] {
            self.queue_ours(&command, Purpose::Query(command.frame_id()), now);
        }
    }

    pub(super) fn network_answer(&mut self, response: Response, now: Instant) {
        let _ = now;
        let query = &mut self.network_query;
        match response {
            Response::GetNetworkParameters(r) if r.status.is_success() => {
                let p = r.parameters;
                query.parameters = Some((p.radio_channel, p.pan_id, p.extended_pan_id.0));
            }
            Response::GetEui64 { eui64 } => query.eui64 = Some(eui64),
            Response::GetNodeId { node_id } => query.node_id = Some(node_id),
            Response::MaximumPayloadLength { aps_length } => {
                query.max_payload = Some(usize::from(aps_length));
            }
            other => debug!("network query answered by {:?}", other.frame_id()),
        }
        let NetworkQuery {
            parameters: Some((channel, pan_id, extended_pan_id)),
            eui64: Some(ieee),
            node_id: Some(nwk),
            max_payload: Some(max_payload),
        } = self.network_query
        else {
            return;
        };
        let Some(version) = self.version else { return };
        let info = NetworkInfo {
            ieee,
            nwk,
            channel,
            pan_id,
            extended_pan_id,
            protocol_version: version.get(),
        };
        info!(
            "network up through the proxy: channel {channel}, PAN 0x{pan_id:04X}, coordinator {ieee}, max APS payload {max_payload}"
        );
        self.network = Some(info);
        self.max_payload = Some(max_payload);
        self.set_state(CoordinatorState::Up);
    }

    pub(super) fn network_down(&mut self) {
        self.max_payload = None;
        self.network_query = NetworkQuery::default();
        if self.state == CoordinatorState::Up {
            self.set_state(CoordinatorState::NetworkDown);
        }
    }
}
