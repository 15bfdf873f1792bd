//! A latency histogram with fixed memory and under 1% relative error, for millions of samples.
//!
//! Values below 128 have a bucket each; above, every power of two is split into 128 buckets, so a
//! bucket is never wider than 1/128 of its values. About 7,400 counters cover all of `u64`.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB_COUNT: u64 = 1 << SUB_BITS;
/// Buckets needed to index `u64::MAX`.
const BUCKETS: usize = (((64 - SUB_BITS) as usize) << SUB_BITS) + SUB_COUNT as usize;

/// Counts of values (nanoseconds, for the load tool) in log-linear buckets.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted, exactly.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The mean of the values counted.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0.5 for the median, 0.99 for p99): the top of the bucket holding
    /// the `ceil(q * count)`-th smallest value, never above the maximum. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_top(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_COUNT {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift) & (SUB_COUNT - 1);
    (((shift + 1) as usize) << SUB_BITS) | mantissa as usize
}

/// The largest value that falls in `bucket`.
fn bucket_top(bucket: usize) -> u64 {
    if bucket < SUB_COUNT as usize {
        return bucket as u64;
    }
    let shift = (bucket >> SUB_BITS) as u32 - 1;
    let mantissa = (bucket as u64 & (SUB_COUNT - 1)) | SUB_COUNT;
    let bottom = mantissa << shift;
    bottom + ((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_histogram_has_no_figures() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.max(), None);
        assert_eq!(h.mean(), None);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.mean(), Some(50.5));
    }

    #[test]
    fn percentiles_of_large_values_are_within_one_percent() {
        let mut h = Histogram::default();
        // 1 us to 10 ms in 1 us steps, shuffled order does not matter.
        for v in (1..=10_000u64).rev() {
            h.record(v * 1_000);
        }
        for (q, exact) in [(0.5, 5_000_000u64), (0.99, 9_900_000), (0.999, 9_990_000)] {
            let got = h.quantile(q).unwrap();
            assert!(got >= exact, "p{q}: {got} below {exact}");
            assert!(
                got <= exact + exact / 128,
                "p{q}: {got} too far above {exact}"
            );
        }
        assert_eq!(h.max(), Some(10_000_000));
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn one_outlier_shows_only_at_the_top() {
        let mut h = Histogram::default();
        for _ in 0..999 {
            h.record(200_000);
        }
        h.record(35_000_000);
        assert!(h.quantile(0.99).unwrap() < 202_000);
        assert_eq!(h.quantile(0.9999), Some(35_000_000));
        assert_eq!(h.max(), Some(35_000_000));
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for value in [0, 1, 127, 128, 129, 255, 256, 511, 512, 1 << 40, u64::MAX] {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS, "{value}");
            assert!(bucket >= last, "{value}");
            assert!(bucket_top(bucket) >= value, "{value}");
            last = bucket;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_top(BUCKETS - 1), u64::MAX);
    }
}
