//! Property tests: every command, response and callback round-trips in every version.

use super::*;

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
