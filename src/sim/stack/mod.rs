//! The simulated NCP's stack tables beyond the frames our own host sends: keys and their
//! counters, tokens, the multicast table, the concentrator and source routes, the child and
//! address tables, the manufacturer code (UG100 §3 "Configuration Frames", §5 "Networking
//! Frames", §11 "Security Frames", §14 "Token Interface Frames"; the SiSDK EZSP reference for
//! the Security Manager frames of v12 and later).
//!
//! The frame list comes from the hosts' own code: bellows 1.2.1 / zigpy 2.4.0
//! (`bellows/zigbee/application.py` start-up, `load_network_info`, backup and restore, and
//! the per-version helpers in `bellows/ezsp/v*/__init__.py`) and zigbee-herdsman 10.9.5's
//! `ember` adapter (`initEzsp`, `initTrustCenter`, `formNetwork`, `backup`). Each answer is
//! written in the layout of the negotiated EZSP version (`sl_status_t` from v14, one-byte
//! statuses before; the Security Manager answers of v12/v13 put the status last). A frame
//! that is not here gets what a real NCP answers for an unknown frame id: `invalidCommand`
//! with `EZSP_ERROR_INVALID_FRAME_ID` (the caller does that).
//!
//! ```
//! use zigbee_otad::sim::stack::{StackTables, StackView};
//! use zigbee_otad::ezsp::EzspVersion;
//! let mut tables = StackTables::new([0x11; 16]);
//! let view = StackView { version: EzspVersion::new(13).unwrap(), network_up: true,
//!     eui64: [1, 0, 0, 0, 0, 0, 0, 0], children: &[], endpoints: &[1] };
//! // getNetworkKeyInfo (0x0116): status OK, key set, sequence 0, frame counter.
//! let answer = tables.answer(&view, 0x0116, &[]).unwrap();
//! assert_eq!(&answer.parameters[..6], &[0, 0, 0, 0, 1, 0]);
//! ```

use crate::ezsp::EzspVersion;
use crate::ezsp::status::{EmberStatus, EzspStatus, SlStatus};
use crate::wire::{PutLe, Reader};

/// What the stack answers with, and what else must happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackAnswer {
    /// The response's parameters, in the negotiated version's layout.
    pub parameters: Vec<u8>,
    /// What the NCP must do besides answering.
    pub effect: Option<StackEffect>,
}

/// Something an answered frame sets off in the NCP.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackEffect {
    /// `leaveNetwork`: the network goes down (a `stackStatusHandler` follows) and is forgotten.
    LeaveNetwork,
    /// `tokenFactoryReset`: the stored network and keys are erased.
    FactoryReset,
    /// `startScan` was accepted: these callbacks (frame id, parameters) follow, in order.
    Callbacks(Vec<(u16, Vec<u8>)>),
    /// `sendMulticast` was accepted: a `messageSentHandler` with this tag follows.
    MulticastSent {
        /// The host's message tag.
        message_tag: u16,
        /// The APS frame as sent (11 bytes).
        aps_frame: [u8; 11],
    },
}

/// What the stack needs to know about the rest of the NCP to answer.
#[derive(Debug, Clone, Copy)]
pub struct StackView<'a> {
    /// The negotiated EZSP version.
    pub version: EzspVersion,
    /// Whether the network is up.
    pub network_up: bool,
    /// The NCP's own EUI-64, in wire order.
    pub eui64: [u8; 8],
    /// The devices joined as its children: (NWK, EUI-64 in wire order).
    pub children: &'a [(u16, [u8; 8])],
    /// The endpoints the host registered since the last reset.
    pub endpoints: &'a [u8],
}

/// One link key the host imported (`importLinkKey`, `addOrUpdateKeyTableEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LinkKey {
    eui64: [u8; 8],
    key: [u8; 16],
}

