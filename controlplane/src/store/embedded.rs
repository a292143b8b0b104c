//! [`EmbeddedStore`]: the default backend, one redb file (`store.redb`)
//! under the data dir and no external process.
//!
//! Three tables: `objects` (storage key → postcard [`Object`]), `history`
//! (revision → the key and the object before and after that write, kept
//! after the compaction point for watch replay and lists at old revisions)
//! and `meta` (`revision`, `compacted`). Every write is one redb
//! durable redb commit (fsync) before it is acknowledged, so a reopen after
//! kill -9 finds every acknowledged write. Writes are serialized by one lock
//! that also covers publishing the changes to watchers, which is what gives
//! watches their order.
//!
//! Group commit: one thread of the store's own (`store-commit`) does every
//! write. A write is queued on its channel with a oneshot for the answer,
//! and the caller's task awaits that oneshot — no thread of tokio's
//! blocking pool per write. The thread takes every write waiting (up to
//! [`MAX_BATCH`]) into one transaction, each its own revision, a failed
//! precondition failing only its own write, commits once, publishes and
//! answers; so concurrent writers share one fsync, and a batch costs one
//! thread wake-up instead of one per writer. The thread ends, after the
//! writes still queued, when the last handle of the store is dropped, and
//! the drop waits for it so that the file can be opened again at once.

use super::codec::{decode_object, encode};
use super::watch::{WatchHub, Watcher};
use super::{Change, ObjectKey, Preconditions, Store, StoreError, WatchFilter};
use crate::store::error::Mismatch;
use noderun_core::{Kind, LabelSelector, Object};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 1024;

/// The file name of the store inside the data dir.
pub const FILE_NAME: &str = "store.redb";

/// Where and how to open an [`EmbeddedStore`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The directory holding `store.redb`; created if missing.
    pub data_dir: PathBuf,
}

/// One write as the history table keeps it.
#[derive(Serialize, Deserialize)]
struct HistoryRecord {
    key: String,
    /// As stored before the write (its own resourceVersion).
    before: Option<Object>,
    after: Option<Object>,
}

/// The revision counters, owned by whoever holds the write lock.
struct Revisions {
    current: u64,
    compacted: u64,
}

struct Inner {
    db: Database,
    path: PathBuf,
    writer: Mutex<Revisions>,
    hub: WatchHub,
}

/// Where a queued write's answer goes.
type ReplyTo = oneshot::Sender<Result<Object, StoreError>>;

/// A queued write and where its answer goes.
struct Pending {
    key: ObjectKey,
    apply: Box<WriteFn>,
    reply: ReplyTo,
}

/// A write applied inside the batch's transaction, not yet committed.
struct Applied {
    revision: u64,
    before: Option<Object>,
    after: Option<Object>,
    reply: Object,
}

/// The embedded store. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct EmbeddedStore {
    // Dropped first: the last handle stops the commit thread before the
    // database goes.
    committer: Arc<Committer>,
    inner: Arc<Inner>,
}

/// The commit thread and the channel to it.
struct Committer {
    queue: Option<mpsc::Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has done what is queued.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Open (or create) the store under `options.data_dir`.
    pub fn open(options: &EmbeddedOptions) -> Result<EmbeddedStore, StoreError> {
        let path = options.data_dir.join(FILE_NAME);
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| backend("create data dir", &path, e))?;
        let db = Database::create(&path).map_err(|e| backend("open", &path, e))?;
        let txn = db
            .begin_write()
            .map_err(|e| backend("begin write", &path, e))?;
        let revisions = {
            txn.open_table(OBJECTS)
                .map_err(|e| backend("open objects", &path, e))?;
            txn.open_table(HISTORY)
                .map_err(|e| backend("open history", &path, e))?;
            let meta = txn
                .open_table(META)
                .map_err(|e| backend("open meta", &path, e))?;
            Revisions {
                current: read_meta(&meta, META_REVISION, &path)?,
                compacted: read_meta(&meta, META_COMPACTED, &path)?,
            }
        };
        txn.commit().map_err(|e| backend("commit", &path, e))?;
        tracing::info!(path = %path.display(), revision = revisions.current, "store opened");
        let inner = Arc::new(Inner {
            db,
            path,
            writer: Mutex::new(revisions),
            hub: WatchHub::default(),
        });
        let (queue, writes) = mpsc::channel();
        let committing = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || committing.commit_loop(&writes))
            .map_err(|e| backend("start the commit thread", &inner.path, e))?;
        Ok(EmbeddedStore {
            committer: Arc::new(Committer {
                queue: Some(queue),
                thread: Some(thread),
            }),
            inner,
        })
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// One durable write of `key` at the next revision, done by the commit
    /// thread together with every write queued at the same time (see the
    /// module docs); published to the watchers before it is answered.
    async fn write(&self, key: ObjectKey, apply: Box<WriteFn>) -> Result<Object, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || {
            backend(
                "group commit",
                &self.inner.path,
                std::io::Error::other("the commit thread has stopped"),
            )
        };
        let queue = self.committer.queue.as_ref().ok_or_else(gone)?;
        queue
            .send(Pending { key, apply, reply })
            .map_err(|_| gone())?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Run `f` on tokio's blocking pool: redb reads and fsyncs block.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| backend("blocking task", &self.inner.path, e))?
    }
}

