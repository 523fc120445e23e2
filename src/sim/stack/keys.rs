//! The simulated stack's security frames (UG100 §11 "Security Frames"; the SiSDK EZSP
//! reference for the Security Manager frames of v12 and later): the network and trust-centre
//! keys, the link key table, transient keys, and their export and import as bellows and
//! zigbee-herdsman back up and restore a network.

use super::*;

impl StackTables {
    /// The Security and key frames (UG100 §11; the Security Manager frames of v12+).
    /// `Some(false)`: not one of these frames; `None`: malformed parameters.
    pub(super) fn answer_keys(&mut self, cx: &mut Cx<'_>) -> Option<bool> {
        let (frame_id, view, r, out, _, v, sl) = cx.parts();
        match frame_id {
            // getCurrentSecurityState -> status, bitmask, trust centre EUI-64
            FrameId::GET_CURRENT_SECURITY_STATE => {
                if view.network_up {
                    put_ok(out, sl);
                } else {
                    put_status(out, sl, EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED);
                }
                out.put_u16_le(CURRENT_SECURITY_GLOBAL_LINK_KEY);
                out.extend_from_slice(&view.eui64);
            }
            // v8–12 getKey(keyType) -> status, EmberKeyStruct
            FrameId::GET_KEY => {
                let key_type = r.u8("keyType").ok()?;
                let key = match key_type {
                    KEY_TYPE_CURRENT_NETWORK => {
                        Some((self.network_key, self.network_frame_counter, None))
                    }
                    KEY_TYPE_TC_LINK => {
                        Some((self.tc_link_key, self.aps_frame_counter, Some(view.eui64)))
                    }
                    _ => None,
                };
                match key {
                    Some((key, counter, partner)) => {
                        put_ok(out, sl);
                        let bitmask = KEY_HAS_SEQUENCE_AND_COUNTERS
                            | if partner.is_some() {
                                KEY_HAS_PARTNER_EUI64
                            } else {
                                0
                            };
                        key_struct(
                            out,
                            bitmask,
                            key_type,
                            &key,
                            counter,
                            self.network_key_sequence,
                            partner.unwrap_or([0; 8]),
                        );
                    }
                    None => {
                        put_status(out, sl, EmberStatus::KEY_INVALID, SlStatus::FAIL);
                        key_struct(out, 0, key_type, &[0; 16], 0, 0, [0; 8]);
                    }
                }
            }
            // clearTransientLinkKeys -> ()
            FrameId::CLEAR_TRANSIENT_LINK_KEYS => self.transient_keys.clear(),
            // v8–12 getKeyTableEntry(index) -> status, EmberKeyStruct
            FrameId::GET_KEY_TABLE_ENTRY => {
                let index = usize::from(r.u8("index").ok()?);
                match self.link_keys.get(index) {
                    Some(Some(entry)) => {
                        put_ok(out, sl);
                        key_struct(
                            out,
                            KEY_HAS_SEQUENCE_AND_COUNTERS | KEY_HAS_PARTNER_EUI64,
                            5,
                            &entry.key,
                            0,
                            0,
                            entry.eui64,
                        );
                    }
                    Some(None) => {
                        put_status(
                            out,
                            sl,
                            EmberStatus::TABLE_ENTRY_ERASED,
                            SlStatus::NOT_FOUND,
                        );
                        key_struct(out, 0, 0, &[0; 16], 0, 0, [0; 8]);
                    }
                    None => {
                        index_status(out, sl, false);
                        key_struct(out, 0, 0, &[0; 16], 0, 0, [0; 8]);
                    }
                }
            }
            // v8–12 addOrUpdateKeyTableEntry(address, linkKey, keyData) -> status
            FrameId::ADD_OR_UPDATE_KEY_TABLE_ENTRY => {
                let eui64: [u8; 8] = r.array("address").ok()?;
                let _link_key = r.u8("linkKey").ok()?;
                let key: [u8; 16] = r.array("keyData").ok()?;
                if self.store_link_key(None, eui64, key) {
                    put_ok(out, sl);
                } else {
                    put_status(out, sl, EmberStatus::TABLE_FULL, SlStatus::FULL);
                }
            }
            // findKeyTableEntry(address, linkKey) -> index (0xFF: none)
            FrameId::FIND_KEY_TABLE_ENTRY => {
                let eui64: [u8; 8] = r.array("address").ok()?;
                let index = self
                    .link_keys
                    .iter()
                    .position(|k| k.is_some_and(|k| k.eui64 == eui64))
                    .and_then(|i| u8::try_from(i).ok())
                    .unwrap_or(0xFF);
                out.push(index);
            }
            // eraseKeyTableEntry(index) -> status
            FrameId::ERASE_KEY_TABLE_ENTRY => {
                let index = usize::from(r.u8("index").ok()?);
                let erased = replace_entry(self.link_keys.get_mut(index), None);
                index_status(out, sl, erased);
            }
            // clearKeyTable -> status
            FrameId::CLEAR_KEY_TABLE => {
                self.link_keys = vec![None; KEY_TABLE_SIZE];
                put_ok(out, sl);
            }
            // exportLinkKeyByIndex(index): v12/13 eui64, key, metadata, status;
            // v14+ status, context, key, metadata
            FrameId::EXPORT_LINK_KEY_BY_INDEX => {
                let index = usize::from(r.u8("index").ok()?);
                let entry = self.link_keys.get(index).copied().flatten();
                let found = entry.is_some();
                let entry = entry.unwrap_or(LinkKey {
                    eui64: [0; 8],
                    key: [0; 16],
                });
                let status_value = if found {
                    SlStatus::OK
                } else {
                    SlStatus::NOT_FOUND
                };
                if sl {
                    out.put_u32_le(status_value.0);
                    security_context(out, v, SEC_MAN_TC_LINK, 0, entry.eui64);
                } else {
                    out.extend_from_slice(&entry.eui64);
                }
                out.extend_from_slice(&entry.key);
                key_metadata(out, 0, 0);
                if !sl {
                    out.put_u32_le(status_value.0);
                }
            }
            // getApsKeyInfo(context): v12/13 eui, metadata, status; v14+ status, metadata, context
            FrameId::GET_APS_KEY_INFO => {
                if sl {
                    out.put_u32_le(SlStatus::OK.0);
                    key_metadata(out, self.aps_frame_counter, 0);
                    security_context(out, v, SEC_MAN_TC_LINK, 0, view.eui64);
                } else {
                    out.extend_from_slice(&view.eui64);
                    key_metadata(out, self.aps_frame_counter, 0);
                    out.put_u32_le(SlStatus::OK.0);
                }
            }
            // importLinkKey(index, address, key) -> status
            FrameId::IMPORT_LINK_KEY => {
                let index = usize::from(r.u8("index").ok()?);
                let eui64: [u8; 8] = r.array("address").ok()?;
                let key: [u8; 16] = r.array("key").ok()?;
                let stored = self.store_link_key(Some(index), eui64, key);
                out.put_u32_le(if stored {
                    SlStatus::OK.0
                } else {
                    SlStatus::INVALID_INDEX.0
                });
            }
            // importTransientKey(eui64, key, flags) -> status
            FrameId::IMPORT_TRANSIENT_KEY => {
                let eui64: [u8; 8] = r.array("eui64").ok()?;
                let key: [u8; 16] = r.array("key").ok()?;
                self.transient_keys.retain(|k| k.eui64 != eui64);
                self.transient_keys.push(LinkKey { eui64, key });
                out.put_u32_le(SlStatus::OK.0);
            }
            // exportKey(context): v12/13 key, status; v14+ status, key, context
            FrameId::EXPORT_KEY => {
                let key_type = r.u8("coreKeyType").ok()?;
                let key = match key_type {
                    SEC_MAN_NETWORK => Some(self.network_key),
                    SEC_MAN_TC_LINK => Some(self.tc_link_key),
                    _ => None,
                };
                let status_value = if key.is_some() {
                    SlStatus::OK
                } else {
                    SlStatus::NOT_FOUND
                };
                if sl {
                    out.put_u32_le(status_value.0);
                    out.extend_from_slice(&key.unwrap_or([0; 16]));
                    security_context(out, v, key_type, 0, [0; 8]);
                } else {
                    out.extend_from_slice(&key.unwrap_or([0; 16]));
                    out.put_u32_le(status_value.0);
                }
            }
            // importKey(context, key) -> status [, context from v14]
            FrameId::IMPORT_KEY => {
                let context = r.take("context", if v >= 13 { 18 } else { 17 }).ok()?;
                let key: [u8; 16] = r.array("key").ok()?;
                match context.first().copied().unwrap_or(0) {
                    SEC_MAN_NETWORK => self.network_key = key,
                    SEC_MAN_TC_LINK => self.tc_link_key = key,
                    _ => {}
                }
                out.put_u32_le(SlStatus::OK.0);
                if sl {
                    out.extend_from_slice(context);
                }
            }
            // getNetworkKeyInfo -> status, set, altSet, seq, altSeq, frame counter
            FrameId::GET_NETWORK_KEY_INFO => {
                out.put_u32_le(SlStatus::OK.0);
                out.push(u8::from(view.network_up || self.network_key != [0; 16]));
                out.push(0);
                out.push(self.network_key_sequence);
                out.push(0);
                out.put_u32_le(self.network_frame_counter);
            }
            _ => return Some(false),
        }
        Some(true)
    }