/// Key table entries: a common default (`CONFIG_KEY_TABLE_SIZE` is host-set; real sticks use
/// 4 to 12).
const KEY_TABLE_SIZE: usize = 12;
/// Multicast table entries (`EMBER_MULTICAST_TABLE_SIZE` in the default NCP build).
const MULTICAST_TABLE_SIZE: usize = 16;
/// Counters in `readCounters` (EMBER_COUNTER_TYPE_COUNT for EmberZNet 6.10 and later).
const COUNTER_COUNT: usize = 41;
/// Source route table size reported by `getSourceRouteTableTotalSize`.
const SOURCE_ROUTE_TABLE_SIZE: u8 = 16;
/// `EzspMfgTokenId` MFG_STRING, MFG_BOARD_NAME, MFG_MANUF_ID, MFG_CUSTOM_EUI_64.
const MFG_STRING: u8 = 0x01;
const MFG_BOARD_NAME: u8 = 0x02;
const MFG_MANUF_ID: u8 = 0x03;
const MFG_CUSTOM_EUI_64: u8 = 0x0C;
/// EmberCurrentSecurityBitmask: GLOBAL_LINK_KEY and HAVE_TRUST_CENTER_LINK_KEY.
const CURRENT_SECURITY_GLOBAL_LINK_KEY: u16 = 0x0004 | 0x0010;
/// EmberKeyStructBitmask: sequence number, outgoing and incoming frame counters.
const KEY_HAS_SEQUENCE_AND_COUNTERS: u16 = 0x0001 | 0x0002 | 0x0004;
/// EmberKeyStructBitmask KEY_HAS_PARTNER_EUI64.
const KEY_HAS_PARTNER_EUI64: u16 = 0x0008;
/// EmberKeyType (v8–12 `getKey`): TRUST_CENTER_LINK_KEY and CURRENT_NETWORK_KEY.
const KEY_TYPE_TC_LINK: u8 = 1;
const KEY_TYPE_CURRENT_NETWORK: u8 = 3;
/// SecurityManagerKeyType (v12+ `exportKey`): NETWORK and TC_LINK.
const SEC_MAN_NETWORK: u8 = 1;
const SEC_MAN_TC_LINK: u8 = 2;
/// EzspExtendedValueId ENDPOINT_FLAGS.
const EXTENDED_VALUE_ENDPOINT_FLAGS: u8 = 0x00;
/// EmberNodeType END_DEVICE, as the children are reported.
const NODE_TYPE_END_DEVICE: u8 = 3;

/// The simulated stack's tables. See the module docs.
#[derive(Debug, Clone)]
pub struct StackTables {
    network_key: [u8; 16],
    network_key_sequence: u8,
    tc_link_key: [u8; 16],
    network_frame_counter: u32,
    aps_frame_counter: u32,
    manufacturer_code: u16,
    link_keys: Vec<Option<LinkKey>>,
    transient_keys: Vec<LinkKey>,
    multicast: Vec<(u16, u8, u8)>,
    concentrator: bool,
    source_routes: Vec<(u16, Vec<u16>)>,
}

impl StackTables {
    /// Fresh tables holding `network_key` (the key of the network the NCP stores, if any).
    pub fn new(network_key: [u8; 16]) -> Self {
        StackTables {
            network_key,
            network_key_sequence: 0,
            // ZigBeeAlliance09, the well-known global trust-centre link key.
            tc_link_key: *b"ZigBeeAlliance09",
            network_frame_counter: 0x0000_1000,
            aps_frame_counter: 0,
            manufacturer_code: 0x1002,
            link_keys: vec![None; KEY_TABLE_SIZE],
            transient_keys: Vec::new(),
            multicast: vec![(0, 0, 0); MULTICAST_TABLE_SIZE],
            concentrator: false,
            source_routes: Vec::new(),
        }
    }

    /// The network key the NCP holds.
    pub fn network_key(&self) -> [u8; 16] {
        self.network_key
    }

    /// The manufacturer code in the node descriptor (`setManufacturerCode`).
    pub fn manufacturer_code(&self) -> u16 {
        self.manufacturer_code
    }

    /// Whether the host made the NCP a concentrator (`setConcentrator`).
    pub fn concentrator(&self) -> bool {
        self.concentrator
    }

    /// The multicast groups registered (`setMulticastTableEntry`), with their endpoints.
    pub fn multicast_groups(&self) -> Vec<(u16, u8)> {
        self.multicast
            .iter()
            .filter(|(_, endpoint, _)| *endpoint != 0)
            .map(|(group, endpoint, _)| (*group, *endpoint))
            .collect()
    }

    /// `setInitialSecurityState`: the keys the next `formNetwork` uses.
    pub fn set_initial_security(
        &mut self,
        network_key: [u8; 16],
        tc_link_key: [u8; 16],
        sequence: u8,
    ) {
        self.network_key = network_key;
        self.tc_link_key = tc_link_key;
        self.network_key_sequence = sequence;
    }

