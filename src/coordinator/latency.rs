//! The driver's own answer latency: a fixed-size log-linear histogram of microseconds
//! (docs/PERFORMANCE.md, "Latency from inside").
//!
//! The coordinator driver stamps the moment it read the bytes of a request from the port; the
//! stamp travels with the message through the daemon to the unicast that answers it. Two spans
//! are recorded: until the OTA server had the answer ready (the host's own work: ASH, EZSP, the
//! hand-over to the daemon, ZCL and the server), and until the `write` that carries its
//! `sendUnicast` frame returned (serial-in to serial-out, which adds any wait for the driver's
//! queue, the EZSP pending and in-flight limits and the ASH window towards the NCP).
//!
//! Values below 16 us get one bucket each; above, every power of two is split into 16 equal
//! sub-buckets, so a bucket is at most 1/16 (6.25 %) of its lower bound wide (4 us wide between
//! 64 and 128 us). The top bucket starts at 31 · 2^21 us (~65 s) and holds everything longer. A
//! quantile is reported as the upper bound of the bucket holding it, never above the exact
//! maximum: it errs high, never low. Memory is fixed (368 counters, 2.9 KiB); recording never allocates.
//!
//! ```
//! use std::time::Duration;
//! use zigbee_otad::coordinator::latency::LatencyHistogram;
//! let mut histogram = LatencyHistogram::new();
//! for us in [40, 60, 80, 100, 1_000] {
//!     histogram.record(Duration::from_micros(us));
//! }
//! let summary = histogram.summary();
//! assert_eq!((summary.count, summary.max_us), (5, 1_000));
//! assert_eq!(summary.p50_us, 83); // 80 us, reported as its bucket's upper bound
//! assert!(summary.p50_us - 80 <= 80 / 16);
//! assert_eq!(summary.p99_us, 1_000);
//! ```

use std::time::Duration;

/// Sub-buckets per power of two (and the number of exact buckets below 16 us).
const SUB_BUCKETS: u64 = 16;
/// log2 of [`SUB_BUCKETS`].
const SUB_BUCKET_BITS: u32 = 4;
/// Powers of two above the exact range: 2^4 .. 2^26 us; the last bucket is open-ended.
const OCTAVES: u64 = 22;
/// Every counter.
const BUCKETS: usize = (SUB_BUCKETS + OCTAVES * SUB_BUCKETS) as usize;

/// Count, median, 99th percentile and maximum of one histogram, in microseconds (in JSON:
/// `count`, `p50`, `p99`, `max`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Median (upper bound of its bucket), 0 without samples.
    #[serde(rename = "p50")]
    pub p50_us: u64,
    /// 99th percentile (upper bound of its bucket), 0 without samples.
    #[serde(rename = "p99")]
    pub p99_us: u64,
    /// The largest sample, exact.
    #[serde(rename = "max")]
    pub max_us: u64,
}

/// The driver's answer latency, both spans (the status snapshot's `latency_us` object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnswerLatency {
    /// Request read from the port -> the OTA server's answer ready (the host's own work).
    pub host: LatencySummary,
    /// Request read from the port -> the `write` carrying the answer's `sendUnicast` returned
    /// (adds any wait for the ASH window or EZSP flow control towards the NCP).
    pub serial_in_to_out: LatencySummary,
}

/// The two histograms behind [`AnswerLatency`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerLatencyHistograms {
    /// See [`AnswerLatency::host`].
    pub host: LatencyHistogram,
    /// See [`AnswerLatency::serial_in_to_out`].
    pub serial_in_to_out: LatencyHistogram,
}

impl AnswerLatencyHistograms {
    /// Both summaries.
    pub fn summary(&self) -> AnswerLatency {
        AnswerLatency {
            host: self.host.summary(),
            serial_in_to_out: self.serial_in_to_out.summary(),
        }
    }
}