    /// Stores a link key at `index`, or in the entry holding `eui64`, or the first free one.
    fn store_link_key(&mut self, index: Option<usize>, eui64: [u8; 8], key: [u8; 16]) -> bool {
        let slot = index.or_else(|| {
            self.link_keys
                .iter()
                .position(|k| k.is_some_and(|k| k.eui64 == eui64))
                .or_else(|| self.link_keys.iter().position(Option::is_none))
        });
        match slot.and_then(|i| self.link_keys.get_mut(i)) {
            Some(entry) => {
                *entry = Some(LinkKey { eui64, key });
                true
            }
            None => false,
        }
    }
}

/// EmberKeyStruct: bitmask, type, key, outgoing and incoming frame counters, sequence, partner.
pub(super) fn key_struct(
    out: &mut Vec<u8>,
    bitmask: u16,
    key_type: u8,
    key: &[u8; 16],
    outgoing: u32,
    sequence: u8,
    partner: [u8; 8],
) {
    out.put_u16_le(bitmask);
    out.push(key_type);
    out.extend_from_slice(key);
    out.put_u32_le(outgoing);
    out.put_u32_le(0);
    out.push(sequence);
    out.extend_from_slice(&partner);
}

/// sl_zb_sec_man_context_t: core key type, key index, derived type (u8 in v12, u16 from v13),
/// EUI-64, network index, flags, PSA algorithm permission.
pub(super) fn security_context(
    out: &mut Vec<u8>,
    version: u8,
    key_type: u8,
    key_index: u8,
    eui64: [u8; 8],
) {
    out.push(key_type);
    out.push(key_index);
    out.push(0);
    if version >= 13 {
        out.push(0);
    }
    out.extend_from_slice(&eui64);
    out.push(0);
    out.push(0);
    out.put_u32_le(0);
}

/// sl_zb_sec_man_aps_key_metadata_t: bitmask, outgoing and incoming counters, TTL.
pub(super) fn key_metadata(out: &mut Vec<u8>, outgoing: u32, incoming: u32) {
    out.put_u16_le(KEY_HAS_SEQUENCE_AND_COUNTERS);
    out.put_u32_le(outgoing);
    out.put_u32_le(incoming);
    out.put_u16_le(0);
}
