//! [`Reflector`]: a controller's cache of one kind, kept by list + watch
//! over a connection of its own. A watch the apiserver ends with
//! `Expired` (it fell behind) is reported as [`Change::Expired`]; the
//! controller then calls [`Reflector::resync`], which lists afresh and
//! watches on from the list's revision.
//!
//! The controller's own writes go into the cache as soon as the apiserver
//! answers ([`Reflector::record`], [`Reflector::record_deleted`]), so a
//! reconcile that runs before the watch catches up does not act twice
//! (create a pod again, delete another one). Events older than what the
//! cache holds are ignored; a deleted object leaves a tombstone for a
//! while so that a late event of its past does not bring it back.
//!
//! Why a connection per reflector: the client's connection blocks its
//! reader while one watch's queue is full, and a controller does not read
//! its watches while it waits for its own writes. On a shared connection
//! the answer to those writes would then wait behind the events: a
//! deadlock. On its own connection a watch only falls behind, and the
//! apiserver tells it to relist.

use crate::client::{Client, ClientError, ListOptions, WatchStream};
use noderun_core::proto::EventType;
use noderun_core::{Kind, Object};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
pub type Key = (String, String);

/// The key of `object`.
pub fn key_of(object: &Object) -> Key {
    let meta = object.metadata();
    (meta.namespace.clone(), meta.name.clone())
}

/// How long a deleted object's tombstone outlives the delete.
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

/// What changed in a cache.
#[derive(Debug, Clone)]
pub enum Change {
    /// Added or modified: the previous version, if the cache had one.
    Upserted {
        old: Option<Box<Object>>,
        new: Box<Object>,
    },
    /// Removed: its last version.
    Deleted(Box<Object>),
    /// The watch ended: call [`Reflector::resync`].
    Expired,
}

/// A cache of the objects of one kind (in one namespace, or all).
#[derive(Debug)]
pub struct Reflector {
    kind: Kind,
    namespace: Option<String>,
    client: Client,
    stream: Option<WatchStream>,
    objects: BTreeMap<Key, Object>,
    /// Deleted by this controller: the last resourceVersion and when.
    tombstones: HashMap<Key, (u64, Instant)>,
}

impl Reflector {
    /// List and watch `kind` (in `namespace`, or all) over `client`, which
    /// should be a connection of its own.
    pub async fn start(
        client: Client,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<Reflector, ClientError> {
        let mut reflector = Reflector {
            kind,
            namespace: namespace.map(str::to_owned),
            client,
            stream: None,
            objects: BTreeMap::new(),
            tombstones: HashMap::new(),
        };
        reflector.resync().await?;
        Ok(reflector)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The next change the watch brings. Cancel-safe: nothing is lost when
    /// the future is dropped before it is ready. `Err(Closed)` when the
    /// connection is gone.
    pub async fn next(&mut self) -> Result<Change, ClientError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(Change::Expired);
            };
            let Some(event) = stream.next().await else {
                return Err(ClientError::Closed);
            };
            let change = match (event.event_type, event.object) {
                (EventType::Expired, _) => {
                    tracing::info!(kind = %self.kind, revision = event.revision,
                        "watch expired; relisting");
                    self.stream = None;
                    Some(Change::Expired)
                }
                (EventType::Deleted, Some(object)) => self.remove(object, event.revision),
                (_, Some(object)) => self.apply(object),
                (_, None) => None,
            };
            if let Some(change) = change {
                return Ok(change);
            }
        }
    }

    /// List afresh and watch from the list's revision. Objects this
    /// controller wrote after that revision are kept (the watch will
    /// confirm them), and its recent deletes stay deleted.
    pub async fn resync(&mut self) -> Result<(), ClientError> {
        self.stream = None;
        let options = ListOptions::default();
        let ns = self.namespace.as_deref();
        let (items, revision) = self.client.list(self.kind, ns, &options).await?;
        let now = Instant::now();
        self.tombstones
            .retain(|_, (_, at)| now.duration_since(*at) < TOMBSTONE_TTL);
        let mut objects: BTreeMap<Key, Object> = items
            .into_iter()
            .filter(|o| !self.is_buried(&key_of(o), o.metadata().resource_version))
            .map(|o| (key_of(&o), o))
            .collect();
        for (key, object) in std::mem::take(&mut self.objects) {
            if object.metadata().resource_version > revision {
                objects.insert(key, object);
            }
        }
        self.objects = objects;
        let stream = self.client.watch(self.kind, ns, &options, revision).await?;
        self.stream = Some(stream);
        tracing::debug!(kind = %self.kind, revision, objects = self.objects.len(), "listed");
        Ok(())
    }

    /// Put an object this controller just wrote into the cache.
    pub fn record(&mut self, object: Object) {
        self.apply(object);
    }

    /// Forget an object this controller just deleted.
    pub fn record_deleted(&mut self, object: &Object) {
        let key = key_of(object);
        self.objects.remove(&key);
        let rv = object.metadata().resource_version;
        self.tombstones.insert(key, (rv, Instant::now()));
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&Object> {
        self.objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Every cached object, by namespace and name.
    pub fn iter(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    /// The cached objects of one namespace.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Object> {
        self.objects
            .range((namespace.to_owned(), String::new())..)
            .take_while(move |((ns, _), _)| ns == namespace)
            .map(|(_, o)| o)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn is_buried(&self, key: &Key, resource_version: u64) -> bool {
        self.tombstones
            .get(key)
            .is_some_and(|(rv, _)| resource_version <= *rv)
    }

    fn apply(&mut self, object: Object) -> Option<Change> {
        let key = key_of(&object);
        let rv = object.metadata().resource_version;
        if self.is_buried(&key, rv) {
            return None;
        }
        let newer_cached = self
            .objects
            .get(&key)
            .is_some_and(|o| o.metadata().resource_version >= rv);
        if newer_cached {
            return None;
        }
        let old = self.objects.insert(key, object.clone());
        Some(Change::Upserted {
            old: old.map(Box::new),
            new: Box::new(object),
        })
    }

    fn remove(&mut self, object: Object, revision: u64) -> Option<Change> {
        let key = key_of(&object);
        self.tombstones.remove(&key);
        let recreated = self
            .objects
            .get(&key)
            .is_some_and(|o| o.metadata().resource_version > revision);
        if recreated {
            return None;
        }
        let last = self.objects.remove(&key)?;
        Some(Change::Deleted(Box::new(last)))
    }
}
