//! The simulated NCP's EZSP side (UG100 §2 version negotiation, §3 frames): the legacy
//! `version` exchange, `invalidCommand` for frames before negotiation or outside the frame's
//! versions in the [`ezsp_frames!`](crate::ezsp::command) table, and the answer to each
//! command: the typed ones here, the stack tables' frames through [`StackTables::answer`].

use std::time::{Duration, Instant};

use super::*;

impl SimNcp {
    // -----------------------------------------------------------------------------------------
    // EZSP

    pub(super) fn handle_ezsp(&mut self, frame: &[u8], now: Instant) {
        if FrameFormat::detect(frame) == FrameFormat::Legacy {
            self.handle_legacy(frame);
            return;
        }
        match Frame::decode(self.version, frame) {
            Ok(Frame {
                header,
                body: Body::Command(command),
            }) => {
                self.last_sequence = header.sequence;
                if let Command::Version(_) = command {
                    self.negotiation = Negotiation::Answered;
                } else if self.negotiation == Negotiation::None {
                    // After a reboot nothing works until the host negotiates again.
                    self.respond_invalid(header.sequence, EzspStatus::ERROR_VERSION_NOT_SET);
                    return;
                }
                // The frame table says in which versions a frame exists; outside them a real
                // NCP does not know the frame id.
                if crate::ezsp::command::frame_versions(command.frame_id())
                    .is_some_and(|versions| !versions.contains(&self.version.get()))
                {
                    self.respond_invalid(header.sequence, EzspStatus::ERROR_INVALID_FRAME_ID);
                    return;
                }
                let response = self.answer(command, now);
                let mut out = Vec::new();
                if response
                    .encode_frame(self.version, header.sequence, &mut out)
                    .is_ok()
                {
                    self.queue_frame(out);
                }
            }
            Ok(_) => {}
            Err(_) => {
                if let Some(&sequence) = frame.first() {
                    self.respond_invalid(sequence, EzspStatus::ERROR_INVALID_FRAME_ID);
                }
            }
        }
    }

    /// The host's first `version`, in the legacy header: answer ours in the same header.
    pub(super) fn handle_legacy(&mut self, frame: &[u8]) {
        let Ok((header, parameters)) = FrameHeader::decode(FrameFormat::Legacy, frame) else {
            return;
        };
        if header.frame_id != FrameId::VERSION || parameters.is_empty() {
            return;
        }
        self.last_sequence = header.sequence;
        self.negotiation = Negotiation::Answered;
        let mut out = Vec::new();
        self.version_response()
            .encode_legacy_frame(header.sequence, &mut out);
        self.queue_frame(out);
    }

    pub(super) fn version_response(&self) -> VersionResponse {
        VersionResponse {
            protocol_version: self.version.get(),
            stack_type: 2,
            stack_version: stack_version(self.version),
        }
    }

    pub(super) fn respond_invalid(&mut self, sequence: u8, status: EzspStatus) {
        let sl = if status == EzspStatus::ERROR_VERSION_NOT_SET {
            SlStatus::INVALID_STATE
        } else {
            SlStatus::INVALID_PARAMETER
        };
        let response = Response::InvalidCommand {
            status: self.ezsp_status(status, sl),
        };
        let mut out = Vec::new();
        if response
            .encode_frame(self.version, sequence, &mut out)
            .is_ok()
        {
            self.queue_frame(out);
        }
    }

    pub(super) fn ok(&self) -> Status {
        Status::Sl(SlStatus::OK)
    }

    pub(super) fn ember_status(&self, ember: EmberStatus, sl: SlStatus) -> Status {
        if self.version.uses_sl_status() {
            Status::Sl(sl)
        } else {
            Status::Ember(ember)
        }
    }

    pub(super) fn ezsp_status(&self, ezsp: EzspStatus, sl: SlStatus) -> Status {
        if self.version.uses_sl_status() {
            Status::Sl(sl)
        } else {
            Status::Ezsp(ezsp)
        }
    }

