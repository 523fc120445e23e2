//! The host's start-up as an explicit state machine (UG100 §2 for the version, PROTOCOLS.md §2
//! for the order; bellows' `startup` and zigbee-herdsman's `initEzsp` do the same steps):
//!
//! ```text
//! NoPort ─port_opened─▶ Resetting ─RSTACK─▶ Negotiating ─version─▶ Request(Config 0..n)
//!   ▲                                                               ─▶ Request(Policy 0..n)
//!   │ backoff                                                       ─▶ Request(AddEndpoint)
//!   │                                                               ─▶ Request(NetworkInit)
//! port_lost                 NOT_JOINED ─▶ AwaitSettings ─settings─▶ Request(SetInitialSecurityState)
//!                                                                   ─▶ Request(FormNetwork)
//!   Backoff ◀─trouble─ any ──────────────▶ AwaitNetworkUp ─NETWORK_UP─▶ Request(GetNetworkParameters,
//!                                                      GetEui64, GetNodeId, MaximumPayloadLength) ─▶ Up
//! ```
//!
//! Endpoints vanish on every NCP reset and must be registered before `networkInit`, so every
//! start-up registers ours again. A configuration value or policy the firmware refuses is
//! logged, not fatal; every other refusal, a missing answer or a `NETWORK_UP` that does not come
//! within [`HostConfig::network_up_timeout`](super::HostConfig) is [`Trouble::Startup`].

use std::time::Instant;

use tracing::{debug, info, warn};

use super::host::{EzspHost, Trouble};
use crate::coordinator::{
    CLUSTER_OTA_UPGRADE, CoordinatorState, Ieee, NetworkInfo, Nwk, PROFILE_HOME_AUTOMATION,
};
use crate::ezsp::EzspVersion;
use crate::ezsp::command::{
    AddEndpoint, Command, FormNetwork, NetworkInit, Response, SetConfigurationValue,
    SetInitialSecurityState, SetPolicy, command_name,
};
use crate::ezsp::status::SlStatus;
use crate::ezsp::types::{
    ConfigId, DecisionId, InitialSecurityBitmask, InitialSecurityState, JoinMethod, KeyData,
    NetworkInitBitmask, NetworkParameters, NodeType, PolicyId,
};

/// The Zigbee 3.0 well-known trust-center link key, "ZigBeeAlliance09".
const WELL_KNOWN_LINK_KEY: [u8; 16] = *b"ZigBeeAlliance09";

/// Configuration values set before `networkInit` (bellows' defaults, PROTOCOLS.md §2), with
/// PACKET_BUFFER_COUNT last because it takes the RAM the others leave.
const CONFIGURATION: &[(ConfigId, u16)] = &[
    (ConfigId::STACK_PROFILE, 2),
    (ConfigId::SECURITY_LEVEL, 5),
    (ConfigId::SUPPORTED_NETWORKS, 1),
    // The stack answers ZDO requests (Match_Desc from our endpoint table) and passes the
    // supported ones (device announces) up to us.
    (ConfigId::APPLICATION_ZDO_FLAGS, 0x01),
    (ConfigId::INDIRECT_TRANSMISSION_TIMEOUT, 7680),
    (ConfigId::MAX_HOPS, 30),
    (ConfigId::MAX_END_DEVICE_CHILDREN, 32),
    (ConfigId::ADDRESS_TABLE_SIZE, 16),
    (ConfigId::SOURCE_ROUTE_TABLE_SIZE, 200),
    (ConfigId::KEY_TABLE_SIZE, 4),
    (ConfigId::TRUST_CENTER_ADDRESS_CACHE_SIZE, 2),
    (ConfigId::MULTICAST_TABLE_SIZE, 16),
    (ConfigId::PACKET_BUFFER_COUNT, 255),
];

/// Trust-center policy bitmask: allow joins and unsecured rejoins (bellows' choice).
const TRUST_CENTER_ALLOW_JOINS_AND_REJOINS: u8 = 0x03;

