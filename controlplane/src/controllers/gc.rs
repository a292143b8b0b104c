//! The garbage collector: a pod whose owners are all gone is deleted. That
//! is the background cascade of a ReplicaSet's delete: the set goes at
//! once, its pods after it. An owner is gone when no object of its kind
//! and name has its uid. The ReplicaSet cache only says where to look:
//! before a delete the owner is read from the apiserver, since a set
//! created a moment ago may not be in the cache yet while its pods are.

use super::pod_delete::delete_pod;
use super::reconcile_loop::{drive, Controller};
use super::reflector::{key_of, Change, Key, Reflector};
use super::{reflect, Connector, ControllerError, ControllerOptions, Shutdown};
use crate::client::{Client, ClientError};
use noderun_core::proto::ErrorCode;
use noderun_core::{Kind, Object, OwnerReference};
use std::time::Duration;

pub const NAME: &str = "gc";

pub(super) async fn run(
    connector: &Connector,
    options: &ControllerOptions,
    shutdown: Shutdown,
) -> Result<(), ControllerError> {
    let mut controller = GarbageCollector {
        client: connector.connect(NAME).await?,
        pods: reflect(connector, Kind::Pod, None).await?,
        sets: reflect(connector, Kind::ReplicaSet, None).await?,
    };
    drive(&mut controller, options, shutdown).await
}

struct GarbageCollector {
    client: Client,
    pods: Reflector,
    sets: Reflector,
}

impl Controller for GarbageCollector {
    const NAME: &'static str = NAME;

    fn caches(&mut self) -> (&mut Reflector, &mut Reflector) {
        (&mut self.pods, &mut self.sets)
    }

    fn keys_for(&mut self, cache: usize, change: &Change) -> Vec<Key> {
        match (cache, change) {
            (0, Change::Upserted { new, .. }) if has_owners(new) => vec![key_of(new)],
            (1, Change::Deleted(owner)) => {
                let meta = owner.metadata();
                self.pods
                    .in_namespace(&meta.namespace)
                    .filter(|p| {
                        let refs = &p.metadata().owner_references;
                        refs.iter().any(|r| r.uid == meta.uid)
                    })
                    .map(key_of)
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn all_keys(&self) -> Vec<Key> {
        self.pods
            .iter()
            .filter(|p| has_owners(p))
            .map(key_of)
            .collect()
    }

    async fn reconcile(&mut self, key: &Key) -> Result<Option<Duration>, ClientError> {
        let Some(pod) = self.pods.get(&key.0, &key.1).cloned() else {
            return Ok(None);
        };
        let meta = pod.metadata();
        if meta.is_terminating() || meta.owner_references.is_empty() {
            return Ok(None);
        }
        for owner in &meta.owner_references {
            if self.owner_exists(&meta.namespace, owner).await? {
                return Ok(None);
            }
        }
        let Object::Pod(pod) = &pod else {
            return Ok(None);
        };
        if delete_pod(&self.client, &mut self.pods, pod, false).await? {
            let owner = &meta.owner_references[0];
            tracing::info!(namespace = %meta.namespace, pod = %meta.name,
                owner_kind = %owner.kind, owner = %owner.name, owner_uid = %owner.uid,
                "deleted pod: its owner is gone");
        }
        Ok(None)
    }
}

impl GarbageCollector {
    /// Whether the object `owner` names still exists with its uid.
    async fn owner_exists(
        &self,
        namespace: &str,
        owner: &OwnerReference,
    ) -> Result<bool, ClientError> {
        let ns = if owner.kind.is_namespaced() {
            namespace
        } else {
            ""
        };
        if owner.kind == Kind::ReplicaSet {
            let cached = self.sets.get(ns, &owner.name);
            if cached.is_some_and(|o| o.metadata().uid == owner.uid) {
                return Ok(true);
            }
        }
        match self.client.get(owner.kind, ns, &owner.name).await {
            Ok(o) => Ok(o.metadata().uid == owner.uid),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(false),
            // An owner it may not read is one it cannot know to be gone.
            Err(e) if e.code() == Some(ErrorCode::Forbidden) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

fn has_owners(object: &Object) -> bool {
    !object.metadata().owner_references.is_empty()
}
