//! Integration tests for the `znp` module: every MT frame we use against the vectors zigpy-znp
//! generated (`tests/vectors/znp/`), byte-exact in both directions.

use serde_json::Value;
use zigbee_otad::wire::parse_hex;
use zigbee_otad::znp::command::*;
use zigbee_otad::znp::frame::Subsystem;

use crate::common::vectors_dir;

const EUI: u64 = 0x0011_2233_4455_6677;
const QNIR: &str = "012101005f11010010000000";
const NOTIFY: &str = "1910000064";

fn hex(text: &str) -> Vec<u8> {
    parse_hex(text).unwrap()
}

fn status(subsystem: Subsystem, id: u8, status: u8) -> Message {
    Message::StatusResponse {
        subsystem,
        id,
        status,
    }
}

/// The message the generator built under `name`, with the same values.
fn expected(name: &str) -> Message {
    let block = {
        let mut b = hex("1911050000");
        b.extend(0..50u8);
        b
    };
    let incoming = AfIncomingMsg {
        group: 0,
        cluster: 0x0019,
        source: 0x1234,
        src_endpoint: 1,
        dst_endpoint: 1,
        was_broadcast: 0,
        lqi: 200,
        security_use: 0,
        timestamp: 0x0001_2345,
        tsn: 0,
        data: hex(QNIR),
        mac_source: 0x1234,
        radius: 29,
    };
    match name {
        "sys_reset_req_soft" => Message::SysResetReq { kind: RESET_SOFT },
        "sys_reset_ind" => Message::SysResetInd {
            reason: 0,
            transport_rev: 2,
            product_id: 1,
            release: [2, 7, 1],
        },
        "sys_ping" => Message::SysPing,
        "sys_ping_rsp" => Message::SysPingResponse {
            capabilities: 0x0659,
        },
        "sys_version" => Message::SysVersion,
        "sys_version_rsp" => Message::SysVersionResponse(SysVersion {
            transport_rev: 2,
            product_id: 1,
            major: 2,
            minor: 7,
            maint: 1,
            extra: Some((20_230_507, 0, 0xFFFF_FFFF)),
        }),
        "sys_osal_nv_length" => Message::SysOsalNvLength { id: 0x0021 },
        "sys_osal_nv_length_rsp" => Message::SysOsalNvLengthResponse { length: 116 },
        "sys_osal_nv_read_ext" => Message::SysOsalNvReadExt {
            id: 0x0021,
            offset: 0,
        },
        "sys_osal_nv_read_ext_rsp" => Message::NvValueResponse {
            id: 0x1C,
            status: status::SUCCESS,
            value: hex("0102030405"),
        },
        "sys_osal_nv_read" => Message::SysOsalNvRead {
            id: 0x0035,
            offset: 0,
        },
        "sys_osal_nv_read_rsp_uninit" => Message::NvValueResponse {
            id: 0x08,
            status: status::INVALID_PARAMETER,
            value: Vec::new(),
        },
        "sys_osal_nv_item_init" => Message::SysOsalNvItemInit {
            id: 0x0060,
            length: 16,
            value: (0..16).collect(),
        },
        "sys_osal_nv_item_init_rsp" => status(Subsystem::SYS, 0x07, status::NV_ITEM_UNINIT),
        "sys_osal_nv_write_ext" => Message::SysOsalNvWriteExt {
            id: 0x0060,
            offset: 0,
            value: (0..16).collect(),
        },
        "sys_osal_nv_write_ext_rsp" => status(Subsystem::SYS, 0x1D, status::SUCCESS),
        "sys_osal_nv_delete" => Message::SysOsalNvDelete {
            id: 0x0060,
            length: 16,
        },
        "sys_nv_length" => Message::SysNvLength {
            sys_id: 1,
            item_id: 4,
            sub_id: 0,
        },
        "sys_nv_length_rsp" => Message::SysNvLengthResponse { length: 0 },
        "sys_nv_read" => Message::SysNvRead {
            sys_id: 1,
            item_id: 7,
            sub_id: 0,
            offset: 0,
            length: 44,
        },
        "sys_nv_read_rsp" => Message::NvValueResponse {
            id: 0x33,
            status: status::SUCCESS,
            value: hex("aabbcc"),
        },
        "sys_nv_create" => Message::SysNvCreate {
            sys_id: 1,
            item_id: 7,
            sub_id: 1,
            length: 44,
        },
        "sys_nv_delete" => Message::SysNvDelete {
            sys_id: 1,
            item_id: 7,
            sub_id: 1,
        },
        "sys_nv_write" => Message::SysNvWrite {
            sys_id: 1,
            item_id: 7,
            sub_id: 1,
            offset: 0,
            value: vec![1, 2],
        },
        "util_assoc_find_device" => Message::UtilAssocFindDevice { index: 0 },
        "util_assoc_find_device_rsp" => Message::UtilAssocFindDeviceResponse {
            device: {
                let mut d = hex("feff");
                d.extend([0u8; 34]);
                d
            },
        },
        "af_register" => Message::AfRegister(AfRegister {
            endpoint: 1,
            profile: 0x0104,
            device_id: 0x0400,
            device_version: 0,
            latency: 0,
            input_clusters: vec![0x0000, 0x0019],
            output_clusters: vec![],
        }),
        "af_register_rsp" => status(Subsystem::AF, 0x00, status::SUCCESS),
        "af_data_request" => Message::AfDataRequest(AfDataRequest {
            destination: 0x1234,
            dst_endpoint: 1,
            src_endpoint: 1,
            cluster: 0x0019,
            tsn: 0x10,
            options: AF_OPTION_ACK_REQUEST | AF_OPTION_SUPPRESS_ROUTE_DISCOVERY,
            radius: 30,
            data: hex(NOTIFY),
        }),
        "af_data_request_rsp_mem_error" => status(Subsystem::AF, 0x01, status::MEM_ERROR),
        "af_data_request_ext_unicast" => Message::AfDataRequestExt(AfDataRequestExt {
            destination: AddrModeAddress::nwk(0x1234),
            dst_endpoint: 1,
            dst_pan: 0,
            src_endpoint: 1,
            cluster: 0x0019,
            tsn: 0x11,
            options: AF_OPTION_ACK_REQUEST | AF_OPTION_SUPPRESS_ROUTE_DISCOVERY,
            radius: 30,
            data: block,
        }),
        "af_data_request_ext_broadcast" => Message::AfDataRequestExt(AfDataRequestExt {
            destination: AddrModeAddress::broadcast(0xFFFF),
            dst_endpoint: 0xFF,
            dst_pan: 0,
            src_endpoint: 1,
            cluster: 0x0019,
            tsn: 0x10,
            options: 0,
            radius: 30,
            data: hex(NOTIFY),
        }),
        "af_data_request_ext_rsp" => status(Subsystem::AF, 0x02, status::SUCCESS),
        "af_data_confirm_ok" => Message::AfDataConfirm {
            status: status::SUCCESS,
            endpoint: 1,
            tsn: 0x10,
        },
        "af_data_confirm_mac_no_ack" => Message::AfDataConfirm {
            status: status::MAC_NO_ACK,
            endpoint: 1,
            tsn: 0x10,
        },
        "af_incoming_msg" => Message::AfIncomingMsg(incoming),
        "af_incoming_msg_ext" => Message::AfIncomingMsgExt(AfIncomingMsgExt {
            group: 0,
            cluster: 0x0019,
            source: AddrModeAddress::nwk(0x1234),
            src_endpoint: 1,
            src_pan: 0x1A62,
            dst_endpoint: 1,
            was_broadcast: 0,
            lqi: 200,
            security_use: 0,
            timestamp: 0x0001_2345,
            tsn: 7,
            data: hex(QNIR),
            mac_source: 0x1234,
            radius: 29,
        }),
        "zdo_nwk_addr_req" => Message::ZdoNwkAddrReq {
            ieee: EUI,
            request_type: 0,
            start_index: 0,
        },
        "zdo_ieee_addr_req" => Message::ZdoIeeeAddrReq {
            nwk: 0x1234,
            request_type: 0,
            start_index: 0,
        },
        "zdo_ieee_addr_req_rsp" => status(Subsystem::ZDO, 0x01, status::SUCCESS),
        "zdo_ieee_addr_rsp" => Message::ZdoIeeeAddrRsp(ZdoAddrRsp {
            status: 0,
            ieee: EUI,
            nwk: 0x1234,
            num_assoc: 0,
            index: 0,
            devices: vec![],
        }),
        "zdo_nwk_addr_rsp" => Message::ZdoNwkAddrRsp(ZdoAddrRsp {
            status: 0,
            ieee: EUI,
            nwk: 0x1234,
            num_assoc: 1,
            index: 0,
            devices: vec![0x5678],
        }),
        "zdo_mgmt_permit_join_req" => Message::ZdoMgmtPermitJoinReq {
            addr_mode: ADDR_MODE_BROADCAST,
            destination: 0xFFFC,
            duration: 60,
            tc_significance: 0,
        },
        "zdo_mgmt_permit_join_rsp" => Message::ZdoMgmtPermitJoinRsp {
            source: 0,
            status: 0,
        },
        "zdo_msg_callback_register" => Message::ZdoMsgCallbackRegister { cluster: 0xFFFF },
        "zdo_startup_from_app" => Message::ZdoStartupFromApp { delay: 100 },
        "zdo_startup_from_app_rsp" => Message::ZdoStartupFromAppResponse { state: 0 },
        "zdo_state_change_ind" => Message::ZdoStateChangeInd {
            state: DEVICE_STATE_STARTED_AS_COORDINATOR,
        },
        "zdo_end_device_annce_ind" => Message::ZdoEndDeviceAnnceInd {
            source: 0x1234,
            nwk: 0x1234,
            ieee: EUI,
            capabilities: 0x8E,
        },
        "zdo_msg_cb_incoming" => Message::ZdoMsgCbIncoming {
            source: 0x0000,
            was_broadcast: 0,
            cluster: 0x8005,
            security_use: 0,
            sequence: 7,
            mac_destination: 0x0000,
            data: vec![0x00, 0x00, 0x00, 0x02, 0x01, 0xF2],
        },
        "zdo_tc_dev_ind" => Message::ZdoTcDevInd {
            nwk: 0x1234,
            ieee: EUI,
            parent: 0,
        },
        "app_cnf_bdb_start_commissioning" => Message::AppCnfBdbStartCommissioning {
            mode: BDB_MODE_FORMATION,
        },
        "app_cnf_bdb_set_channel" => Message::AppCnfBdbSetChannel {
            is_primary: 1,
            channels: 1 << 15,
        },
        "app_cnf_bdb_commissioning_notification" => Message::AppCnfBdbCommissioningNotification {
            status: 0,
            mode: BDB_MODE_FORMATION,
            remaining_modes: 0,
        },
        "rpc_error_unknown_command" => Message::RpcError {
            error: 2,
            cmd0: 0x21,
            cmd1: 0x01,
        },
        other => panic!("no expected message for vector {other}"),
    }
}

