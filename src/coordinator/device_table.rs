//! The NWK ↔ IEEE device table, kept from joins and device announces (ZDO Device_annce,
//! Zigbee spec §2.4.3.1.11).
//!
//! A device keeps its IEEE address for life but may get a new NWK address after a rejoin or an
//! address conflict, and a freed NWK address may be handed to another device. [`DeviceTable::learn`]
//! keeps the two maps consistent: one IEEE per NWK and one NWK per IEEE, the newest fact winning.
//!
//! The table can be saved as text (one `NWK IEEE` pair of hex numbers per line) so a restarted
//! daemon still knows devices that will not announce again.

use std::collections::HashMap;
use std::fmt;

use super::{Ieee, Nwk};

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
    /// Records that `ieee` uses `nwk` now.
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
