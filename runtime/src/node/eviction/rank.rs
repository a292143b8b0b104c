//! Which pod goes first, as the kubelet ranks them. Under memory pressure
//! (`rankMemoryPressure`) and disk pressure (`rankDiskPressureFunc`, with
//! ephemeral storage for space and inodes for inodes): pods whose usage of
//! the resource exceeds their requests before pods within them (so
//! BestEffort pods, which request nothing, go first), then by usage above
//! requests, largest first. Under PID pressure (`rankPIDPressure`): the
//! pod with the most processes first. Pod priority would come first (PID)
//! or second (the others); the API has no priority yet. Also the message
//! an evicted pod carries. Pure code.

use super::thresholds::{amount_text, Signal, Threshold};
use noderun_core::{resource, Container, Pod, Quantity};

/// The resources evictions reclaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    Memory,
    /// Local disk space: writable layers and logs.
    EphemeralStorage,
    Inodes,
    Pids,
}

impl Reclaim {
    /// What a met threshold of `signal` reclaims.
    pub fn of(signal: Signal) -> Reclaim {
        match signal {
            Signal::MemoryAvailable => Reclaim::Memory,
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => Reclaim::EphemeralStorage,
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => Reclaim::Inodes,
            Signal::PidAvailable => Reclaim::Pids,
        }
    }

    /// Kubelet's name of the resource in messages.
    pub fn name(self) -> &'static str {
        match self {
            Reclaim::Memory => "memory",
            Reclaim::EphemeralStorage => "ephemeral-storage",
            Reclaim::Inodes => "inodes",
            Reclaim::Pids => "pids",
        }
    }
}

/// One container's use of a resource, and its request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub used: i64,
    pub request: i64,
}

/// A pod's use of a resource, and its request (the sum over its
/// containers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub used: i64,
    pub request: i64,
    pub containers: Vec<ContainerUsage>,
}

impl Usage {
    fn exceeds(&self) -> bool {
        self.used > self.request
    }

    fn above_request(&self) -> i64 {
        self.used - self.request
    }
}

/// A pod that may be evicted, with what it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub uid: String,
    /// `namespace/name`, for logs.
    pub name: String,
    /// The working set.
    pub memory: Usage,
    /// Writable layers and logs, in bytes (measured only under disk
    /// pressure).
    pub storage: Usage,
    /// Inodes of the same (no requests).
    pub inodes: Usage,
    /// Tasks in the pod cgroup.
    pub processes: i64,
}

impl Candidate {
    pub fn usage(&self, resource: Reclaim) -> Option<&Usage> {
        match resource {
            Reclaim::Memory => Some(&self.memory),
            Reclaim::EphemeralStorage => Some(&self.storage),
            Reclaim::Inodes => Some(&self.inodes),
            Reclaim::Pids => None,
        }
    }
}

/// A container's request of `resource`: its request, or its limit when
/// only that is set (Kubernetes defaults the request to the limit).
pub fn request(c: &Container, resource: &str) -> i64 {
    let r = &c.resources;
    r.requests
        .get(resource)
        .or_else(|| r.limits.get(resource))
        .map(Quantity::value)
        .unwrap_or(0)
        .max(0)
}

/// The requests of `resource` of the pod's app containers, by name.
pub fn container_requests(pod: &Pod, resource: &str) -> Vec<(String, i64)> {
    pod.spec
        .containers
        .iter()
        .map(|c| (c.name.clone(), request(c, resource)))
        .collect()
}

/// Sort `candidates` into eviction order for `resource` (the first goes
/// first). Ties keep their order.
pub fn rank(candidates: &mut [Candidate], resource: Reclaim) {
    match resource {
        Reclaim::Pids => candidates.sort_by_key(|c| std::cmp::Reverse(c.processes)),
        _ => candidates.sort_by(|a, b| {
            let (a, b) = (a.usage(resource), b.usage(resource));
            let (a, b) = (
                a.expect("a measured resource"),
                b.expect("a measured resource"),
            );
            b.exceeds()
                .cmp(&a.exceeds())
                .then_with(|| b.above_request().cmp(&a.above_request()))
        }),
    }
}

/// Kubelet's eviction message: the resource, the threshold and what was
/// available, and each container using more than it requested.
pub fn eviction_message(threshold: &Threshold, available: i64, pod: &Candidate) -> String {
    let resource = Reclaim::of(threshold.signal);
    let mut message = format!(
        "The node was low on resource: {}. Threshold quantity: {}, available: {}. ",
        resource.name(),
        threshold.quantity_text(),
        amount_text(threshold.signal, available)
    );
    let text = |n: i64| match resource {
        Reclaim::Inodes => n.to_string(),
        _ => amount_text(Signal::MemoryAvailable, n),
    };
    let containers = pod.usage(resource).map_or(&[][..], |u| &u.containers);
    for c in containers.iter().filter(|c| c.used > c.request) {
        message.push_str(&format!(
            "Container {} was using {}, request is {}, has larger consumption of {}. ",
            c.name,
            text(c.used),
            text(c.request),
            resource.name()
        ));
    }
    message
}

/// The memory requests of the pod (for [`Candidate::memory`]).
pub fn memory_requests(pod: &Pod) -> Vec<(String, i64)> {
    container_requests(pod, resource::MEMORY)
}

/// The ephemeral storage requests of the pod (for [`Candidate::storage`]).
pub fn storage_requests(pod: &Pod) -> Vec<(String, i64)> {
    container_requests(pod, resource::EPHEMERAL_STORAGE)
}