#[test]
fn every_zigpy_znp_vector_byte_exact_both_ways() {
    let text = std::fs::read_to_string(vectors_dir().join("znp/zigpy_znp_vectors.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let vectors = json["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 50, "{} vectors", vectors.len());
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let bytes = hex(vector["frame"].as_str().unwrap());
        let message = expected(name);
        assert_eq!(
            message.to_bytes(),
            bytes,
            "{name}: our encoding differs from zigpy-znp's"
        );
        assert_eq!(
            Message::decode_bytes(&bytes).unwrap(),
            message,
            "{name}: we decode zigpy-znp's frame differently"
        );
        assert!(
            !matches!(message, Message::Other(_)),
            "{name} must be a typed message"
        );
    }
}

#[test]
fn truncated_and_padded_frames_are_refused_with_the_command_named() {
    let mut frame = Message::AfDataConfirm {
        status: 0,
        endpoint: 1,
        tsn: 2,
    }
    .to_frame();
    frame.payload.pop();
    let err = Message::decode(&frame).unwrap_err().to_string();
    assert!(
        err.contains("AF.DataConfirm") && err.contains("TSN"),
        "{err}"
    );
    frame.payload.extend([2, 9]);
    let err = Message::decode(&frame).unwrap_err().to_string();
    assert!(err.contains("1 unexpected bytes"), "{err}");
}

