//! Deletion. A pod bound to a node is deleted gracefully: the apiserver
//! only sets `deletionTimestamp` (and the grace period), the node stops
//! the containers and then finalizes with a forced delete. A forced
//! delete (grace period 0) and the delete of anything else remove the
//! object at once. A namespace is only removed when nothing is left in
//! it, and `default` is never removed.

use super::authz::{authorize, Target, Verb};
use super::errors::from_store;
use super::handlers::Doing;
use super::{Apiserver, Identity};
use crate::store::{self, Store};
use noderun_core::defaults::{DEFAULT_NAMESPACE, DEFAULT_TERMINATION_GRACE_SECONDS};
use noderun_core::proto::{ApiError, ErrorCode, Preconditions, Response};
use noderun_core::{Kind, LabelSelector, Object, Time};

impl<S: Store> Apiserver<S> {
    pub(super) async fn delete(
        &self,
        identity: &Identity,
        target: Target<'_>,
        preconditions: Preconditions,
        grace_period_seconds: Option<i64>,
    ) -> Result<Response, ApiError> {
        let doing = Doing {
            verb: Verb::Delete,
            target,
            identity,
        };
        let grant = authorize(identity, doing.verb, &target)?;
        let stored = self.read_authorized(&doing, &grant).await?;
        check_preconditions(&stored, &preconditions, &doing)?;
        if let Object::Pod(pod) = &stored {
            let force = grace_period_seconds == Some(0);
            if !force && !pod.spec.node_name.is_empty() {
                return self
                    .delete_gracefully(stored.clone(), grace_period_seconds, &doing)
                    .await;
            }
        }
        if target.kind == Kind::Namespace {
            self.require_empty_namespace(target.name, &doing).await?;
        }
        let store_preconditions = store::Preconditions {
            uid: Some(stored.metadata().uid.clone()),
            resource_version: preconditions.resource_version,
        };
        let deleted = self
            .store
            .delete(
                target.kind,
                target.namespace,
                target.name,
                store_preconditions,
            )
            .await;
        Ok(Response::Deleted(
            deleted.map_err(|e| from_store(e, &doing))?,
        ))
    }

    /// Mark a bound pod for deletion; the node finishes it. A pod already
    /// marked is returned as it is (deleting twice is not an error), unless
    /// the new grace period is shorter.
    async fn delete_gracefully(
        &self,
        mut object: Object,
        grace_period_seconds: Option<i64>,
        doing: &Doing<'_>,
    ) -> Result<Response, ApiError> {
        let Object::Pod(pod) = &mut object else {
            return Err(ApiError::new(
                ErrorCode::Internal,
                format!("{doing}: not a pod"),
            ));
        };
        let grace = grace_period_seconds
            .or(pod.spec.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS)
            .max(1);
        let meta = &mut pod.metadata;
        if meta.is_terminating()
            && meta
                .deletion_grace_period_seconds
                .is_some_and(|g| g <= grace)
        {
            return Ok(Response::Deleted(object));
        }
        meta.deletion_timestamp = Some(Time::now());
        meta.deletion_grace_period_seconds = Some(grace);
        let marked = self.store.update(object).await;
        Ok(Response::Deleted(marked.map_err(|e| from_store(e, doing))?))
    }

    async fn require_empty_namespace(
        &self,
        namespace: &str,
        doing: &Doing<'_>,
    ) -> Result<(), ApiError> {
        if namespace == DEFAULT_NAMESPACE {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("{doing}: the default namespace cannot be deleted"),
            ));
        }
        for kind in Kind::ALL.into_iter().filter(|k| k.is_namespaced()) {
            let (items, _) = self
                .store
                .list(kind, Some(namespace), &LabelSelector::default(), None)
                .await
                .map_err(|e| from_store(e, doing))?;
            if !items.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "{doing}: the namespace still holds {} {}; delete them first",
                        items.len(),
                        kind.plural()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_preconditions(
    stored: &Object,
    preconditions: &Preconditions,
    doing: &Doing<'_>,
) -> Result<(), ApiError> {
    let meta = stored.metadata();
    if let Some(uid) = preconditions.uid.as_ref().filter(|u| **u != meta.uid) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{doing}: precondition uid {uid} does not match the stored uid {}",
                meta.uid
            ),
        ));
    }
    if let Some(rv) = preconditions
        .resource_version
        .filter(|rv| *rv != meta.resource_version)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{doing}: precondition resourceVersion {rv} does not match the stored {}; read it again",
                meta.resource_version
            ),
        ));
    }
    Ok(())
}
