//! Hostile simulated devices (issue 18, "Prove it" 1): clients that send well-formed OTA cluster
//! frames (ZCL8 §11.13: Query Next Image, Image Block and Image Page Requests) with the intent
//! of hurting everyone else. Each is one simulated device behind the NCP, sans-IO like
//! [`super::device::SimDevice`] (which delegates to [`HostileClient`] when its config carries a
//! [`HostileSpec`]):
//!
//! - `squat:MFR:TYPE:VERSION[:SECS]`: claims to be Bosch (manufacturer code 0x1209 in its
//!   queries, "BOSCH" in its Basic cluster) and asks for one block of the named image every
//!   SECS seconds (default 540, nine minutes), to hold a transfer slot without using it.
//! - `pages:MFR:TYPE:VERSION`: Image Page Requests of 65,535 bytes with 0 ms spacing for the
//!   named image, the next as soon as a page goes quiet, from the start again at its end,
//!   forever; WAIT_FOR_DATA is not honoured beyond a second.
//! - `spoof[:MS[:MFR]]`: every MS milliseconds (default 250) a Query Next Image Request from a
//!   new made-up network address, with a random manufacturer code and image type; it answers
//!   nothing, as a made-up address cannot, and the NCP cannot name it (its address table has
//!   no IEEE address for it: the sender leaves right after the frame). With MFR, every query
//!   claims MFR and one of [`BAIT_IMAGE_TYPES`] image types, so that a test's catalog can list
//!   every claim and see that none is downloaded.
//! - `spoof-named[:MS[:MFR]]`: the same, but each made-up address comes with a made-up IEEE
//!   address the NCP learns (as from a NWK header's extended source), so the daemon's device
//!   table names every fake device: the harder case for the claims and the device table.
//!
//! Scaling the squatter's period down (e.g. `squat:…:60`) shortens a test honestly: what
//! matters to the server is that the device is silent far longer than a working device.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::device::{encode_client_request, page_from};
use super::device_spec::bounded_field;
use super::faults::SplitMix64;
use crate::zcl::Direction;
use crate::zcl::ota::{
    ImageBlockRequest, ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageRequest,
};
use crate::zigbee::{Ieee, Nwk};

/// The manufacturer code the squatter claims (Bosch: other servers give it an hour's idle
/// timeout).
pub const CLAIMED_MANUFACTURER: u16 = 0x1209;
/// The page size the pager asks for: the largest the field holds.
pub const PAGE_SIZE: u16 = u16::MAX;
/// The pager's block size.
const PAGE_BLOCK_SIZE: u8 = 64;
/// A page that has sent nothing for this long is taken as done; the next one is asked for.
const PAGE_QUIET: Duration = Duration::from_millis(300);
/// The longest the pager waits, whatever the server says.
const PAGER_MAX_WAIT: Duration = Duration::from_secs(1);
/// How long an unnamed spoofer keeps its made-up address after sending from it.
const SPOOF_STAY: Duration = Duration::from_millis(1);
/// With a fixed manufacturer code, the spoofer's image types are `0..BAIT_IMAGE_TYPES`.
pub const BAIT_IMAGE_TYPES: u16 = 16;
/// The squatter's block size.
const SQUAT_BLOCK_SIZE: u8 = 50;

/// What a hostile device does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostileKind {
    /// Holds a slot with one block request per period, claiming to be Bosch.
    Squat,
    /// Endless 65,535-byte page requests at 0 spacing.
    Pages,
    /// A query from a new made-up address every period.
    Spoof,
}

/// A hostile device, as `--hostile` writes it (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostileSpec {
    /// What it does.
    pub kind: HostileKind,
    /// The image it asks for (squat, pages), or the manufacturer code its spoofed queries use
    /// (spoof; `None` for a random one each time).
    pub manufacturer_code: Option<u16>,
    /// The image type it asks for (squat, pages).
    pub image_type: u16,
    /// The file version it asks for (squat, pages).
    pub file_version: u32,
    /// Between block requests (squat) or spoofed queries (spoof).
    pub period: Duration,
    /// Spoof: the NCP learns an IEEE address for each made-up address (`spoof-named`).
    pub named: bool,
}

/// A `--hostile` spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "hostile spec `{spec}`: {reason} (expected squat:MFR:TYPE:VERSION[:SECS], pages:MFR:TYPE:VERSION or spoof[-named][:MS[:MFR]])"
)]
pub struct HostileSpecError {
    /// The text given.
    pub spec: String,
    /// What was wrong.
    pub reason: String,
}

