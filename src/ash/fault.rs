//! Fault injection for serial lines, the one kind in this crate: a seeded generator
//! ([`SplitMix64`]: no clock, no OS randomness, so every run with the same seed is the same),
//! fault rates as probabilities per frame or chunk (0.0..=1.0, the unit `simulate --loss` and
//! [`crate::sim::faults::Faults`] use too), one way to damage a frame ([`SplitMix64::flip_bit`]),
//! and [`FaultyLine`]: put one in each direction between two [`Link`](super::Link)s and it
//! drops, duplicates, reorders and corrupts the chunks written to it.
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

/// How often each fault happens: the probability per chunk written (0.0..=1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultConfig {
    /// The chunk vanishes.
    pub drop: f64,
    /// The chunk arrives twice.
    pub duplicate: f64,
    /// The chunk is held back and arrives after the next one.
    pub reorder: f64,
    /// One bit of one byte of the chunk is flipped.
    pub corrupt: f64,
    /// A SUBSTITUTE byte (a UART framing error) replaces one byte of the chunk.
    pub substitute: f64,
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
            rng: SplitMix64::new(seed),
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
        if self.rng.chance(self.config.drop) {
            self.stats.dropped += 1;
            return;
        }
        if !chunk.is_empty() && self.rng.chance(self.config.corrupt) {
            self.rng.flip_bit(&mut chunk);
            self.stats.corrupted += 1;
        }
        if !chunk.is_empty() && self.rng.chance(self.config.substitute) {
            let index = self.rng.below(chunk.len());
            if let Some(byte) = chunk.get_mut(index) {
                *byte = super::frame::SUBSTITUTE;
            }
            self.stats.substituted += 1;
        }
        let duplicate = self.rng.chance(self.config.duplicate);
        if duplicate {
            self.stats.duplicated += 1;
        }
        if self.held_back.is_none() && self.rng.chance(self.config.reorder) {
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
}

/// SplitMix64 (Steele, Lea, Flood 2014): the crate's one seeded generator, tiny, fast and well
/// mixed; good enough to decide which frame to drop (modulo bias is irrelevant here).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits as a fraction in [0, 1).
        let fraction = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        fraction < p
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % u64::try_from(bound).unwrap_or(u64::MAX)).unwrap_or(0)
    }

    /// Damages `bytes` the one way this crate does: one random bit of one random byte flips
    /// (nothing happens to an empty slice). Pass the part a fault may touch (for example the
    /// frame without its final flag).
    pub fn flip_bit(&mut self, bytes: &mut [u8]) {
        if bytes.is_empty() {
            return;
        }
        let index = self.below(bytes.len());
        let bit = 1u8 << self.below(8);
        if let Some(byte) = bytes.get_mut(index) {
            *byte ^= bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            drop: 0.2,
            duplicate: 0.2,
            reorder: 0.2,
            corrupt: 0.2,
            substitute: 0.1,
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
    fn chance_tracks_the_probability() {
        let mut rng = SplitMix64::new(1);
        let hits = (0..100_000).filter(|_| rng.chance(0.05)).count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }

    #[test]
    fn below_stays_in_range_and_flip_bit_flips_one_bit() {
        let mut rng = SplitMix64::new(2);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
        for _ in 0..100 {
            let mut bytes = [0u8; 5];
            rng.flip_bit(&mut bytes);
            assert_eq!(bytes.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
        }
        rng.flip_bit(&mut []);
    }

    #[test]
    fn reorder_swaps_with_next_chunk() {
        let config = FaultConfig {
            reorder: 1.0,
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
