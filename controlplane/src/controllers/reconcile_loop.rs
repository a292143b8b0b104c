//! The loop every controller runs: take the changes its two caches bring,
//! turn them into keys to reconcile, reconcile each key once however many
//! changes named it, retry failures after a delay, come back to keys that
//! asked for it (a toleration running out, a lease to check), and
//! reconcile everything after a relist and every resync period. Nothing
//! here outlives a restart: the first pass after one reconciles all.

use super::reflector::{Change, Key, Reflector};
use super::{ControllerError, ControllerOptions, Shutdown};
use crate::client::ClientError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Most changes taken in one go before reconciling.
const DRAIN_LIMIT: usize = 4096;

/// One controller, as the loop sees it.
pub(super) trait Controller {
    /// For logs: `replicaset`, `gc`.
    const NAME: &'static str;

    /// The two caches it watches.
    fn caches(&mut self) -> (&mut Reflector, &mut Reflector);

    /// The keys a change in cache 0 or 1 concerns.
    fn keys_for(&mut self, cache: usize, change: &Change) -> Vec<Key>;

    /// Every key (after a relist, and every resync period).
    fn all_keys(&self) -> Vec<Key>;

    /// Bring `key` to its desired state; `Some(d)`: look again after `d`.
    async fn reconcile(&mut self, key: &Key) -> Result<Option<Duration>, ClientError>;
}

/// Keys due for a reconcile, each at the earliest time asked.
#[derive(Debug, Default)]
struct WorkQueue {
    due: BTreeMap<Key, Instant>,
}

impl WorkQueue {
    fn add_at(&mut self, key: Key, at: Instant) {
        let due = self.due.entry(key).or_insert(at);
        *due = (*due).min(at);
    }

    fn add_all(&mut self, keys: Vec<Key>) {
        let now = Instant::now();
        for key in keys {
            self.add_at(key, now);
        }
    }

    fn take_due(&mut self, now: Instant) -> Vec<Key> {
        let due: Vec<Key> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            self.due.remove(key);
        }
        due
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }
}

/// Run `controller` until `shutdown`; an error means its connection is
/// gone (the caller starts it afresh).
pub(super) async fn drive<C: Controller>(
    controller: &mut C,
    options: &ControllerOptions,
    mut shutdown: Shutdown,
) -> Result<(), ControllerError> {
    let mut queue = WorkQueue::default();
    queue.add_all(controller.all_keys());
    let mut next_resync = Instant::now() + options.resync_period;
    loop {
        let now = Instant::now();
        for key in queue.take_due(now) {
            match controller.reconcile(&key).await {
                Ok(None) => {}
                Ok(Some(after)) => queue.add_at(key, Instant::now() + after),
                Err(ClientError::Closed) => return Err(ControllerError::Closed),
                Err(e) => {
                    tracing::warn!(controller = C::NAME, namespace = %key.0, name = %key.1,
                        error = %e, "reconcile failed; retrying");
                    queue.add_at(key, Instant::now() + options.retry_delay);
                }
            }
        }
        let wake = queue.next_due().map_or(next_resync, |d| d.min(next_resync));
        let first = {
            let (a, b) = controller.caches();
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                change = a.next() => Some((0, change)),
                change = b.next() => Some((1, change)),
                _ = tokio::time::sleep_until(wake) => None,
            }
        };
        if Instant::now() >= next_resync {
            queue.add_all(controller.all_keys());
            next_resync = Instant::now() + options.resync_period;
        }
        let Some((cache, change)) = first else {
            continue;
        };
        let change = change.map_err(|_| ControllerError::Closed)?;
        take_change(controller, &mut queue, cache, change, options).await?;
        // Whatever else is already waiting, before reconciling.
        for _ in 0..DRAIN_LIMIT {
            let more = {
                let (a, b) = controller.caches();
                tokio::select! {
                    biased;
                    change = a.next() => Some((0, change)),
                    change = b.next() => Some((1, change)),
                    _ = std::future::ready(()) => None,
                }
            };
            let Some((cache, change)) = more else {
                break;
            };
            let change = change.map_err(|_| ControllerError::Closed)?;
            take_change(controller, &mut queue, cache, change, options).await?;
        }
    }
}

async fn take_change<C: Controller>(
    controller: &mut C,
    queue: &mut WorkQueue,
    cache: usize,
    change: Change,
    options: &ControllerOptions,
) -> Result<(), ControllerError> {
    if !matches!(change, Change::Expired) {
        let keys = controller.keys_for(cache, &change);
        queue.add_all(keys);
        return Ok(());
    }
    let (a, b) = controller.caches();
    let reflector = if cache == 0 { a } else { b };
    let kind = reflector.kind();
    loop {
        match reflector.resync().await {
            Ok(()) => break,
            Err(ClientError::Closed) => return Err(ControllerError::Closed),
            Err(e) => {
                tracing::warn!(controller = C::NAME, kind = %kind, error = %e,
                    "relist failed; retrying");
                tokio::time::sleep(options.retry_delay).await;
            }
        }
    }
    options.counters.count_relist();
    queue.add_all(controller.all_keys());
    Ok(())
}
