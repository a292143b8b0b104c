//! [`EtcdStore`]: the store on an etcd v3 cluster, with the semantics of
//! the embedded backend and etcd's revision as the resourceVersion.
//!
//! Layout: each object is one key, `<prefix><plural>/<namespace>/<name>`
//! (prefix `/noderun/` unless the URL names another), its value the
//! postcard-encoded object (the embedded store's encoding). The stored
//! bytes carry no resourceVersion: it is the key's `mod_revision`, set on
//! every read.
//!
//! Each write is one etcd transaction, so one revision: create puts if the
//! key's `create_revision` is 0; update puts if its `mod_revision` is the
//! object's resourceVersion; delete reads the object, checks the uid and
//! resourceVersion preconditions, and deletes if the `mod_revision` is
//! still the one it checked (reading again when another write came first).
//! Lists read one prefix range at one revision, page by page; watches are
//! etcd watches from the revision after the requested one, with the
//! previous value, so that deletes and label changes can be told apart.
//! Label selectors filter here, not in etcd.
//!
//! Where etcd differs, and what this backend does about it:
//! - An empty etcd is at revision 1, not 0, and other users of the same
//!   etcd (another prefix) advance the revision too: revisions are unique
//!   and increasing, but not contiguous per store.
//! - etcd keeps the state *at* its compaction revision, as the embedded
//!   store does, but a watch may start at it; this backend refuses a watch
//!   from before the compaction point itself (by reading at that revision
//!   first) so that both backends answer [`StoreError::Compacted`] alike.
//! - etcd does not say where it compacted; when an answer needs it (the
//!   `compacted` of the error, or [`Store::compact`]'s result), this
//!   backend finds it by bisecting reads at old revisions, which only
//!   happens on those error paths.
//! - A live watch that etcd cancels (compacted while it lagged), whose
//!   stream breaks, or whose event lacks the previous value (compacted
//!   meanwhile) ends: [`Watcher::next`] returns `None`, which the apiserver
//!   turns into "expired, relist", as for a watcher that fell behind.

mod options;
mod revisions;
mod watch;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

pub use options::{EtcdOptions, EtcdUrlError, DEFAULT_PREFIX};
use revisions::{etcd_revision, revision};