    pub(super) fn answer(&mut self, command: Command, now: Instant) -> Response {
        let invalid_call =
            self.ezsp_status(EzspStatus::ERROR_INVALID_CALL, SlStatus::INVALID_STATE);
        match command {
            Command::Version(_) => Response::Version(self.version_response()),
            Command::GetConfigurationValue(get) => {
                let value = self
                    .configuration
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == get.config_id)
                    .map_or(0, |(_, v)| *v);
                Response::GetConfigurationValue(GetConfigurationValueResponse {
                    status: self.ok(),
                    value,
                })
            }
            Command::SetConfigurationValue(set) => {
                if self.network_up {
                    return Response::SetConfigurationValue {
                        status: invalid_call,
                    };
                }
                self.configuration.push((set.config_id, set.value));
                Response::SetConfigurationValue { status: self.ok() }
            }
            Command::GetValue(get) => {
                if let Some((_, value)) =
                    self.values.iter().rev().find(|(id, _)| *id == get.value_id)
                {
                    return Response::GetValue(GetValueResponse {
                        status: self.ok(),
                        value: value.clone(),
                    });
                }
                if get.value_id == ValueId::VERSION_INFO {
                    let build = 0x0100u16.to_le_bytes();
                    let [major, minor, patch] = firmware_version(self.version);
                    Response::GetValue(GetValueResponse {
                        status: self.ok(),
                        value: vec![build[0], build[1], major, minor, patch, 0, 0xAA],
                    })
                } else {
                    Response::GetValue(GetValueResponse {
                        status: self
                            .ezsp_status(EzspStatus::ERROR_INVALID_ID, SlStatus::INVALID_PARAMETER),
                        value: Vec::new(),
                    })
                }
            }
            Command::SetValue(set) => {
                self.stack.set_value(set.value_id.0, &set.value);
                self.values.retain(|(id, _)| *id != set.value_id);
                self.values.push((set.value_id, set.value));
                Response::SetValue { status: self.ok() }
            }
            Command::SetPolicy(_) => Response::SetPolicy { status: self.ok() },
            Command::AddEndpoint(endpoint) => {
                let duplicate = self
                    .endpoints
                    .iter()
                    .any(|e| e.endpoint == endpoint.endpoint);
                if self.network_up || duplicate {
                    return Response::AddEndpoint {
                        status: invalid_call,
                    };
                }
                self.events.push_back(SimEvent::EndpointRegistered {
                    endpoint: endpoint.endpoint,
                    input_clusters: endpoint.input_clusters.clone(),
                });
                self.endpoints.push(endpoint);
                Response::AddEndpoint { status: self.ok() }
            }
            Command::NetworkInit(_) => {
                if self.stored_network.is_some() && !self.network_up {
                    // Up at once for queries; the stack status callback follows.
                    self.network_up = true;
                    self.radio
                        .schedule(now + NETWORK_UP_DELAY, Scheduled::NetworkUp);
                    Response::NetworkInit { status: self.ok() }
                } else if self.network_up {
                    Response::NetworkInit {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    }
                } else {
                    Response::NetworkInit {
                        status: self.ember_status(EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED),
                    }
                }
            }
            Command::NetworkState => Response::NetworkState {
                status: if self.network_up {
                    NetworkStatus::JOINED_NETWORK
                } else {
                    NetworkStatus::NO_NETWORK
                },
            },
            Command::SetInitialSecurityState(set) => {
                self.stack.set_initial_security(
                    set.state.network_key.0,
                    set.state.preconfigured_key.0,
                    set.state.network_key_sequence_number,
                );
                Response::SetInitialSecurityState { status: self.ok() }
            }
            Command::FormNetwork(form) => {
                if self.network_up {
                    return Response::FormNetwork {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    };
                }
                self.stored_network = Some(form.parameters);
                self.network_up = true;
                self.radio
                    .schedule(now + NETWORK_UP_DELAY, Scheduled::NetworkUp);
                Response::FormNetwork { status: self.ok() }
            }
            Command::PermitJoining(permit) => {
                if !self.network_up {
                    return Response::PermitJoining {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    };
                }
                self.events.push_back(SimEvent::PermitJoining {
                    duration: permit.duration,
                });
                Response::PermitJoining { status: self.ok() }
            }
            Command::GetNetworkParameters => match (self.network_up, self.stored_network) {
                (true, Some(parameters)) => {
                    Response::GetNetworkParameters(GetNetworkParametersResponse {
                        status: self.ok(),
                        node_type: NodeType::COORDINATOR,
                        parameters,
                    })
                }
                _ => Response::GetNetworkParameters(GetNetworkParametersResponse {
                    status: self.ember_status(EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED),
                    node_type: NodeType::UNKNOWN_DEVICE,
                    parameters: empty_network(),
                }),
            },
            Command::GetEui64 => Response::GetEui64 {
                eui64: self.config.ieee,
            },
            Command::GetNodeId => Response::GetNodeId {
                node_id: Nwk::COORDINATOR,
            },
            Command::MaximumPayloadLength => Response::MaximumPayloadLength {
                aps_length: self.config.max_aps_payload,
            },
            Command::SendUnicast(send) => Response::SendUnicast(SendResponse {
                status: self.accept_unicast(send, now),
                sequence: self.take_aps_sequence(),
            }),
            Command::SendBroadcast(send) => Response::SendBroadcast(SendResponse {
                status: self.accept_broadcast(send, now),
                sequence: self.take_aps_sequence(),
            }),
            Command::LookupNodeIdByEui64(lookup) => {
                let found = self
                    .radio
                    .devices()
                    .iter()
                    .find(|d| d.config().ieee.0 == lookup.eui64.0)
                    .map(|d| d.config().nwk);
                Response::LookupNodeIdByEui64(LookupNodeIdByEui64Response {
                    status: self.version.uses_sl_status().then_some(match found {
                        Some(_) => Status::Sl(SlStatus::OK),
                        None => Status::Sl(SlStatus::NOT_FOUND),
                    }),
                    node_id: found.unwrap_or(Nwk::NULL),
                })
            }
            Command::LookupEui64ByNodeId(lookup) => {
                let found = self.radio.device(lookup.node_id).map(|d| d.config().ieee);
                Response::LookupEui64ByNodeId(LookupEui64ByNodeIdResponse {
                    status: match found {
                        Some(_) => self.ok(),
                        None => self.ember_status(EmberStatus::ERR_FATAL, SlStatus::NOT_FOUND),
                    },
                    eui64: found.unwrap_or_default(),
                })
            }
            Command::Nop => Response::Nop,
            Command::Other {
                frame_id,
                parameters,
            } => self.answer_other(frame_id, &parameters, now),
            // Commands the ezsp module may learn later are refused until the NCP learns them.
            #[allow(unreachable_patterns)]
            _ => Response::InvalidCommand {
                status: self.ezsp_status(
                    EzspStatus::ERROR_INVALID_FRAME_ID,
                    SlStatus::INVALID_PARAMETER,
                ),
            },
        }
    }

    /// Frames outside the ezsp module's set that bellows/zigpy and zigbee-herdsman send
    /// (start-up, forming, backup, normal operation), answered by the stack tables
    /// ([`StackTables::answer`]); anything else is `invalidCommand`, as a real NCP answers an
    /// unknown frame id.
    pub(super) fn answer_other(
        &mut self,
        frame_id: FrameId,
        parameters: &[u8],
        now: Instant,
    ) -> Response {
        let children: Vec<(u16, [u8; 8])> = self
            .radio
            .devices()
            .iter()
            .map(|d| (d.config().nwk.0, d.config().ieee.to_le_bytes()))
            .collect();
        let endpoints: Vec<u8> = self.endpoints.iter().map(|e| e.endpoint).collect();
        let view = StackView {
            version: self.version,
            network_up: self.network_up,
            eui64: self.config.ieee.to_le_bytes(),
            children: if self.network_up { &children } else { &[] },
            endpoints: &endpoints,
        };
        let Some(answer) = self.stack.answer(&view, frame_id, parameters) else {
            return Response::InvalidCommand {
                status: self.ezsp_status(
                    EzspStatus::ERROR_INVALID_FRAME_ID,
                    SlStatus::INVALID_PARAMETER,
                ),
            };
        };
        match answer.effect {
            Some(StackEffect::LeaveNetwork) => {
                self.network_up = false;
                self.stored_network = None;
                self.radio
                    .schedule(now + NETWORK_UP_DELAY, Scheduled::NetworkDown);
            }
            Some(StackEffect::FactoryReset) => self.stored_network = None,
            Some(StackEffect::Callbacks(callbacks)) => {
                // One millisecond apart, so they reach the host in order.
                for (order, (frame_id, parameters)) in (0u32..).zip(callbacks) {
                    self.radio.schedule(
                        now + BROADCAST_DELAY + Duration::from_millis(u64::from(order)),
                        Scheduled::Callback {
                            frame_id: FrameId(frame_id),
                            parameters,
                        },
                    );
                }
            }
            Some(StackEffect::MulticastSent {
                message_tag,
                aps_frame,
            }) => {
                if let Ok(aps_frame) = ApsFrame::decode(&aps_frame) {
                    self.radio.schedule(
                        now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
                        Scheduled::MessageSent {
                            message_type: OutgoingMessageType::MULTICAST,
                            destination: Nwk(aps_frame.group_id),
                            aps_frame,
                            message_tag,
                            delivered: true,
                            unicast: false,
                        },
                    );
                }
            }
            _ => {}
        }
        Response::Other {
            frame_id,
            parameters: answer.parameters,
        }
    }
}
