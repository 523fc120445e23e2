//! The NV memory of the simulated ZNP ([`super::znp::SimZnp`]): OSAL items by id and Z-Stack
//! 3.30's extended items by (system, item, sub-item), holding a network in the layouts
//! [`crate::znp::nv`] describes, and the answers to the NV commands zigpy-znp's `nvram.py` sends.

use std::collections::BTreeMap;

use super::znp::ZnpNetwork;
use crate::zigbee::{Ieee, Nwk};
use crate::znp::command::{Message, status};
use crate::znp::frame::Subsystem;
use crate::znp::nv::{self, Nib, ex, osal};

/// The stick's non-volatile memory.
#[derive(Debug, Clone, Default)]
pub struct NvMemory {
    osal: BTreeMap<u16, Vec<u8>>,
    extended: BTreeMap<(u8, u16, u16), Vec<u8>>,
}

fn status_response(id: u8, status: u8) -> Message {
    Message::StatusResponse {
        subsystem: Subsystem::SYS,
        id,
        status,
    }
}

impl NvMemory {
    /// A factory-new stick's NV: its IEEE address, its logical type (coordinator), and the
    /// stack settings every Z-Stack build holds from the start, which zigpy-znp reads before it
    /// writes its own (`_write_stack_settings`: a missing one stops its start-up).
    pub fn new(ieee: Ieee) -> Self {
        let mut memory = NvMemory::default();
        memory
            .osal
            .insert(osal::EXTADDR, ieee.0.to_le_bytes().to_vec());
        memory.osal.insert(osal::LOGICAL_TYPE, vec![0]);
        for (id, value) in [
            (osal::BCAST_DELIVERY_TIME, 30),
            (osal::CONCENTRATOR_ENABLE, 0),
            (osal::CONCENTRATOR_DISCOVERY, 60),
            (osal::CONCENTRATOR_RC, 1),
            (osal::SRC_RTG_EXPIRY_TIME, 10),
            (osal::NWK_CHILD_AGE_ENABLE, 1),
            (osal::ZDO_DIRECT_CB, 0),
        ] {
            memory.osal.insert(id, vec![value]);
        }
        memory
    }

    /// An OSAL item.
    pub fn osal(&self, id: u16) -> Option<&Vec<u8>> {
        self.osal.get(&id)
    }

    /// The network its NV holds.
    pub fn stored_network(&self) -> Option<ZnpNetwork> {
        let nib = Nib::parse(self.osal.get(&osal::NIB)?).ok()?;
        let (_, key) = nv::parse_key_desc(self.osal.get(&osal::NWK_ACTIVE_KEY_INFO)?)?;
        (nib.channel != 0 && nib.key_loaded).then_some(ZnpNetwork {
            channel: nib.channel,
            pan_id: nib.pan_id,
            extended_pan_id: nib.extended_pan_id,
            network_key: key,
        })
    }

    /// Writes a formed network into NV, as Z-Stack does when commissioning ends.
    pub fn store_network(&mut self, network: ZnpNetwork, devices: &[(Nwk, Ieee)]) {
        let ext = network.extended_pan_id.to_le_bytes().to_vec();
        let key_desc = nv::key_desc_bytes(0, &network.network_key);
        let items = [
            (
                osal::NIB,
                Nib::aligned_bytes(network.channel, network.pan_id, network.extended_pan_id),
            ),
            (osal::EXTENDED_PAN_ID, ext.clone()),
            (osal::APS_USE_EXT_PANID, ext),
            (osal::PANID, network.pan_id.to_le_bytes().to_vec()),
            (osal::PRECFGKEY, network.network_key.to_vec()),
            (osal::PRECFGKEYS_ENABLE, vec![0]),
            (osal::NWK_ACTIVE_KEY_INFO, key_desc.clone()),
            (osal::NWK_ALTERN_KEY_INFO, key_desc.clone()),
            (osal::NWKKEY, {
                // NwkActiveKeyItems, aligned: the key descriptor, 3 padding bytes, the counter.
                let mut items = key_desc;
                items.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
                items
            }),
            (osal::BDBNODEISONANETWORK, vec![1]),
            (osal::TCLK_SEED, vec![0x5A; 16]),
            (osal::APS_LINK_KEY_TABLE, vec![0, 0]),
            (osal::HAS_CONFIGURED_ZSTACK3, vec![0x55]),
        ];
        self.osal.extend(items);
        self.extended.insert(
            (nv::SYS_ID_ZSTACK, ex::NWK_SEC_MATERIAL_TABLE, 0),
            nv::sec_material_bytes(0, network.extended_pan_id),
        );
        for (index, (nwk, ieee)) in devices.iter().enumerate() {
            let sub_id = u16::try_from(index).unwrap_or(u16::MAX);
            self.extended.insert(
                (nv::SYS_ID_ZSTACK, ex::ADDRMGR, sub_id),
                nv::addr_mgr_entry_bytes(nv::ADDR_MGR_SECURITY, nwk.0, ieee.0),
            );
        }
    }

