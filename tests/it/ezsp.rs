//! Integration tests for the `ezsp` module: known answers from the shared testdata, every
//! command/response/callback against the bellows-generated vectors (byte-exact both ways), and
//! property tests.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;
use zigbee_otad::ezsp::command::{
    AddEndpoint, Body, Callback, ChildJoinHandler, Command, FormNetwork, Frame,
    GetConfigurationValue, GetConfigurationValueResponse, GetNetworkParametersResponse, GetValue,
    GetValueResponse, IncomingMessageHandler, LookupEui64ByNodeId, LookupEui64ByNodeIdResponse,
    LookupNodeIdByEui64, LookupNodeIdByEui64Response, MessageSentHandler, NetworkInit,
    PermitJoining, Response, SendBroadcast, SendResponse, SendUnicast, SetConfigurationValue,
    SetInitialSecurityState, SetPolicy, SetValue, TrustCenterJoinHandler, VersionRequest,
    VersionResponse,
};
use zigbee_otad::ezsp::frame::{FrameControl, FrameFormat, FrameHeader, FrameId};
use zigbee_otad::ezsp::status::{EmberStatus, EzspStatus, SlStatus, Status};
use zigbee_otad::ezsp::types::{
    ApsFrame, ApsOptions, ConfigId, DecisionId, DeviceUpdate, Ieee, IncomingMessageType,
    InitialSecurityBitmask, InitialSecurityState, JoinDecision, JoinMethod, KeyData,
    NetworkInitBitmask, NetworkParameters, NetworkStatus, NodeType, Nwk, OutgoingMessageType,
    PolicyId, ValueId,
};
use zigbee_otad::ezsp::{DecodeError, EzspVersion};
use zigbee_otad::wire::parse_hex;

use crate::common::{shared_testdata, vectors_dir};

// ------------------------------------------------------------------------------------------
// Known answers from ../shared/testdata/frames/ezsp_vectors.out

/// `label: hex` lines of ezsp_vectors.out (lines whose value is not hex are skipped).
fn shared_vectors() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = shared_testdata()?;
    let text = std::fs::read_to_string(dir.join("frames/ezsp_vectors.out")).unwrap();
    Some(
        text.lines()
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| {
                let (label, value) = line.split_once(": ")?;
                // Some lines add what bellows parsed: `… -> EmberStatus.DELIVERY_FAILED`.
                let hex = value.split(" -> ").next()?;
                Some((label.trim().to_owned(), parse_hex(hex).ok()?))
            })
            .collect(),
    )
}

fn shared(vectors: &[(String, Vec<u8>)], label_start: &str) -> Vec<u8> {
    vectors
        .iter()
        .find(|(label, _)| label.starts_with(label_start))
        .unwrap_or_else(|| panic!("no vector labelled {label_start}"))
        .1
        .clone()
}

fn ota_aps() -> ApsFrame {
    ApsFrame {
        profile_id: 0x0104,
        cluster_id: 0x0019,
        source_endpoint: 1,
        destination_endpoint: 1,
        options: ApsOptions::RETRY | ApsOptions::ENABLE_ROUTE_DISCOVERY,
        group_id: 0,
        sequence: 0x10,
    }
}

fn command_frame(version: EzspVersion, sequence: u8, command: Command) -> Vec<u8> {
    let mut out = Vec::new();
    command.encode_frame(version, sequence, &mut out).unwrap();
    // And the NCP role reads it back.
    let frame = Frame::decode(version, &out).unwrap();
    assert_eq!(frame.body, Body::Command(command));
    out
}

#[test]
fn shared_known_answers_for_commands() {
    let Some(v) = shared_vectors() else { return };
    let v13 = EzspVersion::V13;
    let v14 = EzspVersion::V14;

    let mut legacy = Vec::new();
    VersionRequest {
        desired_protocol_version: 4,
    }
    .encode_legacy_frame(0, &mut legacy);
    assert_eq!(legacy, shared(&v, "v4  version(4)"));

    let version = Command::Version(VersionRequest {
        desired_protocol_version: 13,
    });
    assert_eq!(
        command_frame(v13, 1, version),
        shared(&v, "v13 version(13)")
    );
    assert_eq!(
        command_frame(v13, 2, Command::NetworkState),
        shared(&v, "v13 networkState")
    );
    let get_config = Command::GetConfigurationValue(GetConfigurationValue {
        config_id: ConfigId::STACK_PROFILE,
    });
    assert_eq!(
        command_frame(v13, 3, get_config),
        shared(&v, "v13 getConfigurationValue")
    );
    let set_config = Command::SetConfigurationValue(SetConfigurationValue {
        config_id: ConfigId::PACKET_BUFFER_COUNT,
        value: 255,
    });
    assert_eq!(
        command_frame(v13, 4, set_config),
        shared(&v, "v13 setConfigurationValue")
    );
    let get_value = Command::GetValue(GetValue {
        value_id: ValueId::VERSION_INFO,
    });
    assert_eq!(command_frame(v13, 5, get_value), shared(&v, "v13 getValue"));
    let init = Command::NetworkInit(NetworkInit {
        bitmask: NetworkInitBitmask::NO_OPTIONS,
    });
    assert_eq!(command_frame(v13, 6, init), shared(&v, "v13 networkInit"));
    assert_eq!(
        command_frame(v13, 7, Command::MaximumPayloadLength),
        shared(&v, "v13 maximumPayloadLength")
    );
    let endpoint = Command::AddEndpoint(AddEndpoint {
        endpoint: 1,
        profile_id: 0x0104,
        device_id: 0x0400,
        device_version: 0,
        input_clusters: vec![0x0000, 0x0019],
        output_clusters: vec![],
    });
    assert_eq!(
        command_frame(v13, 8, endpoint),
        shared(&v, "v13 addEndpoint")
    );

    let mut aps = Vec::new();
    ota_aps().encode(&mut aps);
    assert_eq!(aps, shared(&v, "EmberApsFrame"));

    let image_notify = shared(&v, "ZCL Image Notify");
    let unicast = |tag| {
        Command::SendUnicast(SendUnicast {
            message_type: OutgoingMessageType::DIRECT,
            index_or_destination: Nwk(0x1234),
            aps_frame: ota_aps(),
            message_tag: tag,
            message_contents: image_notify.clone(),
        })
    };
    assert_eq!(
        command_frame(v13, 9, unicast(0x42)),
        shared(&v, "v13 sendUnicast")
    );
    assert_eq!(
        command_frame(v14, 9, unicast(0x42)),
        shared(&v, "v14 sendUnicast")
    );

    let broadcast = SendBroadcast {
        alias: Nwk::NULL,
        destination: Nwk::BROADCAST_RX_ON_WHEN_IDLE,
        nwk_sequence: 0,
        aps_frame: ApsFrame {
            destination_endpoint: 0xFF,
            options: ApsOptions::NONE,
            ..ota_aps()
        },
        radius: 0,
        message_tag: 0x43,
        message_contents: image_notify.clone(),
    };
    assert_eq!(
        command_frame(v13, 10, Command::SendBroadcast(broadcast.clone())),
        shared(&v, "v13 sendBroadcast")
    );
    assert_eq!(
        command_frame(v14, 10, Command::SendBroadcast(broadcast)),
        shared(&v, "v14 sendBroadcast")
    );
}

