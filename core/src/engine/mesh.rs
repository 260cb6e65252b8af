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

use super::item::Item;
use rtrb::{Consumer, Producer, RingBuffer};

/// Builds the N×N mesh of a job.
#[derive(Debug, Clone, Copy)]
pub struct MeshBuilder {
    shards: usize,
    ring_slots: usize,
}

/// The rings one shard writes (one per target shard) and reads (one per source shard).
pub struct ShardPorts<T> {
    /// `outboxes[j]` carries this shard's items to shard `j`.
    pub outboxes: Vec<Outbox<T>>,
    /// `inboxes[i]` carries shard `i`'s items to this shard.
    pub inboxes: Vec<Consumer<Item<T>>>,
}

impl MeshBuilder {
    /// # Panics
    /// If `shards` or `ring_slots` is zero.
    pub fn new(shards: usize, ring_slots: usize) -> MeshBuilder {
        assert!(shards > 0 && ring_slots > 0, "{shards} shards, {ring_slots} slots");
        MeshBuilder { shards, ring_slots }
    }

    /// Allocates every ring; `staged_max` is the staging room of each outbox, in items.
    /// Element `i` of the result belongs to shard `i`.
    pub fn build<T: Copy>(&self, staged_max: usize) -> Vec<ShardPorts<T>> {
        let mut ports: Vec<ShardPorts<T>> = (0..self.shards)
            .map(|_| ShardPorts { outboxes: Vec::new(), inboxes: Vec::new() })
            .collect();
        for source in 0..self.shards {
            for target in 0..self.shards {
                let (producer, consumer) = RingBuffer::new(self.ring_slots);
                ports[source].outboxes.push(Outbox::new(producer, staged_max));
                ports[target].inboxes.push(consumer);
            }
        }
        ports
    }
}

/// The writing end of one ring, with the items staged for it that did not fit yet.
pub struct Outbox<T> {
    producer: Producer<Item<T>>,
    staged: Vec<Item<T>>,
}

impl<T: Copy> Outbox<T> {
    fn new(producer: Producer<Item<T>>, staged_max: usize) -> Outbox<T> {
        Outbox { producer, staged: Vec::with_capacity(staged_max) }
    }

    /// Stages an item; [`Outbox::flush`] hands it to the ring.
    #[inline]
    pub fn stage(&mut self, item: Item<T>) {
        self.staged.push(item);
    }

    /// True when every staged item is in the ring.
    #[inline]
    pub fn is_flushed(&self) -> bool {
        self.staged.is_empty()
    }

    /// Moves as many staged items as the ring has room for, in order, with one chunked
    /// write. Returns the number moved.
    pub fn flush(&mut self) -> usize {
        let count = self.producer.slots().min(self.staged.len());
        if count == 0 {
            return 0;
        }
        let chunk = self.producer.write_chunk_uninit(count).expect("slots() said there is room");
        let written = chunk.fill_from_iter(self.staged.drain(..count));
        assert_eq!(written, count);
        count
    }

    /// Items in the ring not yet read by the target (for occupancy statistics).
    pub fn ring_occupancy(&self) -> usize {
        self.producer.buffer().capacity() - self.producer.slots()
    }
}

/// Reads every item now in `consumer` with one chunked read, passing each to `visit`.
/// Returns the number read.
#[inline]
pub fn drain<T: Copy>(consumer: &mut Consumer<Item<T>>, mut visit: impl FnMut(&Item<T>)) -> usize {
    let count = consumer.slots();
    if count == 0 {
        return 0;
    }
    let chunk = consumer.read_chunk(count).expect("slots() said there are items");
    let (first, second) = chunk.as_slices();
    first.iter().chain(second).for_each(&mut visit);
    chunk.commit_all();
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_has_its_own_ring_and_keeps_order_through_a_full_ring() {
        let mut ports = MeshBuilder::new(3, 2).build::<u32>(8);
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
                    drain(inbox, |item| received[target][source].push(*item));
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
