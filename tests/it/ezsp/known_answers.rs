//! Known answers from ../shared/testdata/frames/ezsp_vectors.out.

use super::*;

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
