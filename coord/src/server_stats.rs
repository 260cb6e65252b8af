//! `ServerStats`: the counters `srvr`, `stat` and `mntr` report, as ZooKeeper's
//! `ServerStats` — request latency (min/avg/max in ms), packets in and out.

use std::time::Duration;

/// Server-wide counters.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    latency_count: u64,
    latency_total_ms: u64,
    latency_min_ms: u64,
    latency_max_ms: u64,
}

impl ServerStats {
    /// Records one answered request's latency.
    pub fn record_latency(&mut self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_min_ms =
            if self.latency_count == 0 { ms } else { self.latency_min_ms.min(ms) };
        self.latency_max_ms = self.latency_max_ms.max(ms);
        self.latency_total_ms = self.latency_total_ms.saturating_add(ms);
        self.latency_count += 1;
    }

    /// Smallest latency in ms (0 before any request).
    #[must_use]
    pub fn min_latency_ms(&self) -> u64 {
        self.latency_min_ms
    }

    /// Mean latency in ms.
    #[must_use]
    pub fn avg_latency_ms(&self) -> f64 {
        if self.latency_count == 0 {
            return 0.0;
        }
        self.latency_total_ms as f64 / self.latency_count as f64
    }

    /// Largest latency in ms.
    #[must_use]
    pub fn max_latency_ms(&self) -> u64 {
        self.latency_max_ms
    }

    /// `srst`: counters back to zero.
    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_min_avg_max() {
        let mut stats = ServerStats::default();
        assert_eq!(stats.avg_latency_ms(), 0.0);
        stats.record_latency(Duration::from_millis(3));
        stats.record_latency(Duration::from_millis(1));
        assert_eq!((stats.min_latency_ms(), stats.max_latency_ms()), (1, 3));
        assert_eq!(stats.avg_latency_ms(), 2.0);
    }
}
