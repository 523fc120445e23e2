//! Integration tests for the `zcl` module:
//! - the 17 real OTA-cluster frames in `../shared/testdata/frames/zcl-ota-frames.json` decode
//!   to the fields zigpy printed for them and re-encode byte-for-byte (skipped when the shared
//!   testdata is absent);
//! - the committed zigpy vectors in `tests/vectors/zcl/zcl_vectors.json` (made by
//!   `gen_zcl_vectors.py`) are checked both ways: our decoder reads zigpy's bytes as zigpy's
//!   fields, and our encoder writes zigpy's fields as zigpy's bytes.

use std::collections::BTreeMap;
use std::fs;

use serde_json::{Value, json};
use zigbee_otad::wire::parse_hex;
use zigbee_otad::zcl::ota::{
    BlockData, ImageBlockRequest, ImageBlockResponse, ImageNotify, ImagePageRequest, OtaCommand,
    OtaFrame, QueryDeviceSpecificFileRequest, QueryDeviceSpecificFileResponse,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndRequest, UpgradeEndResponse,
};
use zigbee_otad::zcl::{CommandId, DefaultResponse, Ieee, ZclHeader, ZclStatus};

use crate::common::{shared_testdata, vectors_dir};

/// The command's fields under zigpy's names, as JSON values (integers; IEEE addresses in
/// zigpy's colon form; block data as lowercase hex).
fn zigpy_fields(command: &OtaCommand) -> BTreeMap<&'static str, Value> {
    let mut f = BTreeMap::new();
    let image = |f: &mut BTreeMap<_, _>, code: u16, image_type: u16, version: u32| {
        f.insert("manufacturer_code", json!(code));
        f.insert("image_type", json!(image_type));
        f.insert("file_version", json!(version));
    };
    match command {
        OtaCommand::ImageNotify(c) => {
            f.insert("payload_type", json!(c.payload_type()));
            f.insert("query_jitter", json!(c.query_jitter));
            if let Some(v) = c.manufacturer_code {
                f.insert("manufacturer_code", json!(v));
            }
            if let Some(v) = c.image_type {
                f.insert("image_type", json!(v));
            }
            if let Some(v) = c.new_file_version {
                f.insert("new_file_version", json!(v));
            }
        }
        OtaCommand::QueryNextImageRequest(c) => {
            f.insert("field_control", json!(c.field_control));
            f.insert("manufacturer_code", json!(c.manufacturer_code));
            f.insert("image_type", json!(c.image_type));
            f.insert("current_file_version", json!(c.current_file_version));
            if let Some(v) = c.hardware_version {
                f.insert("hardware_version", json!(v));
            }
        }
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
            manufacturer_code,
            image_type,
            file_version,
            image_size,
        })
        | OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::Success {
            manufacturer_code,
            image_type,
            file_version,
            image_size,
        }) => {
            f.insert("status", json!(0));
            image(&mut f, *manufacturer_code, *image_type, *file_version);
            f.insert("image_size", json!(image_size));
        }
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus { status })
        | OtaCommand::QueryDeviceSpecificFileResponse(
            QueryDeviceSpecificFileResponse::OtherStatus { status },
        ) => {
            f.insert("status", json!(status.0));
        }
        OtaCommand::ImageBlockRequest(c) => {
            f.insert("field_control", json!(c.field_control));
            image(&mut f, c.manufacturer_code, c.image_type, c.file_version);
            f.insert("file_offset", json!(c.file_offset));
            f.insert("maximum_data_size", json!(c.maximum_data_size));
            if let Some(v) = c.request_node_address {
                f.insert("request_node_addr", json!(v.to_string()));
            }
            if let Some(v) = c.minimum_block_period {
                f.insert("minimum_block_period", json!(v));
            }
        }
        OtaCommand::ImagePageRequest(c) => {
            f.insert("field_control", json!(c.field_control));
            image(&mut f, c.manufacturer_code, c.image_type, c.file_version);
            f.insert("file_offset", json!(c.file_offset));
            f.insert("maximum_data_size", json!(c.maximum_data_size));
            f.insert("page_size", json!(c.page_size));
            f.insert("response_spacing", json!(c.response_spacing));
            if let Some(v) = c.request_node_address {
                f.insert("request_node_addr", json!(v.to_string()));
            }
        }
        OtaCommand::ImageBlockResponse(c) => {
            f.insert("status", json!(c.status().0));
            match c {
                ImageBlockResponse::Success {
                    manufacturer_code,
                    image_type,
                    file_version,
                    file_offset,
                    data,
                } => {
                    image(&mut f, *manufacturer_code, *image_type, *file_version);
                    f.insert("file_offset", json!(file_offset));
                    f.insert("image_data", json!(lower_hex(data)));
                }
                ImageBlockResponse::WaitForData {
                    current_time,
                    request_time,
                    minimum_block_period,
                } => {
                    f.insert("current_time", json!(current_time));
                    f.insert("request_time", json!(request_time));
                    if let Some(v) = minimum_block_period {
                        f.insert("minimum_block_period", json!(v));
                    }
                }
                _ => {}
            }
        }
        OtaCommand::UpgradeEndRequest(c) => {
            f.insert("status", json!(c.status.0));
            image(&mut f, c.manufacturer_code, c.image_type, c.file_version);
        }
        OtaCommand::UpgradeEndResponse(c) => {
            image(&mut f, c.manufacturer_code, c.image_type, c.file_version);
            f.insert("current_time", json!(c.current_time));
            f.insert("upgrade_time", json!(c.upgrade_time));
        }
        OtaCommand::QueryDeviceSpecificFileRequest(c) => {
            f.insert(
                "request_node_addr",
                json!(c.request_node_address.to_string()),
            );
            image(&mut f, c.manufacturer_code, c.image_type, c.file_version);
            f.insert(
                "current_zigbee_stack_version",
                json!(c.current_zigbee_stack_version),
            );
        }
        OtaCommand::DefaultResponse(c) => {
            f.insert("command_id", json!(c.command_id.0));
            f.insert("status", json!(c.status.0));
        }
        other => panic!("no zigpy field names for {other:?}"),
    }
    f
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a command from zigpy's command name and field values, independently of decoding.
fn build_from_zigpy(command: &str, fields: &serde_json::Map<String, Value>) -> OtaCommand {
    let int = |name: &str| fields[name].as_u64().unwrap_or_else(|| panic!("{name}"));
    let opt = |name: &str| fields.get(name).map(|v| v.as_u64().unwrap());
    let u16_ = |name: &str| u16::try_from(int(name)).unwrap();
    let u32_ = |name: &str| u32::try_from(int(name)).unwrap();
    let u8_ = |name: &str| u8::try_from(int(name)).unwrap();
    let ieee = |name: &str| {
        fields.get(name).map(|v| {
            let bytes = parse_hex(v.as_str().unwrap()).unwrap();
            Ieee(u64::from_be_bytes(bytes.try_into().unwrap()))
        })
    };
    let status = || ZclStatus(u8_("status"));
    match command {
        "image_notify" => OtaCommand::ImageNotify(ImageNotify {
            query_jitter: u8_("query_jitter"),
            manufacturer_code: opt("manufacturer_code").map(|v| v as u16),
            image_type: opt("image_type").map(|v| v as u16),
            new_file_version: opt("new_file_version").map(|v| v as u32),
        }),
        "query_next_image" => OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: u8_("field_control"),
            manufacturer_code: u16_("manufacturer_code"),
            image_type: u16_("image_type"),
            current_file_version: u32_("current_file_version"),
            hardware_version: opt("hardware_version").map(|v| v as u16),
        }),
        "query_next_image_response" => {
            OtaCommand::QueryNextImageResponse(if status().is_success() {
                QueryNextImageResponse::Success {
                    manufacturer_code: u16_("manufacturer_code"),
                    image_type: u16_("image_type"),
                    file_version: u32_("file_version"),
                    image_size: u32_("image_size"),
                }
            } else {
                QueryNextImageResponse::OtherStatus { status: status() }
            })
        }
        "query_specific_file_response" => {
            OtaCommand::QueryDeviceSpecificFileResponse(if status().is_success() {
                QueryDeviceSpecificFileResponse::Success {
                    manufacturer_code: u16_("manufacturer_code"),
                    image_type: u16_("image_type"),
                    file_version: u32_("file_version"),
                    image_size: u32_("image_size"),
                }
            } else {
                QueryDeviceSpecificFileResponse::OtherStatus { status: status() }
            })
        }
        "image_block" => OtaCommand::ImageBlockRequest(ImageBlockRequest {
            field_control: u8_("field_control"),
            manufacturer_code: u16_("manufacturer_code"),
            image_type: u16_("image_type"),
            file_version: u32_("file_version"),
            file_offset: u32_("file_offset"),
            maximum_data_size: u8_("maximum_data_size"),
            request_node_address: ieee("request_node_addr"),
            minimum_block_period: opt("minimum_block_period").map(|v| v as u16),
        }),
        "image_page" => OtaCommand::ImagePageRequest(ImagePageRequest {
            field_control: u8_("field_control"),
            manufacturer_code: u16_("manufacturer_code"),
            image_type: u16_("image_type"),
            file_version: u32_("file_version"),
            file_offset: u32_("file_offset"),
            maximum_data_size: u8_("maximum_data_size"),
            page_size: u16_("page_size"),
            response_spacing: u16_("response_spacing"),
            request_node_address: ieee("request_node_addr"),
        }),
        "image_block_response" => OtaCommand::ImageBlockResponse(match status() {
            ZclStatus::SUCCESS => ImageBlockResponse::Success {
                manufacturer_code: u16_("manufacturer_code"),
                image_type: u16_("image_type"),
                file_version: u32_("file_version"),
                file_offset: u32_("file_offset"),
                data: BlockData::new(&parse_hex(fields["image_data"].as_str().unwrap()).unwrap())
                    .unwrap(),
            },
            ZclStatus::WAIT_FOR_DATA => ImageBlockResponse::WaitForData {
                current_time: u32_("current_time"),
                request_time: u32_("request_time"),
                minimum_block_period: opt("minimum_block_period").map(|v| v as u16),
            },
            ZclStatus::ABORT => ImageBlockResponse::Abort,
            other => ImageBlockResponse::OtherStatus { status: other },
        }),
        "upgrade_end" => OtaCommand::UpgradeEndRequest(UpgradeEndRequest {
            status: status(),
            manufacturer_code: u16_("manufacturer_code"),
            image_type: u16_("image_type"),
            file_version: u32_("file_version"),
        }),
        "upgrade_end_response" => OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
            manufacturer_code: u16_("manufacturer_code"),
            image_type: u16_("image_type"),
            file_version: u32_("file_version"),
            current_time: u32_("current_time"),
            upgrade_time: u32_("upgrade_time"),
        }),
        "query_specific_file" => {
            OtaCommand::QueryDeviceSpecificFileRequest(QueryDeviceSpecificFileRequest {
                request_node_address: ieee("request_node_addr").unwrap(),
                manufacturer_code: u16_("manufacturer_code"),
                image_type: u16_("image_type"),
                file_version: u32_("file_version"),
                current_zigbee_stack_version: u16_("current_zigbee_stack_version"),
            })
        }
        "Default_Response" => OtaCommand::DefaultResponse(DefaultResponse {
            command_id: CommandId(u8_("command_id")),
            status: status(),
        }),
        other => panic!("vector for unknown zigpy command {other}"),
    }
}