fn backend<E>(op: &'static str, path: &Path, e: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend {
        op,
        path: path.to_owned(),
        source: Arc::new(e),
    }
}

fn read_meta(
    meta: &impl ReadableTable<&'static str, u64>,
    name: &str,
    path: &Path,
) -> Result<u64, StoreError> {
    Ok(meta
        .get(name)
        .map_err(|e| backend("read meta", path, e))?
        .map(|v| v.value())
        .unwrap_or(0))
}

fn decode_history(bytes: &[u8], revision: u64, path: &Path) -> Result<HistoryRecord, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Corrupt {
        what: format!("history entry {revision}"),
        path: path.to_owned(),
        source,
    })
}

/// What a write does to the object it found (`None`: absent): the object
/// to store (`None`: remove), and the object to return to the caller.
type WriteFn =
    dyn FnOnce(Option<Object>, u64) -> Result<(Option<Object>, Object), StoreError> + Send;

impl Inner {
    fn lock_writer(&self) -> MutexGuard<'_, Revisions> {
        // The counters are only advanced after a commit succeeded, so a
        // panic elsewhere under the lock leaves them valid.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The commit thread: take every queued write (at most [`MAX_BATCH`]),
    /// commit them as one transaction, repeat until the channel closes.
    fn commit_loop(&self, writes: &mpsc::Receiver<Pending>) {
        while let Ok(first) = writes.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match writes.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let mut revisions = self.lock_writer();
            self.commit_batch(&mut revisions, batch);
        }
    }

    /// Apply `batch` in order in one transaction, commit once, publish,
    /// answer every write. A write whose precondition fails gets its error
    /// and takes no revision; a failing transaction fails the whole batch.
    fn commit_batch(&self, revisions: &mut Revisions, batch: Vec<Pending>) {
        let mut answers = Vec::with_capacity(batch.len());
        let outcome = self.apply_batch(revisions.current, batch, &mut answers);
        match outcome {
            Ok(applied) => {
                if let Some(last) = applied.last() {
                    revisions.current = last.revision;
                }
                let mut replies = applied.into_iter();
                for (reply, result) in answers {
                    let result = match result {
                        Some(err) => Err(err),
                        None => {
                            let a = replies.next().expect("one applied write per success");
                            self.hub
                                .publish(Arc::new(change_of(a.revision, a.before, a.after)));
                            Ok(a.reply)
                        }
                    };
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for (reply, _) in answers {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// The transaction of one batch. `answers` gets, per write in order,
    /// its reply channel and its own error (`None`: applied, its result is
    /// the next of the returned list).
    fn apply_batch(
        &self,
        current: u64,
        batch: Vec<Pending>,
        answers: &mut Vec<(ReplyTo, Option<StoreError>)>,
    ) -> Result<Vec<Applied>, StoreError> {
        let path = &self.path;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| backend("begin write", path, e))?;
        let mut applied = Vec::with_capacity(batch.len());
        {
            let mut objects = txn
                .open_table(OBJECTS)
                .map_err(|e| backend("open objects", path, e))?;
            let mut history = txn
                .open_table(HISTORY)
                .map_err(|e| backend("open history", path, e))?;
            let mut revision = current;
            for Pending { key, apply, reply } in batch {
                let skey = key.storage_key();
                let before = match objects
                    .get(skey.as_str())
                    .map_err(|e| backend("read", path, e))?
                {
                    Some(bytes) => Some(decode_object(bytes.value(), &skey, path)?),
                    None => None,
                };
                let (after, result) = match apply(before.clone(), revision + 1) {
                    Ok(done) => done,
                    Err(e) => {
                        answers.push((reply, Some(e)));
                        continue;
                    }
                };
                match &after {
                    Some(object) => {
                        let bytes = encode(object, &key)?;
                        objects
                            .insert(skey.as_str(), bytes.as_slice())
                            .map_err(|e| backend("write object", path, e))?;
                    }
                    None => {
                        objects
                            .remove(skey.as_str())
                            .map_err(|e| backend("remove object", path, e))?;
                    }
                }
                revision += 1;
                let record = HistoryRecord {
                    key: skey,
                    before,
                    after,
                };
                let bytes = encode(&record, &key)?;
                history
                    .insert(revision, bytes.as_slice())
                    .map_err(|e| backend("write history", path, e))?;
                answers.push((reply, None));
                applied.push(Applied {
                    revision,
                    before: record.before,
                    after: record.after,
                    reply: result,
                });
            }
            if revision != current {
                let mut meta = txn
                    .open_table(META)
                    .map_err(|e| backend("open meta", path, e))?;
                meta.insert(META_REVISION, revision)
                    .map_err(|e| backend("write revision", path, e))?;
            }
        }
        if applied.is_empty() {
            txn.abort().map_err(|e| backend("abort", path, e))?;
        } else {
            txn.commit().map_err(|e| backend("commit", path, e))?;
        }
        Ok(applied)
    }

    /// The changes after `from` up to `to`, read from the history table.
    fn history(&self, from: u64, to: u64) -> Result<Vec<(u64, HistoryRecord)>, StoreError> {
        let path = &self.path;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| backend("begin read", path, e))?;
        let table = txn
            .open_table(HISTORY)
            .map_err(|e| backend("open history", path, e))?;
        let mut out = Vec::new();
        for entry in table
            .range((from + 1)..=to)
            .map_err(|e| backend("read history", path, e))?
        {
            let (rev, bytes) = entry.map_err(|e| backend("read history", path, e))?;
            out.push((
                rev.value(),
                decode_history(bytes.value(), rev.value(), path)?,
            ));
        }
        Ok(out)
    }
}

/// The change the watchers see: the before object carries the revision of
/// the write, as Deleted events do.
fn change_of(revision: u64, before: Option<Object>, after: Option<Object>) -> Change {
    let before = before.map(|mut o| {
        o.metadata_mut().resource_version = revision;
        Arc::new(o)
    });
    Change {
        revision,
        after: after.map(Arc::new),
        before,
    }
}

fn check_revision(at: u64, current: u64, compacted: u64) -> Result<(), StoreError> {
    if at > current {
        return Err(StoreError::FutureRevision {
            requested: at,
            current,
        });
    }
    if at < compacted {
        return Err(StoreError::Compacted {
            requested: at,
            compacted,
        });
    }
    Ok(())
}

impl Store for EmbeddedStore {
    async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(Object, u64), StoreError> {
        let key = ObjectKey::new(kind, namespace, name)?;
        // Inline, not on the blocking pool: a point read is a few
        // microseconds from redb's cache, less than the hand-off.
        let inner = &self.inner;
        let path = &inner.path;
        let txn = inner
            .db
            .begin_read()
            .map_err(|e| backend("begin read", path, e))?;
        let meta = txn
            .open_table(META)
            .map_err(|e| backend("open meta", path, e))?;
        let revision = read_meta(&meta, META_REVISION, path)?;
        let objects = txn
            .open_table(OBJECTS)
            .map_err(|e| backend("open objects", path, e))?;
        let skey = key.storage_key();
        match objects
            .get(skey.as_str())
            .map_err(|e| backend("read", path, e))?
        {
            Some(bytes) => Ok((decode_object(bytes.value(), &skey, path)?, revision)),
            None => Err(StoreError::NotFound { key }),
        }
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: &LabelSelector,
        at_revision: Option<u64>,
    ) -> Result<(Vec<Object>, u64), StoreError> {
        let prefix = ObjectKey::storage_prefix(kind, namespace);
        let selector = selector.clone();
        self.blocking(move |inner| {
            let path = &inner.path;
            let txn = inner
                .db
                .begin_read()
                .map_err(|e| backend("begin read", path, e))?;
            let meta = txn
                .open_table(META)
                .map_err(|e| backend("open meta", path, e))?;
            let current = read_meta(&meta, META_REVISION, path)?;
            let compacted = read_meta(&meta, META_COMPACTED, path)?;
            let at = at_revision.unwrap_or(current);
            check_revision(at, current, compacted)?;
            let objects = txn
                .open_table(OBJECTS)
                .map_err(|e| backend("open objects", path, e))?;
            let mut state: BTreeMap<String, Object> = BTreeMap::new();
            for entry in objects
                .range(prefix.as_str()..)
                .map_err(|e| backend("list", path, e))?
            {
                let (k, v) = entry.map_err(|e| backend("list", path, e))?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                state.insert(
                    k.value().to_owned(),
                    decode_object(v.value(), k.value(), path)?,
                );
            }
            // Undo the writes after `at`, newest first, from the same snapshot.
            let history = txn
                .open_table(HISTORY)
                .map_err(|e| backend("open history", path, e))?;
            let newer = history
                .range((at + 1)..=current)
                .map_err(|e| backend("read history", path, e))?;
            for entry in newer.rev() {
                let (rev, bytes) = entry.map_err(|e| backend("read history", path, e))?;
                let record = decode_history(bytes.value(), rev.value(), path)?;
                if !record.key.starts_with(&prefix) {
                    continue;
                }
                match record.before {
                    Some(object) => state.insert(record.key, object),
                    None => state.remove(&record.key),
                };
            }
            let items = state
                .into_values()
                .filter(|o| selector.matches(&o.metadata().labels))
                .collect();
            Ok((items, at))
        })
        .await
    }

    async fn create(&self, object: Object) -> Result<Object, StoreError> {
        let key = ObjectKey::of(&object)?;
        let exists_key = key.clone();
        self.write(
            key,
            Box::new(move |before, revision| {
                if before.is_some() {
                    return Err(StoreError::AlreadyExists { key: exists_key });
                }
                let mut object = object;
                object.metadata_mut().resource_version = revision;
                Ok((Some(object.clone()), object))
            }),
        )
        .await
    }

    async fn update(&self, object: Object) -> Result<Object, StoreError> {
        let key = ObjectKey::of(&object)?;
        let k = key.clone();
        self.write(
            key,
            Box::new(move |before, revision| {
                let stored = before.ok_or_else(|| StoreError::NotFound { key: k.clone() })?;
                let expected = object.metadata().resource_version;
                let at = stored.metadata().resource_version;
                if expected != at {
                    return Err(StoreError::Conflict {
                        key: k,
                        mismatch: Mismatch::ResourceVersion {
                            expected,
                            stored: at,
                        },
                    });
                }
                let mut object = object;
                object.metadata_mut().resource_version = revision;
                Ok((Some(object.clone()), object))
            }),
        )
        .await
    }

    async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        preconditions: Preconditions,
    ) -> Result<Object, StoreError> {
        let key = ObjectKey::new(kind, namespace, name)?;
        let k = key.clone();
        self.write(
            key,
            Box::new(move |before, revision| {
                let stored = before.ok_or_else(|| StoreError::NotFound { key: k.clone() })?;
                let meta = stored.metadata();
                if let Some(uid) = preconditions.uid.filter(|uid| *uid != meta.uid) {
                    let mismatch = Mismatch::Uid {
                        expected: uid,
                        stored: meta.uid.clone(),
                    };
                    return Err(StoreError::Conflict { key: k, mismatch });
                }
                if let Some(expected) = preconditions
                    .resource_version
                    .filter(|rv| *rv != meta.resource_version)
                {
                    let mismatch = Mismatch::ResourceVersion {
                        expected,
                        stored: meta.resource_version,
                    };
                    return Err(StoreError::Conflict { key: k, mismatch });
                }
                let mut gone = stored;
                gone.metadata_mut().resource_version = revision;
                Ok((None, gone))
            }),
        )
        .await
    }

    async fn watch(&self, filter: WatchFilter, from_revision: u64) -> Result<Watcher, StoreError> {
        self.blocking(move |inner| {
            // Holding the write lock: no commit can fall between the replay
            // read and the subscription.
            let revisions = inner.lock_writer();
            let from = if from_revision == 0 {
                revisions.current
            } else {
                from_revision
            };
            check_revision(from, revisions.current, revisions.compacted)?;
            let replay = inner
                .history(from, revisions.current)?
                .into_iter()
                .filter_map(|(rev, r)| change_of(rev, r.before, r.after).event_for(&filter))
                .collect();
            let live = inner.hub.subscribe();
            drop(revisions);
            Ok(Watcher::new(filter, from, replay, live))
        })
        .await
    }

    async fn compact(&self, revision: u64) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            let path = &inner.path;
            let mut revisions = inner.lock_writer();
            let target = revision.min(revisions.current);
            if target <= revisions.compacted {
                return Ok(revisions.compacted);
            }
            let txn = inner
                .db
                .begin_write()
                .map_err(|e| backend("begin write", path, e))?;
            {
                let mut history = txn
                    .open_table(HISTORY)
                    .map_err(|e| backend("open history", path, e))?;
                history
                    .retain_in(..=target, |_, _| false)
                    .map_err(|e| backend("compact history", path, e))?;
                let mut meta = txn
                    .open_table(META)
                    .map_err(|e| backend("open meta", path, e))?;
                meta.insert(META_COMPACTED, target)
                    .map_err(|e| backend("write compacted", path, e))?;
            }
            txn.commit().map_err(|e| backend("commit", path, e))?;
            revisions.compacted = target;
            tracing::debug!(path = %path.display(), revision = target, "store compacted");
            Ok(target)
        })
        .await
    }

    async fn current_revision(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| Ok(inner.lock_writer().current)).await
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
