//! Run an iterator on a background thread, a bounded number of items ahead of the consumer.
//!
//! Used to overlap data generation (or Parquet decoding) with the work being measured, on
//! separate cores.

use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// Iterator over the items produced by a background thread; see [`prefetch`].
#[derive(Debug)]
pub struct Prefetch<T> {
    rx: Receiver<T>,
    handle: Option<JoinHandle<()>>,
}

/// Moves `iter` to a new thread that stays at most `depth` items ahead of the consumer.
///
/// A panic in the producer is re-raised in the consumer when the stream ends. Dropping the
/// [`Prefetch`] early stops the producer at its next item.
pub fn prefetch<I>(iter: I, depth: usize) -> Prefetch<I::Item>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    let (tx, rx) = sync_channel(depth);
    let handle = std::thread::Builder::new()
        .name("bench-prefetch".into())
        .spawn(move || {
            for item in iter {
                if tx.send(item).is_err() {
                    break; // consumer gone
                }
            }
        })
        .expect("spawn prefetch thread");
    Prefetch {
        rx,
        handle: Some(handle),
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self.rx.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                if let Some(handle) = self.handle.take()
                    && let Err(panic) = handle.join()
                {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_everything_in_order() {
        let got: Vec<u32> = prefetch(0..1000u32, 2).collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn early_drop_stops_producer() {
        let mut p = prefetch(0..u64::MAX, 1);
        assert_eq!(p.next(), Some(0));
        drop(p); // must not hang
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn producer_panic_propagates() {
        let it = (0..3).map(|i| if i == 2 { panic!("boom") } else { i });
        for _ in prefetch(it, 1) {}
    }
}
