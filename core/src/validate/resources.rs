//! Validation of resource lists (`cpu: 500m`, `memory: 128Mi`): which names
//! are known where, that amounts are not negative, and a container's
//! requests against its limits. Quantities are already parsed by the model,
//! so a malformed amount never gets this far.

use super::field::{shown, FieldErrors, FieldPath};
use super::names;
use crate::model::{resource, Quantity, ResourceList, ResourceRequirements};
use alloc::format;

/// Where a resource list appears: pods may not ask for `pods`, nodes offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceScope {
    Container,
    Node,
}

const HUGEPAGES_PREFIX: &str = "hugepages-";

/// The kinds of resource name the rules tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResourceClass {
    /// cpu, memory, ephemeral-storage, pods: may be overcommitted.
    Standard,
    /// hugepages-<size>: requests must equal limits.
    HugePages,
    /// `example.com/gpu`: whole units, requests must equal limits.
    Extended,
}

fn classify(
    name: &str,
    scope: ResourceScope,
    path: &FieldPath,
    errs: &mut FieldErrors,
) -> Option<ResourceClass> {
    let standard = [resource::CPU, resource::MEMORY, resource::EPHEMERAL_STORAGE];
    if standard.contains(&name) || (scope == ResourceScope::Node && name == resource::PODS) {
        return Some(ResourceClass::Standard);
    }
    if let Some(size) = name.strip_prefix(HUGEPAGES_PREFIX) {
        return match Quantity::parse(size) {
            Ok(q) if q.nanos() > 0 => Some(ResourceClass::HugePages),
            _ => {
                errs.push(path.invalid(
                    name,
                    "hugepages size must be a positive quantity (e.g. 'hugepages-2Mi')",
                ));
                None
            }
        };
    }
    let prefixed = names::qualified_name_prefix(name)
        .is_some_and(|p| p != "kubernetes.io" && !p.ends_with(".kubernetes.io"));
    if prefixed && names::qualified_name(name).is_ok() {
        return Some(ResourceClass::Extended);
    }
    let known = match scope {
        ResourceScope::Container => "cpu, memory, ephemeral-storage, hugepages-<size>",
        ResourceScope::Node => "cpu, memory, ephemeral-storage, pods, hugepages-<size>",
    };
    errs.push(path.invalid(
        name,
        format!("must be one of {known}, or an extended resource named with a domain prefix (e.g. 'example.com/gpu')"),
    ));
    None
}

/// Known names and amounts of at least zero. Returns the class of each
/// valid name for callers that apply more rules.
fn validate_list<'a>(
    list: &'a ResourceList,
    scope: ResourceScope,
    path: &FieldPath,
    errs: &mut FieldErrors,
) -> alloc::vec::Vec<(&'a str, ResourceClass)> {
    let mut valid = alloc::vec::Vec::new();
    for (name, q) in list {
        let at = path.key(name);
        let class = classify(name, scope, &at, errs);
        if q.is_negative() {
            errs.push(at.invalid(shown(q), "must be greater than or equal to 0"));
            continue;
        }
        if class == Some(ResourceClass::Extended) && q.nanos() % 1_000_000_000 != 0 {
            errs.push(at.invalid(shown(q), "must be a whole number for extended resources"));
            continue;
        }
        if let Some(c) = class {
            valid.push((name.as_str(), c));
        }
    }
    valid
}

/// What a node offers (`status.capacity`, `status.allocatable`).
pub(crate) fn validate_node_resources(
    list: &ResourceList,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    validate_list(list, ResourceScope::Node, path, errs);
}

