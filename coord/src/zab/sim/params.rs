//! What a seed draws: the ensemble's settings, the network's, the disks', the faults' and the
//! clients', and the independent random streams the run draws from afterwards.

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use super::network::NetworkParams;

/// The settings a seed draws.
#[derive(Debug, Clone)]
pub struct Params {
    pub tick_ms: u64,
    pub history_max: usize,
    /// Log entries a restarting server hands the machine in `Stored::recent`.
    pub recent_max: usize,
    pub tick_interval_ms: Vec<u64>,
    /// Each server's clock runs at this rate, in millionths of real time.
    pub clock_rate_ppm: Vec<u64>,
    pub clock_offset_ms: Vec<u64>,
    pub network: NetworkParams,
    pub reconnect_ms_max: u64,
    pub fsync_ms_min: u64,
    pub fsync_ms_max: u64,
    pub fsync_stall_probability: f64,
    pub fsync_stall_ms_max: u64,
    pub fault_interval_ms_mean: u64,
    /// Weights of: break a connection, partition, crash a server, crash the leader, pause a
    /// server.
    pub fault_weights: [u32; 5],
    /// The longest a paused server stays paused, in milliseconds.
    pub pause_ms_max: u64,
    pub restart_ms_max: u64,
    pub partition_ms_max: u64,
    pub fault_phase_ms: u64,
    pub write_interval_ms_mean: u64,
    pub sync_interval_ms_mean: u64,
    /// After the heal, how long the ensemble has to serve and commit a write.
    pub liveness_ms: u64,
}

impl Params {
    pub fn draw(rng: &mut SmallRng, servers: usize) -> Params {
        let tick_ms = [100, 100, 200, 200, 500, 1_000, 2_000][rng.gen_range(0..7)];
        let delay_ms_min = rng.gen_range(0..=2);
        let network = NetworkParams {
            delay_ms_min,
            delay_ms_max: delay_ms_min + rng.gen_range(1..=30),
            spike_probability: [0.0, 0.001, 0.01][rng.gen_range(0..3)],
            spike_ms_max: rng.gen_range(10..=3 * tick_ms),
            vote_duplicate_probability: [0.0, 0.05, 0.3][rng.gen_range(0..3)],
            vote_reorder_ms_max: [0, 20, 200][rng.gen_range(0..3)],
        };
        let sync_ms = 5 * tick_ms;
        let init_ms = 10 * tick_ms;
        let fsync_ms_min = rng.gen_range(0..=2);
        let fsync_spread_ms = [2, 10, 40][rng.gen_range(0..3)];
        Params {
            tick_ms,
            history_max: if rng.gen_bool(0.3) { rng.gen_range(0..=8) } else { 100_000 },
            recent_max: if rng.gen_bool(0.3) { rng.gen_range(0..=4) } else { usize::MAX },
            tick_interval_ms: (0..servers).map(|_| rng.gen_range(5..=25)).collect(),
            clock_rate_ppm: (0..servers).map(|_| rng.gen_range(980_000..=1_020_000)).collect(),
            clock_offset_ms: (0..servers).map(|_| rng.gen_range(0..=1_000_000)).collect(),
            network,
            reconnect_ms_max: rng.gen_range(10..=sync_ms),
            fsync_ms_min,
            fsync_ms_max: fsync_ms_min + rng.gen_range(0..=fsync_spread_ms),
            fsync_stall_probability: [0.0, 0.001, 0.01][rng.gen_range(0..3)],
            fsync_stall_ms_max: rng.gen_range(10..=2 * sync_ms),
            fault_interval_ms_mean: rng.gen_range(50..=sync_ms.max(500)),
            fault_weights: [0; 5].map(|_| rng.gen_range(0..=3)),
            pause_ms_max: rng.gen_range(10..=3 * sync_ms),
            restart_ms_max: rng.gen_range(50..=init_ms),
            partition_ms_max: rng.gen_range(100..=3 * sync_ms),
            fault_phase_ms: rng.gen_range(1_000..=8_000) + rng.gen_range(0..=4) * sync_ms,
            write_interval_ms_mean: rng.gen_range(2..=100),
            sync_interval_ms_mean: rng.gen_range(20..=500),
            liveness_ms: 4 * init_ms + 10_000,
        }
    }
}

/// Independent random streams, so that (say) more messages do not change the faults.
#[derive(Debug)]
pub struct Streams {
    pub network: SmallRng,
    pub disk: SmallRng,
    pub faults: SmallRng,
    pub clients: SmallRng,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        let stream = |n: u64| SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Streams { network: stream(1), disk: stream(2), faults: stream(3), clients: stream(4) }
    }
}