/// Policies set after the configuration values.
const POLICIES: &[(PolicyId, DecisionId)] = &[
    (
        PolicyId::TRUST_CENTER_POLICY,
        DecisionId(TRUST_CENTER_ALLOW_JOINS_AND_REJOINS),
    ),
    (
        PolicyId::MESSAGE_CONTENTS_IN_CALLBACK_POLICY,
        DecisionId::MESSAGE_TAG_ONLY_IN_CALLBACK,
    ),
    (
        PolicyId::TC_KEY_REQUEST_POLICY,
        DecisionId::ALLOW_TC_KEY_REQUESTS_AND_SEND_CURRENT_KEY,
    ),
    (
        PolicyId::APP_KEY_REQUEST_POLICY,
        DecisionId::DENY_APP_KEY_REQUESTS,
    ),
];

/// Where the host is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No port: [`super::HostEvent::OpenPort`] goes out at `reopen_at` (`None`: it went out,
    /// and the driver has not answered yet).
    NoPort { reopen_at: Option<Instant> },
    /// Waiting out the backoff before restarting the NCP on the same port.
    Backoff { until: Instant },
    /// ASH RST sent, waiting for RSTACK.
    Resetting,
    /// EZSP `version` exchange.
    Negotiating,
    /// One start-up command is out.
    Request { step: Step, sequence: u8 },
    /// The NCP holds no network; the driver is loading the settings to form one with.
    AwaitSettings,
    /// `networkInit` or `formNetwork` succeeded; waiting for `stackStatusHandler(NETWORK_UP)`.
    AwaitNetworkUp { deadline: Instant },
    /// Sends are accepted.
    Up,
    /// [`EzspHost::stop`] was called.
    Stopped,
}

/// The start-up commands, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Config(usize),
    Policy(usize),
    AddEndpoint,
    NetworkInit,
    SetInitialSecurityState,
    FormNetwork,
    GetNetworkParameters,
    GetEui64,
    GetNodeId,
    MaximumPayloadLength,
}

/// What start-up has read so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StartupFacts {
    parameters: Option<(NodeType, NetworkParameters)>,
    eui64: Option<Ieee>,
    node_id: Option<Nwk>,
}

impl EzspHost {
    /// Starts over on the open port: ASH reset first.
    pub(super) fn begin_startup(&mut self, now: Instant) {
        self.set_state(CoordinatorState::Starting);
        self.network_up = false;
        self.facts = StartupFacts::default();
        self.link.reset(now);
        self.phase = Phase::Resetting;
    }

    /// RSTACK came: negotiate the EZSP version.
    pub(super) fn link_connected(&mut self, now: Instant) {
        if self.phase == Phase::Resetting {
            self.session.start(now);
            self.phase = Phase::Negotiating;
        }
    }

    pub(super) fn negotiated(&mut self, version: EzspVersion, stack_version: u16, now: Instant) {
        if self.phase != Phase::Negotiating {
            return;
        }
        info!("EZSP {version} negotiated, stack version {stack_version:#06X}");
        self.send_step(Step::Config(0), now);
    }

    /// The NCP holds no network and the driver loaded what to form: form it, or give up.
    pub fn network_settings(
        &mut self,
        settings: Result<crate::coordinator::network::NetworkSettings, String>,
        now: Instant,
    ) {
        if self.phase != Phase::AwaitSettings {
            return;
        }
        match settings {
            Ok(settings) => {
                info!("the NCP holds no network; forming {settings:?}");
                self.settings = Some(settings);
                self.send_step(Step::SetInitialSecurityState, now);
            }
            Err(e) => self.trouble = Some(Trouble::Startup(format!("network settings: {e}"))),
        }
        self.drive(now);
    }

    /// `stackStatusHandler(NETWORK_UP)` came.
    pub(super) fn network_came_up(&mut self, now: Instant) {
        self.network_up = true;
        if matches!(self.phase, Phase::AwaitNetworkUp { .. }) {
            self.send_step(Step::GetNetworkParameters, now);
        }
    }

