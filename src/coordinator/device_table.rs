//! The NWK ↔ IEEE device table, kept from joins and device announces (ZDO Device_annce,
//! Zigbee spec §2.4.3.1.11).
//!
//! A device keeps its IEEE address for life but may get a new NWK address after a rejoin or an
//! address conflict, and a freed NWK address may be handed to another device. [`DeviceTable::learn`]
//! keeps the two maps consistent: one IEEE per NWK and one NWK per IEEE, the newest fact winning.
//!
//! The table can be saved as text (one `NWK IEEE` pair of hex numbers per line) so a restarted
//! daemon still knows devices that will not announce again.
//!
//! Any device holding the network key can send an announce naming any address pair, so an
//! announce is a claim, judged by [`DeviceTable::judge_announce`]: it must come from the
//! address it announces, and it may not move a known device (or take a known device's
//! address) unless the trust centre saw that device join or rejoin there ([`JoinWitness`]).
//! The table is bounded ([`MAX_DEVICES`]): new devices beyond it are not learned.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use super::{Ieee, Nwk};

/// The most devices the table holds (a Zigbee network rarely has more than a few hundred).
pub const MAX_DEVICES: usize = 2048;

/// How long a join seen by the trust centre vouches for the announce that follows it.
pub const JOIN_VOUCHES_FOR: Duration = Duration::from_secs(120);

/// Why an announce (or an address pair a message claims) was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceRefused {
    /// The announced network address is not the sender's.
    NotTheSender,
    /// The sender's IEEE address (as the NCP reports it) is not the announced one.
    OtherIeee,
    /// The pair would move a known device, or take a known device's address, without a join
    /// seen by the trust centre.
    Unvouched,
    /// The table is full and the device is new.
    TableFull,
}

impl fmt::Display for AnnounceRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnnounceRefused::NotTheSender => "the announced address is not the sender's",
            AnnounceRefused::OtherIeee => "the sender's IEEE address is not the announced one",
            AnnounceRefused::Unvouched => {
                "it would rebind a known device without a join seen by the trust centre"
            }
            AnnounceRefused::TableFull => "the device table is full",
        })
    }
}

/// Joins and rejoins the trust centre reported (EZSP `trustCenterJoinHandler`,
/// `childJoinHandler`), remembered for [`JOIN_VOUCHES_FOR`] so that the announce which follows
/// a rejoin may move the device to its new address. Bounded; sans-IO (`now` in).
#[derive(Debug, Clone, Default)]
pub struct JoinWitness {
    seen: VecDeque<(Nwk, Ieee, Instant)>,
}

impl JoinWitness {
    const CAPACITY: usize = 64;

    /// The trust centre saw `ieee` join or rejoin as `nwk`.
    pub fn saw_join(&mut self, nwk: Nwk, ieee: Ieee, now: Instant) {
        self.seen.retain(|(n, i, _)| (*n, *i) != (nwk, ieee));
        self.seen.push_back((nwk, ieee, now));
        while self.seen.len() > Self::CAPACITY {
            self.seen.pop_front();
        }
    }

    /// Whether a join of exactly this pair was seen within [`JOIN_VOUCHES_FOR`].
    pub fn vouches(&self, nwk: Nwk, ieee: Ieee, now: Instant) -> bool {
        self.seen.iter().any(|(n, i, at)| {
            (*n, *i) == (nwk, ieee) && now.saturating_duration_since(*at) <= JOIN_VOUCHES_FOR
        })
    }
}

/// What [`DeviceTable::learn`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// The pair was already known.
    Unchanged,
    /// The IEEE address was new.
    NewDevice,
    /// A known device now uses a new NWK address.
    NewAddress {
        /// The address it used before.
        previous: Nwk,
    },
}

/// NWK ↔ IEEE addresses of the devices on the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceTable {
    by_nwk: HashMap<Nwk, Ieee>,
    by_ieee: HashMap<Ieee, Nwk>,
}

/// A saved device table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device table line {line}: {reason}")]
pub struct DeviceTableError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub reason: String,
}

impl DeviceTable {
    /// Records that `ieee` uses `nwk` now (a fact the trust centre reported, or a claim
    /// [`DeviceTable::judge_announce`] accepted).
    pub fn learn(&mut self, nwk: Nwk, ieee: Ieee) -> Learned {
        if self.by_nwk.get(&nwk) == Some(&ieee) {
            return Learned::Unchanged;
        }
        // The NWK address may have belonged to another device that has since left or moved.
        if let Some(other) = self.by_nwk.remove(&nwk) {
            self.by_ieee.remove(&other);
        }
        let learned = match self.by_ieee.insert(ieee, nwk) {
            Some(previous) => {
                self.by_nwk.remove(&previous);
                Learned::NewAddress { previous }
            }
            None => Learned::NewDevice,
        };
        self.by_nwk.insert(nwk, ieee);
        learned
    }

