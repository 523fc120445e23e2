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
//! use zigbee_otad::ezsp::frame::FrameId;
//! let mut tables = StackTables::new([0x11; 16]);
//! let view = StackView { version: EzspVersion::new(13).unwrap(), network_up: true,
//!     eui64: [1, 0, 0, 0, 0, 0, 0, 0], children: &[], endpoints: &[1] };
//! // getNetworkKeyInfo (0x0116): status OK, key set, sequence 0, frame counter.
//! let answer = tables.answer(&view, FrameId::GET_NETWORK_KEY_INFO, &[]).unwrap();
//! assert_eq!(&answer.parameters[..6], &[0, 0, 0, 0, 1, 0]);
//! ```

mod keys;
mod network;
mod tables;

use crate::ezsp::EzspVersion;
use crate::ezsp::command::frame_versions;
use crate::ezsp::frame::FrameId;
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

/// One answer being built: the frame asked for, the parameters read, the answer written, what
/// it sets off.
#[derive(Debug)]
struct Cx<'a> {
    /// The frame being answered.
    frame_id: FrameId,
    /// The rest of the NCP.
    view: StackView<'a>,
    r: Reader<'a>,
    out: Vec<u8>,
    effect: Option<StackEffect>,
    /// The negotiated version's number.
    v: u8,
    /// Whether statuses are `sl_status_t` (v14+).
    sl: bool,
}

/// What a frame handler works with: the frame asked for, the rest of the NCP, the parameters, the
/// answer, its effect, the version's number and whether statuses are `sl_status_t`.
type Parts<'c, 'a> = (
    FrameId,
    StackView<'a>,
    &'c mut Reader<'a>,
    &'c mut Vec<u8>,
    &'c mut Option<StackEffect>,
    u8,
    bool,
);

impl<'a> Cx<'a> {
    fn parts(&mut self) -> Parts<'_, 'a> {
        (
            self.frame_id,
            self.view,
            &mut self.r,
            &mut self.out,
            &mut self.effect,
            self.v,
            self.sl,
        )
    }
}

/// SUCCESS in the version's status type.
fn put_ok(out: &mut Vec<u8>, sl: bool) {
    put_status(out, sl, EmberStatus::SUCCESS, SlStatus::OK);
}

/// `ember` before v14, `slc` from v14.
fn put_status(out: &mut Vec<u8>, sl: bool, ember: EmberStatus, slc: SlStatus) {
    if sl {
        out.put_u32_le(slc.0);
    } else {
        out.push(ember.0);
    }
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
    /// in this version (the caller answers `invalidCommand`). Which frames exist in which
    /// version is the [`ezsp_frames!`](crate::ezsp::command) table's `raw_commands` section.
    pub fn answer(
        &mut self,
        view: &StackView<'_>,
        frame_id: FrameId,
        parameters: &[u8],
    ) -> Option<StackAnswer> {
        let v = view.version.get();
        if !frame_versions(frame_id)?.contains(&v) {
            return None;
        }
        let mut cx = Cx {
            frame_id,
            view: *view,
            r: Reader::new(parameters),
            out: Vec::new(),
            effect: None,
            v,
            sl: view.version.uses_sl_status(),
        };
        let answered = self.answer_network(&mut cx)?
            || self.answer_tables(&mut cx)?
            || self.answer_keys(&mut cx)?;
        answered.then_some(StackAnswer {
            parameters: cx.out,
            effect: cx.effect,
        })
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
            .answer(&view(version, &children), FrameId(frame_id), parameters)
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
        let trust_center = tables
            .answer(&view(12, &[]), FrameId(0x0077), &[0; 16])
            .unwrap();
        assert_eq!(trust_center.parameters, [0]);
        assert_eq!(trust_center.effect, None);
        assert_eq!(tables.network_key(), [0x42; 16]);
        let reset = tables
            .answer(&view(13, &[]), FrameId(0x0077), &[0, 0])
            .unwrap();
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
    fn the_frame_table_decides_which_frames_exist_in_which_version() {
        use crate::ezsp::command::command_name;
        let mut tables = StackTables::new([7; 16]);
        let children = [(0x1234, [9; 8])];
        // getTokenCount exists from v9, getNetworkKeyInfo from v13, getKey up to v12 (bellows'
        // command tables); the stack answers them exactly there.
        let token_count = FrameId::GET_TOKEN_COUNT;
        assert!(
            tables
                .answer(&view(8, &children), token_count, &[])
                .is_none()
        );
        let answer = tables
            .answer(&view(9, &children), token_count, &[])
            .unwrap();
        assert_eq!(answer.parameters, [0]);
        let key_info = FrameId::GET_NETWORK_KEY_INFO;
        assert!(tables.answer(&view(12, &children), key_info, &[]).is_none());
        assert!(tables.answer(&view(13, &children), key_info, &[]).is_some());
        assert!(
            tables
                .answer(&view(12, &children), FrameId::GET_KEY, &[3])
                .is_some()
        );
        assert!(
            tables
                .answer(&view(13, &children), FrameId::GET_KEY, &[3])
                .is_none()
        );
        // The table names them (for logs and the proxy).
        assert_eq!(command_name(token_count), "getTokenCount");
        assert_eq!(
            format!("{key_info:?}"),
            "FrameId(0x0116 GET_NETWORK_KEY_INFO)"
        );
        // An id that is no line of the table is never answered.
        for version in 8..=17 {
            let view = view(version, &children);
            assert!(tables.answer(&view, FrameId(0x00F0), &[]).is_none());
        }
    }

    #[test]
    fn unknown_or_truncated_frames_are_not_answered() {
        let mut tables = StackTables::new([0; 16]);
        let children = [];
        assert!(
            tables
                .answer(&view(14, &children), FrameId(0x7FFF), &[])
                .is_none()
        );
        assert!(
            tables
                .answer(&view(14, &children), FrameId(0x0064), &[1])
                .is_none()
        );
        assert!(
            tables
                .answer(&view(8, &children), FrameId(0x0114), &[1; 18])
                .is_none()
        );
    }
}