fn encode(frame: &OtaFrame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), frame.encoded_len());
    out
}

#[test]
fn zigpy_vectors_decode_to_zigpy_fields_and_encode_to_zigpy_bytes() {
    let path = vectors_dir().join("zcl/zcl_vectors.json");
    let file: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 37, "{} vectors", vectors.len());
    let mut commands_seen = std::collections::BTreeSet::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = parse_hex(v["hex"].as_str().unwrap()).unwrap();
        let fields = v["fields"].as_object().unwrap();

        // zigpy bytes -> our decoder -> zigpy's fields.
        let frame = OtaFrame::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            u64::from(frame.header.frame_control()),
            v["frame_control"],
            "{name}"
        );
        assert_eq!(u64::from(frame.header.tsn), v["tsn"], "{name}");
        assert_eq!(
            u64::from(frame.header.command_id.0),
            v["command_id"],
            "{name}"
        );
        assert_eq!(
            frame.header.manufacturer_code.map(u64::from),
            v["manufacturer_code"].as_u64(),
            "{name}"
        );
        assert!(frame.trailing.is_empty(), "{name}");
        let ours = zigpy_fields(&frame.command);
        let theirs: BTreeMap<&str, Value> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert_eq!(ours, theirs, "{name}");

        // zigpy fields -> our encoder -> zigpy bytes.
        let built = build_from_zigpy(v["command"].as_str().unwrap(), fields);
        let (header, _) = ZclHeader::decode(&bytes).unwrap();
        let rebuilt = OtaFrame::new(header, built);
        assert_eq!(encode(&rebuilt), bytes, "{name}");
        assert_eq!(rebuilt, frame, "{name}");

        // Requests are accepted on the server side.
        if frame.command.is_client_request() {
            OtaFrame::decode_request(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        commands_seen.insert((frame.header.frame_type.0, frame.command.command_id().0));
    }
    // Every OTA command 0x00-0x09 (cluster-specific) and the global Default Response 0x0B.
    let expected: Vec<(u8, u8)> = (0x00..=0x09).map(|id| (1, id)).chain([(0, 0x0B)]).collect();
    let mut seen: Vec<_> = commands_seen.into_iter().collect();
    seen.sort_by_key(|&(frame_type, id)| (frame_type == 0, id));
    assert_eq!(seen, expected);
}

