//! The byte layouts of [`Message`]: each command's DATA field written and read, in the field
//! order zigpy-znp's `commands/*.py` gives (PROTOCOLS.md §3). Split from [`super::command`],
//! which holds the types.

use super::command::{
    AddrModeAddress, AfDataRequest, AfDataRequestExt, AfIncomingMsg, AfIncomingMsgExt, AfRegister,
    Message, SysVersion, ZdoAddrRsp, is_status_only_response,
};
use super::frame::{Frame, FrameType, Subsystem};
use crate::wire::{PutLe, Reader, Truncated};

fn put_bytes8(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

fn put_bytes16(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.put_u16_le(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

fn put_address(out: &mut Vec<u8>, address: AddrModeAddress) {
    out.push(address.mode);
    out.put_u64_le(address.address);
}

fn put_clusters(out: &mut Vec<u8>, clusters: &[u16]) {
    let count = u8::try_from(clusters.len()).unwrap_or(u8::MAX);
    out.push(count);
    for cluster in clusters.iter().take(usize::from(count)) {
        out.put_u16_le(*cluster);
    }
}

impl Message {
    /// The DATA field.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::SysResetReq { kind } => out.push(*kind),
            Message::SysResetInd {
                reason,
                transport_rev,
                product_id,
                release,
            } => {
                out.extend_from_slice(&[*reason, *transport_rev, *product_id]);
                out.extend_from_slice(release);
            }
            Message::SysPing
            | Message::SysVersion
            | Message::SysOsalNvLength { .. }
            | Message::UtilAssocFindDevice { .. }
            | Message::ZdoMsgCallbackRegister { .. }
            | Message::ZdoStateChangeInd { .. }
            | Message::AppCnfBdbStartCommissioning { .. }
            | Message::ZdoStartupFromApp { .. }
            | Message::ZdoStartupFromAppResponse { .. }
            | Message::SysPingResponse { .. }
            | Message::SysOsalNvLengthResponse { .. }
            | Message::SysNvLengthResponse { .. } => self.small_payload(&mut out),
            Message::SysVersionResponse(v) => {
                out.extend_from_slice(&[v.transport_rev, v.product_id, v.major, v.minor, v.maint]);
                if let Some((code, build, boot)) = v.extra {
                    out.put_u32_le(code);
                    out.push(build);
                    out.put_u32_le(boot);
                }
            }
            Message::SysOsalNvRead { id, offset } => {
                out.put_u16_le(*id);
                out.push(*offset);
            }
            Message::SysOsalNvReadExt { id, offset } => {
                out.put_u16_le(*id);
                out.put_u16_le(*offset);
            }
            Message::SysOsalNvItemInit { id, length, value } => {
                out.put_u16_le(*id);
                out.put_u16_le(*length);
                put_bytes8(&mut out, value);
            }
            Message::SysOsalNvWriteExt { id, offset, value } => {
                out.put_u16_le(*id);
                out.put_u16_le(*offset);
                put_bytes16(&mut out, value);
            }
            Message::SysOsalNvDelete { id, length } => {
                out.put_u16_le(*id);
                out.put_u16_le(*length);
            }
            Message::SysNvLength {
                sys_id,
                item_id,
                sub_id,
            }
            | Message::SysNvDelete {
                sys_id,
                item_id,
                sub_id,
            } => {
                out.push(*sys_id);
                out.put_u16_le(*item_id);
                out.put_u16_le(*sub_id);
            }
            Message::SysNvRead {
                sys_id,
                item_id,
                sub_id,
                offset,
                length,
            } => {
                out.push(*sys_id);
                out.put_u16_le(*item_id);
                out.put_u16_le(*sub_id);
                out.put_u16_le(*offset);
                out.push(*length);
            }
            Message::SysNvCreate {
                sys_id,
                item_id,
                sub_id,
                length,
            } => {
                out.push(*sys_id);
                out.put_u16_le(*item_id);
                out.put_u16_le(*sub_id);
                out.put_u32_le(*length);
            }
            Message::SysNvWrite {
                sys_id,
                item_id,
                sub_id,
                offset,
                value,
            } => {
                out.push(*sys_id);
                out.put_u16_le(*item_id);
                out.put_u16_le(*sub_id);
                out.put_u16_le(*offset);
                put_bytes8(&mut out, value);
            }
            Message::NvValueResponse { status, value, .. } => {
                out.push(*status);
                put_bytes8(&mut out, value);
            }
            Message::UtilAssocFindDeviceResponse { device } => out.extend_from_slice(device),
            Message::AfRegister(r) => {
                out.push(r.endpoint);
                out.put_u16_le(r.profile);
                out.put_u16_le(r.device_id);
                out.push(r.device_version);
                out.push(r.latency);
                put_clusters(&mut out, &r.input_clusters);
                put_clusters(&mut out, &r.output_clusters);
            }
            Message::AfDataRequest(r) => {
                out.put_u16_le(r.destination);
                out.extend_from_slice(&[r.dst_endpoint, r.src_endpoint]);
                out.put_u16_le(r.cluster);
                out.extend_from_slice(&[r.tsn, r.options, r.radius]);
                put_bytes8(&mut out, &r.data);
            }
            Message::AfDataRequestExt(r) => {
                put_address(&mut out, r.destination);
                out.push(r.dst_endpoint);
                out.put_u16_le(r.dst_pan);
                out.push(r.src_endpoint);
                out.put_u16_le(r.cluster);
                out.extend_from_slice(&[r.tsn, r.options, r.radius]);
                put_bytes16(&mut out, &r.data);
            }
            Message::AfDataConfirm {
                status,
                endpoint,
                tsn,
            } => out.extend_from_slice(&[*status, *endpoint, *tsn]),
            Message::AfIncomingMsg(m) => {
                out.put_u16_le(m.group);
                out.put_u16_le(m.cluster);
                out.put_u16_le(m.source);
                out.extend_from_slice(&[
                    m.src_endpoint,
                    m.dst_endpoint,
                    m.was_broadcast,
                    m.lqi,
                    m.security_use,
                ]);
                out.put_u32_le(m.timestamp);
                out.push(m.tsn);
                put_bytes8(&mut out, &m.data);
                out.put_u16_le(m.mac_source);
                out.push(m.radius);
            }
            Message::AfIncomingMsgExt(m) => {
                out.put_u16_le(m.group);
                out.put_u16_le(m.cluster);
                put_address(&mut out, m.source);
                out.push(m.src_endpoint);
                out.put_u16_le(m.src_pan);
                out.extend_from_slice(&[m.dst_endpoint, m.was_broadcast, m.lqi, m.security_use]);
                out.put_u32_le(m.timestamp);
                out.push(m.tsn);
                put_bytes16(&mut out, &m.data);
                out.put_u16_le(m.mac_source);
                out.push(m.radius);
            }
            Message::ZdoNwkAddrReq {
                ieee,
                request_type,
                start_index,
            } => {
                out.put_u64_le(*ieee);
                out.extend_from_slice(&[*request_type, *start_index]);
            }
            Message::ZdoIeeeAddrReq {
                nwk,
                request_type,
                start_index,
            } => {
                out.put_u16_le(*nwk);
                out.extend_from_slice(&[*request_type, *start_index]);
            }
            Message::ZdoNwkAddrRsp(r) | Message::ZdoIeeeAddrRsp(r) => {
                out.push(r.status);
                out.put_u64_le(r.ieee);
                out.put_u16_le(r.nwk);
                out.extend_from_slice(&[r.num_assoc, r.index]);
                for device in &r.devices {
                    out.put_u16_le(*device);
                }
            }
            Message::ZdoMgmtPermitJoinReq {
                addr_mode,
                destination,
                duration,
                tc_significance,
            } => {
                out.push(*addr_mode);
                out.put_u16_le(*destination);
                out.extend_from_slice(&[*duration, *tc_significance]);
            }
            Message::ZdoMgmtPermitJoinRsp { source, status } => {
                out.put_u16_le(*source);
                out.push(*status);
            }
            Message::ZdoEndDeviceAnnceInd {
                source,
                nwk,
                ieee,
                capabilities,
            } => {
                out.put_u16_le(*source);
                out.put_u16_le(*nwk);
                out.put_u64_le(*ieee);
                out.push(*capabilities);
            }
            Message::ZdoMsgCbIncoming {
                source,
                was_broadcast,
                cluster,
                security_use,
                sequence,
                mac_destination,
                data,
            } => {
                out.put_u16_le(*source);
                out.push(*was_broadcast);
                out.put_u16_le(*cluster);
                out.extend_from_slice(&[*security_use, *sequence]);
                out.put_u16_le(*mac_destination);
                out.extend_from_slice(data);
            }
            Message::ZdoTcDevInd { nwk, ieee, parent } => {
                out.put_u16_le(*nwk);
                out.put_u64_le(*ieee);
                out.put_u16_le(*parent);
            }
            Message::AppCnfBdbSetChannel {
                is_primary,
                channels,
            } => {
                out.push(*is_primary);
                out.put_u32_le(*channels);
            }
            Message::AppCnfBdbCommissioningNotification {
                status,
                mode,
                remaining_modes,
            } => out.extend_from_slice(&[*status, *mode, *remaining_modes]),
            Message::StatusResponse { status, .. } => out.push(*status),
            Message::RpcError { error, cmd0, cmd1 } => {
                out.extend_from_slice(&[*error, *cmd0, *cmd1]);
            }
            Message::Other(frame) => out.extend_from_slice(&frame.payload),
        }
        out
    }

    /// The payloads of one or two fixed-size fields.
    fn small_payload(&self, out: &mut Vec<u8>) {
        match self {
            Message::SysOsalNvLength { id } => out.put_u16_le(*id),
            Message::UtilAssocFindDevice { index } => out.push(*index),
            Message::ZdoMsgCallbackRegister { cluster } => out.put_u16_le(*cluster),
            Message::ZdoStateChangeInd { state } => out.push(*state),
            Message::AppCnfBdbStartCommissioning { mode } => out.push(*mode),
            Message::ZdoStartupFromApp { delay } => out.put_u16_le(*delay),
            Message::ZdoStartupFromAppResponse { state } => out.push(*state),
            Message::SysPingResponse { capabilities } => out.put_u16_le(*capabilities),
            Message::SysOsalNvLengthResponse { length } => out.put_u16_le(*length),
            Message::SysNvLengthResponse { length } => out.put_u32_le(*length),
            _ => {}
        }
    }
}

/// The name of a command this module decodes, or `None` to keep it as [`Message::Other`].
pub(super) fn command_name(key: (FrameType, Subsystem, u8)) -> Option<&'static str> {
    use FrameType::{Areq, Sreq, Srsp};
    use Subsystem as S;
    Some(match key {
        (Areq, S::SYS, 0x00) => "SYS.ResetReq",
        (Areq, S::SYS, 0x80) => "SYS.ResetInd",
        (Sreq, S::SYS, 0x01) => "SYS.Ping",
        (Srsp, S::SYS, 0x01) => "SYS.Ping SRSP",
        (Sreq, S::SYS, 0x02) => "SYS.Version",
        (Srsp, S::SYS, 0x02) => "SYS.Version SRSP",
        (Sreq, S::SYS, 0x07) => "SYS.OSALNVItemInit",
        (Sreq, S::SYS, 0x08) => "SYS.OSALNVRead",
        (Sreq, S::SYS, 0x12) => "SYS.OSALNVDelete",
        (Sreq, S::SYS, 0x13) => "SYS.OSALNVLength",
        (Srsp, S::SYS, 0x13) => "SYS.OSALNVLength SRSP",
        (Sreq, S::SYS, 0x1C) => "SYS.OSALNVReadExt",
        (Sreq, S::SYS, 0x1D) => "SYS.OSALNVWriteExt",
        (Sreq, S::SYS, 0x30) => "SYS.NVCreate",
        (Sreq, S::SYS, 0x31) => "SYS.NVDelete",
        (Sreq, S::SYS, 0x32) => "SYS.NVLength",
        (Srsp, S::SYS, 0x32) => "SYS.NVLength SRSP",
        (Sreq, S::SYS, 0x33) => "SYS.NVRead",
        (Sreq, S::SYS, 0x34) => "SYS.NVWrite",
        (Srsp, S::SYS, 0x08 | 0x1C | 0x33) => "SYS NV read SRSP",
        (Sreq, S::UTIL, 0x49) => "UTIL.AssocFindDevice",
        (Srsp, S::UTIL, 0x49) => "UTIL.AssocFindDevice SRSP",
        (Sreq, S::AF, 0x00) => "AF.Register",
        (Sreq, S::AF, 0x01) => "AF.DataRequest",
        (Sreq, S::AF, 0x02) => "AF.DataRequestExt",
        (Areq, S::AF, 0x80) => "AF.DataConfirm",
        (Areq, S::AF, 0x81) => "AF.IncomingMsg",
        (Areq, S::AF, 0x82) => "AF.IncomingMsgExt",
        (Sreq, S::ZDO, 0x00) => "ZDO.NwkAddrReq",
        (Sreq, S::ZDO, 0x01) => "ZDO.IEEEAddrReq",
        (Sreq, S::ZDO, 0x36) => "ZDO.MgmtPermitJoinReq",
        (Sreq, S::ZDO, 0x3E) => "ZDO.MsgCallbackRegister",
        (Sreq, S::ZDO, 0x40) => "ZDO.StartupFromApp",
        (Srsp, S::ZDO, 0x40) => "ZDO.StartupFromApp SRSP",
        (Areq, S::ZDO, 0x80) => "ZDO.NwkAddrRsp",
        (Areq, S::ZDO, 0x81) => "ZDO.IEEEAddrRsp",
        (Areq, S::ZDO, 0xB6) => "ZDO.MgmtPermitJoinRsp",
        (Areq, S::ZDO, 0xC0) => "ZDO.StateChangeInd",
        (Areq, S::ZDO, 0xC1) => "ZDO.EndDeviceAnnceInd",
        (Areq, S::ZDO, 0xFF) => "ZDO.MsgCbIncoming",
        (Areq, S::ZDO, 0xCA) => "ZDO.TCDevInd",
        (Sreq, S::APP_CNF, 0x05) => "APP_CNF.BDBStartCommissioning",
        (Sreq, S::APP_CNF, 0x08) => "APP_CNF.BDBSetChannel",
        (Areq, S::APP_CNF, 0x80) => "APP_CNF.BDBCommissioningNotification",
        (Srsp, S::RPC_ERROR, 0x00) => "RPC_ERROR.CommandNotRecognized",
        (Srsp, subsystem, id) if is_status_only_response(subsystem, id) => "status SRSP",
        _ => return None,
    })
}

