//! The device table as an EZSP host learns it, for the [`EzspHost`](super::EzspHost) and the
//! proxy's relay alike (UG100 `trustCenterJoinHandler`, `childJoinHandler`, and ZDO
//! Device_annce and the sender's EUI64 in `incomingMessageHandler`).
//!
//! A join or leave the trust centre reports is a fact, learned at once and remembered as the
//! voucher for the announce that follows ([`JoinWitness`]). An announce, or the IEEE address a
//! message claims for its sender, is a claim, learned only when
//! [`DeviceTable::judge_announce`] accepts it. What was learned is queued as
//! [`AddressNews`], in order, for the host to report as its own events.

use std::collections::VecDeque;
use std::time::Instant;

use tracing::{debug, info};

use crate::coordinator::device_table::{JoinWitness, Learned};
use crate::coordinator::{DeviceTable, Ieee, IncomingMessage, Nwk};
use crate::ezsp::command::{Callback, IncomingMessageHandler};
use crate::ezsp::types::{DeviceUpdate, IncomingMessageType};

/// What the table learned, for the host's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressNews {
    /// The table changed: save it.
    TableChanged,
    /// A device joined or announced itself.
    Joined {
        /// Its network address.
        nwk: Nwk,
        /// Its IEEE address.
        ieee: Ieee,
    },
}

/// The device table, the joins that vouch for announces, and the news not yet reported.
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    devices: DeviceTable,
    witness: JoinWitness,
    news: VecDeque<AddressNews>,
}

impl Addresses {
    /// Starts from the table kept from earlier runs.
    pub fn new(devices: DeviceTable) -> Self {
        Addresses {
            devices,
            ..Addresses::default()
        }
    }

    /// The device table.
    pub fn devices(&self) -> &DeviceTable {
        &self.devices
    }

    /// The IEEE address of the device using `nwk`, when known.
    pub fn ieee(&self, nwk: Nwk) -> Option<Ieee> {
        self.devices.ieee(nwk)
    }

    /// The next thing learned, oldest first.
    pub fn poll_news(&mut self) -> Option<AddressNews> {
        self.news.pop_front()
    }

    /// Learns from a trust-centre join or leave, or a child join; false for any other
    /// callback (and a child leaving, which the trust centre reports too).
    pub fn join_callback(&mut self, callback: &Callback, now: Instant) -> bool {
        match callback {
            Callback::TrustCenterJoinHandler(join) if join.status == DeviceUpdate::DEVICE_LEFT => {
                if self.devices.forget(join.new_node_eui64).is_some() {
                    self.news.push_back(AddressNews::TableChanged);
                }
            }
            Callback::TrustCenterJoinHandler(join) => {
                self.joined(join.new_node_id, join.new_node_eui64, now);
            }
            Callback::ChildJoinHandler(child) if child.joining => {
                self.joined(child.child_id, child.child_eui64, now);
            }
            Callback::ChildJoinHandler(_) => {}
            _ => return false,
        }
        true
    }

    /// The trust centre saw `ieee` join or rejoin as `nwk`: learned, and remembered as the
    /// voucher for the announce that follows.
    fn joined(&mut self, nwk: Nwk, ieee: Ieee, now: Instant) {
        self.witness.saw_join(nwk, ieee, now);
        self.learn(nwk, ieee);
        info!("device {ieee} is {nwk}");
        self.news.push_back(AddressNews::Joined { nwk, ieee });
    }

    /// Learns a pair without judging it (one the stick itself looked up).
    pub fn learn(&mut self, nwk: Nwk, ieee: Ieee) {
        if self.devices.learn(nwk, ieee) != Learned::Unchanged {
            self.news.push_back(AddressNews::TableChanged);
        }
    }

    /// Learns an address pair a frame claims (an announce, or the sender's IEEE address) when
    /// the device table's judgement accepts it; false when refused (logged at debug: a hostile
    /// device must not flood the journal).
    pub fn believe(
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
                self.learn(claimed.0, claimed.1);
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

    /// The sender's IEEE address: `claimed` when believed, else what the table knows.
    pub fn sender_ieee(
        &mut self,
        source: Nwk,
        claimed: Option<Ieee>,
        now: Instant,
    ) -> Option<Ieee> {
        match claimed {
            Some(ieee) if self.believe((source, ieee), source, Some(ieee), now) => Some(ieee),
            _ => self.devices.ieee(source),
        }
    }

    /// An incoming message: learns the announce it carries and the IEEE address it claims for
    /// its sender, and gives it as the daemon sees it (`read_at`: when its bytes were read).
    pub fn hear(
        &mut self,
        incoming: IncomingMessageHandler,
        read_at: Instant,
        now: Instant,
    ) -> IncomingMessage {
        let source = incoming.sender;
        let sender_ieee = incoming.sender_eui64.filter(|e| *e != Ieee::default());
        if let Some(announce) = incoming.device_announce() {
            let (nwk, ieee) = (announce.node_id, announce.eui64);
            if self.believe((nwk, ieee), source, sender_ieee, now) {
                info!("device {ieee} announced itself as {nwk}");
                self.news.push_back(AddressNews::Joined { nwk, ieee });
            }
        }
        let ieee = self.sender_ieee(source, sender_ieee, now);
        let aps = incoming.aps_frame;
        IncomingMessage {
            source,
            ieee,
            src_endpoint: aps.source_endpoint,
            dst_endpoint: aps.destination_endpoint,
            profile: aps.profile_id,
            cluster: aps.cluster_id,
            aps_sequence: aps.sequence,
            payload: incoming.message_contents,
            lqi: incoming.last_hop_lqi,
            rssi: incoming.last_hop_rssi,
            broadcast: !matches!(
                incoming.message_type,
                IncomingMessageType::UNICAST | IncomingMessageType::UNICAST_REPLY
            ),
            read_at: Some(read_at),
        }
    }
}