/// Reads the `name=value` arguments zigpy printed for a frame: integers, enum reprs such as
/// `<Status.SUCCESS: 0>`, and Python bytes literals (returned as bytes).
fn parse_zigpy_args(args: &str) -> BTreeMap<String, Result<u64, Vec<u8>>> {
    let open = args.find('(').unwrap();
    let body = &args.as_bytes()[open + 1..args.len() - 1];
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < body.len() {
        let eq = i + body[i..].iter().position(|&c| c == b'=').unwrap();
        let name = std::str::from_utf8(&body[i..eq])
            .unwrap()
            .trim()
            .to_string();
        i = eq + 1;
        let value = if body[i] == b'<' {
            let end = i + body[i..].iter().position(|&c| c == b'>').unwrap();
            let text = std::str::from_utf8(&body[i..end]).unwrap();
            let number = text.rsplit(": ").next().unwrap();
            i = end + 1;
            Ok(number.parse().unwrap())
        } else if body[i..].starts_with(b"b'") {
            i += 2;
            let mut bytes = Vec::new();
            while body[i] != b'\'' {
                if body[i] == b'\\' {
                    let escaped = body[i + 1];
                    i += 2;
                    match escaped {
                        b'x' => {
                            let hex = std::str::from_utf8(&body[i..i + 2]).unwrap();
                            bytes.push(u8::from_str_radix(hex, 16).unwrap());
                            i += 2;
                        }
                        b'n' => bytes.push(b'\n'),
                        b'r' => bytes.push(b'\r'),
                        b't' => bytes.push(b'\t'),
                        other => bytes.push(other),
                    }
                } else {
                    bytes.push(body[i]);
                    i += 1;
                }
            }
            i += 1;
            Err(bytes)
        } else {
            let end = i + body[i..]
                .iter()
                .position(|&c| c == b',')
                .unwrap_or(body.len() - i);
            let text = std::str::from_utf8(&body[i..end]).unwrap();
            i = end;
            Ok(text.trim().parse().unwrap())
        };
        out.insert(name, value);
        while i < body.len() && (body[i] == b',' || body[i] == b' ') {
            i += 1;
        }
    }
    out
}