/// A log-linear histogram of durations in whole microseconds. See the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    count: u64,
    max_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("summary", &self.summary())
            .finish()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            count: 0,
            max_us: 0,
        }
    }

    /// Records one duration (rounded down to whole microseconds).
    pub fn record(&mut self, elapsed: Duration) {
        self.record_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in microseconds.
    pub fn record_us(&mut self, us: u64) {
        if let Some(counter) = self.counts.get_mut(bucket_of(us)) {
            *counter = counter.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.max_us = self.max_us.max(us);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample, exact (0 when empty).
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The `quantile` (0.0..=1.0) as the upper bound of the bucket holding the sample of rank
    /// `ceil(quantile · count)` (at least 1), capped at the exact maximum; `None` when empty.
    pub fn quantile_us(&self, quantile: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let wanted = (quantile.clamp(0.0, 1.0) * self.count as f64).ceil() as u64;
        let rank = wanted.clamp(1, self.count);
        let mut seen = 0u64;
        for (index, counter) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*counter);
            if seen >= rank {
                return Some(bucket_upper_bound(index).min(self.max_us));
            }
        }
        Some(self.max_us)
    }

    /// Count, p50, p99 and max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            p50_us: self.quantile_us(0.50).unwrap_or(0),
            p99_us: self.quantile_us(0.99).unwrap_or(0),
            max_us: self.max_us,
        }
    }
}

/// The bucket holding `us`.
fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS {
        return us as usize;
    }
    let octave = u64::from(us.ilog2() - SUB_BUCKET_BITS);
    if octave >= OCTAVES {
        return BUCKETS - 1;
    }
    let sub = (us >> octave) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + octave * SUB_BUCKETS + sub) as usize
}

/// The largest value that falls into bucket `index` (`u64::MAX` for the open top bucket).
fn bucket_upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    if index >= BUCKETS as u64 - 1 {
        return u64::MAX;
    }
    let octave = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (index - SUB_BUCKETS) % SUB_BUCKETS;
    let lower = (SUB_BUCKETS + sub) << octave;
    lower + (1u64 << octave) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first value of the open-ended top bucket.
    const TOP_BUCKET_START: u64 = (2 * SUB_BUCKETS - 1) << (OCTAVES - 1);

    /// The exact sample of rank ceil(q·n) (at least 1) in a sorted list.
    fn exact_quantile(sorted: &[u64], quantile: f64) -> u64 {
        let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn small_values_are_exact() {
        for us in 0..SUB_BUCKETS {
            assert_eq!(bucket_upper_bound(bucket_of(us)), us);
        }
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        // Every bucket's upper bound + 1 is the next bucket's first value.
        for index in 0..BUCKETS - 1 {
            let upper = bucket_upper_bound(index);
            assert_eq!(bucket_of(upper), index, "upper bound of {index}");
            assert_eq!(bucket_of(upper + 1), index + 1, "after bucket {index}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(TOP_BUCKET_START), BUCKETS - 1);
        assert_eq!(bucket_of(TOP_BUCKET_START - 1), BUCKETS - 2);
        // Around 100 us the buckets are 4 us wide.
        assert_eq!(bucket_upper_bound(bucket_of(100)), 103);
        assert_eq!(bucket_upper_bound(bucket_of(96)), 99);
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.quantile_us(0.5), None);
        assert_eq!(histogram.summary(), LatencySummary::default());
    }

    #[test]
    fn tail_sample_sets_p99_and_max() {
        let mut histogram = LatencyHistogram::new();
        for _ in 0..99 {
            histogram.record(Duration::from_micros(50));
        }
        histogram.record(Duration::from_secs(20));
        let summary = histogram.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_us, 51); // the 50..=51 bucket
        assert_eq!(summary.p99_us, 51); // rank 99 is still a 50 us sample
        assert_eq!(summary.max_us, 20_000_000);
        assert_eq!(histogram.quantile_us(1.0), Some(20_000_000));
    }

    proptest! {
        #[test]
        fn quantiles_bound_the_sorted_reference(
            samples in prop::collection::vec(
                prop_oneof![0u64..200, 0u64..20_000, 0u64..100_000_000],
                1..400,
            ),
            quantile in 0.0f64..=1.0,
        ) {
            let mut histogram = LatencyHistogram::new();
            for us in &samples {
                histogram.record_us(*us);
            }
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let exact = exact_quantile(&sorted, quantile);
            let reported = histogram.quantile_us(quantile).unwrap();
            // Never below the true value, and above it by at most one bucket width (1/16)
            // except in the open top bucket, where the exact maximum caps it.
            prop_assert!(reported >= exact, "reported {reported} < exact {exact}");
            if exact < TOP_BUCKET_START {
                prop_assert!(reported <= exact + exact / 16, "reported {reported} for {exact}");
            }
            prop_assert!(reported <= *sorted.last().unwrap());
            prop_assert_eq!(histogram.count(), samples.len() as u64);
            prop_assert_eq!(histogram.max_us(), *sorted.last().unwrap());
        }
    }
}