impl FromStr for HostileSpec {
    type Err = HostileSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| HostileSpecError {
            spec: spec.to_owned(),
            reason,
        };
        let fields: Vec<&str> = spec.split(':').collect();
        let number = |index: usize, name: &str, max: u64| {
            bounded_field(&fields, index, name, max).map_err(error)
        };
        // `number` bounds every value, so the narrowing conversions below cannot fail.
        let u16_of = |v: u64| u16::try_from(v).unwrap_or_default();
        let kind = match fields.first().copied().unwrap_or_default() {
            "squat" => HostileKind::Squat,
            "pages" => HostileKind::Pages,
            "spoof" | "spoof-named" => HostileKind::Spoof,
            other => return Err(error(format!("unknown kind `{other}`"))),
        };
        let (expected, period) = match kind {
            HostileKind::Squat => (4..=5, number(4, "seconds", 86_400)?.unwrap_or(540) * 1000),
            HostileKind::Pages => (4..=4, 0),
            HostileKind::Spoof => (1..=3, number(1, "milliseconds", 3_600_000)?.unwrap_or(250)),
        };
        if !expected.contains(&fields.len()) {
            return Err(error(format!("{} fields", fields.len())));
        }
        if period == 0 && kind != HostileKind::Pages {
            return Err(error("the period must be at least 1".into()));
        }
        let period = Duration::from_millis(period);
        if kind == HostileKind::Spoof {
            return Ok(HostileSpec {
                kind,
                manufacturer_code: number(2, "manufacturer code", 0xFFFF)?.map(u16_of),
                image_type: 0,
                file_version: 0,
                period,
                named: fields.first() == Some(&"spoof-named"),
            });
        }
        Ok(HostileSpec {
            kind,
            manufacturer_code: number(1, "manufacturer code", 0xFFFF)?.map(u16_of),
            image_type: number(2, "image type", 0xFFFF)?.map_or(0, u16_of),
            file_version: number(3, "file version", 0xFFFF_FFFF)?
                .map_or(0, |v| u32::try_from(v).unwrap_or_default()),
            period,
            named: false,
        })
    }
}

