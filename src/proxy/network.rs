//! The devices and the network as the proxy learns them (UG100 `stackStatusHandler`,
//! `getNetworkParameters`, `getEui64`, `getNodeId`, `maximumPayloadLength`): the device table
//! from joins and announces that upstream's traffic carries (observed, and passed on; learned
//! as the EZSP host learns them, [`crate::coordinator::ezsp::addresses`]), and the
//! network's parameters, asked for with our own commands after each `NETWORK_UP`, which make
//! the coordinator `Up` for zigbee-otad.

use std::time::Instant;

use tracing::{debug, info};

use super::relay::{Purpose, Relay, RelayEvent};
use crate::coordinator::ezsp::addresses::AddressNews;
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
    /// Reports what the device table learned.
    pub(super) fn report_address_news(&mut self) {
        while let Some(news) = self.addresses.poll_news() {
            self.emit(match news {
                AddressNews::TableChanged => RelayEvent::DeviceTableChanged,
                AddressNews::Joined { nwk, ieee } => RelayEvent::DeviceJoined { nwk, ieee },
            });
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
