//! How the controllers delete a pod: with the uid (and, when the decision
//! rests on it, the resourceVersion) they decided on as preconditions, so
//! that a pod replaced or changed meanwhile is left alone; the answer goes
//! into the controller's cache at once.

use super::reflector::Reflector;
use crate::client::{Client, ClientError, DeleteOptions};
use noderun_core::proto::{ErrorCode, Preconditions};
use noderun_core::{Kind, Object, Pod};

/// Delete `pod` (gracefully when it is on a node). `Ok(false)`: it was
/// already gone.
pub(super) async fn delete_pod(
    client: &Client,
    pods: &mut Reflector,
    pod: &Pod,
    check_version: bool,
) -> Result<bool, ClientError> {
    let meta = &pod.metadata;
    let options = DeleteOptions {
        preconditions: Preconditions {
            uid: Some(meta.uid.clone()),
            resource_version: check_version.then_some(meta.resource_version),
        },
        ..DeleteOptions::default()
    };
    match client
        .delete(Kind::Pod, &meta.namespace, &meta.name, &options)
        .await
    {
        Ok(answer) => {
            record_delete(pods, answer);
            Ok(true)
        }
        Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Put the answer of a pod delete in the cache: gone, or marked for a
/// graceful delete by its node.
fn record_delete(pods: &mut Reflector, answer: Object) {
    if answer.metadata().is_terminating() {
        pods.record(answer);
    } else {
        pods.record_deleted(&answer);
    }
}