#[test]
fn shared_known_answers_for_callbacks() {
    let Some(v) = shared_vectors() else { return };
    let qnir = shared(&v, "ZCL Query Next Image Req");
    for (version, label) in [
        (EzspVersion::V13, "v13 incomingMessageHandler"),
        (EzspVersion::V14, "v14 incomingMessageHandler"),
    ] {
        let bytes = shared(&v, label);
        let frame = Frame::decode(version, &bytes).unwrap();
        assert!(frame.header.control.is_async_callback());
        let Body::Callback(Callback::IncomingMessageHandler(message)) = &frame.body else {
            panic!("{label}: {:?}", frame.body);
        };
        assert_eq!(message.message_type, IncomingMessageType::UNICAST);
        assert_eq!(message.aps_frame.cluster_id, 0x0019);
        assert_eq!(message.aps_frame.sequence, 0x33);
        assert_eq!(message.sender, Nwk(0x1234));
        assert_eq!((message.last_hop_lqi, message.last_hop_rssi), (0xFF, -40));
        assert_eq!(message.message_contents, qnir);
        if version.uses_sl_status() {
            assert_eq!(
                message.sender_eui64,
                Some("00:11:22:33:44:55:66:77".parse().unwrap())
            );
            assert_eq!(message.timestamp, Some(0));
        } else {
            assert_eq!((message.sender_eui64, message.timestamp), (None, None));
        }
        let mut out = Vec::new();
        frame.encode(version, &mut out).unwrap();
        assert_eq!(out, bytes, "{label} re-encodes byte for byte");
    }

    for (version, label) in [
        (EzspVersion::V13, "v13 messageSentHandler"),
        (EzspVersion::V14, "v14 messageSentHandler"),
    ] {
        let bytes = shared(&v, label);
        let frame = Frame::decode(version, &bytes).unwrap();
        let Body::Callback(Callback::MessageSentHandler(sent)) = &frame.body else {
            panic!("{label}: {:?}", frame.body);
        };
        assert!(
            sent.status.means(SlStatus::ZIGBEE_DELIVERY_FAILED),
            "{label}"
        );
        assert!(!sent.status.is_success());
        assert_eq!(sent.message_tag, 0x42);
        assert_eq!(sent.index_or_destination, Nwk(0x1234));
        let mut out = Vec::new();
        frame.encode(version, &mut out).unwrap();
        assert_eq!(out, bytes, "{label} re-encodes byte for byte");
    }
}

#[test]
fn shared_status_codes() {
    let Some(dir) = shared_testdata() else { return };
    let text = std::fs::read_to_string(dir.join("frames/ezsp_vectors.out")).unwrap();
    let numbers = |label: &str| -> Vec<u32> {
        let line = text.lines().find(|l| l.starts_with(label)).unwrap();
        let (_, values) = line.split_once(": ").unwrap();
        values
            .split_whitespace()
            .map(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap())
            .collect()
    };
    let ember = numbers("EmberStatus NETWORK_UP");
    let sl = numbers("sl_Status ZIGBEE_NETWORK_UP");
    assert_eq!(ember.len(), 3);
    for (e, s) in ember.iter().zip(&sl) {
        let e = EmberStatus(u8::try_from(*e).unwrap());
        assert_eq!(e.to_sl(), Some(SlStatus(*s)));
        assert_eq!(EmberStatus::from_sl(SlStatus(*s)), Some(e));
    }
}

// ------------------------------------------------------------------------------------------
// bellows-generated vectors: every message, v13, v14, v16, v17, byte-exact both ways

struct Args<'a>(&'a Value);

