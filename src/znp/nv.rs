//! The Z-Stack NV (non-volatile memory) items that hold a coordinator's network, and their byte
//! layouts (PROTOCOLS.md §3; ids from zigpy-znp's `types/nvids.py`, layouts from its
//! `types/structs.py`, checked against zigpy-znp's own serialization in
//! `tests/vectors/znp/zigpy_znp_vectors.json`, key `nv`).
//!
//! Struct items come in two layouts: CC26x2/CC13x2 (32-bit ARM) pads fields to their natural
//! alignment, CC253x (8051) packs them. [`Nib::parse`] tells them apart by length (116 or 110
//! bytes).
//!
//! ```
//! use zigbee_otad::znp::nv::Nib;
//! let bytes = Nib::aligned_bytes(15, 0x1A62, 0xDDDD_DDDD_DDDD_DD01);
//! let nib = Nib::parse(&bytes).unwrap();
//! assert_eq!((nib.channel, nib.pan_id, nib.key_loaded), (15, 0x1A62, true));
//! ```

use crate::wire::{PutLe, Reader};

/// OSAL NV item ids (Z-Stack's "legacy" NV, every version).
pub mod osal {
    /// The coordinator's IEEE address (8 bytes).
    pub const EXTADDR: u16 = 0x0001;
    /// Start-up options (bit 0 clear state, bit 1 clear config).
    pub const STARTUP_OPTION: u16 = 0x0003;
    /// The network information base ([`super::Nib`]).
    pub const NIB: u16 = 0x0021;
    /// The address manager table (Z-Stack < 3.30).
    pub const ADDRMGR: u16 = 0x0023;
    /// The extended PAN id to form with (8 bytes).
    pub const EXTENDED_PAN_ID: u16 = 0x002D;
    /// How long a broadcast stays in the broadcast table, seconds (1 byte).
    pub const BCAST_DELIVERY_TIME: u16 = 0x0030;
    /// Whether the node is a many-to-one route concentrator (1 byte).
    pub const CONCENTRATOR_ENABLE: u16 = 0x0032;
    /// Seconds between many-to-one route requests (1 byte).
    pub const CONCENTRATOR_DISCOVERY: u16 = 0x0033;
    /// Whether the concentrator keeps a route cache (1 byte).
    pub const CONCENTRATOR_RC: u16 = 0x0036;
    /// Source route expiry, seconds (1 byte).
    pub const SRC_RTG_EXPIRY_TIME: u16 = 0x0038;
    /// Whether children age out (1 byte).
    pub const NWK_CHILD_AGE_ENABLE: u16 = 0x003E;
    /// The active network key: sequence number and key (17 bytes).
    pub const NWK_ACTIVE_KEY_INFO: u16 = 0x003A;
    /// The alternate network key.
    pub const NWK_ALTERN_KEY_INFO: u16 = 0x003B;
    /// The APS extended PAN id (8 bytes).
    pub const APS_USE_EXT_PANID: u16 = 0x0047;
    /// The APS link key table.
    pub const APS_LINK_KEY_TABLE: u16 = 0x004C;
    /// "This node is on a network" (BDB, 1 byte).
    pub const BDBNODEISONANETWORK: u16 = 0x0055;
    /// zigpy-znp's own marker of NV migrations done.
    pub const ZIGPY_ZNP_MIGRATION_ID: u16 = 0x005F;
    /// "Configured by a host" marker for Z-Stack 3.
    pub const HAS_CONFIGURED_ZSTACK3: u16 = 0x0060;
    /// The network key to form with (16 bytes).
    pub const PRECFGKEY: u16 = 0x0062;
    /// Whether to hand the preconfigured key to joining devices (1 byte).
    pub const PRECFGKEYS_ENABLE: u16 = 0x0063;
    /// The active key with its frame counter (`NwkActiveKeyItems`; 24 bytes aligned, 21
    /// packed: zigbee-herdsman tells the layouts apart by it).
    pub const NWKKEY: u16 = 0x0082;
    /// The PAN id to form with (2 bytes; 0xFFFF lets the stack choose).
    pub const PANID: u16 = 0x0083;
    /// The channel mask to form on (4 bytes; Z-Stack 1.2 only, 3.x uses BDB).
    pub const CHANLIST: u16 = 0x0084;
    /// The logical type (0 coordinator).
    pub const LOGICAL_TYPE: u16 = 0x0087;
    /// Whether every ZDO message is also handed to the host (1 byte).
    pub const ZDO_DIRECT_CB: u16 = 0x008F;
    /// The seed of the hashed trust-center link keys (16 bytes).
    pub const TCLK_SEED: u16 = 0x0101;
}

/// Extended NV item ids (Z-Stack 3.30+, `SYS.NVRead` with system id [`SYS_ID_ZSTACK`]).
pub mod ex {
    /// The address manager table, one entry per sub-id.
    pub const ADDRMGR: u16 = 0x0001;
    /// Hashed trust-center link keys.
    pub const TCLK_TABLE: u16 = 0x0004;
    /// Unhashed APS link keys.
    pub const APS_KEY_DATA_TABLE: u16 = 0x0006;
    /// Network frame counters per extended PAN id.
    pub const NWK_SEC_MATERIAL_TABLE: u16 = 0x0007;
}

/// The system id of Z-Stack's own NV items.
pub const SYS_ID_ZSTACK: u8 = 0x01;