#[cfg(test)]
mod tests {
    use super::super::thresholds::parse_thresholds;
    use super::*;

    const MI: i64 = 1 << 20;

    fn usage(used: i64, request: i64) -> Usage {
        Usage {
            used: used * MI,
            request: request * MI,
            containers: vec![ContainerUsage {
                name: "main".into(),
                used: used * MI,
                request: request * MI,
            }],
        }
    }

    fn candidate(name: &str, used: i64, request: i64) -> Candidate {
        Candidate {
            uid: format!("uid-{name}"),
            name: format!("default/{name}"),
            memory: usage(used, request),
            processes: 1,
            ..Candidate::default()
        }
    }

    fn order(mut c: Vec<Candidate>, resource: Reclaim) -> Vec<String> {
        rank(&mut c, resource);
        c.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn pods_over_their_requests_go_first_then_the_largest_excess() {
        let got = order(
            vec![
                // Guaranteed, well within its request, but the largest user.
                candidate("guaranteed", 500, 1000),
                // BestEffort: any usage exceeds a request of 0.
                candidate("small-besteffort", 5, 0),
                candidate("big-besteffort", 50, 0),
                // Burstable over its request by 20Mi.
                candidate("burstable-over", 120, 100),
                // Burstable under its request.
                candidate("burstable-under", 10, 100),
            ],
            Reclaim::Memory,
        );
        assert_eq!(
            got,
            [
                "default/big-besteffort",
                "default/burstable-over",
                "default/small-besteffort",
                "default/burstable-under",
                "default/guaranteed",
            ]
        );
        // Within their requests: the one furthest below goes last.
        assert_eq!(
            order(
                vec![candidate("a", 10, 100), candidate("b", 90, 100)],
                Reclaim::Memory
            ),
            ["default/b", "default/a"]
        );
        assert_eq!(order(Vec::new(), Reclaim::Memory), Vec::<String>::new());
    }

    #[test]
    fn disk_pressure_ranks_by_storage_and_inodes() {
        let with = |name: &str, storage: Usage, inodes: i64| Candidate {
            storage,
            inodes: Usage {
                used: inodes,
                ..Usage::default()
            },
            ..candidate(name, 1, 0)
        };
        let pods = vec![
            with("small", usage(1, 0), 5000),
            // Writes much, but asked for more.
            with("asked", usage(400, 1000), 10),
            with("writer", usage(50, 0), 20),
        ];
        assert_eq!(
            order(pods.clone(), Reclaim::EphemeralStorage),
            ["default/writer", "default/small", "default/asked"]
        );
        assert_eq!(
            order(pods, Reclaim::Inodes),
            ["default/small", "default/writer", "default/asked"]
        );
    }

    #[test]
    fn under_pid_pressure_the_pod_with_most_processes_goes_first() {
        let with = |name: &str, processes: i64| Candidate {
            processes,
            ..candidate(name, 10, 0)
        };
        let got = order(
            vec![with("one", 1), with("many", 40), with("few", 3)],
            Reclaim::Pids,
        );
        assert_eq!(got, ["default/many", "default/few", "default/one"]);
        let threshold = parse_thresholds("pid.available<1k").unwrap()[0];
        assert_eq!(
            eviction_message(&threshold, 900, &with("p", 3)),
            "The node was low on resource: pids. Threshold quantity: 1000, available: 900. "
        );
    }

    #[test]
    fn the_message_names_the_threshold_and_the_hungry_containers() {
        let threshold = parse_thresholds("memory.available<100Mi").unwrap()[0];
        let mut pod = candidate("p", 30, 0);
        pod.memory.containers.push(ContainerUsage {
            name: "quiet".into(),
            used: MI,
            request: 2 * MI,
        });
        assert_eq!(
            eviction_message(&threshold, 50 * MI, &pod),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container main was using 30Mi, request is 0, has larger consumption of memory. "
        );
        let threshold = parse_thresholds("nodefs.available<10%").unwrap()[0];
        pod.storage = usage(64, 0);
        assert_eq!(
            eviction_message(&threshold, 3 << 30, &pod),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, \
             available: 3Gi. Container main was using 64Mi, request is 0, has larger \
             consumption of ephemeral-storage. "
        );
    }

    #[test]
    fn requests_default_to_limits() {
        let c = |requests: &[(&str, &str)], limits: &[(&str, &str)]| {
            let list = |p: &[(&str, &str)]| {
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                    .collect()
            };
            Container {
                name: "c".into(),
                resources: noderun_core::ResourceRequirements {
                    requests: list(requests),
                    limits: list(limits),
                },
                ..Default::default()
            }
        };
        let memory = |c: &Container| request(c, resource::MEMORY);
        assert_eq!(memory(&c(&[], &[])), 0);
        assert_eq!(memory(&c(&[("memory", "64Mi")], &[])), 64 * MI);
        assert_eq!(memory(&c(&[], &[("memory", "32Mi")])), 32 * MI);
        assert_eq!(
            memory(&c(&[("memory", "16Mi")], &[("memory", "32Mi")])),
            16 * MI
        );
        assert_eq!(memory(&c(&[("cpu", "1")], &[])), 0);
        assert_eq!(
            request(
                &c(&[("ephemeral-storage", "1Gi")], &[]),
                resource::EPHEMERAL_STORAGE
            ),
            1 << 30
        );
    }
}