#[test]
fn real_captured_frames_decode_like_zigpy_and_reencode_exactly() {
    let Some(testdata) = shared_testdata() else {
        return;
    };
    let path = testdata.join("frames/zcl-ota-frames.json");
    let file: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let frames = file["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 17);
    let mut decoded = 0;
    let mut refused = 0;
    for entry in frames {
        let id = entry["id"].as_str().unwrap();
        let bytes = parse_hex(entry["hex"].as_str().unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, entry["length"], "{id}");

        if let Some(zigpy_error) = entry.get("zigpy_decode_error") {
            // zigpy refuses it; we refuse it too, with the status the server would answer.
            let err = OtaFrame::decode(&bytes).expect_err(id);
            assert_eq!(
                ZclStatus::from(&err),
                ZclStatus::MALFORMED_COMMAND,
                "{id}: {err}"
            );
            assert!(zigpy_error.as_str().unwrap().contains("too short"), "{id}");
            refused += 1;
            continue;
        }

        let frame = OtaFrame::decode(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(encode(&frame), bytes, "{id} re-encodes byte-for-byte");
        assert!(frame.trailing.is_empty(), "{id}");

        let expected = &entry["zigpy_decoded"];
        assert_eq!(u64::from(frame.header.tsn), expected["tsn"], "{id}");
        assert_eq!(
            u64::from(frame.header.command_id.0),
            expected["command_id"],
            "{id}"
        );
        assert_eq!(
            format!("0x{:02x}", frame.header.frame_control()),
            expected["frame_control"].as_str().unwrap(),
            "{id}"
        );
        let direction = if frame.header.direction.0 == 1 {
            "server->client"
        } else {
            "client->server"
        };
        assert_eq!(direction, entry["direction"], "{id}");

        // Every argument zigpy printed matches ours.
        let ours = zigpy_fields(&frame.command);
        let theirs = parse_zigpy_args(expected["args"].as_str().unwrap());
        assert!(!theirs.is_empty(), "{id}");
        for (name, value) in &theirs {
            let name = name.as_str();
            let our = ours
                .get(name)
                .unwrap_or_else(|| panic!("{id}: we have no field {name}"));
            match value {
                Ok(number) => assert_eq!(our.as_u64(), Some(*number), "{id}: {name}"),
                Err(data) => assert_eq!(our.as_str().unwrap(), lower_hex(data), "{id}: {name}"),
            }
        }
        assert_eq!(ours.len(), theirs.len(), "{id}: same field set {ours:?}");

        // Block data that the source says came from a corpus image matches the file.
        if let (
            Some(files),
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                file_offset, data, ..
            }),
        ) = (entry.get("matches_corpus_files"), &frame.command)
        {
            for name in files.as_array().unwrap() {
                let image = testdata
                    .join("ota-corpus/images")
                    .join(name.as_str().unwrap());
                let image = fs::read(&image).unwrap();
                let start = *file_offset as usize;
                assert_eq!(&image[start..start + data.len()], data.as_slice(), "{id}");
            }
        }

        // Requests are what the server accepts.
        if entry["direction"] == "client->server" {
            assert!(OtaFrame::decode_request(&bytes).is_ok(), "{id}");
        }
        decoded += 1;
    }
    assert_eq!((decoded, refused), (16, 1));
}

#[test]
fn the_server_answers_a_malformed_request_with_a_default_response() {
    // The real Hue block request cut inside file_offset: MALFORMED_COMMAND, same TSN.
    let bytes = parse_hex("01d403020b101d01001f000100").unwrap();
    let err = OtaFrame::decode_request(&bytes).unwrap_err();
    assert_eq!(err.status(), ZclStatus::MALFORMED_COMMAND);
    assert!(
        err.to_string()
            .contains("file_offset at offset 12 needs 4 bytes, only 1 left"),
        "{err}"
    );
    let reply = err.default_response().unwrap();
    assert_eq!(encode(&reply), parse_hex("18 d4 0b 03 80").unwrap());
}