impl Args<'_> {
    /// The first of `keys` present (bellows renamed parameters at v14).
    fn get(&self, keys: &[&str]) -> &Value {
        keys.iter()
            .find_map(|k| self.0.get(*k))
            .unwrap_or_else(|| panic!("none of {keys:?} in {}", self.0))
    }
    fn int(&self, keys: &[&str]) -> i64 {
        self.get(keys).as_i64().unwrap()
    }
    fn u8(&self, keys: &[&str]) -> u8 {
        u8::try_from(self.int(keys)).unwrap()
    }
    fn u16(&self, keys: &[&str]) -> u16 {
        u16::try_from(self.int(keys)).unwrap()
    }
    fn bytes(&self, keys: &[&str]) -> Vec<u8> {
        parse_hex(self.get(keys).as_str().unwrap()).unwrap()
    }
    fn eui64(&self, keys: &[&str]) -> Ieee {
        self.get(keys).as_str().unwrap().parse().unwrap()
    }
    fn node(&self, keys: &[&str]) -> Nwk {
        Nwk(self.u16(keys))
    }
    fn nested(&self, keys: &[&str]) -> Args<'_> {
        Args(self.get(keys))
    }
    fn aps(&self, keys: &[&str]) -> ApsFrame {
        let a = self.nested(keys);
        ApsFrame {
            profile_id: a.u16(&["profileId"]),
            cluster_id: a.u16(&["clusterId"]),
            source_endpoint: a.u8(&["sourceEndpoint"]),
            destination_endpoint: a.u8(&["destinationEndpoint"]),
            options: ApsOptions(a.u16(&["options"])),
            group_id: a.u16(&["groupId"]),
            sequence: a.u8(&["sequence"]),
        }
    }
    fn network_parameters(&self) -> NetworkParameters {
        let p = self.nested(&["parameters"]);
        NetworkParameters {
            extended_pan_id: p.eui64(&["extendedPanId"]),
            pan_id: p.u16(&["panId"]),
            radio_tx_power: p.u8(&["radioTxPower"]),
            radio_channel: p.u8(&["radioChannel"]),
            join_method: JoinMethod(p.u8(&["joinMethod"])),
            nwk_manager_id: p.node(&["nwkManagerId"]),
            nwk_update_id: p.u8(&["nwkUpdateId"]),
            channels: u32::try_from(p.int(&["channels"])).unwrap(),
        }
    }
    /// A status as the version carries it: `sl_status_t` from v14, else the one-byte type.
    fn status(&self, version: EzspVersion, one_byte_is_ezsp: bool) -> Status {
        let raw = self.int(&["status"]);
        if version.uses_sl_status() {
            Status::Sl(SlStatus(u32::try_from(raw).unwrap()))
        } else if one_byte_is_ezsp {
            Status::Ezsp(EzspStatus(u8::try_from(raw).unwrap()))
        } else {
            Status::Ember(EmberStatus(u8::try_from(raw).unwrap()))
        }
    }
}

fn expected_command(name: &str, a: &Args<'_>) -> Command {
    match name {
        "version" => Command::Version(VersionRequest {
            desired_protocol_version: a.u8(&["desiredProtocolVersion"]),
        }),
        "getConfigurationValue" => Command::GetConfigurationValue(GetConfigurationValue {
            config_id: ConfigId(a.u8(&["configId"])),
        }),
        "setConfigurationValue" => Command::SetConfigurationValue(SetConfigurationValue {
            config_id: ConfigId(a.u8(&["configId"])),
            value: a.u16(&["value"]),
        }),
        "getValue" => Command::GetValue(GetValue {
            value_id: ValueId(a.u8(&["valueId"])),
        }),
        "setValue" => Command::SetValue(SetValue {
            value_id: ValueId(a.u8(&["valueId"])),
            value: a.bytes(&["value"]),
        }),
        "setPolicy" => Command::SetPolicy(SetPolicy {
            policy_id: PolicyId(a.u8(&["policyId"])),
            decision_id: DecisionId(a.u8(&["decisionId"])),
        }),
        "addEndpoint" => {
            let list = |key| {
                a.get(&[key])
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| u16::try_from(v.as_i64().unwrap()).unwrap())
                    .collect::<Vec<_>>()
            };
            let endpoint = AddEndpoint {
                endpoint: a.u8(&["endpoint"]),
                profile_id: a.u16(&["profileId"]),
                device_id: a.u16(&["deviceId"]),
                device_version: a.u8(&["deviceVersion"]),
                input_clusters: list("inputClusterList"),
                output_clusters: list("outputClusterList"),
            };
            assert_eq!(
                endpoint.input_clusters.len(),
                a.int(&["inputClusterCount"]) as usize
            );
            assert_eq!(
                endpoint.output_clusters.len(),
                a.int(&["outputClusterCount"]) as usize
            );
            Command::AddEndpoint(endpoint)
        }
        "networkInit" => Command::NetworkInit(NetworkInit {
            bitmask: NetworkInitBitmask(a.u16(&["networkInitBitmask"])),
        }),
        "networkState" => Command::NetworkState,
        "formNetwork" => Command::FormNetwork(FormNetwork {
            parameters: a.network_parameters(),
        }),
        "permitJoining" => Command::PermitJoining(PermitJoining {
            duration: a.u8(&["duration"]),
        }),
        "getNetworkParameters" => Command::GetNetworkParameters,
        "getEui64" => Command::GetEui64,
        "getNodeId" => Command::GetNodeId,
        "maximumPayloadLength" => Command::MaximumPayloadLength,
        "nop" => Command::Nop,
        "sendUnicast" => Command::SendUnicast(SendUnicast {
            message_type: OutgoingMessageType(a.u8(&["type", "message_type"])),
            index_or_destination: a.node(&["indexOrDestination", "nwk"]),
            aps_frame: a.aps(&["apsFrame", "aps_frame"]),
            message_tag: a.u16(&["messageTag", "message_tag"]),
            message_contents: a.bytes(&["messageContents", "message"]),
        }),
        "sendBroadcast" => Command::SendBroadcast(SendBroadcast {
            alias: a.0.get("alias").map_or(Nwk::NULL, |_| a.node(&["alias"])),
            destination: a.node(&["destination"]),
            nwk_sequence: a.0.get("sequence").map_or(0, |_| a.u8(&["sequence"])),
            aps_frame: a.aps(&["apsFrame", "aps_frame"]),
            radius: a.u8(&["radius"]),
            message_tag: a.u16(&["messageTag", "message_tag"]),
            message_contents: a.bytes(&["messageContents", "message"]),
        }),
        "lookupNodeIdByEui64" => Command::LookupNodeIdByEui64(LookupNodeIdByEui64 {
            eui64: a.eui64(&["eui64"]),
        }),
        "lookupEui64ByNodeId" => Command::LookupEui64ByNodeId(LookupEui64ByNodeId {
            node_id: a.node(&["nodeId"]),
        }),
        "setInitialSecurityState" => {
            let s = a.nested(&["state"]);
            let key = |k| KeyData(s.bytes(&[k]).try_into().unwrap());
            Command::SetInitialSecurityState(SetInitialSecurityState {
                state: InitialSecurityState {
                    bitmask: InitialSecurityBitmask(s.u16(&["bitmask"])),
                    preconfigured_key: key("preconfiguredKey"),
                    network_key: key("networkKey"),
                    network_key_sequence_number: s.u8(&["networkKeySequenceNumber"]),
                    preconfigured_trust_center_eui64: s.eui64(&["preconfiguredTrustCenterEui64"]),
                },
            })
        }
        other => panic!("no expectation for command {other}"),
    }
}

