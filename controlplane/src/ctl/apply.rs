//! `ctl apply`'s one judgement: whether a manifest asks for anything the
//! stored object does not already have, so that an unchanged object is
//! not written again (and its watchers not woken).

use crate::apiserver::admission::admit_update;
use noderun_core::Object;

/// True when storing `applied` over `current` would change nothing: the
/// apiserver's defaults and its server-owned fields (uid, times,
/// generation, status) taken into account.
pub fn is_unchanged(current: &Object, applied: &Object) -> bool {
    let mut next = applied.clone();
    next.metadata_mut().resource_version = current.metadata().resource_version;
    admit_update(current, &mut next).is_ok() && next == *current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::admission::admit_create;
    use noderun_core::proto::sample::typical_pod;
    use noderun_core::Time;

    #[test]
    fn only_real_changes_count() {
        let mut manifest = typical_pod();
        manifest.metadata.uid.clear();
        manifest.metadata.resource_version = 0;
        manifest.metadata.creation_timestamp = None;
        manifest.status = Default::default();
        let applied = Object::Pod(manifest);
        let mut stored = applied.clone();
        admit_create(&mut stored, "u".into(), Time::from_unix(9, 0)).unwrap();
        stored.metadata_mut().resource_version = 12;
        assert!(is_unchanged(&stored, &applied));
        let mut relabeled = applied.clone();
        relabeled
            .metadata_mut()
            .labels
            .insert("new".into(), "1".into());
        assert!(!is_unchanged(&stored, &relabeled));
    }
}
