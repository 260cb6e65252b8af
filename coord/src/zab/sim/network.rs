//! The simulated network between the servers of an ensemble.
//!
//! Each unordered pair of servers has one connection (a TCP connection in the real server),
//! up or down, with a generation that grows every time it is established or breaks. A
//! message is stamped with the generation it was sent on and delivered only if the
//! connection still has that generation: a break loses everything in flight, as the driver
//! contract says. Each direction is FIFO: a message is never delivered before one sent
//! earlier in the same direction. Election notifications ([`Message::Vote`]) are the
//! exception: they take their own delay (so they overtake and fall behind other messages)
//! and may be delivered twice, since the machine must treat them as idempotent.
//!
//! A partition splits the servers into two sides; connections across it break and cannot
//! be established until it heals. Re-establishing connections is the simulation's job: it
//! calls [`Network::connect`] after a delay of its choosing.
//!
//! [`Message::Vote`]: crate::zab::Message::Vote

use rand::rngs::SmallRng;
use rand::Rng as _;

/// How messages travel; chosen per seed.
#[derive(Debug, Clone)]
pub struct NetworkParams {
    /// The smallest one-way delay, in milliseconds.
    pub delay_ms_min: u64,
    /// The largest one-way delay outside spikes, in milliseconds.
    pub delay_ms_max: u64,
    /// The chance that a message is delayed by a spike (a stalled TCP stream).
    pub spike_probability: f64,
    /// The largest spike, in milliseconds.
    pub spike_ms_max: u64,
    /// The chance that an election notification is delivered twice.
    pub vote_duplicate_probability: f64,
    /// The largest extra delay an election notification may take beyond the FIFO order.
    pub vote_reorder_ms_max: u64,
}

/// When and on which connection generation a message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub at_ms: u64,
    pub generation: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Connection {
    up: bool,
    generation: u64,
}

/// The connections of an ensemble of `servers` servers, indexed from 0.
#[derive(Debug)]
pub struct Network {
    servers: usize,
    params: NetworkParams,
    /// Spikes happen only while faults are allowed.
    spikes: bool,
    /// `connections[a * servers + b]` with `a < b`.
    connections: Vec<Connection>,
    /// `fifo_ms[from * servers + to]`: the delivery time of the last message on that
    /// direction; later messages are not delivered before it.
    fifo_ms: Vec<u64>,
    /// The side of each server while partitioned.
    sides: Option<Vec<bool>>,
}

impl Network {
    /// All connections down, no partition.
    #[must_use]
    pub fn new(servers: usize, params: NetworkParams) -> Network {
        Network {
            servers,
            params,
            spikes: true,
            connections: vec![Connection::default(); servers * servers],
            fifo_ms: vec![0; servers * servers],
            sides: None,
        }
    }

    fn pair(&self, a: usize, b: usize) -> usize {
        assert!(a != b && a < self.servers && b < self.servers, "a pair of servers");
        a.min(b) * self.servers + a.max(b)
    }

    /// Whether `a` and `b` are connected.
    #[must_use]
    pub fn is_up(&self, a: usize, b: usize) -> bool {
        self.connections[self.pair(a, b)].up
    }

    /// Whether a partition separates `a` and `b`.
    #[must_use]
    pub fn separated(&self, a: usize, b: usize) -> bool {
        self.sides.as_ref().is_some_and(|sides| sides[a] != sides[b])
    }

    /// Whether a partition is in force.
    #[must_use]
    pub fn partitioned(&self) -> bool {
        self.sides.is_some()
    }

    /// Stops (or resumes) delay spikes.
    pub fn set_spikes(&mut self, spikes: bool) {
        self.spikes = spikes;
    }

    /// Establishes the connection between `a` and `b`; false (and nothing changes) if it is
    /// up already or a partition separates them.
    pub fn connect(&mut self, a: usize, b: usize) -> bool {
        if self.separated(a, b) || self.is_up(a, b) {
            return false;
        }
        let pair = self.pair(a, b);
        let connection = &mut self.connections[pair];
        connection.up = true;
        connection.generation += 1;
        true
    }

    /// Breaks the connection between `a` and `b`, losing what is in flight on it; false if
    /// it was down already.
    pub fn disconnect(&mut self, a: usize, b: usize) -> bool {
        let pair = self.pair(a, b);
        let connection = &mut self.connections[pair];
        if !connection.up {
            return false;
        }
        connection.up = false;
        connection.generation += 1;
        let servers = self.servers;
        self.fifo_ms[a * servers + b] = 0;
        self.fifo_ms[b * servers + a] = 0;
        true
    }

    /// Splits the servers into the two sides `sides` names (true and false); returns the
    /// pairs whose connection broke.
    pub fn partition(&mut self, sides: Vec<bool>) -> Vec<(usize, usize)> {
        assert_eq!(sides.len(), self.servers, "a side for every server");
        self.sides = Some(sides);
        let mut broken = Vec::new();
        for a in 0..self.servers {
            for b in a + 1..self.servers {
                if self.separated(a, b) && self.disconnect(a, b) {
                    broken.push((a, b));
                }
            }
        }
        broken
    }