/// The parts of the NIB (network information base) a host needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nib {
    /// The coordinator's network address.
    pub nwk_address: u16,
    /// The channel the network runs on (0: none formed).
    pub channel: u8,
    /// PAN id (0xFFFE: none).
    pub pan_id: u16,
    /// Extended PAN id.
    pub extended_pan_id: u64,
    /// Whether a network key is loaded.
    pub key_loaded: bool,
    /// NWK security level.
    pub security_level: u8,
    /// NWK update id.
    pub update_id: u8,
    /// True for the padded (CC26x2/CC13x2) layout.
    pub aligned: bool,
}

/// Field offsets in the two layouts.
struct NibLayout {
    security_level: usize,
    nwk_address: usize,
    channel: usize,
    pan_id: usize,
    channel_list: usize,
    extended_pan_id: usize,
    key_loaded: usize,
    update_id: usize,
}

const ALIGNED: NibLayout = NibLayout {
    security_level: 12,
    nwk_address: 22,
    channel: 24,
    pan_id: 36,
    channel_list: 40,
    extended_pan_id: 57,
    key_loaded: 65,
    update_id: 114,
};

const PACKED: NibLayout = NibLayout {
    security_level: 12,
    nwk_address: 20,
    channel: 22,
    pan_id: 33,
    channel_list: 36,
    extended_pan_id: 53,
    key_loaded: 61,
    update_id: 109,
};

/// A CC2652's NIB for a formed coordinator, as zigpy-znp serializes it (the `nib_aligned`
/// vector with channel, channel mask, PAN, extended PAN and key-loaded zeroed).
const ALIGNED_TEMPLATE: [u8; 116] = [
    0x00, 0x05, 0x02, 0x33, 0x14, 0x33, 0x00, 0x1E, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x8F, 0x00,
    0x07, 0x00, 0x02, 0x0D, 0x1E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x0F, 0x04, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3C, 0x03, 0x00, 0x01, 0x78, 0x0A, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// The NIB could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the NIB is {0} bytes, neither the packed (110) nor the aligned (116) layout")]
pub struct NibLengthError(pub usize);

impl Nib {
    /// Reads the fields a host needs from either layout.
    pub fn parse(bytes: &[u8]) -> Result<Nib, NibLengthError> {
        let (layout, aligned) = match bytes.len() {
            116 => (&ALIGNED, true),
            110 => (&PACKED, false),
            other => return Err(NibLengthError(other)),
        };
        let byte = |at: usize| bytes.get(at).copied().unwrap_or_default();
        let u16_at = |at: usize| u16::from_le_bytes([byte(at), byte(at + 1)]);
        let mut ext = [0u8; 8];
        for (i, slot) in ext.iter_mut().enumerate() {
            *slot = byte(layout.extended_pan_id + i);
        }
        Ok(Nib {
            nwk_address: u16_at(layout.nwk_address),
            channel: byte(layout.channel),
            pan_id: u16_at(layout.pan_id),
            extended_pan_id: u64::from_le_bytes(ext),
            key_loaded: byte(layout.key_loaded) != 0,
            security_level: byte(layout.security_level),
            update_id: byte(layout.update_id),
            aligned,
        })
    }

    /// The aligned NIB of a coordinator that formed this network.
    pub fn aligned_bytes(channel: u8, pan_id: u16, extended_pan_id: u64) -> Vec<u8> {
        let mut bytes = ALIGNED_TEMPLATE.to_vec();
        let layout = &ALIGNED;
        let mut put = |at: usize, value: &[u8]| {
            if let Some(slot) = bytes.get_mut(at..at + value.len()) {
                slot.copy_from_slice(value);
            }
        };
        put(layout.channel, &[channel]);
        put(layout.pan_id, &pan_id.to_le_bytes());
        let mask = 1u32.checked_shl(u32::from(channel)).unwrap_or(0);
        put(layout.channel_list, &mask.to_le_bytes());
        put(layout.extended_pan_id, &extended_pan_id.to_le_bytes());
        put(layout.key_loaded, &[1]);
        bytes
    }
}

/// `NwkKeyDesc`: key sequence number and key (the `NWK_ACTIVE_KEY_INFO` item).
pub fn key_desc_bytes(sequence: u8, key: &[u8; 16]) -> Vec<u8> {
    let mut out = vec![sequence];
    out.extend_from_slice(key);
    out
}

/// Reads a `NwkKeyDesc`.
pub fn parse_key_desc(bytes: &[u8]) -> Option<(u8, [u8; 16])> {
    let mut r = Reader::new(bytes);
    let sequence = r.u8("KeySeqNum").ok()?;
    let key = r.array::<16>("Key").ok()?;
    r.is_empty().then_some((sequence, key))
}

/// `NwkSecMaterialDesc`: the network frame counter for an extended PAN id.
pub fn sec_material_bytes(frame_counter: u32, extended_pan_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.put_u32_le(frame_counter);
    out.put_u64_le(extended_pan_id);
    out
}

/// `AddrMgrEntry` in the aligned layout: user type (0x02 security: a device that joined
/// through us), a padding byte, network and IEEE address.
pub fn addr_mgr_entry_bytes(user_type: u8, nwk: u16, ieee: u64) -> Vec<u8> {
    let mut out = vec![user_type, 0xFF];
    out.put_u16_le(nwk);
    out.put_u64_le(ieee);
    out
}

/// Address manager user type: the entry has security material (a joined device).
pub const ADDR_MGR_SECURITY: u8 = 0x02;
