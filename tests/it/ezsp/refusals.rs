//! Version-dependent encoding refusals, decode errors that name what was wrong, unknown ids.

use super::*;

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
