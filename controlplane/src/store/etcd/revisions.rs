//! Revisions on etcd: its signed revisions as the store's, its refusals
//! of old and future revisions as [`StoreError::Compacted`] and
//! [`StoreError::FutureRevision`], its compaction point (which etcd does
//! not tell, found by bisection on those error paths) and compaction.

use super::EtcdStore;
use crate::store::{Store, StoreError};
use etcd_client::GetOptions;

/// How an etcd call failed, as far as the store's semantics go.
enum Failure {
    /// The revision asked for is before etcd's compaction point.
    Compacted,
    /// The revision asked for is after etcd's current one.
    Future,
    Other(etcd_client::Error),
}

impl Failure {
    fn of(error: etcd_client::Error) -> Failure {
        if let etcd_client::Error::GRpcStatus(status) = &error {
            // etcd's ErrCompacted and ErrFutureRev, as its gRPC layer words them.
            if status
                .message()
                .contains("required revision has been compacted")
            {
                return Failure::Compacted;
            }
            if status
                .message()
                .contains("required revision is a future revision")
            {
                return Failure::Future;
            }
        }
        Failure::Other(error)
    }
}

/// etcd's signed revisions as the store's; etcd never hands out negative ones.
pub(super) fn revision(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

/// The store's revision as etcd's; past `i64::MAX` nothing matches anyway.
pub(super) fn etcd_revision(r: u64) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

impl EtcdStore {
    /// The error for a read at `requested` that etcd refused.
    pub(super) async fn revision_error(
        &self,
        op: &'static str,
        key: &str,
        requested: u64,
        error: etcd_client::Error,
    ) -> StoreError {
        let answer = match Failure::of(error) {
            Failure::Compacted => self
                .compaction_point_after(requested)
                .await
                .map(|compacted| StoreError::Compacted {
                    requested,
                    compacted,
                }),
            Failure::Future => self
                .current_revision()
                .await
                .map(|current| StoreError::FutureRevision { requested, current }),
            Failure::Other(e) => Ok(self.failed(op, key, e)),
        };
        answer.unwrap_or_else(|e| e)
    }

    /// Whether etcd still serves reads at `at`, and its current revision.
    pub(super) async fn read_at(&self, key: &str, at: u64) -> Result<u64, StoreError> {
        let options = GetOptions::new()
            .with_count_only()
            .with_revision(etcd_revision(at));
        match self.client.kv_client().get(key, Some(options)).await {
            Ok(resp) => self.served_at(resp.header(), "read", key),
            Err(e) => Err(self.revision_error("read", key, at, e).await),
        }
    }

    /// Whether a read at `at` is still served (not compacted).
    pub(super) async fn kept(&self, at: u64) -> Result<bool, StoreError> {
        let options = GetOptions::new()
            .with_count_only()
            .with_revision(etcd_revision(at));
        match self
            .client
            .kv_client()
            .get(&*self.prefix, Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match Failure::of(e) {
                Failure::Compacted => Ok(false),
                Failure::Future => Ok(true),
                Failure::Other(e) => Err(self.failed("read", &self.prefix, e)),
            },
        }
    }

    /// etcd's compaction point, known to be after `refused` (a revision
    /// etcd no longer serves): the first revision it still reads at, found
    /// by bisection up to the current revision, which it always serves.
    pub(super) async fn compaction_point_after(&self, refused: u64) -> Result<u64, StoreError> {
        let (mut lo, mut hi) = (refused, self.current_revision().await?);
        while hi > lo + 1 {
            let mid = lo + (hi - lo) / 2;
            if self.kept(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    /// [`Store::compact`] on etcd: see the module docs of [`super`].
    pub(super) async fn compact_to(&self, revision: u64) -> Result<u64, StoreError> {
        let target = revision.min(self.current_revision().await?);
        if !self.kept(target.max(1)).await? {
            // Already compacted past it: compaction never goes back.
            return self.compaction_point_after(target.max(1)).await;
        }
        if target <= 1 {
            // Revision 1 is the empty store: nothing before it to forget.
            return Ok(target);
        }
        match self
            .client
            .kv_client()
            .compact(etcd_revision(target), None)
            .await
        {
            Ok(_) => {
                tracing::debug!(endpoints = %self.endpoints, revision = target, "etcd compacted");
                Ok(target)
            }
            // Compacted at or past `target` meanwhile, by someone else.
            Err(e) => match Failure::of(e) {
                Failure::Compacted if self.kept(target).await? => Ok(target),
                Failure::Compacted => self.compaction_point_after(target).await,
                Failure::Future => Err(StoreError::FutureRevision {
                    requested: target,
                    current: self.current_revision().await?,
                }),
                Failure::Other(e) => Err(self.failed("compact", &self.prefix, e)),
            },
        }
    }
}
