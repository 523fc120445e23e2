#!/usr/bin/env python3
"""Generates tests/vectors/znp/zigpy_znp_vectors.json with zigpy-znp (1.1.1), the reference ZNP host.

Run from the repository root with a Python environment that has zigpy-znp installed:

    python tests/vectors/znp/gen_znp_vectors.py > tests/vectors/znp/zigpy_znp_vectors.json

Every MT frame the project sends or answers is built with zigpy-znp's own command classes
(`c.SUBSYSTEM.Command.Req/Rsp/Callback(...)`) and serialized by its `TransportFrame`, then parsed
back by zigpy-znp (`TransportFrame.deserialize` -> `from_frame`) to prove the bytes are what
zigpy-znp itself reads. Each record: name (the Rust test builds the same message under this
name) and frame (hex, SOF to FCS).
"""

import json

import zigpy.types as zt
import zigpy.zdo.types as zdo_t
import zigpy_znp.commands as c
import zigpy_znp.types as t
from zigpy_znp.frames import TransportFrame

EUI = t.EUI64.convert("00:11:22:33:44:55:66:77")
QNIR = bytes.fromhex("012101005f11010010000000")
NOTIFY = bytes.fromhex("1910000064")
BLOCK_RSP = bytes.fromhex("1911050000") + bytes(range(50))


def vector(name, command):
    frame = TransportFrame(command.to_frame())
    raw = frame.serialize()
    parsed, rest = TransportFrame.deserialize(raw)
    assert not rest
    back = type(command).from_frame(parsed.payload)
    assert back == command, (name, back, command)
    return {"name": name, "frame": raw.hex()}