use super::codec::{decode_object, encode};
use super::error::Mismatch;
use super::{ObjectKey, Preconditions, Store, StoreError, WatchFilter, Watcher};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, ResponseHeader, Txn, TxnOp,
    TxnOpResponse, TxnResponse,
};
use noderun_core::{Kind, LabelSelector, Object};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting, and the first request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys read per range request of a list (etcd answers are capped in
/// size; pages keep each well under it).
const PAGE: i64 = 1000;

/// The etcd backend. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: Arc<str>,
    /// `etcd://HOST:PORT,...`, for errors.
    endpoints: Arc<str>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The first key after every key starting with `prefix` (etcd's range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl EtcdStore {
    /// Connect to the cluster `options` names and check that it answers.
    pub async fn connect(options: &EtcdOptions) -> Result<EtcdStore, StoreError> {
        let endpoints: Arc<str> = options.display_endpoints().into();
        let connect = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|e| backend("connect", location(&endpoints, ""), e))?;
        let store = EtcdStore {
            client,
            prefix: options.prefix.as_str().into(),
            endpoints,
        };
        // One request now, so that a wrong address fails here, naming it,
        // rather than at the first write.
        match tokio::time::timeout(CONNECT_TIMEOUT, store.current_revision()).await {
            Ok(answer) => answer?,
            Err(_) => {
                let why = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {CONNECT_TIMEOUT:?}; is etcd running there?"),
                );
                return Err(backend("connect", store.location(""), why));
            }
        };
        tracing::info!(endpoints = %store.endpoints, prefix = %store.prefix, "connected to etcd");
        Ok(store)
    }

    /// The etcd key of `key`.
    fn key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.storage_key())
    }

    /// The etcd key prefix of every object of `kind` (in `namespace`).
    fn range_prefix(&self, kind: Kind, namespace: Option<&str>) -> String {
        format!(
            "{}{}",
            self.prefix,
            ObjectKey::storage_prefix(kind, namespace)
        )
    }

    /// `etcd://HOST:PORT/<key>`: where a failure happened.
    fn location(&self, key: &str) -> PathBuf {
        location(&self.endpoints, key)
    }

    fn failed(&self, op: &'static str, key: &str, error: etcd_client::Error) -> StoreError {
        backend(op, self.location(key), error)
    }

    /// The object in `kv`, its resourceVersion the key's mod_revision.
    fn decode(&self, kv: &KeyValue) -> Result<Object, StoreError> {
        let key = String::from_utf8_lossy(kv.key());
        let short = key.strip_prefix(&*self.prefix).unwrap_or(&key);
        let mut object = decode_object(kv.value(), short, &self.location(&key))?;
        object.metadata_mut().resource_version = revision(kv.mod_revision());
        Ok(object)
    }

    /// The revision an answer was served at.
    fn served_at(
        &self,
        header: Option<&ResponseHeader>,
        op: &'static str,
        key: &str,
    ) -> Result<u64, StoreError> {
        match header {
            Some(h) => Ok(revision(h.revision())),
            None => Err(backend(
                op,
                self.location(key),
                std::io::Error::other("etcd answered without a response header"),
            )),
        }
    }

    async fn txn(&self, op: &'static str, key: &str, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.failed(op, key, e))
    }

    /// The key's current value, if any.
    async fn get_kv(&self, op: &'static str, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut resp = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(|e| self.failed(op, key, e))?;
        Ok(resp.take_kvs().into_iter().next())
    }
}

fn location(endpoints: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("{endpoints}{key}"))
}

fn backend<E>(op: &'static str, path: PathBuf, e: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Backend {
        op,
        path,
        source: Arc::new(e),
    }
}

/// The value the `or_else` get of a failed transaction found.
fn found_instead(resp: &TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
        _ => None,
    })
}

/// Whether `stored` meets the delete's `preconditions`.
fn check_preconditions(
    key: &ObjectKey,
    stored: &Object,
    preconditions: &Preconditions,
) -> Result<(), StoreError> {
    let meta = stored.metadata();
    let mismatch = match preconditions {
        Preconditions { uid: Some(uid), .. } if *uid != meta.uid => Mismatch::Uid {
            expected: uid.clone(),
            stored: meta.uid.clone(),
        },
        Preconditions {
            resource_version: Some(rv),
            ..
        } if *rv != meta.resource_version => Mismatch::ResourceVersion {
            expected: *rv,
            stored: meta.resource_version,
        },
        _ => return Ok(()),
    };
    Err(StoreError::Conflict {
        key: key.clone(),
        mismatch,
    })
}

impl Store for EtcdStore {
    async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(Object, u64), StoreError> {
        let key = ObjectKey::new(kind, namespace, name)?;
        let ekey = self.key(&key);
        let resp = self
            .client
            .kv_client()
            .get(ekey.as_str(), None)
            .await
            .map_err(|e| self.failed("get", &ekey, e))?;
        let at = self.served_at(resp.header(), "get", &ekey)?;
        match resp.kvs().first() {
            Some(kv) => Ok((self.decode(kv)?, at)),
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
        let prefix = self.range_prefix(kind, namespace);
        let end = prefix_end(&prefix);
        // Revision 0 is before every write: etcd's revision 1, the empty
        // store (etcd reads "0" as "latest").
        let mut at = at_revision.map(|r| r.max(1));
        let mut from = prefix.clone().into_bytes();
        let mut items = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if let Some(at) = at {
                options = options.with_revision(etcd_revision(at));
            }
            let resp = match self.client.kv_client().get(from, Some(options)).await {
                Ok(resp) => resp,
                Err(e) => {
                    let requested = at_revision.or(at).unwrap_or(0);
                    return Err(self.revision_error("list", &prefix, requested, e).await);
                }
            };
            // Later pages read at the revision of the first.
            let served = match at {
                Some(at) => at,
                None => self.served_at(resp.header(), "list", &prefix)?,
            };
            at = Some(served);
            for kv in resp.kvs() {
                let object = self.decode(kv)?;
                if selector.matches(&object.metadata().labels) {
                    items.push(object);
                }
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok((items, served)),
            }
        }
    }

