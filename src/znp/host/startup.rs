//! The start-up steps of [`super::Host`] (its module docs list them): each answer to a
//! start-up request moves the phase on and queues the next request.

use std::time::Instant;

use super::{
    BDB_MODE_FORMATION, CAPABILITY_APP_CNF, Host, HostEvent, Lost, Message, Phase, Purpose,
    RESET_SOFT, STARTUP_ITEMS, STATUS_DUPLICATE_ENDPOINT, status,
};
use crate::coordinator::{CLUSTER_OTA_UPGRADE, Ieee, NetworkInfo, Nwk, PROFILE_HOME_AUTOMATION};
use crate::znp::command::{AfRegister, SysVersion};
use crate::znp::frame::Subsystem;
use crate::znp::nv::{self, Nib, osal};

/// The device id our endpoint registers with (HA "configuration tool", as zigpy-znp's).
const DEVICE_ID_CONFIGURATION_TOOL: u16 = 0x0005;

/// Feeds one answer (an SRSP, or the AREQ a step waits for) to the start-up phase.
pub(super) fn advance(host: &mut Host, answer: Message, now: Instant) {
    let phase = host.phase.clone();
    match (phase, answer) {
        (Phase::Ping { .. }, Message::SysPingResponse { capabilities }) => {
            if capabilities & CAPABILITY_APP_CNF == 0 {
                host.lose(Lost::UnsupportedFirmware, now);
                return;
            }
            host.phase = Phase::Version;
            host.request(Message::SysVersion, Purpose::Startup, now);
        }
        (Phase::Version, Message::SysVersionResponse(version)) => {
            host.firmware = describe(&version);
            tracing::info!("ZNP stick runs {}", host.firmware);
            host.phase = Phase::AwaitReset;
            host.phase_deadline = Some(now + host.config.reset_timeout);
            host.request(
                Message::SysResetReq { kind: RESET_SOFT },
                Purpose::Startup,
                now,
            );
        }
        (Phase::AwaitReset, Message::SysResetInd { .. }) => {
            host.phase_deadline = None;
            host.phase = Phase::ReadNv { step: 0 };
            read_item(host, STARTUP_ITEMS[0], now);
        }
        (Phase::ReadNv { step }, answer) => {
            if !nv_answer(host, answer, now) {
                return;
            }
            match STARTUP_ITEMS.get(step + 1) {
                Some(&next) => {
                    host.phase = Phase::ReadNv { step: step + 1 };
                    read_item(host, next, now);
                }
                None => resume_or_form(host, now),
            }
        }
        (Phase::Form { step }, answer) => {
            let acceptable = match &answer {
                Message::StatusResponse {
                    subsystem: Subsystem::SYS,
                    id: 0x12,
                    ..
                } => true,
                Message::StatusResponse {
                    id: 0x07, status, ..
                } => *status == status::SUCCESS || *status == status::NV_ITEM_UNINIT,
                Message::StatusResponse { status, .. } => *status == status::SUCCESS,
                _ => false,
            };
            if !acceptable {
                let what = format!("forming the network: {answer:?}");
                host.lose(Lost::Startup(what), now);
                return;
            }
            match formation_plan(host).into_iter().nth(step + 1) {
                Some(next) => {
                    host.phase = Phase::Form { step: step + 1 };
                    host.request(next, Purpose::Startup, now);
                }
                None => commission(host, now),
            }
        }
        (Phase::AwaitStarted, Message::StatusResponse { status, .. }) => {
            if status != status::SUCCESS {
                let what = format!("BDB commissioning refused (status 0x{status:02X})");
                host.lose(Lost::Startup(what), now);
            }
        }
        (Phase::AwaitStarted, Message::ZdoStateChangeInd { .. }) => {
            host.phase_deadline = None;
            host.phase = Phase::ReadNib;
            read_item(host, osal::NIB, now);
        }
        (Phase::ReadNib, answer) => {
            if !nv_answer(host, answer, now) {
                return;
            }
            let Some(network) = network_info(host) else {
                let what = "the NIB shows no network after commissioning".to_string();
                host.lose(Lost::Startup(what), now);
                return;
            };
            host.network = Some(network);
            host.phase = Phase::Register;
            let register = Message::AfRegister(AfRegister {
                endpoint: host.config.endpoint,
                profile: PROFILE_HOME_AUTOMATION,
                device_id: DEVICE_ID_CONFIGURATION_TOOL,
                device_version: 0,
                latency: 0,
                input_clusters: vec![CLUSTER_OTA_UPGRADE],
                output_clusters: Vec::new(),
            });
            host.request(register, Purpose::Startup, now);
        }
        (Phase::Register, Message::StatusResponse { status, .. }) => {
            if status != status::SUCCESS && status != STATUS_DUPLICATE_ENDPOINT {
                let what = format!("AF.Register refused (status 0x{status:02X})");
                host.lose(Lost::Startup(what), now);
                return;
            }
            let Some(network) = host.network else { return };
            host.phase = Phase::Up;
            host.events.push_back(HostEvent::Up {
                network,
                formed: host.formed,
                firmware: host.firmware.clone(),
            });
        }
        (phase, other) => {
            let what = format!("unexpected {} during {phase:?}", other.name());
            host.lose(Lost::Startup(what), now);
        }
    }
}