    /// `setValue` of a value the stack keeps (NWK and APS frame counters).
    pub fn set_value(&mut self, value_id: u8, value: &[u8]) {
        let counter = value
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes);
        match (value_id, counter) {
            // EZSP_VALUE_NWK_FRAME_COUNTER, EZSP_VALUE_APS_FRAME_COUNTER
            (0x23, Some(counter)) => self.network_frame_counter = counter,
            (0x24, Some(counter)) => self.aps_frame_counter = counter,
            _ => {}
        }
    }

    /// The answer to `frame_id` with `parameters`, or `None` when the stack has no such frame
    /// in this version (the caller answers `invalidCommand`).
    pub fn answer(
        &mut self,
        view: &StackView<'_>,
        frame_id: u16,
        parameters: &[u8],
    ) -> Option<StackAnswer> {
        let mut r = Reader::new(parameters);
        let mut out = Vec::new();
        let v = view.version.get();
        let sl = view.version.uses_sl_status();
        let mut effect = None;
        let status = |out: &mut Vec<u8>, ember: EmberStatus, slc: SlStatus| {
            if sl {
                out.put_u32_le(slc.0);
            } else {
                out.push(ember.0);
            }
        };
        let ok = |out: &mut Vec<u8>| {
            if sl {
                out.put_u32_le(SlStatus::OK.0);
            } else {
                out.push(EmberStatus::SUCCESS.0);
            }
        };
        match frame_id {
            // getExtendedValue(valueId, characteristics) -> status (EzspStatus), LV value
            0x0003 => {
                let value_id = r.u8("valueId").ok()?;
                let characteristics = r.u32("characteristics").ok()?;
                let registered = u8::try_from(characteristics)
                    .is_ok_and(|endpoint| view.endpoints.contains(&endpoint));
                if value_id == EXTENDED_VALUE_ENDPOINT_FLAGS && registered {
                    ok(&mut out);
                    // LV: EMBER_ENDPOINT_ENABLED
                    out.extend_from_slice(&[2, 0x01, 0x00]);
                } else {
                    // As EmberZNet does: the value's full length, with an error status.
                    ezsp_status(
                        &mut out,
                        sl,
                        EzspStatus::ERROR_INVALID_VALUE,
                        SlStatus::INVALID_PARAMETER,
                    );
                    out.extend_from_slice(&[2, 0x00, 0x00]);
                }
            }
            // getMfgToken(tokenId) -> LV tokenData
            0x000B => {
                let token = r.u8("tokenId").ok()?;
                let data: Vec<u8> = match token {
                    MFG_STRING => b"zigbee-otad".to_vec(),
                    MFG_BOARD_NAME => b"simulated NCP".to_vec(),
                    MFG_MANUF_ID => 0x1002u16.to_le_bytes().to_vec(),
                    // Unwritten: all 0xFF, so a host may burn a custom EUI-64 once.
                    MFG_CUSTOM_EUI_64 => vec![0xFF; 8],
                    _ => Vec::new(),
                };
                out.push(u8::try_from(data.len()).unwrap_or(0));
                out.extend_from_slice(&data);
            }
            // setMfgToken(tokenId, LV data) -> status
            0x000C => status(&mut out, EmberStatus::ERR_FATAL, SlStatus::FAIL),
            // setConcentrator(on, type, minTime, maxTime, thresholds, maxHops) -> status
            0x0010 => {
                self.concentrator = r.u8("on").ok()? != 0;
                ok(&mut out);
            }
            // startScan(scanType, channelMask, duration) -> status; then per channel an
            // energyScanResultHandler (energy scan) and a scanCompleteHandler. The simulated
            // air is quiet and holds no other network.
            0x001A => {
                let scan_type = r.u8("scanType").ok()?;
                let channels = r.u32("channelMask").ok()?;
                let _duration = r.u8("duration").ok()?;
                ok(&mut out);
                let mut callbacks = Vec::new();
                if scan_type == 0 {
                    for channel in 11..=26u8 {
                        if channels & (1 << channel) != 0 {
                            // energyScanResultHandler: channel, maxRssiValue
                            callbacks.push((0x0048, vec![channel, (-92i8).to_le_bytes()[0]]));
                        }
                    }
                }
                // scanCompleteHandler: channel, status
                let mut complete = vec![0];
                ok(&mut complete);
                callbacks.push((0x001C, complete));
                effect = Some(StackEffect::Callbacks(callbacks));
            }
            // setManufacturerCode(code) -> () before v14, status from v14
            0x0015 => {
                self.manufacturer_code = r.u16("code").ok()?;
                if sl {
                    ok(&mut out);
                }
            }
            // leaveNetwork([options from v14]) -> status
            0x0020 => {
                if view.network_up {
                    ok(&mut out);
                    effect = Some(StackEffect::LeaveNetwork);
                } else {
                    status(&mut out, EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE);
                }
            }
            // getParentChildParameters -> childCount, parentEui64, parentNodeId
            0x0029 => {
                out.push(u8::try_from(view.children.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&[0; 8]);
                out.put_u16_le(0xFFFF);
            }
            // sendMulticast -> status, sequence
            0x0038 => {
                let aps_frame: [u8; 11] = r.array("apsFrame").ok()?;
                let _hops = r.u8("hops").ok()?;
                let message_tag = if sl {
                    let _broadcast_address = r.u16("broadcastAddr").ok()?;
                    let _alias = r.u16("alias").ok()?;
                    let _sequence = r.u8("sequence").ok()?;
                    r.u16("messageTag").ok()?
                } else {
                    let _nonmember_radius = r.u8("nonmemberRadius").ok()?;
                    u16::from(r.u8("messageTag").ok()?)
                };
                if view.network_up {
                    ok(&mut out);
                    effect = Some(StackEffect::MulticastSent {
                        message_tag,
                        aps_frame,
                    });
                } else {
                    status(
                        &mut out,
                        EmberStatus::NETWORK_DOWN,
                        SlStatus::ZIGBEE_NETWORK_DOWN,
                    );
                }
                out.push(aps_frame[10]);
            }
            // sendReply, sendManyToOneRouteRequest, setRadioPower, setRadioIeee802154CcaMode,
            // setLogicalAndRadioChannel, removeDevice, multiPhySetRadioPower -> status
            0x0039 | 0x0041 | 0x0095 | 0x0099 | 0x00A8 | 0x00B9 | 0x00FA => ok(&mut out),
            // getChildData(index) -> status, EmberChildData (V7 in v8/v9, V10 from v10)
            0x004A => {
                let index = usize::from(r.u8("index").ok()?);
                match view.children.get(index) {
                    Some((nwk, eui64)) => {
                        ok(&mut out);
                        out.extend_from_slice(eui64);
                        out.push(NODE_TYPE_END_DEVICE);
                        out.put_u16_le(*nwk);
                        // phy, power, timeout
                        out.extend_from_slice(&[0, 1, 8]);
                        if v >= 10 {
                            out.put_u32_le(0x0003_0000);
                        }
                    }
                    None => {
                        status(&mut out, EmberStatus::NOT_JOINED, SlStatus::NOT_FOUND);
                        out.extend_from_slice(&[0; 8]);
                        out.push(0);
                        out.put_u16_le(0xFFFF);
                        out.extend_from_slice(&[0, 0, 0]);
                        if v >= 10 {
                            out.put_u32_le(0);
                        }
                    }
                }
            }
            // setSourceRouteDiscoveryMode(mode) -> remainingTime (ms to the next MTORR)
            0x005A => {
                let mode = r.u8("mode").ok()?;
                out.put_u32_le(if mode == 0 { 0 } else { 60_000 });
            }
            // v8–13 getAddressTableRemoteEui64; v14+ getAddressTableInfo
            0x005E => {
                let index = usize::from(r.u8("index").ok()?);
                let entry = view.children.get(index);
                if sl {
                    match entry {
                        Some((nwk, eui64)) => {
                            ok(&mut out);
                            out.put_u16_le(*nwk);
                            out.extend_from_slice(eui64);
                        }
                        None => {
                            out.put_u32_le(SlStatus::NOT_FOUND.0);
                            out.put_u16_le(0xFFFF);
                            out.extend_from_slice(&[0; 8]);
                        }
                    }
                } else {
                    out.extend_from_slice(&entry.map_or([0; 8], |(_, eui64)| *eui64));
                }
            }
            // v8–13 getAddressTableRemoteNodeId; unused in v14–16; v17 gpClearProxyTable -> ()
            0x005F if v <= 13 => {
                let index = usize::from(r.u8("index").ok()?);
                out.put_u16_le(view.children.get(index).map_or(0xFFFF, |(nwk, _)| *nwk));
            }
            0x005F if v >= 17 => {}
            // getMulticastTableEntry(index) -> status, entry
            0x0063 => {
                let index = usize::from(r.u8("index").ok()?);
                match self.multicast.get(index) {
                    Some(&(group, endpoint, network)) => {
                        ok(&mut out);
                        out.put_u16_le(group);
                        out.push(endpoint);
                        out.push(network);
                    }
                    None => {
                        status(
                            &mut out,
                            EmberStatus::INDEX_OUT_OF_RANGE,
                            SlStatus::INVALID_INDEX,
                        );
                        out.extend_from_slice(&[0; 4]);
                    }
                }
            }
            // setMulticastTableEntry(index, entry) -> status
            0x0064 => {
                let index = usize::from(r.u8("index").ok()?);
                let group = r.u16("multicastId").ok()?;
                let endpoint = r.u8("endpoint").ok()?;
                let network = r.u8("networkIndex").ok()?;
                let stored =
                    replace_entry(self.multicast.get_mut(index), (group, endpoint, network));
                index_status(&mut out, sl, stored);
            }
            // readAndClearCounters, readCounters -> 41 × u16
            0x0065 | 0x00F1 => {
                for _ in 0..COUNTER_COUNT {
                    out.put_u16_le(0);
                }
            }
            // getCurrentSecurityState -> status, bitmask, trust centre EUI-64
            0x0069 => {
                if view.network_up {
                    ok(&mut out);
                } else {
                    status(&mut out, EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED);
                }
                out.put_u16_le(CURRENT_SECURITY_GLOBAL_LINK_KEY);
                out.extend_from_slice(&view.eui64);
            }
            // v8–12 getKey(keyType) -> status, EmberKeyStruct
            0x006A if v <= 12 => {
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
                        ok(&mut out);
                        let bitmask = KEY_HAS_SEQUENCE_AND_COUNTERS
                            | if partner.is_some() {
                                KEY_HAS_PARTNER_EUI64
                            } else {
                                0
                            };
                        key_struct(
                            &mut out,
                            bitmask,
                            key_type,
                            &key,
                            counter,
                            self.network_key_sequence,
                            partner.unwrap_or([0; 8]),
                        );
                    }
                    None => {
                        status(&mut out, EmberStatus::KEY_INVALID, SlStatus::FAIL);
                        key_struct(&mut out, 0, key_type, &[0; 16], 0, 0, [0; 8]);
                    }
                }
            }
            // clearTransientLinkKeys -> ()
            0x006B => self.transient_keys.clear(),
            // v8–12 getKeyTableEntry(index) -> status, EmberKeyStruct
            0x0071 if v <= 12 => {
                let index = usize::from(r.u8("index").ok()?);
                match self.link_keys.get(index) {
                    Some(Some(entry)) => {
                        ok(&mut out);
                        key_struct(
                            &mut out,
                            KEY_HAS_SEQUENCE_AND_COUNTERS | KEY_HAS_PARTNER_EUI64,
                            5,
                            &entry.key,
                            0,
                            0,
                            entry.eui64,
                        );
                    }
                    Some(None) => {
                        status(
                            &mut out,
                            EmberStatus::TABLE_ENTRY_ERASED,
                            SlStatus::NOT_FOUND,
                        );
                        key_struct(&mut out, 0, 0, &[0; 16], 0, 0, [0; 8]);
                    }
                    None => {
                        status(
                            &mut out,
                            EmberStatus::INDEX_OUT_OF_RANGE,
                            SlStatus::INVALID_INDEX,
                        );
                        key_struct(&mut out, 0, 0, &[0; 16], 0, 0, [0; 8]);
                    }
                }
            }
            // v8–12 addOrUpdateKeyTableEntry(address, linkKey, keyData) -> status
            0x0066 if v <= 12 => {
                let eui64: [u8; 8] = r.array("address").ok()?;
                let _link_key = r.u8("linkKey").ok()?;
                let key: [u8; 16] = r.array("keyData").ok()?;
                if self.store_link_key(None, eui64, key) {
                    ok(&mut out);
                } else {
                    status(&mut out, EmberStatus::TABLE_FULL, SlStatus::FULL);
                }
            }
            // findKeyTableEntry(address, linkKey) -> index (0xFF: none)
            0x0075 => {
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
            0x0076 => {
                let index = usize::from(r.u8("index").ok()?);
                let erased = replace_entry(self.link_keys.get_mut(index), None);
                index_status(&mut out, sl, erased);
            }
            // v8–12 becomeTrustCenter(key) -> status
            0x0077 if v <= 12 => ok(&mut out),
            // v13+ tokenFactoryReset(excludeOutgoingFC, excludeBootCounter) -> ()
            0x0077 => {
                let keep_counter = r.u8("excludeOutgoingFC").ok()? != 0;
                let counter = self.network_frame_counter;
                *self = StackTables::new([0; 16]);
                if keep_counter {
                    self.network_frame_counter = counter;
                }
                effect = Some(StackEffect::FactoryReset);
            }
            // setExtendedTimeout(eui64, bool) -> () before v14, status from v14
            0x007E => {
                if sl {
                    ok(&mut out);
                }
            }
            // getExtendedTimeout(eui64) -> bool before v14; status (OK: extended) from v14
            0x007F => {
                if sl {
                    out.put_u32_le(SlStatus::NOT_FOUND.0);
                } else {
                    out.push(0);
                }
            }
            // replaceAddressTableEntry(index, eui64, id, extended) -> status, old entry
            0x0082 => {
                ok(&mut out);
                out.extend_from_slice(&[0; 8]);
                out.put_u16_le(0xFFFF);
                out.push(0);
            }
            // setSourceRoute(destination, relays) -> status
            0x00AE => {
                let destination = r.u16("destination").ok()?;
                let count = r.u8("relayCount").ok()?;
                let relays = (0..count)
                    .map(|_| r.u16("relay"))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                self.source_routes.retain(|(d, _)| *d != destination);
                self.source_routes.push((destination, relays));
                ok(&mut out);
            }
            // setChildData(index, data) -> status
            0x00AC => ok(&mut out),
            // clearKeyTable -> status
            0x00B1 => {
                self.link_keys = vec![None; KEY_TABLE_SIZE];
                ok(&mut out);
            }
            // getSourceRouteTableFilledSize / TotalSize -> u8
            0x00C2 => out.push(u8::try_from(self.source_routes.len()).unwrap_or(u8::MAX)),
            0x00C3 => out.push(SOURCE_ROUTE_TABLE_SIZE),
            // gpSinkTableClearAll -> (); v17 gpProxyTableRemoveEntry(index) -> ()
            0x00E2 => {}
            0x005D if v >= 17 => {}
            // getTokenCount -> u8: this NCP exposes no NVM3 tokens to the host
            0x0100 if v >= 9 => out.push(0),
            // getTokenInfo(index) -> status, EmberTokenInfo
            0x0101 if v >= 9 => {
                status(
                    &mut out,
                    EmberStatus::INDEX_OUT_OF_RANGE,
                    SlStatus::INVALID_INDEX,
                );
                out.extend_from_slice(&[0; 8]);
            }
            // getTokenData(token, index) -> status [, LV32 data only on success]
            0x0102 if v >= 9 => status(&mut out, EmberStatus::NOT_FOUND, SlStatus::NOT_FOUND),
            // setTokenData(token, index, LV32 data) -> status
            0x0103 if v >= 9 => status(&mut out, EmberStatus::NOT_FOUND, SlStatus::NOT_FOUND),
            // exportLinkKeyByIndex(index): v12/13 eui64, key, metadata, status;
            // v14+ status, context, key, metadata
            0x010F if v >= 12 => {
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
                    security_context(&mut out, v, SEC_MAN_TC_LINK, 0, entry.eui64);
                } else {
                    out.extend_from_slice(&entry.eui64);
                }
                out.extend_from_slice(&entry.key);
                key_metadata(&mut out, 0, 0);
                if !sl {
                    out.put_u32_le(status_value.0);
                }
            }
            // getApsKeyInfo(context): v12/13 eui, metadata, status; v14+ status, metadata, context
            0x010C if v >= 12 => {
                if sl {
                    out.put_u32_le(SlStatus::OK.0);
                    key_metadata(&mut out, self.aps_frame_counter, 0);
                    security_context(&mut out, v, SEC_MAN_TC_LINK, 0, view.eui64);
                } else {
                    out.extend_from_slice(&view.eui64);
                    key_metadata(&mut out, self.aps_frame_counter, 0);
                    out.put_u32_le(SlStatus::OK.0);
                }
            }
            // importLinkKey(index, address, key) -> status
            0x010E if v >= 12 => {
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
            0x0111 if v >= 12 => {
                let eui64: [u8; 8] = r.array("eui64").ok()?;
                let key: [u8; 16] = r.array("key").ok()?;
                self.transient_keys.retain(|k| k.eui64 != eui64);
                self.transient_keys.push(LinkKey { eui64, key });
                out.put_u32_le(SlStatus::OK.0);
            }
            // exportKey(context): v12/13 key, status; v14+ status, key, context
            0x0114 if v >= 12 => {
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
                    security_context(&mut out, v, key_type, 0, [0; 8]);
                } else {
                    out.extend_from_slice(&key.unwrap_or([0; 16]));
                    out.put_u32_le(status_value.0);
                }
            }
            // importKey(context, key) -> status [, context from v14]
            0x0115 if v >= 12 => {
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
            0x0116 if v >= 13 => {
                out.put_u32_le(SlStatus::OK.0);
                out.push(u8::from(view.network_up || self.network_key != [0; 16]));
                out.push(0);
                out.push(self.network_key_sequence);
                out.push(0);
                out.put_u32_le(self.network_frame_counter);
            }
            // customFrame(LV payload) -> status, LV reply: no XNCP extensions in this firmware
            0x0047 => {
                status(&mut out, EmberStatus::INVALID_CALL, SlStatus::NOT_SUPPORTED);
                out.push(0);
            }
            _ => return None,
        }
        Some(StackAnswer {
            parameters: out,
            effect,
        })
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

/// Puts `value` in the table entry, if there is one.
fn replace_entry<T>(entry: Option<&mut T>, value: T) -> bool {
    entry.map(|entry| *entry = value).is_some()
}

/// SUCCESS, or the index-out-of-range status of the version.
fn index_status(out: &mut Vec<u8>, sl: bool, in_range: bool) {
    match (sl, in_range) {
        (true, true) => out.put_u32_le(SlStatus::OK.0),
        (true, false) => out.put_u32_le(SlStatus::INVALID_INDEX.0),
        (false, true) => out.push(EmberStatus::SUCCESS.0),
        (false, false) => out.push(EmberStatus::INDEX_OUT_OF_RANGE.0),
    }
}

fn ezsp_status(out: &mut Vec<u8>, sl: bool, ezsp: EzspStatus, slc: SlStatus) {
    if sl {
        out.put_u32_le(slc.0);
    } else {
        out.push(ezsp.0);
    }
}

/// EmberKeyStruct: bitmask, type, key, outgoing and incoming frame counters, sequence, partner.
fn key_struct(
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
fn security_context(out: &mut Vec<u8>, version: u8, key_type: u8, key_index: u8, eui64: [u8; 8]) {
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
fn key_metadata(out: &mut Vec<u8>, outgoing: u32, incoming: u32) {
    out.put_u16_le(KEY_HAS_SEQUENCE_AND_COUNTERS);
    out.put_u32_le(outgoing);
    out.put_u32_le(incoming);
    out.put_u16_le(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(version: u8, children: &[(u16, [u8; 8])]) -> StackView<'_> {
        StackView {
            version: EzspVersion::new(version).unwrap(),
            network_up: true,
            eui64: [1, 2, 3, 4, 5, 6, 7, 8],
            children,
            endpoints: &[1],
        }
    }

    fn answer(tables: &mut StackTables, version: u8, frame_id: u16, parameters: &[u8]) -> Vec<u8> {
        let children = [(0x1234, [9; 8])];
        tables
            .answer(&view(version, &children), frame_id, parameters)
            .unwrap()
            .parameters
    }

    /// `exportKey`: key then status in v13, status, key and the 18-byte context from v14.
    #[test]
    fn export_key_layout_follows_the_version() {
        let mut tables = StackTables::new([0x42; 16]);
        let mut context = vec![SEC_MAN_NETWORK];
        context.extend_from_slice(&[0; 17]);
        let v13 = answer(&mut tables, 13, 0x0114, &context);
        assert_eq!(v13.len(), 20);
        assert_eq!(&v13[..16], &[0x42; 16]);
        assert_eq!(&v13[16..], &[0, 0, 0, 0]);
        let v14 = answer(&mut tables, 14, 0x0114, &context);
        assert_eq!(v14.len(), 4 + 16 + 18);
        assert_eq!(&v14[4..20], &[0x42; 16]);
        assert_eq!(v14[20], SEC_MAN_NETWORK);
    }

    /// The child table: V7 entries in v8/v9, V10 (with the timeout left) from v10, and an
    /// `sl_status_t` from v14.
    #[test]
    fn child_data_layout_follows_the_version() {
        let mut tables = StackTables::new([0; 16]);
        assert_eq!(answer(&mut tables, 8, 0x004A, &[0]).len(), 1 + 14);
        assert_eq!(answer(&mut tables, 10, 0x004A, &[0]).len(), 1 + 18);
        let v14 = answer(&mut tables, 14, 0x004A, &[0]);
        assert_eq!(v14.len(), 4 + 18);
        assert_eq!(&v14[4..12], &[9; 8]);
        assert_eq!(&v14[13..15], &0x1234u16.to_le_bytes());
        let missing = answer(&mut tables, 14, 0x004A, &[1]);
        assert_eq!(&missing[..4], &SlStatus::NOT_FOUND.0.to_le_bytes());
    }

    /// 0x0077 is `becomeTrustCenter` up to v12 and `tokenFactoryReset` from v13, which erases
    /// the keys.
    #[test]
    fn frame_0x0077_changes_meaning_at_v13() {
        let mut tables = StackTables::new([0x42; 16]);
        let trust_center = tables.answer(&view(12, &[]), 0x0077, &[0; 16]).unwrap();
        assert_eq!(trust_center.parameters, [0]);
        assert_eq!(trust_center.effect, None);
        assert_eq!(tables.network_key(), [0x42; 16]);
        let reset = tables.answer(&view(13, &[]), 0x0077, &[0, 0]).unwrap();
        assert!(reset.parameters.is_empty());
        assert_eq!(reset.effect, Some(StackEffect::FactoryReset));
        assert_eq!(tables.network_key(), [0; 16]);
    }

    /// `setMulticastTableEntry` then `getMulticastTableEntry`; an index past the table is
    /// refused in the version's status type.
    #[test]
    fn multicast_table_round_trip() {
        let mut tables = StackTables::new([0; 16]);
        assert_eq!(
            answer(&mut tables, 14, 0x0064, &[2, 0x0B, 0xF9, 1, 0]),
            [0, 0, 0, 0]
        );
        assert_eq!(tables.multicast_groups(), [(0xF90B, 1)]);
        assert_eq!(
            answer(&mut tables, 14, 0x0063, &[2]),
            [0, 0, 0, 0, 0x0B, 0xF9, 1, 0]
        );
        assert_eq!(
            answer(&mut tables, 13, 0x0064, &[99, 0, 0, 1, 0]),
            [EmberStatus::INDEX_OUT_OF_RANGE.0]
        );
    }

    /// Endpoint flags answer the value's full length either way, as herdsman needs.
    #[test]
    fn extended_value_endpoint_flags() {
        let mut tables = StackTables::new([0; 16]);
        assert_eq!(
            answer(&mut tables, 13, 0x0003, &[0, 1, 0, 0, 0]),
            [0, 2, 1, 0]
        );
        assert_eq!(
            answer(&mut tables, 13, 0x0003, &[0, 2, 0, 0, 0]),
            [EzspStatus::ERROR_INVALID_VALUE.0, 2, 0, 0]
        );
    }

    /// A frame the stack lacks, or truncated parameters, get no answer here (the NCP answers
    /// `invalidCommand`).
    #[test]
    fn unknown_or_truncated_frames_are_not_answered() {
        let mut tables = StackTables::new([0; 16]);
        let children = [];
        assert!(tables.answer(&view(14, &children), 0x7FFF, &[]).is_none());
        assert!(tables.answer(&view(14, &children), 0x0064, &[1]).is_none());
        assert!(
            tables
                .answer(&view(8, &children), 0x0114, &[1; 18])
                .is_none()
        );
    }
}