    async fn create(&self, object: Object) -> Result<Object, StoreError> {
        let key = ObjectKey::of(&object)?;
        let ekey = self.key(&key);
        let mut object = object;
        object.metadata_mut().resource_version = 0;
        let bytes = encode(&object, &key)?;
        let txn = Txn::new()
            .when([Compare::create_revision(ekey.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(ekey.as_str(), bytes, None)]);
        let resp = self.txn("create", &ekey, txn).await?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists { key });
        }
        object.metadata_mut().resource_version = self.served_at(resp.header(), "create", &ekey)?;
        Ok(object)
    }

    async fn update(&self, object: Object) -> Result<Object, StoreError> {
        let key = ObjectKey::of(&object)?;
        let ekey = self.key(&key);
        let expected = object.metadata().resource_version;
        let mut object = object;
        object.metadata_mut().resource_version = 0;
        let bytes = encode(&object, &key)?;
        let txn = Txn::new()
            .when([
                // The key exists (a mod_revision of 0 would match its absence).
                Compare::version(ekey.as_str(), CompareOp::Greater, 0),
                Compare::mod_revision(ekey.as_str(), CompareOp::Equal, etcd_revision(expected)),
            ])
            .and_then([TxnOp::put(ekey.as_str(), bytes, None)])
            .or_else([TxnOp::get(ekey.as_str(), None)]);
        let resp = self.txn("update", &ekey, txn).await?;
        if !resp.succeeded() {
            return Err(match found_instead(&resp) {
                None => StoreError::NotFound { key },
                Some(kv) => StoreError::Conflict {
                    key,
                    mismatch: Mismatch::ResourceVersion {
                        expected,
                        stored: revision(kv.mod_revision()),
                    },
                },
            });
        }
        object.metadata_mut().resource_version = self.served_at(resp.header(), "update", &ekey)?;
        Ok(object)
    }

    async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        preconditions: Preconditions,
    ) -> Result<Object, StoreError> {
        let key = ObjectKey::new(kind, namespace, name)?;
        let ekey = self.key(&key);
        let mut current = self.get_kv("delete", &ekey).await?;
        // Until the object checked is the one deleted: a write between the
        // read and the delete makes etcd answer with the newer value.
        loop {
            let Some(kv) = current else {
                return Err(StoreError::NotFound { key });
            };
            let mut gone = self.decode(&kv)?;
            check_preconditions(&key, &gone, &preconditions)?;
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    ekey.as_str(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                )])
                .and_then([TxnOp::delete(ekey.as_str(), None)])
                .or_else([TxnOp::get(ekey.as_str(), None)]);
            let resp = self.txn("delete", &ekey, txn).await?;
            if resp.succeeded() {
                gone.metadata_mut().resource_version =
                    self.served_at(resp.header(), "delete", &ekey)?;
                return Ok(gone);
            }
            current = found_instead(&resp);
        }
    }

    async fn watch(&self, filter: WatchFilter, from_revision: u64) -> Result<Watcher, StoreError> {
        watch::open(self, filter, from_revision).await
    }

    async fn compact(&self, revision: u64) -> Result<u64, StoreError> {
        self.compact_to(revision).await
    }

    async fn current_revision(&self) -> Result<u64, StoreError> {
        let resp = self
            .client
            .kv_client()
            .get(&*self.prefix, Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| self.failed("read revision", &self.prefix, e))?;
        self.served_at(resp.header(), "read revision", &self.prefix)
    }
}