    fn step_command(&self, step: Step) -> Option<Command> {
        Some(match step {
            Step::Config(index) => {
                let (config_id, value) = *CONFIGURATION.get(index)?;
                Command::SetConfigurationValue(SetConfigurationValue { config_id, value })
            }
            Step::Policy(index) => {
                let (policy_id, decision_id) = *POLICIES.get(index)?;
                Command::SetPolicy(SetPolicy {
                    policy_id,
                    decision_id,
                })
            }
            Step::AddEndpoint => Command::AddEndpoint(AddEndpoint {
                endpoint: self.config.endpoint,
                profile_id: PROFILE_HOME_AUTOMATION,
                device_id: 0x0005,
                device_version: 0,
                input_clusters: vec![0x0000, CLUSTER_OTA_UPGRADE],
                output_clusters: vec![],
            }),
            Step::NetworkInit => Command::NetworkInit(NetworkInit {
                bitmask: NetworkInitBitmask::NO_OPTIONS,
            }),
            Step::SetInitialSecurityState => {
                let settings = self.settings.as_ref()?;
                Command::SetInitialSecurityState(SetInitialSecurityState {
                    state: InitialSecurityState {
                        bitmask: InitialSecurityBitmask::TRUST_CENTER_GLOBAL_LINK_KEY
                            | InitialSecurityBitmask::HAVE_PRECONFIGURED_KEY
                            | InitialSecurityBitmask::HAVE_NETWORK_KEY
                            | InitialSecurityBitmask::REQUIRE_ENCRYPTED_KEY,
                        preconfigured_key: KeyData(WELL_KNOWN_LINK_KEY),
                        network_key: KeyData(settings.network_key),
                        network_key_sequence_number: 0,
                        preconfigured_trust_center_eui64: Ieee::default(),
                    },
                })
            }
            Step::FormNetwork => {
                let settings = self.settings.as_ref()?;
                Command::FormNetwork(FormNetwork {
                    parameters: NetworkParameters {
                        extended_pan_id: Ieee(settings.extended_pan_id),
                        pan_id: settings.pan_id,
                        radio_tx_power: 8,
                        radio_channel: settings.channel,
                        join_method: JoinMethod::USE_MAC_ASSOCIATION,
                        nwk_manager_id: Nwk::COORDINATOR,
                        nwk_update_id: 0,
                        channels: 1u32.checked_shl(u32::from(settings.channel)).unwrap_or(0),
                    },
                })
            }
            Step::GetNetworkParameters => Command::GetNetworkParameters,
            Step::GetEui64 => Command::GetEui64,
            Step::GetNodeId => Command::GetNodeId,
            Step::MaximumPayloadLength => Command::MaximumPayloadLength,
        })
    }

    fn send_step(&mut self, step: Step, now: Instant) {
        let Some(command) = self.step_command(step) else {
            self.trouble = Some(Trouble::Startup(format!("{step:?}: nothing to send")));
            return;
        };
        match self.session.send(&command, now) {
            Ok(sequence) => self.phase = Phase::Request { step, sequence },
            Err(e) => {
                let name = command_name(command.frame_id());
                self.trouble = Some(Trouble::Startup(format!("{name}: {e}")));
            }
        }
    }

    /// Handles the answer when it is the outstanding start-up command's; false otherwise.
    pub(super) fn startup_answered(
        &mut self,
        sequence: u8,
        response: &Response,
        now: Instant,
    ) -> bool {
        let Phase::Request { step, sequence: s } = self.phase else {
            return false;
        };
        if s != sequence {
            return false;
        }
        if let Err(trouble) = self.step_answered(step, response, now) {
            self.trouble = Some(trouble);
        }
        true
    }

    /// The outstanding start-up command got no (decodable) answer: start-up fails. False when
    /// `sequence` is not the outstanding start-up command's.
    pub(super) fn startup_unanswered(&mut self, sequence: u8) -> bool {
        let Phase::Request { step, sequence: s } = self.phase else {
            return false;
        };
        if s != sequence {
            return false;
        }
        self.trouble = Some(Trouble::Startup(format!("{step:?}: no response")));
        true
    }

