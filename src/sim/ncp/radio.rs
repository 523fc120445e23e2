//! The simulated NCP's messaging (UG100 §7 "Messaging Frames"): the host's unicasts and
//! broadcasts handed to the shared [`crate::sim::radio::Radio`], their delivery reports
//! (`messageSentHandler`), the devices' own messages and announces as callbacks to the host,
//! and the NCP's own ZDO answers.

use std::time::Instant;

use super::*;
use crate::ezsp::command::{SendBroadcast, SendUnicast};
use crate::sim::radio::{DeviceFrame, Due, ota_endpoint};

impl SimNcp {
    pub(super) fn take_aps_sequence(&mut self) -> u8 {
        let sequence = self.next_aps_sequence;
        self.next_aps_sequence = sequence.wrapping_add(1);
        sequence
    }

    /// `sendUnicast`: refused, looped back to the NCP's own node, or put on the air with its
    /// `messageSentHandler` to come.
    pub(super) fn accept_unicast(&mut self, send: SendUnicast, now: Instant) -> Status {
        let SendUnicast {
            message_type,
            index_or_destination: destination,
            aps_frame,
            message_tag,
            message_contents: payload,
        } = send;
        if !self.network_up {
            return self.ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN);
        }
        if payload.len() > usize::from(self.config.max_aps_payload) {
            return self.ember_status(EmberStatus::MESSAGE_TOO_LONG, SlStatus::MESSAGE_TOO_LONG);
        }
        if self.radio.transmit_queue_full(&self.config.faults) {
            return self.ember_status(
                EmberStatus::MAX_MESSAGE_LIMIT_REACHED,
                SlStatus::ZIGBEE_MAX_MESSAGE_LIMIT_REACHED,
            );
        }
        if destination == Nwk::COORDINATOR {
            self.radio.hold_unicast();
            self.loop_back(message_type, aps_frame, message_tag, &payload, now);
            return self.ok();
        }
        let frame = DeviceFrame {
            nwk: destination,
            endpoint: aps_frame.destination_endpoint,
            cluster: aps_frame.cluster_id,
            payload,
        };
        let fate = self
            .radio
            .send_unicast(frame, now, &self.config.faults, &mut self.rng);
        if fate.reported {
            // An APS ACK comes back over the radio; a failure is known after the retries.
            let delay = fate.radio_delay.unwrap_or(NO_ROUTE_DELAY / 4);
            let report_after = if fate.delivered { delay * 2 } else { delay * 4 };
            self.radio.schedule(
                now + report_after + self.config.faults.delivery_report_delay,
                Scheduled::MessageSent {
                    message_type,
                    destination,
                    aps_frame,
                    message_tag,
                    delivered: fate.delivered,
                    unicast: true,
                },
            );
        }
        self.ok()
    }

    /// A unicast to the NCP's own node: delivered at once; a ZDO request is answered by the
    /// node's own ZDO server ([`super::zdo`]), whose response reaches the host as an incoming
    /// message from 0x0000.
    pub(super) fn loop_back(
        &mut self,
        message_type: OutgoingMessageType,
        aps_frame: ApsFrame,
        message_tag: u16,
        payload: &[u8],
        now: Instant,
    ) {
        if aps_frame.profile_id == DeviceAnnounce::PROFILE_ID {
            let node = crate::sim::zdo::OwnNode {
                manufacturer_code: self.stack.manufacturer_code(),
                ieee: self.config.ieee.to_le_bytes(),
                endpoints: self.endpoints.clone(),
            };
            if let Some((cluster, response)) =
                crate::sim::zdo::answer(&node, aps_frame.cluster_id, payload)
            {
                self.radio.schedule(
                    now + BROADCAST_DELAY * 2,
                    Scheduled::FromOwnZdo {
                        cluster,
                        payload: response,
                    },
                );
            }
        }
        self.radio.schedule(
            now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
            Scheduled::MessageSent {
                message_type,
                destination: Nwk::COORDINATOR,
                aps_frame,
                message_tag,
                delivered: true,
                unicast: true,
            },
        );
    }

    /// `sendBroadcast`: every device hears it; its `messageSentHandler` follows.
    pub(super) fn accept_broadcast(&mut self, send: SendBroadcast, now: Instant) -> Status {
        let SendBroadcast {
            destination,
            aps_frame,
            message_tag,
            ..
        } = send;
        if !self.network_up {
            return self.ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN);
        }
        self.radio.send_broadcast(
            now,
            aps_frame.destination_endpoint,
            aps_frame.cluster_id,
            &send.message_contents,
        );
        self.radio.schedule(
            now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
            Scheduled::MessageSent {
                message_type: OutgoingMessageType::BROADCAST,
                destination,
                aps_frame,
                message_tag,
                delivered: true,
                unicast: false,
            },
        );
        self.ok()
    }

    // -----------------------------------------------------------------------------------------
    // The radio

    pub(super) fn run_scheduled(&mut self, due: Due<Scheduled>, now: Instant) {
        let item = match due {
            Due::FromDevice(frame) => return self.deliver_to_host(frame),
            Due::Announce { nwk, ieee } => return self.announce_to_host(nwk, ieee),
            Due::Stick(item) => item,
        };
        match item {
            Scheduled::Callback {
                frame_id,
                parameters,
            } => self.send_callback(Callback::Other {
                frame_id,
                parameters,
            }),
            Scheduled::NetworkDown => {
                self.events.push_back(SimEvent::NetworkDown);
                self.send_callback(Callback::StackStatusHandler {
                    status: self
                        .ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN),
                });
            }
            Scheduled::NetworkUp => {
                self.network_up = true;
                self.events.push_back(SimEvent::NetworkUp);
                self.send_callback(Callback::StackStatusHandler {
                    status: self.ember_status(EmberStatus::NETWORK_UP, SlStatus::ZIGBEE_NETWORK_UP),
                });
                if self.config.announce_devices {
                    self.radio.announce_once(now);
                }
            }
            Scheduled::FromOwnZdo { cluster, payload } => {
                let aps_frame = ApsFrame {
                    profile_id: DeviceAnnounce::PROFILE_ID,
                    cluster_id: cluster,
                    source_endpoint: 0,
                    destination_endpoint: 0,
                    options: ApsOptions::NONE,
                    group_id: 0,
                    sequence: self.take_aps_sequence(),
                };
                let own = self.config.ieee;
                self.send_incoming(aps_frame, Nwk(Nwk::COORDINATOR.0), Some(own), payload);
            }
            Scheduled::MessageSent {
                message_type,
                destination,
                aps_frame,
                message_tag,
                delivered,
                unicast,
            } => {
                if unicast {
                    self.radio.unicast_reported();
                }
                let status = if delivered {
                    self.ok()
                } else {
                    self.ember_status(
                        EmberStatus::DELIVERY_FAILED,
                        SlStatus::ZIGBEE_DELIVERY_FAILED,
                    )
                };
                self.send_callback(Callback::MessageSentHandler(MessageSentHandler {
                    message_type,
                    index_or_destination: destination,
                    aps_frame,
                    message_tag,
                    status,
                    message_contents: Vec::new(),
                }));
            }
        }
    }

    /// A device's OTA frame (or its answer to a Basic cluster read) reaches the NCP: up to the
    /// host if an endpoint takes the OTA cluster.
    pub(super) fn deliver_to_host(&mut self, frame: DeviceFrame) {
        let registered = self
            .endpoints
            .iter()
            .map(|e| (e.endpoint, e.input_clusters.as_slice()));
        let Some(endpoint) = ota_endpoint(registered).filter(|_| self.network_up) else {
            return;
        };
        let ieee = self.radio.device(frame.nwk).map(|d| d.config().ieee);
        let aps_frame = ApsFrame {
            profile_id: PROFILE_HOME_AUTOMATION,
            cluster_id: frame.cluster,
            source_endpoint: frame.endpoint,
            destination_endpoint: endpoint,
            options: ApsOptions::RETRY,
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        self.resets.message_to_host(&frame, &mut self.events);
        self.send_incoming(aps_frame, frame.nwk, ieee, frame.payload);
    }

    pub(super) fn announce_to_host(&mut self, nwk: Nwk, ieee: Ieee) {
        if !self.network_up {
            return;
        }
        let mut payload = Vec::new();
        DeviceAnnounce {
            transaction_sequence: self.take_aps_sequence(),
            node_id: nwk,
            eui64: ieee,
            capability: 0x8E,
        }
        .encode(&mut payload);
        let aps_frame = ApsFrame {
            profile_id: DeviceAnnounce::PROFILE_ID,
            cluster_id: DeviceAnnounce::CLUSTER_ID,
            source_endpoint: 0,
            destination_endpoint: 0,
            options: ApsOptions::NONE,
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        self.send_incoming(aps_frame, nwk, Some(ieee), payload);
    }

    pub(super) fn send_incoming(
        &mut self,
        aps_frame: ApsFrame,
        nwk: Nwk,
        ieee: Option<Ieee>,
        payload: Vec<u8>,
    ) {
        let v14 = self.version.uses_sl_status();
        let broadcast = aps_frame.profile_id == DeviceAnnounce::PROFILE_ID
            && aps_frame.cluster_id == DeviceAnnounce::CLUSTER_ID;
        self.send_callback(Callback::IncomingMessageHandler(IncomingMessageHandler {
            message_type: if broadcast {
                IncomingMessageType::BROADCAST
            } else {
                IncomingMessageType::UNICAST
            },
            aps_frame,
            last_hop_lqi: 0xFF,
            last_hop_rssi: -40,
            sender: nwk,
            sender_eui64: v14.then(|| Ieee(ieee.map_or(0, |i| i.0))),
            binding_index: 0xFF,
            address_index: 0xFF,
            timestamp: v14.then_some(0),
            message_contents: payload,
        }));
    }

    pub(super) fn send_callback(&mut self, callback: Callback) {
        let mut out = Vec::new();
        // Callbacks reuse the last answered command's sequence number, which no pending
        // command holds.
        if callback
            .encode_frame(self.version, self.last_sequence, &mut out)
            .is_ok()
        {
            self.queue_frame(out);
        }
    }
}
