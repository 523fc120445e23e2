//! bellows-generated vectors: every message, v13, v14, v16, v17, byte-exact both ways.

use super::*;

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