fn expected_response(version: EzspVersion, name: &str, a: &Args<'_>) -> Response {
    let ember = || a.status(version, false);
    let ezsp = || a.status(version, true);
    match name {
        "version" => Response::Version(VersionResponse {
            protocol_version: a.u8(&["protocolVersion"]),
            stack_type: a.u8(&["stackType"]),
            stack_version: a.u16(&["stackVersion"]),
        }),
        "getConfigurationValue" => Response::GetConfigurationValue(GetConfigurationValueResponse {
            status: ezsp(),
            value: a.u16(&["value"]),
        }),
        "setConfigurationValue" => Response::SetConfigurationValue { status: ezsp() },
        "getValue" => Response::GetValue(GetValueResponse {
            status: ezsp(),
            value: a.bytes(&["value"]),
        }),
        "setValue" => Response::SetValue { status: ezsp() },
        "setPolicy" => Response::SetPolicy { status: ezsp() },
        "addEndpoint" => Response::AddEndpoint { status: ezsp() },
        "invalidCommand" => Response::InvalidCommand { status: ezsp() },
        "networkInit" => Response::NetworkInit { status: ember() },
        "formNetwork" => Response::FormNetwork { status: ember() },
        "permitJoining" => Response::PermitJoining { status: ember() },
        "setInitialSecurityState" => Response::SetInitialSecurityState { status: ember() },
        "networkState" => Response::NetworkState {
            status: NetworkStatus(a.u8(&["status"])),
        },
        "getNetworkParameters" => Response::GetNetworkParameters(GetNetworkParametersResponse {
            status: ember(),
            node_type: NodeType(a.u8(&["nodeType"])),
            parameters: a.network_parameters(),
        }),
        "getEui64" => Response::GetEui64 {
            eui64: a.eui64(&["eui64"]),
        },
        "getNodeId" => Response::GetNodeId {
            node_id: a.node(&["nodeId"]),
        },
        "maximumPayloadLength" => Response::MaximumPayloadLength {
            aps_length: a.u8(&["apsLength"]),
        },
        "sendUnicast" | "sendBroadcast" => {
            let sent = SendResponse {
                status: ember(),
                sequence: a.u8(&["sequence"]),
            };
            if name == "sendUnicast" {
                Response::SendUnicast(sent)
            } else {
                Response::SendBroadcast(sent)
            }
        }
        "lookupNodeIdByEui64" => Response::LookupNodeIdByEui64(LookupNodeIdByEui64Response {
            status: a.0.get("status").map(|_| ember()),
            node_id: a.node(&["nodeId"]),
        }),
        "lookupEui64ByNodeId" => Response::LookupEui64ByNodeId(LookupEui64ByNodeIdResponse {
            status: ember(),
            eui64: a.eui64(&["eui64"]),
        }),
        "nop" => Response::Nop,
        other => panic!("no expectation for response {other}"),
    }
}

fn expected_callback(version: EzspVersion, name: &str, a: &Args<'_>) -> Callback {
    match name {
        "stackStatusHandler" => Callback::StackStatusHandler {
            status: a.status(version, false),
        },
        "messageSentHandler" => Callback::MessageSentHandler(MessageSentHandler {
            message_type: OutgoingMessageType(a.u8(&["type", "message_type"])),
            index_or_destination: a.node(&["indexOrDestination", "nwk"]),
            aps_frame: a.aps(&["apsFrame", "aps_frame"]),
            message_tag: a.u16(&["messageTag", "message_tag"]),
            status: a.status(version, false),
            message_contents: a.bytes(&["messageContents", "message"]),
        }),
        "incomingMessageHandler" => Callback::IncomingMessageHandler(IncomingMessageHandler {
            message_type: IncomingMessageType(a.u8(&["type", "message_type"])),
            aps_frame: a.aps(&["apsFrame", "aps_frame"]),
            last_hop_lqi: a.u8(&["lastHopLqi", "lqi"]),
            last_hop_rssi: i8::try_from(a.int(&["lastHopRssi", "rssi"])).unwrap(),
            sender: a.node(&["sender", "nwk"]),
            sender_eui64: a.0.get("eui64").map(|_| a.eui64(&["eui64"])),
            binding_index: a.u8(&["bindingIndex", "binding_index"]),
            address_index: a.u8(&["addressIndex", "address_index"]),
            timestamp: a
                .0
                .get("timestamp")
                .map(|t| u32::try_from(t.as_i64().unwrap()).unwrap()),
            message_contents: a.bytes(&["messageContents", "message"]),
        }),
        "trustCenterJoinHandler" => Callback::TrustCenterJoinHandler(TrustCenterJoinHandler {
            new_node_id: a.node(&["newNodeId"]),
            new_node_eui64: a.eui64(&["newNodeEui64"]),
            status: DeviceUpdate(a.u8(&["status"])),
            policy_decision: JoinDecision(a.u8(&["policyDecision"])),
            parent_of_new_node_id: a.node(&["parentOfNewNodeId"]),
        }),
        "childJoinHandler" => Callback::ChildJoinHandler(ChildJoinHandler {
            index: a.u8(&["index"]),
            joining: a.int(&["joining"]) == 1,
            child_id: a.node(&["childId"]),
            child_eui64: a.eui64(&["childEui64"]),
            child_type: NodeType(a.u8(&["childType"])),
        }),
        other => panic!("no expectation for callback {other}"),
    }
}

