//! Which pod goes first, as the kubelet ranks them. Under memory pressure
//! (`rankMemoryPressure`): pods whose memory usage exceeds their requests
//! before pods within them (so BestEffort pods, which request nothing,
//! go first), then by usage above requests, largest first. Under PID
//! pressure (`rankPIDPressure`): the pod with the most processes first.
//! Pod priority would come first (PID) or between the two (memory); the
//! API has no priority yet. Also the message an evicted pod carries. Pure
//! code.

use super::thresholds::{amount_text, bytes_text, Signal, Threshold};
use noderun_core::{resource, Pod, Quantity};

/// One container's memory: what it uses (working set) and requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMemory {
    pub name: String,
    pub usage: i64,
    pub request: i64,
}

/// A pod that may be evicted, with its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub uid: String,
    /// `namespace/name`, for logs.
    pub name: String,
    /// The pod cgroup's working set.
    pub usage: i64,
    /// The sum of its containers' memory requests.
    pub request: i64,
    /// Its processes (tasks in the pod cgroup).
    pub processes: i64,
    pub containers: Vec<ContainerMemory>,
}

impl Candidate {
    fn exceeds(&self) -> bool {
        self.usage > self.request
    }

    fn above_request(&self) -> i64 {
        self.usage - self.request
    }
}

/// A container's memory request: its request, or its limit when only that
/// is set (Kubernetes defaults the request to the limit).
pub fn memory_request(c: &noderun_core::Container) -> i64 {
    let r = &c.resources;
    r.requests
        .get(resource::MEMORY)
        .or_else(|| r.limits.get(resource::MEMORY))
        .map(Quantity::value)
        .unwrap_or(0)
        .max(0)
}

/// The pod's app containers' memory requests, by name.
pub fn container_requests(pod: &Pod) -> Vec<(String, i64)> {
    pod.spec
        .containers
        .iter()
        .map(|c| (c.name.clone(), memory_request(c)))
        .collect()
}

/// Sort `candidates` into eviction order (the first goes first). Ties
/// keep their order.
pub fn rank_for_memory(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        b.exceeds()
            .cmp(&a.exceeds())
            .then_with(|| b.above_request().cmp(&a.above_request()))
    });
}

/// Sort `candidates` into eviction order under PID pressure: the most
/// processes first. Ties keep their order.
pub fn rank_for_pids(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| std::cmp::Reverse(c.processes));
}

/// Kubelet's eviction message: the resource, the threshold and what was
/// available, and for memory each container using more than it
/// requested.
pub fn eviction_message(threshold: &Threshold, available: i64, pod: &Candidate) -> String {
    let resource = match threshold.signal {
        Signal::PidAvailable => "pids",
        _ => "memory",
    };
    let mut message = format!(
        "The node was low on resource: {resource}. Threshold quantity: {}, available: {}. ",
        threshold.quantity_text(),
        amount_text(threshold.signal, available)
    );
    if resource != "memory" {
        return message;
    }
    for c in pod.containers.iter().filter(|c| c.usage > c.request) {
        message.push_str(&format!(
            "Container {} was using {}, request is {}, has larger consumption of memory. ",
            c.name,
            bytes_text(c.usage),
            bytes_text(c.request)
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::super::thresholds::parse_thresholds;
    use super::*;

    const MI: i64 = 1 << 20;

    fn candidate(name: &str, usage: i64, request: i64) -> Candidate {
        Candidate {
            uid: format!("uid-{name}"),
            name: format!("default/{name}"),
            usage: usage * MI,
            request: request * MI,
            processes: 1,
            containers: vec![ContainerMemory {
                name: "main".into(),
                usage: usage * MI,
                request: request * MI,
            }],
        }
    }

    fn order(mut c: Vec<Candidate>) -> Vec<String> {
        rank_for_memory(&mut c);
        c.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn pods_over_their_requests_go_first_then_the_largest_excess() {
        let got = order(vec![
            // Guaranteed, well within its request, but the largest user.
            candidate("guaranteed", 500, 1000),
            // BestEffort: any usage exceeds a request of 0.
            candidate("small-besteffort", 5, 0),
            candidate("big-besteffort", 50, 0),
            // Burstable over its request by 20Mi.
            candidate("burstable-over", 120, 100),
            // Burstable under its request.
            candidate("burstable-under", 10, 100),
        ]);
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
            order(vec![candidate("a", 10, 100), candidate("b", 90, 100)]),
            ["default/b", "default/a"]
        );
        assert_eq!(order(Vec::new()), Vec::<String>::new());
    }

    #[test]
    fn the_message_names_the_threshold_and_the_hungry_containers() {
        let threshold = parse_thresholds("memory.available<100Mi").unwrap()[0];
        let mut pod = candidate("p", 30, 0);
        pod.containers.push(ContainerMemory {
            name: "quiet".into(),
            usage: MI,
            request: 2 * MI,
        });
        assert_eq!(
            eviction_message(&threshold, 50 * MI, &pod),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container main was using 30Mi, request is 0, has larger consumption of memory. "
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
            noderun_core::Container {
                name: "c".into(),
                resources: noderun_core::ResourceRequirements {
                    requests: list(requests),
                    limits: list(limits),
                },
                ..Default::default()
            }
        };
        assert_eq!(memory_request(&c(&[], &[])), 0);
        assert_eq!(memory_request(&c(&[("memory", "64Mi")], &[])), 64 * MI);
        assert_eq!(memory_request(&c(&[], &[("memory", "32Mi")])), 32 * MI);
        assert_eq!(
            memory_request(&c(&[("memory", "16Mi")], &[("memory", "32Mi")])),
            16 * MI
        );
        assert_eq!(memory_request(&c(&[("cpu", "1")], &[])), 0);
    }

    #[test]
    fn under_pid_pressure_the_pod_with_most_processes_goes_first() {
        let with = |name: &str, processes: i64| Candidate {
            processes,
            ..candidate(name, 10, 0)
        };
        let mut c = vec![with("one", 1), with("many", 40), with("few", 3)];
        rank_for_pids(&mut c);
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["default/many", "default/few", "default/one"]);
        let threshold = parse_thresholds("pid.available<1k").unwrap()[0];
        assert_eq!(
            eviction_message(&threshold, 900, &c[0]),
            "The node was low on resource: pids. Threshold quantity: 1000, available: 900. "
        );
    }
}
