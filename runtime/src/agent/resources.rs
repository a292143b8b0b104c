//! A pod's requests and limits as cgroup settings, the way the kubelet
//! maps them: CPU requests become shares (1 CPU = 1024, at least 2), CPU
//! limits a CFS quota over a 100 ms period, memory limits a hard limit.
//! The pod's own cgroup gets the sums over its containers where every
//! container sets the value (one unbounded container leaves the pod
//! unbounded); BestEffort pods get the minimum shares. Pure code.

use crate::cgroups::Resources;
use noderun_core::resource;
use noderun_core::{Container, Pod, QosClass, Quantity};

/// The CFS period the agent uses, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CPU shares value the kernel accepts.
const MIN_SHARES: u64 = 2;

fn millicpu(q: &Quantity) -> i64 {
    q.millis().max(0)
}

fn bytes(q: &Quantity) -> i64 {
    q.value().max(0)
}

/// CPU shares for `millis` thousandths of a CPU.
pub fn shares_for(millis: i64) -> u64 {
    ((millis.max(0) as u64) * 1024 / 1000).max(MIN_SHARES)
}

/// CFS quota (µs per [`CPU_PERIOD_US`]) for a limit of `millis`; at
/// least 1 ms, the kernel's minimum.
pub fn quota_for(millis: i64) -> i64 {
    (millis * CPU_PERIOD_US as i64 / 1000).max(1000)
}

/// What a container asks for of a resource: its request, or its limit
/// when only that is set (Kubernetes defaults the request to the limit).
fn request(c: &Container, name: &str) -> Option<Quantity> {
    c.resources
        .requests
        .get(name)
        .or_else(|| c.resources.limits.get(name))
        .copied()
        .filter(|q| !q.is_zero())
}

fn limit(c: &Container, name: &str) -> Option<Quantity> {
    c.resources
        .limits
        .get(name)
        .copied()
        .filter(|q| !q.is_zero())
}

/// One container's cgroup settings.
pub fn for_container(c: &Container) -> Resources {
    let cpu_limit = limit(c, resource::CPU);
    Resources {
        memory_limit: limit(c, resource::MEMORY).map(|q| bytes(&q)),
        cpu_shares: Some(shares_for(
            request(c, resource::CPU).map_or(0, |q| millicpu(&q)),
        )),
        cpu_quota: cpu_limit.map(|q| quota_for(millicpu(&q))),
        cpu_period: cpu_limit.map(|_| CPU_PERIOD_US),
        ..Resources::default()
    }
}

/// The sum of `f` over the pod's containers, when every one has it.
fn sum_if_all(pod: &Pod, f: impl Fn(&Container) -> Option<i64>) -> Option<i64> {
    let containers = &pod.spec.containers;
    if containers.is_empty() {
        return None;
    }
    containers
        .iter()
        .map(f)
        .try_fold(0i64, |acc, v| v.map(|v| acc.saturating_add(v)))
}

/// The pod cgroup's settings.
pub fn for_pod(pod: &Pod) -> Resources {
    if pod.qos_class() == QosClass::BestEffort {
        return Resources {
            cpu_shares: Some(MIN_SHARES),
            ..Resources::default()
        };
    }
    let cpu_requests: i64 = pod
        .spec
        .containers
        .iter()
        .filter_map(|c| request(c, resource::CPU))
        .map(|q| millicpu(&q))
        .sum();
    let cpu_limit = sum_if_all(pod, |c| limit(c, resource::CPU).map(|q| millicpu(&q)));
    Resources {
        memory_limit: sum_if_all(pod, |c| limit(c, resource::MEMORY).map(|q| bytes(&q))),
        cpu_shares: Some(shares_for(cpu_requests)),
        cpu_quota: cpu_limit.map(quota_for),
        cpu_period: cpu_limit.map(|_| CPU_PERIOD_US),
        ..Resources::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container with `(kind, resource, amount)` settings, kind being
    /// "request" or "limit".
    fn container(settings: &[(&str, &str, &str)]) -> Container {
        let mut c = Container {
            name: "c".into(),
            ..Container::default()
        };
        for (kind, name, amount) in settings {
            let list = match *kind {
                "request" => &mut c.resources.requests,
                _ => &mut c.resources.limits,
            };
            list.insert(name.to_string(), amount.parse().unwrap());
        }
        c
    }

    fn pod(containers: Vec<Container>) -> Pod {
        let mut p = Pod::default();
        p.spec.containers = containers;
        p
    }

    #[test]
    fn container_settings() {
        let c = container(&[
            ("request", "cpu", "250m"),
            ("limit", "cpu", "500m"),
            ("limit", "memory", "64Mi"),
        ]);
        let r = for_container(&c);
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(CPU_PERIOD_US));
        // Only a limit: the request defaults to it.
        let r = for_container(&container(&[("limit", "cpu", "1")]));
        assert_eq!(r.cpu_shares, Some(1024));
        // Nothing: minimum shares, no limits.
        let r = for_container(&container(&[]));
        assert_eq!(r.cpu_shares, Some(2));
        assert_eq!((r.memory_limit, r.cpu_quota), (None, None));
        assert_eq!(quota_for(1), 1000, "the kernel's minimum quota");
    }

    #[test]
    fn pod_settings_by_qos() {
        let best = pod(vec![container(&[]), container(&[])]);
        assert_eq!(for_pod(&best).cpu_shares, Some(2));
        assert_eq!(for_pod(&best).memory_limit, None);

        let guaranteed = pod(vec![
            container(&[("limit", "cpu", "1"), ("limit", "memory", "100Mi")]),
            container(&[("limit", "cpu", "500m"), ("limit", "memory", "28Mi")]),
        ]);
        assert_eq!(guaranteed.qos_class(), QosClass::Guaranteed);
        let r = for_pod(&guaranteed);
        assert_eq!(r.memory_limit, Some(128 << 20));
        assert_eq!(r.cpu_quota, Some(150_000));
        assert_eq!(r.cpu_shares, Some(1536));

        // One container without a memory limit: the pod has none.
        let burstable = pod(vec![
            container(&[("request", "cpu", "100m"), ("limit", "memory", "10Mi")]),
            container(&[("request", "memory", "5Mi")]),
        ]);
        assert_eq!(burstable.qos_class(), QosClass::Burstable);
        let r = for_pod(&burstable);
        assert_eq!(r.memory_limit, None);
        assert_eq!(r.cpu_quota, None);
        assert_eq!(r.cpu_shares, Some(102));
    }
}
