//! A deterministic lossy serial line for tests and the simulated coordinator: put one
//! [`FaultyLine`] in each direction between two [`Link`](super::Link)s and it drops, duplicates,
//! reorders and corrupts the chunks written to it, driven by a seeded generator (no clock, no
//! OS randomness), so every run with the same seed is the same.
//!
//! ```
//! use zigbee_otad::ash::fault::{FaultConfig, FaultyLine};
//!
//! let mut line = FaultyLine::new(FaultConfig::default(), 7);
//! line.write(vec![0xC0, 0x38, 0xBC, 0x7E]);
//! assert_eq!(line.read(), Some(vec![0xC0, 0x38, 0xBC, 0x7E]));
//! assert_eq!(line.read(), None);
//! ```

use std::collections::VecDeque;

/// How often each fault happens, in chunks per thousand written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// The chunk vanishes.
    pub drop_per_mille: u16,
    /// The chunk arrives twice.
    pub duplicate_per_mille: u16,
    /// The chunk is held back and arrives after the next one.
    pub reorder_per_mille: u16,
    /// One bit of one byte of the chunk is flipped.
    pub corrupt_per_mille: u16,
    /// A SUBSTITUTE byte (a UART framing error) replaces one byte of the chunk.
    pub substitute_per_mille: u16,
}

/// Faults applied so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Chunks dropped.
    pub dropped: u64,
    /// Chunks duplicated.
    pub duplicated: u64,
    /// Chunks reordered.
    pub reordered: u64,
    /// Chunks with a flipped bit.
    pub corrupted: u64,
    /// Chunks with a byte replaced by SUBSTITUTE.
    pub substituted: u64,
}

/// One direction of a simulated serial line with seeded faults.
#[derive(Debug, Clone)]
pub struct FaultyLine {
    config: FaultConfig,
    rng: SplitMix64,
    held_back: Option<Vec<u8>>,
    ready: VecDeque<Vec<u8>>,
    stats: FaultStats,
}

impl FaultyLine {
    /// A line with the given fault rates and generator seed.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        FaultyLine {
            config,
            rng: SplitMix64(seed),
            held_back: None,
            ready: VecDeque::new(),
            stats: FaultStats::default(),
        }
    }

    /// Changes the fault rates (for example to heal the line at the end of a test).
    pub fn set_config(&mut self, config: FaultConfig) {
        self.config = config;
    }

    /// Faults applied so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// Writes one chunk (typically one `poll_transmit` result) into the line.
    pub fn write(&mut self, mut chunk: Vec<u8>) {
        if self.chance(self.config.drop_per_mille) {
            self.stats.dropped += 1;
            return;
        }
        if !chunk.is_empty() && self.chance(self.config.corrupt_per_mille) {
            let index = self.below(chunk.len());
            let bit = self.below(8);
            if let Some(byte) = chunk.get_mut(index) {
                *byte ^= 1 << bit;
            }
            self.stats.corrupted += 1;
        }
        if !chunk.is_empty() && self.chance(self.config.substitute_per_mille) {
            let index = self.below(chunk.len());
            if let Some(byte) = chunk.get_mut(index) {
                *byte = super::frame::SUBSTITUTE;
            }
            self.stats.substituted += 1;
        }
        let duplicate = self.chance(self.config.duplicate_per_mille);
        if duplicate {
            self.stats.duplicated += 1;
        }
        if self.held_back.is_none() && self.chance(self.config.reorder_per_mille) {
            self.stats.reordered += 1;
            if duplicate {
                self.ready.push_back(chunk.clone());
            }
            self.held_back = Some(chunk);
            return;
        }
        if duplicate {
            self.ready.push_back(chunk.clone());
        }
        self.ready.push_back(chunk);
        if let Some(held) = self.held_back.take() {
            self.ready.push_back(held);
        }
    }

    /// The next chunk that comes out of the far end.
    pub fn read(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Lets a held-back chunk out even though nothing followed it.
    pub fn release_held_back(&mut self) {
        if let Some(held) = self.held_back.take() {
            self.ready.push_back(held);
        }
    }

    /// True when nothing is waiting to come out, held back or not.
    pub fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.held_back.is_none()
    }

    fn chance(&mut self, per_mille: u16) -> bool {
        per_mille > 0 && self.below(1000) < usize::from(per_mille)
    }

    fn below(&mut self, bound: usize) -> usize {
        // Modulo bias is irrelevant for fault injection.
        (self.rng.next() % bound.max(1) as u64) as usize
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed deterministic generator.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            drop_per_mille: 200,
            duplicate_per_mille: 200,
            reorder_per_mille: 200,
            corrupt_per_mille: 200,
            substitute_per_mille: 100,
        };
        let run = |seed| {
            let mut line = FaultyLine::new(config, seed);
            let mut out = Vec::new();
            for i in 0..200u8 {
                line.write(vec![i, i, i, 0x7E]);
                while let Some(chunk) = line.read() {
                    out.push(chunk);
                }
            }
            (out, line.stats())
        };
        let (first, stats) = run(1);
        assert_eq!(run(1), (first.clone(), stats));
        assert_ne!(run(2).0, first);
        assert!(stats.dropped > 10 && stats.duplicated > 10 && stats.reordered > 10);
        assert!(stats.corrupted > 10 && stats.substituted > 5);
    }

    #[test]
    fn reorder_swaps_with_next_chunk() {
        let config = FaultConfig {
            reorder_per_mille: 1000,
            ..FaultConfig::default()
        };
        let mut line = FaultyLine::new(config, 3);
        line.write(vec![1]);
        assert_eq!(line.read(), None);
        line.write(vec![2]);
        assert_eq!(line.read(), Some(vec![2]));
        assert_eq!(line.read(), Some(vec![1]));
        line.write(vec![3]);
        line.release_held_back();
        assert_eq!(line.read(), Some(vec![3]));
        assert!(line.is_idle());
    }
}