#[test]
fn bellows_vectors_every_message_byte_exact_both_ways() {
    let path = vectors_dir().join("ezsp/bellows_vectors.json");
    let records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut covered = BTreeSet::new();
    for record in &records {
        let version =
            EzspVersion::new(u8::try_from(record["version"].as_i64().unwrap()).unwrap()).unwrap();
        let direction = record["direction"].as_str().unwrap();
        let name = record["name"].as_str().unwrap();
        let sequence = u8::try_from(record["sequence"].as_i64().unwrap()).unwrap();
        let bytes = parse_hex(record["frame"].as_str().unwrap()).unwrap();
        let args = Args(&record["args"]);
        let context = format!("v{} {direction} {name}", version.get());

        let mut encoded = Vec::new();
        let expected = match direction {
            "command" => {
                let command = expected_command(name, &args);
                command
                    .encode_frame(version, sequence, &mut encoded)
                    .unwrap();
                Body::Command(command)
            }
            "response" => {
                let response = expected_response(version, name, &args);
                response
                    .encode_frame(version, sequence, &mut encoded)
                    .unwrap();
                Body::Response(response)
            }
            "callback" => {
                let callback = expected_callback(version, name, &args);
                callback
                    .encode_frame(version, sequence, &mut encoded)
                    .unwrap();
                Body::Callback(callback)
            }
            other => panic!("{context}: unknown direction {other}"),
        };
        assert_eq!(encoded, bytes, "{context}: encoding differs from bellows");
        let decoded = Frame::decode(version, &bytes).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(decoded.body, expected, "{context}: decoding differs");
        assert_eq!(decoded.header.sequence, sequence, "{context}");
        covered.insert((version.get(), direction.to_owned(), name.to_owned()));
    }
    // Every message of the brief, in each version bellows 1.2.1 has (8–14, 16, 17).
    for version in [8, 9, 10, 11, 12, 13, 14, 16, 17] {
        for (direction, names) in [
            ("command", &COMMANDS[..]),
            ("response", &RESPONSES[..]),
            ("callback", &CALLBACKS[..]),
        ] {
            for name in names {
                assert!(
                    covered.contains(&(version, direction.to_owned(), (*name).to_owned())),
                    "v{version} {direction} {name} has no bellows vector"
                );
            }
        }
    }
}

const COMMANDS: [&str; 21] = [
    "version",
    "getConfigurationValue",
    "setConfigurationValue",
    "getValue",
    "setValue",
    "setPolicy",
    "addEndpoint",
    "networkInit",
    "networkState",
    "formNetwork",
    "permitJoining",
    "getNetworkParameters",
    "getEui64",
    "getNodeId",
    "maximumPayloadLength",
    "lookupNodeIdByEui64",
    "lookupEui64ByNodeId",
    "setInitialSecurityState",
    "nop",
    "sendUnicast",
    "sendBroadcast",
];
const RESPONSES: [&str; 22] = [
    "version",
    "getConfigurationValue",
    "setConfigurationValue",
    "getValue",
    "setValue",
    "setPolicy",
    "addEndpoint",
    "networkInit",
    "networkState",
    "formNetwork",
    "permitJoining",
    "getNetworkParameters",
    "getEui64",
    "getNodeId",
    "maximumPayloadLength",
    "lookupNodeIdByEui64",
    "lookupEui64ByNodeId",
    "setInitialSecurityState",
    "nop",
    "sendUnicast",
    "sendBroadcast",
    "invalidCommand",
];
const CALLBACKS: [&str; 5] = [
    "stackStatusHandler",
    "messageSentHandler",
    "incomingMessageHandler",
    "trustCenterJoinHandler",
    "childJoinHandler",
];