fn bytes8(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, Truncated> {
    let len = r.u8(field)?;
    Ok(r.take(field, usize::from(len))?.to_vec())
}

fn bytes16(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, Truncated> {
    let len = r.u16(field)?;
    Ok(r.take(field, usize::from(len))?.to_vec())
}

fn address(r: &mut Reader<'_>, field: &'static str) -> Result<AddrModeAddress, Truncated> {
    Ok(AddrModeAddress {
        mode: r.u8(field)?,
        address: r.u64(field)?,
    })
}

fn clusters(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u16>, Truncated> {
    let count = r.u8(field)?;
    (0..count).map(|_| r.u16(field)).collect()
}

fn addr_rsp(r: &mut Reader<'_>) -> Result<ZdoAddrRsp, Truncated> {
    let status = r.u8("Status")?;
    let ieee = r.u64("IEEE")?;
    let nwk = r.u16("NWK")?;
    let num_assoc = r.u8("NumAssoc")?;
    let index = r.u8("Index")?;
    let mut devices = Vec::new();
    while !r.is_empty() {
        devices.push(r.u16("Devices")?);
    }
    Ok(ZdoAddrRsp {
        status,
        ieee,
        nwk,
        num_assoc,
        index,
        devices,
    })
}

pub(super) fn decode_fields(
    key: (FrameType, Subsystem, u8),
    r: &mut Reader<'_>,
) -> Result<Message, Truncated> {
    use FrameType::{Areq, Sreq, Srsp};
    use Subsystem as S;
    Ok(match key {
        (Areq, S::SYS, 0x00) => Message::SysResetReq {
            kind: r.u8("Type")?,
        },
        (Areq, S::SYS, 0x80) => Message::SysResetInd {
            reason: r.u8("Reason")?,
            transport_rev: r.u8("TransportRev")?,
            product_id: r.u8("ProductId")?,
            release: r.array("Release")?,
        },
        (Sreq, S::SYS, 0x01) => Message::SysPing,
        (Srsp, S::SYS, 0x01) => Message::SysPingResponse {
            capabilities: r.u16("Capabilities")?,
        },
        (Sreq, S::SYS, 0x02) => Message::SysVersion,
        (Srsp, S::SYS, 0x02) => {
            let [transport_rev, product_id, major, minor, maint] = r.array("Version")?;
            let extra = if r.is_empty() {
                None
            } else {
                Some((
                    r.u32("CodeRevision")?,
                    r.u8("BootloaderBuildType")?,
                    r.u32("BootloaderRevision")?,
                ))
            };
            Message::SysVersionResponse(SysVersion {
                transport_rev,
                product_id,
                major,
                minor,
                maint,
                extra,
            })
        }
        (Sreq, S::SYS, 0x07) => Message::SysOsalNvItemInit {
            id: r.u16("Id")?,
            length: r.u16("ItemLen")?,
            value: bytes8(r, "Value")?,
        },
        (Sreq, S::SYS, 0x08) => Message::SysOsalNvRead {
            id: r.u16("Id")?,
            offset: r.u8("Offset")?,
        },
        (Sreq, S::SYS, 0x12) => Message::SysOsalNvDelete {
            id: r.u16("Id")?,
            length: r.u16("ItemLen")?,
        },
        (Sreq, S::SYS, 0x13) => Message::SysOsalNvLength { id: r.u16("Id")? },
        (Srsp, S::SYS, 0x13) => Message::SysOsalNvLengthResponse {
            length: r.u16("ItemLen")?,
        },
        (Sreq, S::SYS, 0x1C) => Message::SysOsalNvReadExt {
            id: r.u16("Id")?,
            offset: r.u16("Offset")?,
        },
        (Sreq, S::SYS, 0x1D) => Message::SysOsalNvWriteExt {
            id: r.u16("Id")?,
            offset: r.u16("Offset")?,
            value: bytes16(r, "Value")?,
        },
        (Sreq, S::SYS, 0x30) => Message::SysNvCreate {
            sys_id: r.u8("SysId")?,
            item_id: r.u16("ItemId")?,
            sub_id: r.u16("SubId")?,
            length: r.u32("Length")?,
        },
        (Sreq, S::SYS, 0x31) => Message::SysNvDelete {
            sys_id: r.u8("SysId")?,
            item_id: r.u16("ItemId")?,
            sub_id: r.u16("SubId")?,
        },
        (Sreq, S::SYS, 0x32) => Message::SysNvLength {
            sys_id: r.u8("SysId")?,
            item_id: r.u16("ItemId")?,
            sub_id: r.u16("SubId")?,
        },
        (Srsp, S::SYS, 0x32) => Message::SysNvLengthResponse {
            length: r.u32("Length")?,
        },
        (Sreq, S::SYS, 0x33) => Message::SysNvRead {
            sys_id: r.u8("SysId")?,
            item_id: r.u16("ItemId")?,
            sub_id: r.u16("SubId")?,
            offset: r.u16("Offset")?,
            length: r.u8("Length")?,
        },
        (Sreq, S::SYS, 0x34) => Message::SysNvWrite {
            sys_id: r.u8("SysId")?,
            item_id: r.u16("ItemId")?,
            sub_id: r.u16("SubId")?,
            offset: r.u16("Offset")?,
            value: bytes8(r, "Value")?,
        },
        (Srsp, S::SYS, id @ (0x08 | 0x1C | 0x33)) => Message::NvValueResponse {
            id,
            status: r.u8("Status")?,
            value: bytes8(r, "Value")?,
        },
        (Sreq, S::UTIL, 0x49) => Message::UtilAssocFindDevice {
            index: r.u8("Index")?,
        },
        (Srsp, S::UTIL, 0x49) => Message::UtilAssocFindDeviceResponse {
            device: r.rest().to_vec(),
        },
        (Sreq, S::AF, 0x00) => Message::AfRegister(AfRegister {
            endpoint: r.u8("Endpoint")?,
            profile: r.u16("ProfileId")?,
            device_id: r.u16("DeviceId")?,
            device_version: r.u8("DeviceVersion")?,
            latency: r.u8("LatencyReq")?,
            input_clusters: clusters(r, "InputClusters")?,
            output_clusters: clusters(r, "OutputClusters")?,
        }),
        (Sreq, S::AF, 0x01) => Message::AfDataRequest(AfDataRequest {
            destination: r.u16("DstAddr")?,
            dst_endpoint: r.u8("DstEndpoint")?,
            src_endpoint: r.u8("SrcEndpoint")?,
            cluster: r.u16("ClusterId")?,
            tsn: r.u8("TSN")?,
            options: r.u8("Options")?,
            radius: r.u8("Radius")?,
            data: bytes8(r, "Data")?,
        }),
        (Sreq, S::AF, 0x02) => Message::AfDataRequestExt(AfDataRequestExt {
            destination: address(r, "DstAddrModeAddress")?,
            dst_endpoint: r.u8("DstEndpoint")?,
            dst_pan: r.u16("DstPanId")?,
            src_endpoint: r.u8("SrcEndpoint")?,
            cluster: r.u16("ClusterId")?,
            tsn: r.u8("TSN")?,
            options: r.u8("Options")?,
            radius: r.u8("Radius")?,
            data: bytes16(r, "Data")?,
        }),
        (Areq, S::AF, 0x80) => Message::AfDataConfirm {
            status: r.u8("Status")?,
            endpoint: r.u8("Endpoint")?,
            tsn: r.u8("TSN")?,
        },
        (Areq, S::AF, 0x81) => Message::AfIncomingMsg(AfIncomingMsg {
            group: r.u16("GroupId")?,
            cluster: r.u16("ClusterId")?,
            source: r.u16("SrcAddr")?,
            src_endpoint: r.u8("SrcEndpoint")?,
            dst_endpoint: r.u8("DstEndpoint")?,
            was_broadcast: r.u8("WasBroadcast")?,
            lqi: r.u8("LQI")?,
            security_use: r.u8("SecurityUse")?,
            timestamp: r.u32("TimeStamp")?,
            tsn: r.u8("TSN")?,
            data: bytes8(r, "Data")?,
            mac_source: r.u16("MacSrcAddr")?,
            radius: r.u8("MsgResultRadius")?,
        }),
        (Areq, S::AF, 0x82) => Message::AfIncomingMsgExt(AfIncomingMsgExt {
            group: r.u16("GroupId")?,
            cluster: r.u16("ClusterId")?,
            source: address(r, "SrcAddrModeAddress")?,
            src_endpoint: r.u8("SrcEndpoint")?,
            src_pan: r.u16("SrcPanId")?,
            dst_endpoint: r.u8("DstEndpoint")?,
            was_broadcast: r.u8("WasBroadcast")?,
            lqi: r.u8("LQI")?,
            security_use: r.u8("SecurityUse")?,
            timestamp: r.u32("TimeStamp")?,
            tsn: r.u8("TSN")?,
            data: bytes16(r, "Data")?,
            mac_source: r.u16("MacSrcAddr")?,
            radius: r.u8("MsgResultRadius")?,
        }),
        (Sreq, S::ZDO, 0x00) => Message::ZdoNwkAddrReq {
            ieee: r.u64("IEEE")?,
            request_type: r.u8("RequestType")?,
            start_index: r.u8("StartIndex")?,
        },
        (Sreq, S::ZDO, 0x01) => Message::ZdoIeeeAddrReq {
            nwk: r.u16("NWK")?,
            request_type: r.u8("RequestType")?,
            start_index: r.u8("StartIndex")?,
        },
        (Sreq, S::ZDO, 0x36) => Message::ZdoMgmtPermitJoinReq {
            addr_mode: r.u8("AddrMode")?,
            destination: r.u16("Dst")?,
            duration: r.u8("Duration")?,
            tc_significance: r.u8("TCSignificance")?,
        },
        (Sreq, S::ZDO, 0x3E) => Message::ZdoMsgCallbackRegister {
            cluster: r.u16("ClusterId")?,
        },
        (Sreq, S::ZDO, 0x40) => Message::ZdoStartupFromApp {
            delay: r.u16("StartDelay")?,
        },
        (Srsp, S::ZDO, 0x40) => Message::ZdoStartupFromAppResponse {
            state: r.u8("State")?,
        },
        (Areq, S::ZDO, 0x80) => Message::ZdoNwkAddrRsp(addr_rsp(r)?),
        (Areq, S::ZDO, 0x81) => Message::ZdoIeeeAddrRsp(addr_rsp(r)?),
        (Areq, S::ZDO, 0xB6) => Message::ZdoMgmtPermitJoinRsp {
            source: r.u16("Src")?,
            status: r.u8("Status")?,
        },
        (Areq, S::ZDO, 0xC0) => Message::ZdoStateChangeInd {
            state: r.u8("State")?,
        },
        (Areq, S::ZDO, 0xC1) => Message::ZdoEndDeviceAnnceInd {
            source: r.u16("Src")?,
            nwk: r.u16("NWK")?,
            ieee: r.u64("IEEE")?,
            capabilities: r.u8("Capabilities")?,
        },
        (Areq, S::ZDO, 0xFF) => Message::ZdoMsgCbIncoming {
            source: r.u16("Src")?,
            was_broadcast: r.u8("IsBroadcast")?,
            cluster: r.u16("ClusterId")?,
            security_use: r.u8("SecurityUse")?,
            sequence: r.u8("TSN")?,
            mac_destination: r.u16("MacDst")?,
            data: r.rest().to_vec(),
        },
        (Areq, S::ZDO, 0xCA) => Message::ZdoTcDevInd {
            nwk: r.u16("SrcNwk")?,
            ieee: r.u64("SrcIEEE")?,
            parent: r.u16("ParentNwk")?,
        },
        (Sreq, S::APP_CNF, 0x05) => Message::AppCnfBdbStartCommissioning {
            mode: r.u8("Mode")?,
        },
        (Sreq, S::APP_CNF, 0x08) => Message::AppCnfBdbSetChannel {
            is_primary: r.u8("IsPrimary")?,
            channels: r.u32("Channel")?,
        },
        (Areq, S::APP_CNF, 0x80) => Message::AppCnfBdbCommissioningNotification {
            status: r.u8("Status")?,
            mode: r.u8("Mode")?,
            remaining_modes: r.u8("RemainingModes")?,
        },
        (Srsp, S::RPC_ERROR, 0x00) => Message::RpcError {
            error: r.u8("ErrorCode")?,
            cmd0: r.u8("RequestHeader")?,
            cmd1: r.u8("RequestHeader")?,
        },
        (Srsp, subsystem, id) => Message::StatusResponse {
            subsystem,
            id,
            status: r.u8("Status")?,
        },
        (frame_type, subsystem, id) => {
            Message::Other(Frame::new(frame_type, subsystem, id, r.rest().to_vec()))
        }
    })
}