V = [
    vector("sys_reset_req_soft", c.SYS.ResetReq.Req(Type=t.ResetType.Soft)),
    vector(
        "sys_reset_ind",
        c.SYS.ResetInd.Callback(
            Reason=t.ResetReason.PowerUp, TransportRev=2, ProductId=1, MajorRel=2, MinorRel=7, MaintRel=1
        ),
    ),
    vector("sys_ping", c.SYS.Ping.Req()),
    vector("sys_ping_rsp", c.SYS.Ping.Rsp(Capabilities=t.MTCapabilities(0x0659))),
    vector("sys_version", c.SYS.Version.Req()),
    vector(
        "sys_version_rsp",
        c.SYS.Version.Rsp(
            TransportRev=2,
            ProductId=1,
            MajorRel=2,
            MinorRel=7,
            MaintRel=1,
            CodeRevision=20230507,
            BootloaderBuildType=c.sys.BootloaderBuildType.NON_BOOTLOADER_BUILD,
            BootloaderRevision=0xFFFFFFFF,
        ),
    ),
    vector("sys_osal_nv_length", c.SYS.OSALNVLength.Req(Id=t.uint16_t(0x0021))),
    vector("sys_osal_nv_length_rsp", c.SYS.OSALNVLength.Rsp(ItemLen=116)),
    vector("sys_osal_nv_read_ext", c.SYS.OSALNVReadExt.Req(Id=t.uint16_t(0x0021), Offset=0)),
    vector(
        "sys_osal_nv_read_ext_rsp",
        c.SYS.OSALNVReadExt.Rsp(Status=t.Status.SUCCESS, Value=t.ShortBytes(bytes.fromhex("0102030405"))),
    ),
    vector("sys_osal_nv_read", c.SYS.OSALNVRead.Req(Id=t.uint16_t(0x0035), Offset=0)),
    vector(
        "sys_osal_nv_read_rsp_uninit",
        c.SYS.OSALNVRead.Rsp(Status=t.Status.INVALID_PARAMETER, Value=t.ShortBytes(b"")),
    ),
    vector(
        "sys_osal_nv_item_init",
        c.SYS.OSALNVItemInit.Req(Id=t.uint16_t(0x0060), ItemLen=16, Value=t.ShortBytes(bytes(range(16)))),
    ),
    vector("sys_osal_nv_item_init_rsp", c.SYS.OSALNVItemInit.Rsp(Status=t.Status.NV_ITEM_UNINIT)),
    vector(
        "sys_osal_nv_write_ext",
        c.SYS.OSALNVWriteExt.Req(Id=t.uint16_t(0x0060), Offset=0, Value=t.LongBytes(bytes(range(16)))),
    ),
    vector("sys_osal_nv_write_ext_rsp", c.SYS.OSALNVWriteExt.Rsp(Status=t.Status.SUCCESS)),
    vector("sys_osal_nv_delete", c.SYS.OSALNVDelete.Req(Id=t.uint16_t(0x0060), ItemLen=16)),
    vector("sys_nv_length", c.SYS.NVLength.Req(SysId=1, ItemId=0x0004, SubId=0x0000)),
    vector("sys_nv_length_rsp", c.SYS.NVLength.Rsp(Length=0)),
    vector("sys_nv_read", c.SYS.NVRead.Req(SysId=1, ItemId=0x0007, SubId=0x0000, Offset=0, Length=44)),
    vector(
        "sys_nv_read_rsp",
        c.SYS.NVRead.Rsp(Status=t.Status.SUCCESS, Value=t.ShortBytes(bytes.fromhex("aabbcc"))),
    ),
    vector("sys_nv_create", c.SYS.NVCreate.Req(SysId=1, ItemId=0x0007, SubId=0x0001, Length=44)),
    vector("sys_nv_delete", c.SYS.NVDelete.Req(SysId=1, ItemId=0x0007, SubId=0x0001)),
    vector(
        "sys_nv_write",
        c.SYS.NVWrite.Req(SysId=1, ItemId=0x0007, SubId=0x0001, Offset=0, Value=t.ShortBytes(b"\x01\x02")),
    ),
    vector("util_assoc_find_device", c.UTIL.AssocFindDevice.Req(Index=0)),
    vector(
        "util_assoc_find_device_rsp",
        c.UTIL.AssocFindDevice.Rsp(Device=t.Bytes(bytes.fromhex("feff") + bytes(34))),
    ),
    vector(
        "af_register",
        c.AF.Register.Req(
            Endpoint=1,
            ProfileId=0x0104,
            DeviceId=0x0400,
            DeviceVersion=0,
            LatencyReq=c.af.LatencyReq.NoLatencyReqs,
            InputClusters=[0x0000, 0x0019],
            OutputClusters=[],
        ),
    ),
    vector("af_register_rsp", c.AF.Register.Rsp(Status=t.Status.SUCCESS)),
    vector(
        "af_data_request",
        c.AF.DataRequest.Req(
            DstAddr=0x1234,
            DstEndpoint=1,
            SrcEndpoint=1,
            ClusterId=0x0019,
            TSN=0x10,
            Options=c.af.TransmitOptions.ACK_REQUEST | c.af.TransmitOptions.SUPPRESS_ROUTE_DISC_NETWORK,
            Radius=30,
            Data=t.ShortBytes(NOTIFY),
        ),
    ),
    vector("af_data_request_rsp_mem_error", c.AF.DataRequest.Rsp(Status=t.Status.MEM_ERROR)),
    vector(
        "af_data_request_ext_unicast",
        c.AF.DataRequestExt.Req(
            DstAddrModeAddress=t.AddrModeAddress(mode=t.AddrMode.NWK, address=0x1234),
            DstEndpoint=1,
            DstPanId=0x0000,
            SrcEndpoint=1,
            ClusterId=0x0019,
            TSN=0x11,
            Options=c.af.TransmitOptions.ACK_REQUEST | c.af.TransmitOptions.SUPPRESS_ROUTE_DISC_NETWORK,
            Radius=30,
            Data=t.LongBytes(BLOCK_RSP),
        ),
    ),
    vector(
        "af_data_request_ext_broadcast",
        c.AF.DataRequestExt.Req(
            DstAddrModeAddress=t.AddrModeAddress(mode=t.AddrMode.Broadcast, address=0xFFFF),
            DstEndpoint=0xFF,
            DstPanId=0x0000,
            SrcEndpoint=1,
            ClusterId=0x0019,
            TSN=0x10,
            Options=c.af.TransmitOptions.NONE,
            Radius=30,
            Data=t.LongBytes(NOTIFY),
        ),
    ),
    vector("af_data_request_ext_rsp", c.AF.DataRequestExt.Rsp(Status=t.Status.SUCCESS)),
    vector("af_data_confirm_ok", c.AF.DataConfirm.Callback(Status=t.Status.SUCCESS, Endpoint=1, TSN=0x10)),
    vector("af_data_confirm_mac_no_ack", c.AF.DataConfirm.Callback(Status=t.Status.MAC_NO_ACK, Endpoint=1, TSN=0x10)),
    vector(
        "af_incoming_msg",
        c.AF.IncomingMsg.Callback(
            GroupId=0x0000,
            ClusterId=0x0019,
            SrcAddr=0x1234,
            SrcEndpoint=1,
            DstEndpoint=1,
            WasBroadcast=t.Bool.false,
            LQI=200,
            SecurityUse=t.Bool.false,
            TimeStamp=0x00012345,
            TSN=0,
            Data=t.ShortBytes(QNIR),
            MacSrcAddr=0x1234,
            MsgResultRadius=29,
        ),
    ),
    vector(
        "af_incoming_msg_ext",
        c.AF.IncomingMsgExt.Callback(
            GroupId=0x0000,
            ClusterId=0x0019,
            SrcAddrModeAddress=t.AddrModeAddress(mode=t.AddrMode.NWK, address=0x1234),
            SrcEndpoint=1,
            SrcPanId=0x1A62,
            DstEndpoint=1,
            WasBroadcast=t.Bool.false,
            LQI=200,
            SecurityUse=0,
            TimeStamp=0x00012345,
            TSN=7,
            Data=t.LongBytes(QNIR),
            MacSrcAddr=0x1234,
            MsgResultRadius=29,
        ),
    ),
    vector("zdo_nwk_addr_req", c.ZDO.NwkAddrReq.Req(IEEE=EUI, RequestType=c.zdo.AddrRequestType.SINGLE, StartIndex=0)),
    vector("zdo_ieee_addr_req", c.ZDO.IEEEAddrReq.Req(NWK=0x1234, RequestType=c.zdo.AddrRequestType.SINGLE, StartIndex=0)),
    vector("zdo_ieee_addr_req_rsp", c.ZDO.IEEEAddrReq.Rsp(Status=t.Status.SUCCESS)),
    vector(
        "zdo_ieee_addr_rsp",
        c.ZDO.IEEEAddrRsp.Callback(Status=zdo_t.Status.SUCCESS, IEEE=EUI, NWK=0x1234, NumAssoc=0, Index=0, Devices=[]),
    ),
    vector(
        "zdo_nwk_addr_rsp",
        c.ZDO.NwkAddrRsp.Callback(Status=zdo_t.Status.SUCCESS, IEEE=EUI, NWK=0x1234, NumAssoc=1, Index=0, Devices=[0x5678]),
    ),
    vector(
        "zdo_mgmt_permit_join_req",
        c.ZDO.MgmtPermitJoinReq.Req(AddrMode=t.AddrMode.Broadcast, Dst=0xFFFC, Duration=60, TCSignificance=0),
    ),
    vector("zdo_mgmt_permit_join_rsp", c.ZDO.MgmtPermitJoinRsp.Callback(Src=0x0000, Status=zdo_t.Status.SUCCESS)),
    vector("zdo_msg_callback_register", c.ZDO.MsgCallbackRegister.Req(ClusterId=0xFFFF)),
    vector("zdo_startup_from_app", c.ZDO.StartupFromApp.Req(StartDelay=100)),
    vector("zdo_startup_from_app_rsp", c.ZDO.StartupFromApp.Rsp(State=c.zdo.StartupState.RestoredNetworkState)),
    vector("zdo_state_change_ind", c.ZDO.StateChangeInd.Callback(State=t.DeviceState.StartedAsCoordinator)),
    vector(
        "zdo_end_device_annce_ind",
        c.ZDO.EndDeviceAnnceInd.Callback(
            Src=0x1234, NWK=0x1234, IEEE=EUI, Capabilities=c.zdo.MACCapabilities(0x8E)
        ),
    ),
    vector(
        "zdo_msg_cb_incoming",
        c.ZDO.MsgCbIncoming.Callback(
            Src=0x0000, IsBroadcast=t.Bool.false, ClusterId=0x8005, SecurityUse=0, TSN=7,
            MacDst=0x0000, Data=bytes.fromhex("0000000201f2"),
        ),
    ),
    vector("zdo_tc_dev_ind", c.ZDO.TCDevInd.Callback(SrcNwk=0x1234, SrcIEEE=EUI, ParentNwk=0x0000)),
    vector(
        "app_cnf_bdb_start_commissioning",
        c.AppConfig.BDBStartCommissioning.Req(Mode=c.app_config.BDBCommissioningMode.NwkFormation),
    ),
    vector(
        "app_cnf_bdb_set_channel",
        c.AppConfig.BDBSetChannel.Req(IsPrimary=t.Bool.true, Channel=t.Channels.from_channel_list([15])),
    ),
    vector(
        "app_cnf_bdb_commissioning_notification",
        c.AppConfig.BDBCommissioningNotification.Callback(
            Status=c.app_config.BDBCommissioningStatus.Success,
            Mode=c.app_config.BDBCommissioningMode.NwkFormation,
            RemainingModes=c.app_config.BDBCommissioningMode.NONE,
        ),
    ),
    vector(
        "rpc_error_unknown_command",
        c.RPCError.CommandNotRecognized.Rsp(
            ErrorCode=c.rpc_error.ErrorCode.InvalidCommandId,
            RequestHeader=c.SYS.Ping.Req.header,
        ),
    ),
]


