//! History compaction: the store keeps every write for watch replay and
//! lists at old revisions until told to forget. The compactor keeps the
//! last `keep` revisions and forgets the rest, every `every`; a watch from
//! a forgotten revision is answered `Expired` and the client lists again.

use crate::store::{Store, StoreError};
use std::time::Duration;

/// Forget all history older than the last `keep` revisions. Returns the
/// compaction point.
pub async fn compact_once<S: Store>(store: &S, keep: u64) -> Result<u64, StoreError> {
    let current = store.current_revision().await?;
    store.compact(current.saturating_sub(keep)).await
}

/// Compact every `every`, for as long as the task runs; failures are
/// logged and tried again next time.
pub async fn run<S: Store>(store: &S, every: Duration, keep: u64) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match compact_once(store, keep).await {
            Ok(at) => tracing::debug!(revision = at, "history compacted"),
            Err(e) => tracing::warn!(error = %e, "history compaction failed"),
        }
    }
}
