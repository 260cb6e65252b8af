//! The exchange mesh: one bounded `rtrb` SPSC ring for every ordered pair of shards.
//!
//! N shards make N×N rings (the diagonal included, so a shard's records for itself take the
//! same path and keep the same order as everyone else's). A single-producer single-consumer
//! ring needs no lock and no compare-and-swap: each side owns one cursor, and a chunked
//! write or read moves a whole batch for one cursor update, so the cost of crossing a core
//! is paid per batch, not per record. The price is memory, `N² × slots` items allocated when
//! the job starts, which is why capacity is explicit ([`MeshBuilder::new`]), as in glommio's
//! `MeshBuilder::full(shards, capacity)`.
//!
//! A full ring never blocks: [`Outbox::flush`] hands over what fits and keeps the rest
//! staged, and the shard's loop decides what to do (stop pulling its source, keep draining
//! its inputs), so backpressure is a decision of the driver, not a wait inside the mesh.
//!
//! The channel is a parameter ([`Exchange`]) so the same job can run over another channel
//! for comparison: the benchmark's baseline runs it over `crossbeam-channel`.

use super::item::Item;
use rtrb::{Consumer, Producer, RingBuffer};

/// The writing end of one exchange channel.
pub trait ChannelProducer<T>: Send + 'static {
    /// Moves as many items from the front of `staged` as the channel has room for, in
    /// order, removing them from `staged`. Returns the number moved. Never blocks.
    fn push_from(&mut self, staged: &mut Vec<Item<T>>) -> usize;
    /// Items in the channel not yet read by the consumer.
    fn occupancy(&self) -> usize;
}

/// The reading end of one exchange channel.
pub trait ChannelConsumer<T>: Send + 'static {
    /// Reads the items in the channel now (a bounded number: what was there when the call
    /// began), passing each to `visit` in order. Returns the number read. Never blocks.
    fn drain<V: FnMut(&Item<T>)>(&mut self, visit: V) -> usize;
}

/// A kind of channel to build the N×N mesh from: the engine's `rtrb` rings
/// ([`RtrbExchange`]), or another implementation to compare them with (the benchmark's
/// crossbeam-channel baseline).
pub trait Exchange: Clone + Send + Sync + 'static {
    /// The producing end of a channel of `Item<T>`.
    type Producer<T: Copy + Send + 'static>: ChannelProducer<T>;
    /// The consuming end of a channel of `Item<T>`.
    type Consumer<T: Copy + Send + 'static>: ChannelConsumer<T>;
    /// A bounded channel of `slots` items.
    fn channel<T: Copy + Send + 'static>(
        &self,
        slots: usize,
    ) -> (Self::Producer<T>, Self::Consumer<T>);
}

/// The engine's exchange: one `rtrb` SPSC ring per ordered pair of shards, written and read
/// in chunks.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtrbExchange;

impl Exchange for RtrbExchange {
    type Producer<T: Copy + Send + 'static> = Producer<Item<T>>;
    type Consumer<T: Copy + Send + 'static> = Consumer<Item<T>>;

    fn channel<T: Copy + Send + 'static>(
        &self,
        slots: usize,
    ) -> (Producer<Item<T>>, Consumer<Item<T>>) {
        RingBuffer::new(slots)
    }
}

impl<T: Copy + Send + 'static> ChannelProducer<T> for Producer<Item<T>> {
    /// One chunked write: a single cursor update for the whole batch.
    #[inline]
    fn push_from(&mut self, staged: &mut Vec<Item<T>>) -> usize {
        let count = self.slots().min(staged.len());
        if count == 0 {
            return 0;
        }
        let chunk = self.write_chunk_uninit(count).expect("slots() said there is room");
        let written = chunk.fill_from_iter(staged.drain(..count));
        assert_eq!(written, count);
        count
    }

    fn occupancy(&self) -> usize {
        self.buffer().capacity() - self.slots()
    }
}

impl<T: Copy + Send + 'static> ChannelConsumer<T> for Consumer<Item<T>> {
    /// One chunked read: a single cursor update for everything read.
    #[inline]
    fn drain<V: FnMut(&Item<T>)>(&mut self, mut visit: V) -> usize {
        let count = self.slots();
        if count == 0 {
            return 0;
        }
        let chunk = self.read_chunk(count).expect("slots() said there are items");
        let (first, second) = chunk.as_slices();
        first.iter().chain(second).for_each(&mut visit);
        chunk.commit_all();
        count
    }
}

