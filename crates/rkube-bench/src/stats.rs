//! Small statistics over measured durations: rates and percentiles.

use std::time::Duration;

/// Operations per second for `n` operations in `elapsed`.
pub(crate) fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// The `p`-th percentile (0..=100) of the samples, nearest-rank; zero for no samples.
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// A duration in milliseconds with two decimals, for tables.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut s, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut s, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
        assert!((rate(10, Duration::from_secs(2)) - 5.0).abs() < 1e-9);
    }
}