/// A container's requests and limits: each list on its own, then every
/// request at most its limit; hugepages and extended resources cannot be
/// overcommitted, so their requests need a limit and must equal it.
pub(crate) fn validate_requirements(
    req: &ResourceRequirements,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    let requests = path.child("requests");
    validate_list(
        &req.limits,
        ResourceScope::Container,
        &path.child("limits"),
        errs,
    );
    for (name, class) in validate_list(&req.requests, ResourceScope::Container, &requests, errs) {
        let at = requests.key(name);
        let request = &req.requests[name];
        let limit = req.limits.get(name).filter(|l| !l.is_negative());
        match (class, limit) {
            (ResourceClass::Standard, Some(limit)) if request > limit => {
                errs.push(at.invalid(
                    shown(request),
                    format!("must be less than or equal to {name} limit of {limit}"),
                ));
            }
            (ResourceClass::HugePages | ResourceClass::Extended, None) => {
                errs.push(at.forbidden(format!(
                    "{name} cannot be overcommitted: set a limit equal to the request"
                )));
            }
            (ResourceClass::HugePages | ResourceClass::Extended, Some(limit))
                if request != limit =>
            {
                errs.push(at.invalid(
                    shown(request),
                    format!("must be equal to {name} limit of {limit}"),
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, quantity, Want};
    use super::*;
    use alloc::string::ToString;

    fn list(pairs: &[(&str, &str)]) -> ResourceList {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), quantity(v)))
            .collect()
    }

    type Pairs = &'static [(&'static str, &'static str)];

    #[test]
    fn container_requirements() {
        let r = "spec.containers[1].resources";
        let cases: &[(Pairs, Pairs, Want)] = &[
            (
                &[("cpu", "500m"), ("memory", "64Mi")],
                &[("cpu", "1"), ("memory", "64Mi")],
                None,
            ),
            (&[("ephemeral-storage", "1Gi")], &[], None),
            (
                &[("hugepages-2Mi", "4Mi")],
                &[("hugepages-2Mi", "4Mi")],
                None,
            ),
            (
                &[("example.com/gpu", "2")],
                &[("example.com/gpu", "2")],
                None,
            ),
            (
                &[],
                &[("memory", "-1Gi")],
                Some(("spec.containers[1].resources.limits.memory", Invalid)),
            ),
            (
                &[("cpu", "-1")],
                &[],
                Some(("spec.containers[1].resources.requests.cpu", Invalid)),
            ),
            (
                &[("cpu", "2")],
                &[("cpu", "1")],
                Some(("spec.containers[1].resources.requests.cpu", Invalid)),
            ),
            (
                &[("pods", "1")],
                &[],
                Some(("spec.containers[1].resources.requests.pods", Invalid)),
            ),
            (
                &[],
                &[("gpu", "1")],
                Some(("spec.containers[1].resources.limits.gpu", Invalid)),
            ),
            (
                &[],
                &[("kubernetes.io/gpu", "1")],
                Some((
                    "spec.containers[1].resources.limits[kubernetes.io/gpu]",
                    Invalid,
                )),
            ),
            (
                &[],
                &[("hugepages-x", "1")],
                Some(("spec.containers[1].resources.limits.hugepages-x", Invalid)),
            ),
            (
                &[("hugepages-2Mi", "2Mi")],
                &[],
                Some((
                    "spec.containers[1].resources.requests.hugepages-2Mi",
                    Forbidden,
                )),
            ),
            (
                &[("example.com/gpu", "1")],
                &[("example.com/gpu", "2")],
                Some((
                    "spec.containers[1].resources.requests[example.com/gpu]",
                    Invalid,
                )),
            ),
            (
                &[],
                &[("example.com/gpu", "500m")],
                Some((
                    "spec.containers[1].resources.limits[example.com/gpu]",
                    Invalid,
                )),
            ),
        ];
        let path = FieldPath::new("spec")
            .child("containers")
            .index(1)
            .child("resources");
        assert_eq!(path.as_str(), r);
        for (requests, limits, want) in cases {
            let req = ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
            };
            let mut errs = FieldErrors::new();
            validate_requirements(&req, &path, &mut errs);
            expect(
                &alloc::format!("{requests:?} {limits:?}"),
                errs.into_result(),
                *want,
            );
        }
    }

    #[test]
    fn request_over_limit_reads_well() {
        let req = ResourceRequirements {
            requests: list(&[("memory", "256Mi")]),
            limits: list(&[("memory", "128Mi")]),
        };
        let mut errs = FieldErrors::new();
        validate_requirements(&req, &FieldPath::new("resources"), &mut errs);
        assert_eq!(
            errs.to_string(),
            r#"resources.requests.memory: Invalid value: "256Mi": must be less than or equal to memory limit of 128Mi"#
        );
    }

    #[test]
    fn node_resources_include_pods() {
        let path = FieldPath::new("status").child("capacity");
        let cases: &[(Pairs, Want)] = &[
            (
                &[
                    ("cpu", "4"),
                    ("memory", "8Gi"),
                    ("pods", "110"),
                    ("example.com/gpu", "2"),
                ],
                None,
            ),
            (&[("pods", "-1")], Some(("status.capacity.pods", Invalid))),
            (&[("disks", "1")], Some(("status.capacity.disks", Invalid))),
        ];
        for (pairs, want) in cases {
            let mut errs = FieldErrors::new();
            validate_node_resources(&list(pairs), &path, &mut errs);
            expect(&alloc::format!("{pairs:?}"), errs.into_result(), *want);
        }
    }
}