    /// The answer to an NV command, or `None` for any other message.
    pub fn answer(&mut self, message: &Message) -> Option<Message> {
        match message {
            Message::SysOsalNvLength { id } => {
                let length = self.osal.get(id).map_or(0, Vec::len);
                Some(Message::SysOsalNvLengthResponse {
                    length: u16::try_from(length).unwrap_or(u16::MAX),
                })
            }
            Message::SysOsalNvRead { id, offset } => {
                let answer = nv_slice(self.osal.get(id), usize::from(*offset), 0x08);
                Some(answer)
            }
            Message::SysOsalNvReadExt { id, offset } => {
                let answer = nv_slice(self.osal.get(id), usize::from(*offset), 0x1C);
                Some(answer)
            }
            Message::SysOsalNvItemInit { id, length, value } => {
                let status = create_item(&mut self.osal, *id, || {
                    let mut item = value.clone();
                    item.resize(usize::from(*length), 0xFF);
                    item
                });
                Some(status_response(0x07, status))
            }
            Message::SysOsalNvWriteExt { id, offset, value } => {
                let status = write_into(self.osal.get_mut(id), usize::from(*offset), value);
                Some(status_response(0x1D, status))
            }
            Message::SysOsalNvDelete { id, .. } => {
                Some(status_response(0x12, delete_item(&mut self.osal, id)))
            }
            Message::SysNvLength {
                sys_id,
                item_id,
                sub_id,
            } => {
                let length = self
                    .extended
                    .get(&(*sys_id, *item_id, *sub_id))
                    .map_or(0, Vec::len);
                Some(Message::SysNvLengthResponse {
                    length: u32::try_from(length).unwrap_or(u32::MAX),
                })
            }
            Message::SysNvRead {
                sys_id,
                item_id,
                sub_id,
                offset,
                ..
            } => {
                let item = self.extended.get(&(*sys_id, *item_id, *sub_id));
                let answer = nv_slice(item, usize::from(*offset), 0x33);
                Some(answer)
            }
            Message::SysNvCreate {
                sys_id,
                item_id,
                sub_id,
                length,
            } => {
                let size = usize::try_from(*length).unwrap_or(0).min(4096);
                let key = (*sys_id, *item_id, *sub_id);
                let status = create_item(&mut self.extended, key, || vec![0xFF; size]);
                Some(status_response(0x30, status))
            }
            Message::SysNvWrite {
                sys_id,
                item_id,
                sub_id,
                offset,
                value,
            } => {
                let item = self.extended.get_mut(&(*sys_id, *item_id, *sub_id));
                let status = write_into(item, usize::from(*offset), value);
                Some(status_response(0x34, status))
            }
            Message::SysNvDelete {
                sys_id,
                item_id,
                sub_id,
            } => {
                let key = (*sys_id, *item_id, *sub_id);
                Some(status_response(0x31, delete_item(&mut self.extended, &key)))
            }
            _ => None,
        }
    }
}

/// The answer to an NV read: up to 240 bytes from `offset`, or INVALID_PARAMETER.
fn nv_slice(item: Option<&Vec<u8>>, offset: usize, id: u8) -> Message {
    match item.and_then(|bytes| bytes.get(offset..)) {
        Some(rest) if offset < item.map_or(0, Vec::len) || offset == 0 => {
            Message::NvValueResponse {
                id,
                status: status::SUCCESS,
                value: rest.get(..240).unwrap_or(rest).to_vec(),
            }
        }
        _ => Message::NvValueResponse {
            id,
            status: status::INVALID_PARAMETER,
            value: Vec::new(),
        },
    }
}

/// Creates an item unless it exists (`osal_nv_item_init`): SUCCESS when it existed,
/// NV_ITEM_UNINIT when it is new.
fn create_item<K: Ord>(
    items: &mut BTreeMap<K, Vec<u8>>,
    key: K,
    initial: impl FnOnce() -> Vec<u8>,
) -> u8 {
    let mut existed = true;
    items.entry(key).or_insert_with(|| {
        existed = false;
        initial()
    });
    if existed {
        status::SUCCESS
    } else {
        status::NV_ITEM_UNINIT
    }
}

/// Deletes an item: SUCCESS, or NV_ITEM_UNINIT when there was none.
fn delete_item<K: Ord>(items: &mut BTreeMap<K, Vec<u8>>, key: &K) -> u8 {
    match items.remove(key) {
        Some(_) => status::SUCCESS,
        None => status::NV_ITEM_UNINIT,
    }
}

/// Writes `value` at `offset` in an existing item (items never grow by a write).
fn write_into(item: Option<&mut Vec<u8>>, offset: usize, value: &[u8]) -> u8 {
    let Some(item) = item else {
        return status::INVALID_PARAMETER;
    };
    match item.get_mut(offset..offset + value.len()) {
        Some(slot) => {
            slot.copy_from_slice(value);
            status::SUCCESS
        }
        None => status::INVALID_PARAMETER,
    }
}