    fn step_answered(
        &mut self,
        step: Step,
        response: &Response,
        now: Instant,
    ) -> Result<(), Trouble> {
        match step {
            Step::Config(index) => {
                if let Some(status) = response.status().filter(|s| !s.is_success()) {
                    debug!(
                        "setConfigurationValue({:?}) refused: {status:?}",
                        CONFIGURATION.get(index)
                    );
                }
                let next = if index + 1 < CONFIGURATION.len() {
                    Step::Config(index + 1)
                } else {
                    Step::Policy(0)
                };
                self.send_step(next, now);
            }
            Step::Policy(index) => {
                if let Some(status) = response.status().filter(|s| !s.is_success()) {
                    debug!("setPolicy({:?}) refused: {status:?}", POLICIES.get(index));
                }
                let next = if index + 1 < POLICIES.len() {
                    Step::Policy(index + 1)
                } else {
                    Step::AddEndpoint
                };
                self.send_step(next, now);
            }
            Step::AddEndpoint => {
                expect_success("addEndpoint", response)?;
                info!(
                    "endpoint {} registered with the OTA Upgrade cluster",
                    self.config.endpoint
                );
                self.send_step(Step::NetworkInit, now);
            }
            Step::NetworkInit => match response.status() {
                Some(status) if status.is_success() => {
                    info!("resuming the NCP's network");
                    self.await_network_up(now);
                }
                Some(status) if status.means(SlStatus::NOT_JOINED) => {
                    if self.settings.is_some() {
                        self.send_step(Step::SetInitialSecurityState, now);
                    } else {
                        self.phase = Phase::AwaitSettings;
                        self.emit(super::HostEvent::NetworkSettingsNeeded);
                    }
                }
                _ => return Err(unexpected("networkInit", response)),
            },
            Step::SetInitialSecurityState => {
                expect_success("setInitialSecurityState", response)?;
                self.send_step(Step::FormNetwork, now);
            }
            Step::FormNetwork => {
                expect_success("formNetwork", response)?;
                self.await_network_up(now);
            }
            Step::GetNetworkParameters => {
                let Response::GetNetworkParameters(answer) = response else {
                    return Err(unexpected("getNetworkParameters", response));
                };
                self.facts.parameters = Some((answer.node_type, answer.parameters));
                self.send_step(Step::GetEui64, now);
            }
            Step::GetEui64 => {
                let Response::GetEui64 { eui64 } = response else {
                    return Err(unexpected("getEui64", response));
                };
                self.facts.eui64 = Some(*eui64);
                self.send_step(Step::GetNodeId, now);
            }
            Step::GetNodeId => {
                let Response::GetNodeId { node_id } = response else {
                    return Err(unexpected("getNodeId", response));
                };
                self.facts.node_id = Some(*node_id);
                self.send_step(Step::MaximumPayloadLength, now);
            }
            Step::MaximumPayloadLength => {
                let Response::MaximumPayloadLength { aps_length } = response else {
                    return Err(unexpected("maximumPayloadLength", response));
                };
                self.finish_startup(usize::from(*aps_length), now)?;
            }
        }
        Ok(())
    }

    fn await_network_up(&mut self, now: Instant) {
        if self.network_up {
            self.send_step(Step::GetNetworkParameters, now);
        } else {
            self.phase = Phase::AwaitNetworkUp {
                deadline: now + self.config.network_up_timeout,
            };
        }
    }

    fn finish_startup(&mut self, max_payload: usize, now: Instant) -> Result<(), Trouble> {
        let (Some((node_type, parameters)), Some(eui64), Some(node_id), Some(version)) = (
            self.facts.parameters,
            self.facts.eui64,
            self.facts.node_id,
            self.session.version(),
        ) else {
            return Err(Trouble::Startup("network facts missing".into()));
        };
        if node_type != NodeType::COORDINATOR {
            warn!("the NCP's network role is {node_type:?}, not coordinator");
        }
        let info = NetworkInfo {
            ieee: eui64,
            nwk: node_id,
            channel: parameters.radio_channel,
            pan_id: parameters.pan_id,
            extended_pan_id: parameters.extended_pan_id.0,
            protocol_version: version.get(),
        };
        info!(
            "network up: channel {}, PAN 0x{:04X}, extended PAN {:016X}, coordinator {}, max APS payload {max_payload}",
            info.channel, info.pan_id, info.extended_pan_id, info.ieee
        );
        self.network = Some(info);
        self.max_payload = Some(max_payload);
        self.backoff.reset();
        self.keepalive = None;
        self.last_heard = now;
        self.phase = Phase::Up;
        self.set_state(CoordinatorState::Up);
        Ok(())
    }
}

fn expect_success(name: &str, response: &Response) -> Result<(), Trouble> {
    match response.status() {
        Some(status) if status.is_success() => Ok(()),
        _ => Err(unexpected(name, response)),
    }
}

fn unexpected(name: &str, response: &Response) -> Trouble {
    Trouble::Startup(format!("{name} answered {response:?}"))
}