impl fmt::Display for HostileSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mfr = self.manufacturer_code.unwrap_or_default();
        match self.kind {
            HostileKind::Squat => write!(
                f,
                "squat:0x{mfr:04X}:0x{:04X}:0x{:08X}:{}",
                self.image_type,
                self.file_version,
                self.period.as_secs()
            ),
            HostileKind::Pages => write!(
                f,
                "pages:0x{mfr:04X}:0x{:04X}:0x{:08X}",
                self.image_type, self.file_version
            ),
            HostileKind::Spoof => {
                let named = if self.named { "-named" } else { "" };
                write!(f, "spoof{named}:{}", self.period.as_millis())?;
                match self.manufacturer_code {
                    Some(mfr) => write!(f, ":0x{mfr:04X}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What a hostile device has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostileCounters {
    /// Frames it sent.
    pub frames_sent: u64,
    /// Image data bytes it received.
    pub bytes_received: u64,
    /// Made-up addresses it used (spoof).
    pub addresses: u64,
}

/// A hostile client: see the module docs. Its verbs mirror [`super::device::SimDevice`]'s.
#[derive(Debug)]
pub struct HostileClient {
    spec: HostileSpec,
    next_at: Instant,
    /// The offset it asks for next (squat, pages).
    offset: u32,
    next_tsn: u8,
    rng: SplitMix64,
    outbox: VecDeque<Vec<u8>>,
    counters: HostileCounters,
    /// An unnamed spoofer leaves the address it sent from at this moment.
    leave_at: Option<Instant>,
}

impl HostileClient {
    /// A hostile client that starts `first_after` from `now`; `seed` drives its made-up
    /// addresses and claims.
    pub fn new(spec: HostileSpec, now: Instant, first_after: Duration, seed: u64) -> Self {
        HostileClient {
            spec,
            next_at: now + first_after,
            offset: 0,
            next_tsn: 0,
            rng: SplitMix64::new(seed),
            outbox: VecDeque::new(),
            counters: HostileCounters::default(),
            leave_at: None,
        }
    }

    /// What it is.
    pub fn spec(&self) -> &HostileSpec {
        &self.spec
    }

    /// What it has done so far.
    pub fn counters(&self) -> HostileCounters {
        self.counters
    }

    /// True for the kind that never answers anything (a made-up address cannot).
    pub fn is_silent(&self) -> bool {
        self.spec.kind == HostileKind::Spoof
    }

    /// A frame from the server: blocks move the offset on; nothing else matters to it.
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        let Ok(frame) = OtaFrame::decode(frame) else {
            return;
        };
        if frame.header.direction != Direction::SERVER_TO_CLIENT {
            return;
        }
        let OtaCommand::ImageBlockResponse(response) = frame.command else {
            return;
        };
        match (self.spec.kind, response) {
            (
                HostileKind::Squat | HostileKind::Pages,
                ImageBlockResponse::Success {
                    file_offset, data, ..
                },
            ) => {
                let len = u32::try_from(data.as_slice().len()).unwrap_or(0);
                self.counters.bytes_received += u64::from(len);
                self.offset = file_offset.saturating_add(len);
                if self.spec.kind == HostileKind::Pages {
                    self.next_at = now + PAGE_QUIET;
                }
            }
            (HostileKind::Pages, ImageBlockResponse::WaitForData { .. }) => {
                self.next_at = now + PAGER_MAX_WAIT;
            }
            (
                HostileKind::Pages,
                ImageBlockResponse::Abort | ImageBlockResponse::OtherStatus { .. },
            ) => {
                // Past the end (or refused): from the start again, soon.
                self.offset = 0;
                self.next_at = now + PAGE_QUIET;
            }
            _ => {}
        }
    }

    /// Sends what is due. For the spoofer, returns the made-up address it now uses.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<(Nwk, Ieee)> {
        let mut moved = None;
        if self.leave_at.is_some_and(|at| at <= now) {
            // Gone from the address it sent from, so nobody can name that one.
            self.leave_at = None;
            moved = Some(self.made_up_address());
        }
        if now < self.next_at {
            return moved;
        }
        match self.spec.kind {
            HostileKind::Squat => {
                self.query(CLAIMED_MANUFACTURER, self.spec.image_type);
                self.block_request();
                self.next_at = now + self.spec.period;
                None
            }
            HostileKind::Pages => {
                self.page_request();
                // No answer at all: ask again after the quiet time.
                self.next_at = now + PAGE_QUIET;
                None
            }
            HostileKind::Spoof => {
                let address = self.made_up_address();
                let random = self.rng.next_u64();
                let (manufacturer, image_type) = match self.spec.manufacturer_code {
                    Some(fixed) => (fixed, (random >> 32) as u16 % BAIT_IMAGE_TYPES),
                    None => ((random >> 16) as u16, (random >> 32) as u16),
                };
                self.query(manufacturer, image_type);
                self.counters.addresses += 1;
                self.next_at = now + self.spec.period;
                if !self.spec.named {
                    self.leave_at = Some(now + SPOOF_STAY);
                }
                Some(address)
            }
        }
    }

    /// The next ZCL frame for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// When [`HostileClient::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Instant {
        self.leave_at
            .map_or(self.next_at, |at| at.min(self.next_at))
    }

    /// A new network address above the range the simulator gives its devices (below the
    /// broadcasts), with a random IEEE address.
    fn made_up_address(&mut self) -> (Nwk, Ieee) {
        let random = self.rng.next_u64();
        (
            Nwk(0x8000 | (random as u16 % 0x7FF0)),
            Ieee(self.rng.next_u64()),
        )
    }

    fn query(&mut self, manufacturer_code: u16, image_type: u16) {
        self.send(OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code,
            image_type,
            current_file_version: 0,
            hardware_version: None,
        }));
    }

    /// An Image Block Request for the named image at the current offset.
    fn ask(&self, maximum_data_size: u8) -> ImageBlockRequest {
        ImageBlockRequest {
            field_control: 0,
            manufacturer_code: self.spec.manufacturer_code.unwrap_or_default(),
            image_type: self.spec.image_type,
            file_version: self.spec.file_version,
            file_offset: self.offset,
            maximum_data_size,
            request_node_address: None,
            minimum_block_period: None,
        }
    }

    fn block_request(&mut self) {
        let block = self.ask(SQUAT_BLOCK_SIZE);
        self.send(OtaCommand::ImageBlockRequest(block));
    }

    fn page_request(&mut self) {
        let page = page_from(self.ask(PAGE_BLOCK_SIZE), PAGE_SIZE, 0);
        self.send(OtaCommand::ImagePageRequest(page));
    }

    fn send(&mut self, command: OtaCommand) {
        self.outbox
            .push_back(encode_client_request(self.next_tsn, command));
        self.next_tsn = self.next_tsn.wrapping_add(1);
        self.counters.frames_sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcl::ota::BlockData;
    use crate::zcl::{CommandId, FrameType, ZclHeader};

    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn origin() -> Instant {
        Instant::now()
    }

    fn decode(bytes: &[u8]) -> OtaCommand {
        OtaFrame::decode_request(bytes).unwrap().command
    }

    fn block(offset: u32, len: usize) -> Vec<u8> {
        let header = ZclHeader {
            frame_type: FrameType::CLUSTER_SPECIFIC,
            manufacturer_code: None,
            direction: Direction::SERVER_TO_CLIENT,
            disable_default_response: true,
            reserved_bits: 0,
            tsn: 0,
            command_id: CommandId(0),
        };
        let mut bytes = Vec::new();
        OtaFrame::new(
            header,
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                manufacturer_code: 0x1189,
                image_type: 1,
                file_version: 2,
                file_offset: offset,
                data: BlockData::new(&vec![0xAA; len]).unwrap(),
            }),
        )
        .encode(&mut bytes);
        bytes
    }

    #[test]
    fn specs_parse_with_defaults_and_name_bad_fields() {
        let squat: HostileSpec = "squat:0x1189:1:2".parse().unwrap();
        assert_eq!(squat.kind, HostileKind::Squat);
        assert_eq!(squat.period, Duration::from_secs(540));
        assert_eq!(
            (
                squat.manufacturer_code,
                squat.image_type,
                squat.file_version
            ),
            (Some(0x1189), 1, 2)
        );
        assert_eq!(
            "squat:0x1189:1:2:60".parse::<HostileSpec>().unwrap().period,
            Duration::from_secs(60)
        );
        let pages: HostileSpec = "pages:0x1189:0x0001:2".parse().unwrap();
        assert_eq!(pages.to_string().parse::<HostileSpec>().unwrap(), pages);
        assert_eq!(squat.to_string().parse::<HostileSpec>().unwrap(), squat);
        let spoof: HostileSpec = "spoof".parse().unwrap();
        assert_eq!(
            (spoof.period, spoof.manufacturer_code),
            (Duration::from_millis(250), None)
        );
        assert!(!spoof.named);
        let bait: HostileSpec = "spoof-named:100:0x7777".parse().unwrap();
        assert_eq!((bait.manufacturer_code, bait.named), (Some(0x7777), true));
        assert_eq!(bait.to_string().parse::<HostileSpec>().unwrap(), bait);
        let unnamed: HostileSpec = "spoof:100".parse().unwrap();
        assert_eq!(unnamed.to_string().parse::<HostileSpec>().unwrap(), unnamed);
        for (bad, needle) in [
            ("flood", "unknown kind"),
            ("squat:1:2", "3 fields"),
            ("pages:1:2:3:4", "5 fields"),
            ("squat:1:2:3:0", "at least 1"),
            ("spoof:0", "at least 1"),
            ("spoof:1:0x10000", "manufacturer code"),
            ("squat:1:zz:3", "image type"),
        ] {
            let err = bad.parse::<HostileSpec>().unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }

    /// The squatter claims Bosch in its query and asks for one block per period, from where
    /// the last block ended.
    #[test]
    fn the_squatter_claims_bosch_and_asks_once_a_period() {
        let t0 = origin();
        let spec: HostileSpec = "squat:0x1189:1:2:540".parse().unwrap();
        let mut squatter = HostileClient::new(spec, t0, Duration::from_secs(1), 1);
        assert_eq!(squatter.handle_timeout(t0), None);
        assert!(squatter.poll_transmit().is_none());
        squatter.handle_timeout(t0 + Duration::from_secs(1));
        let OtaCommand::QueryNextImageRequest(query) = decode(&squatter.poll_transmit().unwrap())
        else {
            panic!("no query")
        };
        assert_eq!(query.manufacturer_code, CLAIMED_MANUFACTURER);
        let OtaCommand::ImageBlockRequest(first) = decode(&squatter.poll_transmit().unwrap())
        else {
            panic!("no block request")
        };
        assert_eq!((first.manufacturer_code, first.file_offset), (0x1189, 0));
        squatter.handle_frame(&block(0, 50), t0 + Duration::from_secs(2));
        assert_eq!(squatter.poll_timeout(), t0 + Duration::from_secs(541));
        squatter.handle_timeout(t0 + Duration::from_secs(541));
        let _query = squatter.poll_transmit().unwrap();
        let OtaCommand::ImageBlockRequest(second) = decode(&squatter.poll_transmit().unwrap())
        else {
            panic!("no block request")
        };
        assert_eq!(second.file_offset, 50);
        assert_eq!(squatter.counters().bytes_received, 50);
    }

    /// The pager asks for 65,535-byte pages at 0 spacing, the next once a page goes quiet, and
    /// from the start again when refused (past the end).
    #[test]
    fn the_pager_asks_page_after_page_and_starts_over() {
        let t0 = origin();
        let spec: HostileSpec = "pages:0x1189:1:2".parse().unwrap();
        let mut pager = HostileClient::new(spec, t0, Duration::ZERO, 1);
        pager.handle_timeout(t0);
        let OtaCommand::ImagePageRequest(page) = decode(&pager.poll_transmit().unwrap()) else {
            panic!("no page request")
        };
        assert_eq!(
            (page.page_size, page.response_spacing, page.file_offset),
            (PAGE_SIZE, 0, 0)
        );
        pager.handle_frame(&block(0, 64), t0);
        pager.handle_frame(&block(64, 64), t0 + Duration::from_millis(10));
        assert_eq!(
            pager.poll_timeout(),
            t0 + Duration::from_millis(10) + PAGE_QUIET
        );
        pager.handle_timeout(pager.poll_timeout());
        let OtaCommand::ImagePageRequest(next) = decode(&pager.poll_transmit().unwrap()) else {
            panic!("no page request")
        };
        assert_eq!(next.file_offset, 128);
    }

    /// Every spoofed query comes from a new address with its own claim, and the spoofer
    /// answers nothing.
    #[test]
    fn the_spoofer_changes_address_every_period() {
        let t0 = origin();
        let spec: HostileSpec = "spoof-named:250:0x7777".parse().unwrap();
        let mut spoofer = HostileClient::new(spec, t0, Duration::ZERO, 7);
        assert!(spoofer.is_silent());
        let mut addresses = std::collections::HashSet::new();
        let mut types = std::collections::HashSet::new();
        for i in 0..20u32 {
            let at = t0 + Duration::from_millis(250) * i;
            let (nwk, ieee) = spoofer.handle_timeout(at).unwrap();
            assert!(nwk.0 >= 0x8000 && nwk.0 < 0xFFF8, "{nwk}");
            addresses.insert((nwk, ieee));
            let OtaCommand::QueryNextImageRequest(query) =
                decode(&spoofer.poll_transmit().unwrap())
            else {
                panic!("no query")
            };
            assert_eq!(query.manufacturer_code, 0x7777);
            types.insert(query.image_type);
            assert_eq!(
                spoofer.handle_timeout(at + Duration::from_millis(100)),
                None
            );
        }
        assert_eq!(addresses.len(), 20);
        assert!(
            types.len() > 4 && types.iter().all(|t| *t < BAIT_IMAGE_TYPES),
            "{types:?}"
        );
        assert_eq!(spoofer.counters().addresses, 20);
    }

    /// An unnamed spoofer leaves each address right after sending from it (so the NCP, asked
    /// later, cannot name the sender), without sending anything from the next one.
    #[test]
    fn the_unnamed_spoofer_leaves_the_address_it_sent_from() {
        let t0 = origin();
        let spec: HostileSpec = "spoof:250".parse().unwrap();
        let mut spoofer = HostileClient::new(spec, t0, Duration::ZERO, 9);
        let (sent_from, _) = spoofer.handle_timeout(t0).unwrap();
        assert!(spoofer.poll_transmit().is_some());
        assert_eq!(spoofer.poll_timeout(), t0 + SPOOF_STAY);
        let (parked, _) = spoofer.handle_timeout(t0 + SPOOF_STAY).unwrap();
        assert_ne!(parked, sent_from);
        assert!(spoofer.poll_transmit().is_none());
        assert_eq!(spoofer.poll_timeout(), t0 + Duration::from_millis(250));
    }
}