/// "Z-Stack 3.x.0 2.7.1 (build 20230507)".
fn describe(version: &SysVersion) -> String {
    let product = match version.product_id {
        0 => "Z-Stack Home 1.2",
        1 => "Z-Stack 3.x.0",
        2 => "Z-Stack 3.0.x",
        _ => "Z-Stack (unknown product)",
    };
    let build = version
        .extra
        .map(|(code, _, _)| format!(" (build {code})"))
        .unwrap_or_default();
    format!(
        "{product} {}.{}.{}{build}",
        version.major, version.minor, version.maint
    )
}

fn read_item(host: &mut Host, id: u16, now: Instant) {
    host.nv_read = super::NvRead {
        id,
        ..Default::default()
    };
    host.request(Message::SysOsalNvLength { id }, Purpose::Startup, now);
}

/// Handles an NV length or read answer; true once the item is complete (or absent).
fn nv_answer(host: &mut Host, answer: Message, now: Instant) -> bool {
    let id = host.nv_read.id;
    match answer {
        Message::SysOsalNvLengthResponse { length: 0 } => {
            host.items.remove(&id);
            true
        }
        Message::SysOsalNvLengthResponse { length } => {
            host.nv_read.length = Some(usize::from(length));
            host.request(
                Message::SysOsalNvReadExt { id, offset: 0 },
                Purpose::Startup,
                now,
            );
            false
        }
        Message::NvValueResponse { status, value, .. } if status == status::SUCCESS => {
            host.nv_read.data.extend_from_slice(&value);
            let wanted = host.nv_read.length.unwrap_or(0);
            let have = host.nv_read.data.len();
            if have >= wanted || value.is_empty() {
                let data = std::mem::take(&mut host.nv_read.data);
                host.items.insert(id, data);
                return true;
            }
            let offset = u16::try_from(have).unwrap_or(u16::MAX);
            host.request(
                Message::SysOsalNvReadExt { id, offset },
                Purpose::Startup,
                now,
            );
            false
        }
        other => {
            let what = format!("reading NV item 0x{id:04X}: {other:?}");
            host.lose(Lost::Startup(what), now);
            false
        }
    }
}

/// The network in the items read, if the stick holds one.
fn network_info(host: &Host) -> Option<NetworkInfo> {
    let nib = Nib::parse(host.items.get(&osal::NIB)?).ok()?;
    let ieee = <[u8; 8]>::try_from(host.items.get(&osal::EXTADDR)?.as_slice()).ok()?;
    (nib.channel != 0 && nib.key_loaded && nib.pan_id != 0xFFFE).then_some(NetworkInfo {
        ieee: Ieee(u64::from_le_bytes(ieee)),
        nwk: Nwk(nib.nwk_address),
        channel: nib.channel,
        pan_id: nib.pan_id,
        extended_pan_id: nib.extended_pan_id,
        protocol_version: 0,
    })
}

fn resume_or_form(host: &mut Host, now: Instant) {
    let on_network = host
        .items
        .get(&osal::BDBNODEISONANETWORK)
        .is_some_and(|v| v.first() == Some(&1));
    let has_key = host
        .items
        .get(&osal::NWK_ACTIVE_KEY_INFO)
        .and_then(|v| nv::parse_key_desc(v))
        .is_some();
    if let Some(network) = network_info(host).filter(|_| on_network && has_key) {
        tracing::info!(
            "resuming the network the stick holds: channel {}, PAN 0x{:04X}, extended PAN {:016X}",
            network.channel,
            network.pan_id,
            network.extended_pan_id
        );
        commission(host, now);
        return;
    }
    tracing::info!(
        "the stick holds no network: forming {:?}",
        host.config.network
    );
    host.formed = true;
    host.phase = Phase::Form { step: 0 };
    if let Some(first) = formation_plan(host).into_iter().next() {
        host.request(first, Purpose::Startup, now);
    }
}

/// The NV writes and BDB settings that form our network, in order (zigpy-znp's
/// `write_network_info` first phase, with our values instead of random ones).
fn formation_plan(host: &Host) -> Vec<Message> {
    let settings = &host.config.network;
    let ext = settings.extended_pan_id.to_le_bytes().to_vec();
    let mask = 1u32.checked_shl(u32::from(settings.channel)).unwrap_or(0);
    let items: [(u16, Vec<u8>); 6] = [
        (osal::PANID, settings.pan_id.to_le_bytes().to_vec()),
        (osal::EXTENDED_PAN_ID, ext.clone()),
        (osal::APS_USE_EXT_PANID, ext),
        (osal::PRECFGKEY, settings.network_key.to_vec()),
        (osal::PRECFGKEYS_ENABLE, vec![0]),
        (osal::CHANLIST, mask.to_le_bytes().to_vec()),
    ];
    let mut plan = Vec::new();
    for (id, value) in items {
        let length = u16::try_from(value.len()).unwrap_or(u16::MAX);
        plan.push(Message::SysOsalNvDelete { id, length });
        plan.push(Message::SysOsalNvItemInit {
            id,
            length,
            value: value.clone(),
        });
        plan.push(Message::SysOsalNvWriteExt {
            id,
            offset: 0,
            value,
        });
    }
    plan.push(Message::AppCnfBdbSetChannel {
        is_primary: 1,
        channels: mask,
    });
    plan.push(Message::AppCnfBdbSetChannel {
        is_primary: 0,
        channels: 0,
    });
    plan
}

fn commission(host: &mut Host, now: Instant) {
    host.phase = Phase::AwaitStarted;
    host.phase_deadline = Some(now + host.config.network_up_timeout);
    host.request(
        Message::AppCnfBdbStartCommissioning {
            mode: BDB_MODE_FORMATION,
        },
        Purpose::Startup,
        now,
    );
}