    /// Ends the partition; connections across it may be established again.
    pub fn heal(&mut self) {
        self.sides = None;
    }

    /// Sends a message from `from` to `to` at `now_ms`: when it arrives, and when its
    /// duplicate arrives (election notifications only); `None` if the connection is down
    /// (the message is dropped).
    pub fn send(
        &mut self,
        rng: &mut SmallRng,
        now_ms: u64,
        from: usize,
        to: usize,
        vote: bool,
    ) -> Option<(Delivery, Option<Delivery>)> {
        let connection = self.connections[self.pair(from, to)];
        if !connection.up {
            return None;
        }
        let generation = connection.generation;
        if vote {
            let reorder = self.params.vote_reorder_ms_max;
            let at_ms = now_ms + self.delay_ms(rng) + rng.gen_range(0..=reorder);
            let duplicate = rng.gen_bool(self.params.vote_duplicate_probability).then(|| {
                let at_ms = now_ms + self.delay_ms(rng) + rng.gen_range(0..=reorder);
                Delivery { at_ms, generation }
            });
            return Some((Delivery { at_ms, generation }, duplicate));
        }
        let delay_ms = self.delay_ms(rng);
        let fifo = &mut self.fifo_ms[from * self.servers + to];
        let at_ms = (now_ms + delay_ms).max(*fifo);
        *fifo = at_ms;
        Some((Delivery { at_ms, generation }, None))
    }

    /// Whether a message sent on `generation` of the connection between `from` and `to` can
    /// still be delivered.
    #[must_use]
    pub fn deliverable(&self, from: usize, to: usize, generation: u64) -> bool {
        let connection = self.connections[self.pair(from, to)];
        connection.up && connection.generation == generation
    }

    fn delay_ms(&self, rng: &mut SmallRng) -> u64 {
        let params = &self.params;
        let delay = rng.gen_range(params.delay_ms_min..=params.delay_ms_max);
        if self.spikes && rng.gen_bool(params.spike_probability) {
            delay + rng.gen_range(0..=params.spike_ms_max)
        } else {
            delay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn params() -> NetworkParams {
        NetworkParams {
            delay_ms_min: 1,
            delay_ms_max: 50,
            spike_probability: 0.1,
            spike_ms_max: 500,
            vote_duplicate_probability: 0.5,
            vote_reorder_ms_max: 100,
        }
    }

    #[test]
    fn messages_on_one_direction_arrive_in_order() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut network = Network::new(3, params());
        assert!(network.connect(0, 1));
        let mut previous = 0;
        for now in 0..1_000 {
            let (delivery, duplicate) = network.send(&mut rng, now, 0, 1, false).unwrap();
            assert!(delivery.at_ms >= previous && delivery.at_ms >= now);
            assert!(duplicate.is_none(), "only votes are duplicated");
            previous = delivery.at_ms;
        }
    }

    #[test]
    fn votes_are_reordered_and_duplicated() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut network = Network::new(3, params());
        network.connect(1, 2);
        let mut times = Vec::new();
        let mut duplicates = 0;
        for now in 0..1_000 {
            let (delivery, duplicate) = network.send(&mut rng, now, 2, 1, true).unwrap();
            times.push(delivery.at_ms);
            duplicates += usize::from(duplicate.is_some());
        }
        assert!(times.windows(2).any(|pair| pair[1] < pair[0]), "some vote overtakes");
        assert!(duplicates > 0);
    }

    #[test]
    fn a_break_loses_what_is_in_flight() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut network = Network::new(3, params());
        assert_eq!(network.send(&mut rng, 0, 0, 2, false), None, "down at first");
        network.connect(0, 2);
        let (delivery, _) = network.send(&mut rng, 0, 0, 2, false).unwrap();
        assert!(network.deliverable(0, 2, delivery.generation));
        assert!(network.disconnect(2, 0));
        assert!(!network.disconnect(0, 2), "down already");
        network.connect(0, 2);
        assert!(!network.deliverable(0, 2, delivery.generation), "sent on the old connection");
        let (later, _) = network.send(&mut rng, 10, 2, 0, false).unwrap();
        assert!(network.deliverable(2, 0, later.generation));
    }

    #[test]
    fn a_partition_breaks_and_blocks_connections_across_it() {
        let mut network = Network::new(5, params());
        for a in 0..5 {
            for b in a + 1..5 {
                network.connect(a, b);
            }
        }
        let broken = network.partition(vec![true, true, false, false, false]);
        assert_eq!(broken.len(), 6);
        assert!(!network.connect(0, 3));
        assert!(network.is_up(0, 1) && network.is_up(2, 4));
        network.heal();
        assert!(network.connect(0, 3));
    }
}