    /// Judges a ZDO Device_annce (or the IEEE address an incoming message claims) before it is
    /// learned: `announced` is the claimed pair, `sender` the network address the frame came
    /// from, `sender_ieee` the IEEE address the NCP reports for it (EZSP v14+), `vouched`
    /// whether the trust centre saw this pair join ([`JoinWitness::vouches`]).
    pub fn judge_announce(
        &self,
        announced: (Nwk, Ieee),
        sender: Nwk,
        sender_ieee: Option<Ieee>,
        vouched: bool,
    ) -> Result<(), AnnounceRefused> {
        let (nwk, ieee) = announced;
        if nwk != sender {
            return Err(AnnounceRefused::NotTheSender);
        }
        if sender_ieee.is_some_and(|s| s != ieee) {
            return Err(AnnounceRefused::OtherIeee);
        }
        let moves_device = self.nwk(ieee).is_some_and(|known| known != nwk);
        let takes_address = self.ieee(nwk).is_some_and(|known| known != ieee);
        if (moves_device || takes_address) && !vouched {
            return Err(AnnounceRefused::Unvouched);
        }
        if self.nwk(ieee).is_none() && !takes_address && self.len() >= MAX_DEVICES {
            return Err(AnnounceRefused::TableFull);
        }
        Ok(())
    }

    /// The IEEE address of the device using `nwk`.
    pub fn ieee(&self, nwk: Nwk) -> Option<Ieee> {
        self.by_nwk.get(&nwk).copied()
    }

    /// The NWK address `ieee` uses.
    pub fn nwk(&self, ieee: Ieee) -> Option<Nwk> {
        self.by_ieee.get(&ieee).copied()
    }

    /// Forgets a device (it left the network).
    pub fn forget(&mut self, ieee: Ieee) -> Option<Nwk> {
        let nwk = self.by_ieee.remove(&ieee)?;
        self.by_nwk.remove(&nwk);
        Some(nwk)
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.by_nwk.len()
    }

    /// True when no device is known.
    pub fn is_empty(&self) -> bool {
        self.by_nwk.is_empty()
    }

    /// Every `(nwk, ieee)` pair, ordered by NWK address.
    pub fn entries(&self) -> Vec<(Nwk, Ieee)> {
        let mut entries: Vec<(Nwk, Ieee)> = self.by_nwk.iter().map(|(n, i)| (*n, *i)).collect();
        entries.sort_by_key(|(nwk, _)| *nwk);
        entries
    }

    /// The table as text: one `NWK IEEE` line per device, hex, ordered by NWK address.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (nwk, ieee) in self.entries() {
            text.push_str(&format!("{:04X} {:016X}\n", nwk.0, ieee.0));
        }
        text
    }

    /// Reads what [`DeviceTable::to_text`] wrote; blank lines and `#` comments are skipped.
    pub fn from_text(text: &str) -> Result<Self, DeviceTableError> {
        let mut table = DeviceTable::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| DeviceTableError {
                line: index + 1,
                reason,
            };
            let mut fields = line.split_whitespace();
            let (Some(nwk), Some(ieee), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(error(format!("expected `NWK IEEE`, found `{line}`")));
            };
            let nwk = u16::from_str_radix(nwk, 16)
                .map_err(|e| error(format!("NWK address `{nwk}`: {e}")))?;
            let ieee = u64::from_str_radix(ieee, 16)
                .map_err(|e| error(format!("IEEE address `{ieee}`: {e}")))?;
            if table.len() >= MAX_DEVICES && table.nwk(Ieee(ieee)).is_none() {
                break;
            }
            table.learn(Nwk(nwk), Ieee(ieee));
        }
        Ok(table)
    }
}