/// Builds the N×N mesh of a job.
#[derive(Debug, Clone, Copy)]
pub struct MeshBuilder {
    shards: usize,
    ring_slots: usize,
}

/// The channels one shard writes (one per target shard) and reads (one per source shard).
pub struct ShardPorts<T: Copy + Send + 'static, X: Exchange> {
    /// `outboxes[j]` carries this shard's items to shard `j`.
    pub outboxes: Vec<ExchangeOutbox<T, X>>,
    /// `inboxes[i]` carries shard `i`'s items to this shard.
    pub inboxes: Vec<X::Consumer<T>>,
}

impl MeshBuilder {
    /// # Panics
    /// If `shards` or `ring_slots` is zero.
    pub fn new(shards: usize, ring_slots: usize) -> MeshBuilder {
        assert!(shards > 0 && ring_slots > 0, "{shards} shards, {ring_slots} slots");
        MeshBuilder { shards, ring_slots }
    }

    /// Allocates every channel; `staged_max` is the staging room of each outbox, in items.
    /// Element `i` of the result belongs to shard `i`.
    pub fn build<T: Copy + Send + 'static, X: Exchange>(
        &self,
        exchange: &X,
        staged_max: usize,
    ) -> Vec<ShardPorts<T, X>> {
        let mut ports: Vec<ShardPorts<T, X>> = (0..self.shards)
            .map(|_| ShardPorts { outboxes: Vec::new(), inboxes: Vec::new() })
            .collect();
        for source in 0..self.shards {
            for target in 0..self.shards {
                let (producer, consumer) = exchange.channel(self.ring_slots);
                ports[source].outboxes.push(Outbox::new(producer, staged_max));
                ports[target].inboxes.push(consumer);
            }
        }
        ports
    }
}

/// The outbox of an exchange `X` carrying `T`.
pub type ExchangeOutbox<T, X> = Outbox<T, <X as Exchange>::Producer<T>>;

/// The writing end of one channel, with the items staged for it that did not fit yet.
pub struct Outbox<T, P> {
    producer: P,
    staged: Vec<Item<T>>,
}

impl<T: Copy, P: ChannelProducer<T>> Outbox<T, P> {
    fn new(producer: P, staged_max: usize) -> Outbox<T, P> {
        Outbox { producer, staged: Vec::with_capacity(staged_max) }
    }

    /// Stages an item; [`Outbox::flush`] hands it to the channel.
    #[inline]
    pub fn stage(&mut self, item: Item<T>) {
        self.staged.push(item);
    }

    /// True when every staged item is in the channel.
    #[inline]
    pub fn is_flushed(&self) -> bool {
        self.staged.is_empty()
    }

    /// Moves as many staged items as the channel has room for, in order. Returns the number
    /// moved.
    #[inline]
    pub fn flush(&mut self) -> usize {
        if self.staged.is_empty() {
            return 0;
        }
        self.producer.push_from(&mut self.staged)
    }

    /// Items in the channel not yet read by the target (for occupancy statistics).
    pub fn ring_occupancy(&self) -> usize {
        self.producer.occupancy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_has_its_own_ring_and_keeps_order_through_a_full_ring() {
        let mut ports = MeshBuilder::new(3, 2).build::<u32, _>(&RtrbExchange, 8);
        for (source, port) in ports.iter_mut().enumerate() {
            for outbox in port.outboxes.iter_mut() {
                for value in 0..5 {
                    outbox.stage(Item::Watermark(source as u64 * 10 + value));
                }
            }
        }
        let mut received = vec![vec![Vec::new(); 3]; 3];
        while ports.iter().any(|port| port.outboxes.iter().any(|outbox| !outbox.is_flushed())) {
            for port in ports.iter_mut() {
                port.outboxes.iter_mut().for_each(|outbox| {
                    outbox.flush();
                });
            }
            for (target, port) in ports.iter_mut().enumerate() {
                for (source, inbox) in port.inboxes.iter_mut().enumerate() {
                    inbox.drain(|item| received[target][source].push(*item));
                }
            }
        }
        for (target, row) in received.iter().enumerate() {
            for (source, items) in row.iter().enumerate() {
                let expected: Vec<_> =
                    (0..5).map(|v| Item::Watermark(source as u64 * 10 + v)).collect();
                assert_eq!(items, &expected, "{source} -> {target}");
            }
        }
    }
}