# NV items as zigpy-znp serializes them for a CC2652 (aligned structs) and a CC2531 (packed),
# for the network the tests use: channel 15, PAN 0x1A62, extended PAN DD:DD:DD:DD:DD:DD:DD:01.
EXT_PAN = t.EUI64.convert("dd:dd:dd:dd:dd:dd:dd:01")
NIB = t.NIB(
    SequenceNum=0, PassiveAckTimeout=5, MaxBroadcastRetries=2, MaxChildren=0x33, MaxDepth=20,
    MaxRouters=0x33, dummyNeighborTable=0, BroadcastDeliveryTime=30, ReportConstantCost=0,
    RouteDiscRetries=0, dummyRoutingTable=0, SecureAllFrames=1, SecurityLevel=5, SymLink=1,
    CapabilityFlags=0x8F, TransactionPersistenceTime=7, nwkProtocolVersion=2,
    RouteDiscoveryTime=13, RouteExpiryTime=30, nwkDevAddress=0x0000, nwkLogicalChannel=15,
    nwkCoordAddress=0x0000, nwkCoordExtAddress=t.EUI64.convert("00:00:00:00:00:00:00:00"),
    nwkPanId=0x1A62, nwkState=t.NwkState.NWK_ROUTER, channelList=t.Channels.CHANNEL_15,
    beaconOrder=15, superFrameOrder=15, scanDuration=4, battLifeExt=0,
    allocatedRouterAddresses=1, allocatedEndDeviceAddresses=1, nodeDepth=0,
    extendedPANID=EXT_PAN, nwkKeyLoaded=t.Bool.true,
    spare1=t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData([0] * 16)),
    spare2=t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData([0] * 16)),
    spare3=0, spare4=0, nwkLinkStatusPeriod=60, nwkRouterAgeLimit=3,
    nwkUseMultiCast=t.Bool.false, nwkIsConcentrator=t.Bool.true,
    nwkConcentratorDiscoveryTime=120, nwkConcentratorRadius=10, nwkAllFresh=1,
    nwkManagerAddr=0x0000, nwkTotalTransmissions=0, nwkUpdateId=0,
)
NV = {
    "nib_aligned": NIB.serialize(align=True),
    "nib_packed": NIB.serialize(align=False),
    "nwk_key_desc": t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData(range(16))).serialize(),
    "nwk_sec_material": t.NwkSecMaterialDesc(FrameCounter=0x1234, ExtendedPanID=EXT_PAN).serialize(
        align=True
    ),
    "addr_mgr_entry_aligned": t.AddrMgrEntry(
        type=t.AddrMgrUserType.Security, nwkAddr=0x1001, extAddr=t.EUI64.convert("00:12:4b:00:00:00:00:01")
    ).serialize(align=True),
    "aps_link_key_table_empty": t.APSLinkKeyTable([]).serialize(align=True),
}

print(
    json.dumps(
        {"generator": "zigpy-znp 1.1.1", "vectors": V, "nv": {k: v.hex() for k, v in NV.items()}},
        indent=1,
    )
)
