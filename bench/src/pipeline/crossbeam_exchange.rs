//! The baseline exchange: the engine's N×N mesh built from bounded `crossbeam-channel`
//! channels instead of `rtrb` rings, moved one item per `try_send` / `try_recv`, as a
//! channel is normally used. Same job, same shard loop, same capacity: only the channel
//! differs, so the ratio between the two runs is the price of a general MPMC channel.

use crossbeam_channel::{bounded, Receiver, Sender};
use zabflow_core::engine::{ChannelConsumer, ChannelProducer, Exchange, Item};

/// Builds the mesh from bounded crossbeam channels.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossbeamExchange;

/// The sending end of one channel.
pub struct CrossbeamProducer<T>(Sender<Item<T>>);

/// The receiving end of one channel.
pub struct CrossbeamConsumer<T>(Receiver<Item<T>>);

impl Exchange for CrossbeamExchange {
    type Producer<T: Copy + Send + 'static> = CrossbeamProducer<T>;
    type Consumer<T: Copy + Send + 'static> = CrossbeamConsumer<T>;

    fn channel<T: Copy + Send + 'static>(
        &self,
        slots: usize,
    ) -> (CrossbeamProducer<T>, CrossbeamConsumer<T>) {
        let (sender, receiver) = bounded(slots);
        (CrossbeamProducer(sender), CrossbeamConsumer(receiver))
    }
}

impl<T: Copy + Send + 'static> ChannelProducer<T> for CrossbeamProducer<T> {
    fn push_from(&mut self, staged: &mut Vec<Item<T>>) -> usize {
        let sent = staged.iter().take_while(|item| self.0.try_send(**item).is_ok()).count();
        staged.drain(..sent);
        sent
    }

    fn occupancy(&self) -> usize {
        self.0.len()
    }
}

impl<T: Copy + Send + 'static> ChannelConsumer<T> for CrossbeamConsumer<T> {
    fn drain<V: FnMut(&Item<T>)>(&mut self, mut visit: V) -> usize {
        let available = self.0.len();
        let mut count = 0;
        while count < available {
            let Ok(item) = self.0.try_recv() else { break };
            visit(&item);
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_keeps_the_rest_staged_in_order() {
        let (mut producer, mut consumer) = CrossbeamExchange.channel::<u32>(2);
        let mut staged = vec![Item::Watermark(1), Item::Watermark(2), Item::End];
        assert_eq!(producer.push_from(&mut staged), 2);
        assert_eq!(staged, vec![Item::End]);
        let mut seen = Vec::new();
        assert_eq!(consumer.drain(|item| seen.push(*item)), 2);
        assert_eq!(producer.push_from(&mut staged), 1);
        consumer.drain(|item| seen.push(*item));
        assert_eq!(seen, vec![Item::Watermark(1), Item::Watermark(2), Item::End]);
    }
}