#[test]
fn nv_items_match_zigpy_znp_serialization() {
    use zigbee_otad::znp::nv::{self, Nib};
    let text = std::fs::read_to_string(vectors_dir().join("znp/zigpy_znp_vectors.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let nv_hex = |name: &str| hex(json["nv"][name].as_str().unwrap());
    const EXT_PAN: u64 = 0xDDDD_DDDD_DDDD_DD01;
    assert_eq!(
        Nib::aligned_bytes(15, 0x1A62, EXT_PAN),
        nv_hex("nib_aligned")
    );
    for (name, aligned) in [("nib_aligned", true), ("nib_packed", false)] {
        let nib = Nib::parse(&nv_hex(name)).unwrap();
        assert_eq!(
            (nib.channel, nib.pan_id, nib.extended_pan_id, nib.key_loaded),
            (15, 0x1A62, EXT_PAN, true),
            "{name}"
        );
        assert_eq!(
            (nib.nwk_address, nib.security_level, nib.aligned),
            (0, 5, aligned)
        );
    }
    let key: [u8; 16] = std::array::from_fn(|i| i as u8);
    assert_eq!(nv::key_desc_bytes(0, &key), nv_hex("nwk_key_desc"));
    assert_eq!(nv::parse_key_desc(&nv_hex("nwk_key_desc")), Some((0, key)));
    assert_eq!(
        nv::sec_material_bytes(0x1234, EXT_PAN),
        nv_hex("nwk_sec_material")
    );
    assert_eq!(
        nv::addr_mgr_entry_bytes(nv::ADDR_MGR_SECURITY, 0x1001, 0x0012_4B00_0000_0001),
        nv_hex("addr_mgr_entry_aligned")
    );
    assert!(Nib::parse(&[0; 100]).is_err());
}