impl fmt::Display for DeviceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (nwk, ieee) in self.entries() {
            writeln!(f, "{nwk} {:016X}", ieee.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_address_replaces_the_old_one() {
        let mut table = DeviceTable::default();
        assert_eq!(table.learn(Nwk(1), Ieee(0xA)), Learned::NewDevice);
        assert_eq!(table.learn(Nwk(1), Ieee(0xA)), Learned::Unchanged);
        assert_eq!(
            table.learn(Nwk(2), Ieee(0xA)),
            Learned::NewAddress { previous: Nwk(1) }
        );
        assert_eq!(table.ieee(Nwk(1)), None);
        assert_eq!(table.nwk(Ieee(0xA)), Some(Nwk(2)));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn reused_nwk_address_evicts_the_previous_owner() {
        let mut table = DeviceTable::default();
        table.learn(Nwk(7), Ieee(0xA));
        assert_eq!(table.learn(Nwk(7), Ieee(0xB)), Learned::NewDevice);
        assert_eq!(table.nwk(Ieee(0xA)), None);
        assert_eq!(table.ieee(Nwk(7)), Some(Ieee(0xB)));
        assert_eq!(table.forget(Ieee(0xB)), Some(Nwk(7)));
        assert!(table.is_empty());
    }

    #[test]
    fn bad_text_names_the_line() {
        let err = DeviceTable::from_text("# saved\n1234 0011223344556677\n12 zz\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("zz"), "{err}");
        let err = DeviceTable::from_text("1234\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // an arbitrary origin for the virtual clock
    fn an_announce_from_another_address_or_moving_a_known_device_is_refused() {
        let mut table = DeviceTable::default();
        table.learn(Nwk(0x1111), Ieee(0xA));
        table.learn(Nwk(0x2222), Ieee(0xB));
        // B claims to be A at its own address: A would move.
        assert_eq!(
            table.judge_announce((Nwk(0x2222), Ieee(0xA)), Nwk(0x2222), None, false),
            Err(AnnounceRefused::Unvouched)
        );
        // B announces A's address from its own.
        assert_eq!(
            table.judge_announce((Nwk(0x1111), Ieee(0xA)), Nwk(0x2222), None, false),
            Err(AnnounceRefused::NotTheSender)
        );
        // The NCP knows the sender as B.
        assert_eq!(
            table.judge_announce((Nwk(0x2222), Ieee(0xA)), Nwk(0x2222), Some(Ieee(0xB)), true),
            Err(AnnounceRefused::OtherIeee)
        );
        // A rejoin the trust centre saw may move A.
        let t0 = Instant::now();
        let mut witness = JoinWitness::default();
        witness.saw_join(Nwk(0x3333), Ieee(0xA), t0);
        let vouched = witness.vouches(Nwk(0x3333), Ieee(0xA), t0 + Duration::from_secs(5));
        assert!(vouched);
        assert!(!witness.vouches(Nwk(0x3333), Ieee(0xA), t0 + JOIN_VOUCHES_FOR * 2));
        assert_eq!(
            table.judge_announce((Nwk(0x3333), Ieee(0xA)), Nwk(0x3333), None, vouched),
            Ok(())
        );
        // A new device at a free address needs no voucher; the same one re-announcing neither.
        assert_eq!(
            table.judge_announce((Nwk(0x4444), Ieee(0xC)), Nwk(0x4444), None, false),
            Ok(())
        );
        assert_eq!(
            table.judge_announce(
                (Nwk(0x1111), Ieee(0xA)),
                Nwk(0x1111),
                Some(Ieee(0xA)),
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = DeviceTable::default();
        for i in 0..MAX_DEVICES {
            let n = u16::try_from(i).unwrap();
            table.learn(Nwk(n), Ieee(u64::from(n)));
        }
        assert_eq!(
            table.judge_announce((Nwk(0xFFF0), Ieee(0xFFFF_FFFF)), Nwk(0xFFF0), None, false),
            Err(AnnounceRefused::TableFull)
        );
        // A known device still may re-announce.
        assert_eq!(
            table.judge_announce((Nwk(5), Ieee(5)), Nwk(5), None, false),
            Ok(())
        );
    }

    proptest! {
        /// Whatever the sequence of facts, the two maps stay inverse to each other and the last
        /// fact about each device is the one kept.
        #[test]
        fn maps_stay_consistent(facts in proptest::collection::vec((0u16..8, 0u64..8), 0..40)) {
            let mut table = DeviceTable::default();
            for (nwk, ieee) in &facts {
                table.learn(Nwk(*nwk), Ieee(*ieee));
                prop_assert_eq!(table.ieee(Nwk(*nwk)), Some(Ieee(*ieee)));
                prop_assert_eq!(table.nwk(Ieee(*ieee)), Some(Nwk(*nwk)));
            }
            for (nwk, ieee) in table.entries() {
                prop_assert_eq!(table.nwk(ieee), Some(nwk));
            }
            prop_assert_eq!(table.by_nwk.len(), table.by_ieee.len());
            let reread = DeviceTable::from_text(&table.to_text()).unwrap();
            prop_assert_eq!(reread, table);
        }
    }
}