#[test]
fn device_announce_arrives_through_incoming_message_handler() {
    let path = vectors_dir().join("ezsp/bellows_vectors.json");
    let records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut seen = 0;
    for record in &records {
        if record["name"] != "incomingMessageHandler" {
            continue;
        }
        let version = EzspVersion::new(record["version"].as_u64().unwrap() as u8).unwrap();
        let frame = Frame::decode(
            version,
            &parse_hex(record["frame"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let Body::Callback(Callback::IncomingMessageHandler(message)) = frame.body else {
            panic!("not an incomingMessageHandler");
        };
        if message.aps_frame.cluster_id == 0x0013 {
            let annce = message.device_announce().unwrap();
            assert_eq!(annce.node_id, Nwk(0x1234));
            assert_eq!(annce.eui64.to_string(), "00:11:22:33:44:55:66:77");
            seen += 1;
        } else {
            assert_eq!(message.device_announce(), None);
        }
    }
    assert_eq!(seen, 9, "one announce per version (8–14, 16, 17)");
}

// ------------------------------------------------------------------------------------------
// Version-dependent encoding refusals

#[test]
fn v13_refuses_what_only_v14_can_say() {
    let mut out = Vec::new();
    let unicast = SendUnicast {
        message_type: OutgoingMessageType::DIRECT,
        index_or_destination: Nwk(1),
        aps_frame: ota_aps(),
        message_tag: 0x100,
        message_contents: vec![],
    };
    assert!(unicast.encode(EzspVersion::V13, &mut out).is_err());
    assert!(unicast.encode(EzspVersion::V14, &mut out).is_ok());

    let too_long = SendUnicast {
        message_tag: 1,
        message_contents: vec![0; 256],
        ..unicast
    };
    let err = too_long
        .encode(EzspVersion::V14, &mut Vec::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("messageContents is 256 bytes"),
        "{err}"
    );

    // A v14 status written into a v13 frame is converted when an equivalent exists...
    let mut v13 = Vec::new();
    Callback::StackStatusHandler {
        status: Status::Sl(SlStatus::ZIGBEE_NETWORK_UP),
    }
    .encode_parameters(EzspVersion::V13, &mut v13)
    .unwrap();
    assert_eq!(v13, [0x90]);
    // ...and refused when there is none.
    let none = Callback::StackStatusHandler {
        status: Status::Sl(SlStatus(0x7777)),
    };
    assert!(
        none.encode_parameters(EzspVersion::V13, &mut Vec::new())
            .is_err()
    );
}

#[test]
fn decode_errors_name_command_field_and_frame_offset() {
    // v13 sendUnicast response cut after the status.
    let err = Frame::decode(EzspVersion::V13, &[0x09, 0x80, 0x01, 0x34, 0x00, 0x00]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sendUnicast response: sequence at offset 6 needs 1 bytes, only 0 left"
    );
    // A trailing byte after getNodeId's response.
    let err = Frame::decode(
        EzspVersion::V14,
        &[0x01, 0x80, 0x01, 0x27, 0x00, 0x34, 0x12, 0xEE],
    )
    .unwrap_err();
    assert_eq!(
        err,
        DecodeError::TrailingBytes {
            context: "getNodeId response",
            offset: 7,
            count: 1
        }
    );
    // childJoinHandler's boolean must be 0 or 1.
    let mut bytes = vec![0x01, 0x90, 0x01, 0x23, 0x00, 0x00, 0x02];
    bytes.extend_from_slice(&[0; 11]);
    let err = Frame::decode(EzspVersion::V14, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::InvalidField {
                field: "joining",
                offset: 6,
                value: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_frame_ids_round_trip() {
    let bytes = [0x07, 0x80, 0x01, 0x16, 0x01, 0xAA, 0xBB];
    let frame = Frame::decode(EzspVersion::V14, &bytes).unwrap();
    assert_eq!(
        frame.body,
        Body::Response(Response::Other {
            frame_id: FrameId(0x0116),
            parameters: vec![0xAA, 0xBB]
        })
    );
    let mut out = Vec::new();
    frame.encode(EzspVersion::V14, &mut out).unwrap();
    assert_eq!(out, bytes);
}

// ------------------------------------------------------------------------------------------
// Property tests

fn any_version() -> impl Strategy<Value = EzspVersion> {
    (EzspVersion::MIN..=EzspVersion::MAX).prop_map(|v| EzspVersion::new(v).unwrap())
}

fn any_aps() -> impl Strategy<Value = ApsFrame> {
    (any::<(u16, u16, u8, u8, u16, u16, u8)>()).prop_map(|(p, c, s, d, o, g, q)| ApsFrame {
        profile_id: p,
        cluster_id: c,
        source_endpoint: s,
        destination_endpoint: d,
        options: ApsOptions(o),
        group_id: g,
        sequence: q,
    })
}

fn any_eui() -> impl Strategy<Value = Ieee> {
    any::<u64>().prop_map(Ieee)
}

fn any_network_parameters() -> impl Strategy<Value = NetworkParameters> {
    (any_eui(), any::<(u16, u8, u8, u8, u16, u8, u32)>()).prop_map(
        |(e, (pan, tx, ch, j, m, u, c))| NetworkParameters {
            extended_pan_id: e,
            pan_id: pan,
            radio_tx_power: tx,
            radio_channel: ch,
            join_method: JoinMethod(j),
            nwk_manager_id: Nwk(m),
            nwk_update_id: u,
            channels: c,
        },
    )
}

/// A status as `version` carries it; `ezsp` picks EzspStatus for one-byte versions.
fn status_for(version: EzspVersion, raw: u32, ezsp: bool) -> Status {
    if version.uses_sl_status() {
        Status::Sl(SlStatus(raw))
    } else if ezsp {
        Status::Ezsp(EzspStatus(raw as u8))
    } else {
        Status::Ember(EmberStatus(raw as u8))
    }
}

/// Any command that `version` can encode.
fn any_command(version: EzspVersion) -> impl Strategy<Value = Command> {
    let wide = version.uses_sl_status();
    let tag = move |t: u16| if wide { t } else { t & 0xFF };
    let contents = proptest::collection::vec(any::<u8>(), 0..=255);
    prop_oneof![
        any::<u8>().prop_map(|v| Command::Version(VersionRequest {
            desired_protocol_version: v
        })),
        any::<(u8, u16)>().prop_map(|(c, v)| Command::SetConfigurationValue(
            SetConfigurationValue {
                config_id: ConfigId(c),
                value: v
            }
        )),
        (any::<u8>(), contents.clone()).prop_map(|(id, value)| Command::SetValue(SetValue {
            value_id: ValueId(id),
            value
        })),
        (
            any::<(u8, u16, u16, u8)>(),
            proptest::collection::vec(any::<u16>(), 0..20),
            proptest::collection::vec(any::<u16>(), 0..20)
        )
            .prop_map(|((e, p, d, v), i, o)| Command::AddEndpoint(AddEndpoint {
                endpoint: e,
                profile_id: p,
                device_id: d,
                device_version: v,
                input_clusters: i,
                output_clusters: o
            })),
        any_network_parameters().prop_map(|p| Command::FormNetwork(FormNetwork { parameters: p })),
        (any::<(u8, u16, u16)>(), any_aps(), contents.clone()).prop_map(
            move |((ty, dst, t), aps, m)| Command::SendUnicast(SendUnicast {
                message_type: OutgoingMessageType(ty),
                index_or_destination: Nwk(dst),
                aps_frame: aps,
                message_tag: tag(t),
                message_contents: m
            })
        ),
        (any::<(u16, u16, u8, u8, u16)>(), any_aps(), contents).prop_map(
            move |((alias, dst, seq, radius, t), aps, m)| Command::SendBroadcast(SendBroadcast {
                alias: if wide { Nwk(alias) } else { Nwk::NULL },
                destination: Nwk(dst),
                nwk_sequence: if wide { seq } else { 0 },
                aps_frame: aps,
                radius,
                message_tag: tag(t),
                message_contents: m
            })
        ),
        any_eui().prop_map(|e| Command::LookupNodeIdByEui64(LookupNodeIdByEui64 { eui64: e })),
        Just(Command::NetworkState),
        Just(Command::GetEui64),
    ]
}

fn any_response(version: EzspVersion) -> impl Strategy<Value = Response> {
    let wide = version.uses_sl_status();
    prop_oneof![
        any::<(u32, u16)>().prop_map(move |(s, v)| Response::GetConfigurationValue(
            GetConfigurationValueResponse {
                status: status_for(version, s, true),
                value: v
            }
        )),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=255)
        )
            .prop_map(move |(s, value)| Response::GetValue(GetValueResponse {
                status: status_for(version, s, true),
                value
            })),
        (any::<(u32, u8)>(), any_network_parameters()).prop_map(move |((s, t), p)| {
            Response::GetNetworkParameters(GetNetworkParametersResponse {
                status: status_for(version, s, false),
                node_type: NodeType(t),
                parameters: p,
            })
        }),
        any::<(u32, u8)>().prop_map(move |(s, q)| Response::SendBroadcast(SendResponse {
            status: status_for(version, s, false),
            sequence: q
        })),
        any::<(u32, u16)>().prop_map(move |(s, n)| Response::LookupNodeIdByEui64(
            LookupNodeIdByEui64Response {
                status: wide.then(|| status_for(version, s, false)),
                node_id: Nwk(n)
            }
        )),
        any::<u32>().prop_map(move |s| Response::InvalidCommand {
            status: status_for(version, s, true)
        }),
        any::<u8>().prop_map(|s| Response::NetworkState {
            status: NetworkStatus(s)
        }),
    ]
}

fn any_callback(version: EzspVersion) -> impl Strategy<Value = Callback> {
    let wide = version.uses_sl_status();
    let contents = proptest::collection::vec(any::<u8>(), 0..=255);
    prop_oneof![
        any::<u32>().prop_map(move |s| Callback::StackStatusHandler {
            status: status_for(version, s, false)
        }),
        (any::<(u8, u16, u16, u32)>(), any_aps(), contents.clone()).prop_map(
            move |((ty, dst, tag, s), aps, m)| Callback::MessageSentHandler(MessageSentHandler {
                message_type: OutgoingMessageType(ty),
                index_or_destination: Nwk(dst),
                aps_frame: aps,
                message_tag: if wide { tag } else { tag & 0xFF },
                status: status_for(version, s, false),
                message_contents: m
            })
        ),
        (
            any::<(u8, u8, i8, u16, u8, u8, u32)>(),
            any_aps(),
            any_eui(),
            contents
        )
            .prop_map(move |((ty, lqi, rssi, sender, b, a, ts), aps, eui, m)| {
                Callback::IncomingMessageHandler(IncomingMessageHandler {
                    message_type: IncomingMessageType(ty),
                    aps_frame: aps,
                    last_hop_lqi: lqi,
                    last_hop_rssi: rssi,
                    sender: Nwk(sender),
                    sender_eui64: wide.then_some(eui),
                    binding_index: b,
                    address_index: a,
                    timestamp: wide.then_some(ts),
                    message_contents: m,
                })
            }),
        (any::<(u16, u8, u8, u16)>(), any_eui()).prop_map(|((n, s, d, p), e)| {
            Callback::TrustCenterJoinHandler(TrustCenterJoinHandler {
                new_node_id: Nwk(n),
                new_node_eui64: e,
                status: DeviceUpdate(s),
                policy_decision: JoinDecision(d),
                parent_of_new_node_id: Nwk(p),
            })
        }),
        (any::<(u8, bool, u16, u8)>(), any_eui()).prop_map(|((i, j, c, t), e)| {
            Callback::ChildJoinHandler(ChildJoinHandler {
                index: i,
                joining: j,
                child_id: Nwk(c),
                child_eui64: e,
                child_type: NodeType(t),
            })
        }),
    ]
}

proptest! {
    #[test]
    fn commands_round_trip(
        (version, command) in any_version().prop_flat_map(|v| (Just(v), any_command(v))),
        sequence: u8,
    ) {
        let mut out = Vec::new();
        command.encode_frame(version, sequence, &mut out).unwrap();
        let frame = Frame::decode(version, &out).unwrap();
        prop_assert_eq!(frame.header.sequence, sequence);
        prop_assert_eq!(frame.body, Body::Command(command));
    }

    #[test]
    fn responses_round_trip(
        (version, response) in any_version().prop_flat_map(|v| (Just(v), any_response(v))),
        sequence: u8,
    ) {
        let mut out = Vec::new();
        response.encode_frame(version, sequence, &mut out).unwrap();
        let frame = Frame::decode(version, &out).unwrap();
        prop_assert_eq!(frame.body, Body::Response(response));
    }

    #[test]
    fn callbacks_round_trip(
        (version, callback) in any_version().prop_flat_map(|v| (Just(v), any_callback(v))),
        sequence: u8,
    ) {
        let mut out = Vec::new();
        callback.encode_frame(version, sequence, &mut out).unwrap();
        let frame = Frame::decode(version, &out).unwrap();
        prop_assert!(frame.header.control.is_async_callback());
        prop_assert_eq!(frame.body, Body::Callback(callback));
    }

    #[test]
    fn headers_round_trip(sequence: u8, control: u8, frame_id: u8, high: u8) {
        for format in [FrameFormat::Legacy, FrameFormat::Intermediate] {
            let header = FrameHeader {
                sequence,
                control: FrameControl(if format == FrameFormat::Legacy {
                    u16::from(control)
                } else {
                    u16::from_le_bytes([control, high])
                }),
                frame_id: FrameId(u16::from(frame_id)),
            };
            let mut out = Vec::new();
            header.encode(format, &mut out).unwrap();
            prop_assert_eq!(out.len(), format.header_len());
            prop_assert_eq!(FrameHeader::decode(format, &out).unwrap().0, header);
        }
    }

    #[test]
    fn structures_round_trip(aps in any_aps(), params in any_network_parameters()) {
        let mut out = Vec::new();
        aps.encode(&mut out);
        prop_assert_eq!(out.len(), aps.encoded_len());
        prop_assert_eq!(ApsFrame::decode(&out).unwrap(), aps);
        out.clear();
        params.encode(&mut out);
        prop_assert_eq!(out.len(), params.encoded_len());
        prop_assert_eq!(NetworkParameters::decode(&out).unwrap(), params);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        version in any_version(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = Frame::decode(version, &bytes);
        for format in [FrameFormat::Legacy, FrameFormat::Intermediate, FrameFormat::Extended] {
            let _ = FrameHeader::decode(format, &bytes);
        }
    }

    #[test]
    fn decoding_mutated_valid_frames_never_panics(
        (version, callback) in any_version().prop_flat_map(|v| (Just(v), any_callback(v))),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let mut out = Vec::new();
        callback.encode_frame(version, 1, &mut out).unwrap();
        let flip_at = flip.0.index(out.len());
        out[flip_at] ^= flip.1;
        out.truncate(cut.index(out.len() + 1));
        let _ = Frame::decode(version, &out);
    }
}

// ------------------------------------------------------------------------------------------
// Both roles together: a host Session against a tiny NCP built from the same codec

/// The NCP role: answers `version` in whichever header the host used, `sendUnicast` with a
/// send response followed by a `messageSentHandler` callback.
struct TinyNcp {
    version: EzspVersion,
    callback_sequence: u8,
}

impl TinyNcp {
    fn answer(&mut self, request: &[u8]) -> Vec<Vec<u8>> {
        use zigbee_otad::ezsp::command::VersionResponse;
        let version_answer = VersionResponse {
            protocol_version: self.version.get(),
            stack_type: 2,
            stack_version: 0x8100,
        };
        if FrameFormat::detect(request) == FrameFormat::Legacy {
            let (header, parameters) = FrameHeader::decode(FrameFormat::Legacy, request).unwrap();
            assert_eq!(header.frame_id, FrameId::VERSION);
            VersionRequest::decode(self.version, parameters).unwrap();
            let mut out = Vec::new();
            version_answer.encode_legacy_frame(header.sequence, &mut out);
            return vec![out];
        }
        let frame = Frame::decode(self.version, request).unwrap();
        let Body::Command(command) = frame.body else {
            panic!("the host sent {:?}", frame.body)
        };
        let sequence = frame.header.sequence;
        let mut frames = Vec::new();
        let mut out = Vec::new();
        match command {
            Command::Version(_) => {
                Response::Version(version_answer)
                    .encode_frame(self.version, sequence, &mut out)
                    .unwrap();
                frames.push(out);
            }
            Command::SendUnicast(unicast) => {
                Response::SendUnicast(SendResponse {
                    status: Status::Sl(SlStatus::OK),
                    sequence: unicast.aps_frame.sequence,
                })
                .encode_frame(self.version, sequence, &mut out)
                .unwrap();
                frames.push(out);
                // A callback must not reuse a pending command's sequence number.
                self.callback_sequence = self.callback_sequence.wrapping_add(1);
                let mut callback = Vec::new();
                Callback::MessageSentHandler(MessageSentHandler {
                    message_type: unicast.message_type,
                    index_or_destination: unicast.index_or_destination,
                    aps_frame: unicast.aps_frame,
                    message_tag: unicast.message_tag,
                    status: Status::Sl(SlStatus::OK),
                    message_contents: vec![],
                })
                .encode_frame(
                    self.version,
                    self.callback_sequence.wrapping_add(0x80),
                    &mut callback,
                )
                .unwrap();
                frames.push(callback);
            }
            other => panic!("TinyNcp does not answer {other:?}"),
        }
        frames
    }
}

#[test]
fn host_session_against_an_ncp_built_from_the_codec() {
    use std::time::{Duration, Instant};
    use zigbee_otad::ezsp::{Event, Session, SessionConfig};

    for ncp_version in [13, 14, 16, 17] {
        let version = EzspVersion::new(ncp_version).unwrap();
        let mut ncp = TinyNcp {
            version,
            callback_sequence: 0,
        };
        #[allow(clippy::disallowed_methods)] // the session only compares and adds to it
        let now = Instant::now();
        let mut host = Session::new(SessionConfig::default());
        host.start(now);
        let mut events = Vec::new();
        let pump = |host: &mut Session, ncp: &mut TinyNcp, events: &mut Vec<Event>| {
            for _ in 0..10 {
                let Some(request) = host.poll_transmit() else {
                    break;
                };
                for reply in ncp.answer(&request) {
                    host.handle_input(&reply, now).unwrap();
                }
            }
            while let Some(event) = host.poll_event() {
                events.push(event);
            }
        };
        pump(&mut host, &mut ncp, &mut events);
        assert_eq!(host.version(), Some(version));
        assert!(
            matches!(events.as_slice(), [Event::Negotiated { version: v, .. }] if *v == version)
        );
        events.clear();

        let unicast = SendUnicast {
            message_type: OutgoingMessageType::DIRECT,
            index_or_destination: Nwk(0x1234),
            aps_frame: ota_aps(),
            message_tag: 0x42,
            message_contents: vec![0x19, 0x10, 0x00, 0x00, 0x64],
        };
        let sequence = host.send(&Command::SendUnicast(unicast), now).unwrap();
        pump(&mut host, &mut ncp, &mut events);
        assert_eq!(events.len(), 2, "v{ncp_version}: {events:?}");
        let Event::Response {
            sequence: s,
            response: Response::SendUnicast(sent),
        } = &events[0]
        else {
            panic!("{:?}", events[0]);
        };
        assert_eq!(*s, sequence);
        assert!(sent.status.is_success());
        let Event::Callback(Callback::MessageSentHandler(report)) = &events[1] else {
            panic!("{:?}", events[1]);
        };
        assert_eq!(report.message_tag, 0x42);
        assert!(report.status.is_success());
        assert_eq!(host.pending_count(), 0);
        assert_eq!(host.poll_timeout(), None);
        // Nothing is pending, so a later timeout changes nothing.
        host.handle_timeout(now + Duration::from_secs(60));
        assert!(host.poll_event().is_none());
    }
}
