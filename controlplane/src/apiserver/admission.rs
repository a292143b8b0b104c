//! Admission: what happens to an object between authorization and the
//! store. Create: defaults, server-owned metadata (uid, creation time,
//! generation), validation. Update: defaults, the server-owned fields kept
//! from the stored object (status too: it has its own subresource), the
//! generation bumped when the spec changed, the update rules. Status
//! update: only the status is taken from the request. Whether the
//! namespace exists is the handler's check (it needs the store).

use noderun_core::defaults::apply_defaults;
use noderun_core::proto::ApiError;
use noderun_core::validate::{validate_object, validate_update};
use noderun_core::{Object, Time};

/// Prepare a new object for the store. `uid` is the one to assign.
pub fn admit_create(object: &mut Object, uid: String, now: Time) -> Result<(), ApiError> {
    apply_defaults(object);
    let meta = object.metadata_mut();
    meta.uid = uid;
    meta.resource_version = 0;
    meta.generation = 1;
    meta.creation_timestamp = Some(now);
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    validate_object(object)?;
    Ok(())
}

/// Prepare `new` to replace `stored` (the request's resourceVersion is
/// kept: the store compares it).
pub fn admit_update(stored: &Object, new: &mut Object) -> Result<(), ApiError> {
    apply_defaults(new);
    copy_status(stored, new);
    let old = stored.metadata();
    let spec_changed = !same_spec(stored, new);
    let meta = new.metadata_mut();
    if meta.uid.is_empty() {
        meta.uid.clone_from(&old.uid);
    }
    meta.creation_timestamp = old.creation_timestamp;
    meta.deletion_timestamp = old.deletion_timestamp;
    meta.deletion_grace_period_seconds = old.deletion_grace_period_seconds;
    meta.generation = old.generation + i64::from(spec_changed);
    validate_update(stored, new)?;
    Ok(())
}

/// The stored object with the status of `request`, at the request's
/// resourceVersion (for the store's compare-and-swap).
pub fn admit_status(stored: &Object, request: &Object) -> Result<Object, ApiError> {
    let mut next = stored.clone();
    copy_status(request, &mut next);
    next.metadata_mut().resource_version = request.metadata().resource_version;
    validate_update(stored, &next)?;
    Ok(next)
}

/// Whether `kind` has a status subresource.
pub fn has_status(object: &Object) -> bool {
    !matches!(object, Object::Lease(_))
}

fn copy_status(from: &Object, to: &mut Object) {
    match (from, to) {
        (Object::Pod(f), Object::Pod(t)) => t.status.clone_from(&f.status),
        (Object::Node(f), Object::Node(t)) => t.status.clone_from(&f.status),
        (Object::ReplicaSet(f), Object::ReplicaSet(t)) => t.status.clone_from(&f.status),
        (Object::Namespace(f), Object::Namespace(t)) => t.status.clone_from(&f.status),
        _ => {}
    }
}

fn same_spec(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Pod(a), Object::Pod(b)) => a.spec == b.spec,
        (Object::Node(a), Object::Node(b)) => a.spec == b.spec,
        (Object::ReplicaSet(a), Object::ReplicaSet(b)) => a.spec == b.spec,
        (Object::Lease(a), Object::Lease(b)) => a.spec == b.spec,
        (Object::Namespace(_), Object::Namespace(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::proto::sample::typical_pod;
    use noderun_core::proto::ErrorCode;
    use noderun_core::PodPhase;

    #[test]
    fn create_sets_server_fields_and_validates() {
        let mut pod = Object::Pod(typical_pod());
        pod.metadata_mut().resource_version = 99;
        let now = Time::from_unix(1_700_000_000, 0);
        admit_create(&mut pod, "u-1".into(), now).unwrap();
        let m = pod.metadata();
        assert_eq!(
            (m.uid.as_str(), m.generation, m.resource_version),
            ("u-1", 1, 0)
        );
        assert_eq!(m.creation_timestamp, Some(now));
        let mut bad = Object::Pod(typical_pod());
        if let Object::Pod(p) = &mut bad {
            p.spec.containers.clear();
        }
        let e = admit_create(&mut bad, "u-2".into(), now).unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.causes.iter().any(|c| c.field == "spec.containers"), "{e}");
    }

    #[test]
    fn update_keeps_server_fields_and_status_only_moves_status() {
        let mut stored = Object::Pod(typical_pod());
        admit_create(&mut stored, "u".into(), Time::from_unix(5, 0)).unwrap();
        stored.metadata_mut().resource_version = 7;
        let mut new = stored.clone();
        let Object::Pod(p) = &mut new else {
            unreachable!()
        };
        p.metadata.labels.insert("x".into(), "y".into());
        p.metadata.creation_timestamp = None;
        p.status.phase = PodPhase::Running;
        p.spec.containers[0].image = "busybox:2".into();
        admit_update(&stored, &mut new).unwrap();
        let Object::Pod(p) = &new else { unreachable!() };
        assert_eq!(p.metadata.generation, 2, "the spec changed");
        assert_eq!(p.metadata.creation_timestamp, Some(Time::from_unix(5, 0)));
        let Object::Pod(old) = &stored else {
            unreachable!()
        };
        assert_eq!(p.status, old.status, "status is not updated here");

        let mut req = stored.clone();
        if let Object::Pod(p) = &mut req {
            p.status.phase = PodPhase::Running;
            p.spec.node_name = "sneaky".into();
        }
        let next = admit_status(&stored, &req).unwrap();
        let Object::Pod(p) = &next else {
            unreachable!()
        };
        assert_eq!(p.status.phase, PodPhase::Running);
        assert_eq!(p.spec, old.spec, "a status update keeps the spec");
    }
}
