//! How what the feeds report changes the [`Service`]'s state: nodes go to
//! the cache; bound pods go to the cache (and a bind of ours seen on the
//! watch completes); unbound pods go to the queue; deleted, terminating
//! and finished pods leave. A relist replaces what was known: whatever the
//! list lacks was deleted while the watch was down.

use super::feed::FeedEvent;
use super::service::{BoundPod, Service};
use super::SchedulerError;
use noderun_core::{Kind, Node, Object, Pod};
use std::collections::HashSet;
use tokio::time::Instant;

impl Service {
    /// Apply one feed event.
    pub(super) fn apply(&mut self, event: FeedEvent) -> Result<(), SchedulerError> {
        let now = Instant::now();
        match event {
            FeedEvent::Listed(Kind::Node, items) => {
                self.relist_nodes(items, now);
                self.synced.0 = true;
            }
            FeedEvent::Listed(_, items) => {
                self.relist_pods(items, now);
                self.synced.1 = true;
            }
            FeedEvent::Upserted(Object::Node(node)) => self.node_upserted(&node, now),
            FeedEvent::Deleted(Object::Node(node)) => {
                self.cache.remove_node(&node.metadata.name);
            }
            FeedEvent::Upserted(Object::Pod(pod)) => self.pod_upserted(pod, now),
            FeedEvent::Deleted(Object::Pod(pod)) => {
                let key = Service::key(&pod);
                self.drop_pending(&key);
                self.drop_bound(&key, now);
            }
            FeedEvent::Upserted(_) | FeedEvent::Deleted(_) => {}
            FeedEvent::Failed(kind, source) => {
                return Err(SchedulerError::Watch {
                    plural: kind.plural(),
                    source: Box::new(source),
                })
            }
        }
        Ok(())
    }

    fn node_upserted(&mut self, node: &Node, now: Instant) {
        self.cache.update_node(node);
        self.queue.cluster_changed(now);
    }

    fn relist_nodes(&mut self, items: Vec<Object>, now: Instant) {
        let listed: HashSet<&str> = items.iter().map(|o| o.metadata().name.as_str()).collect();
        let gone: Vec<String> = (self.cache.nodes())
            .filter(|n| !listed.contains(n.name.as_str()))
            .map(|n| n.name.clone())
            .collect();
        for name in gone {
            self.cache.remove_node(&name);
        }
        for object in &items {
            if let Object::Node(node) = object {
                self.cache.update_node(node);
            }
        }
        self.queue.cluster_changed(now);
    }

    fn relist_pods(&mut self, items: Vec<Object>, now: Instant) {
        let listed: HashSet<String> = (items.iter())
            .filter_map(|o| match o {
                Object::Pod(p) => Some(Service::key(p)),
                _ => None,
            })
            .collect();
        let known = (self.pending.keys())
            .chain(self.binding.keys())
            .chain(self.bound.keys());
        let gone: Vec<String> = known.filter(|k| !listed.contains(*k)).cloned().collect();
        for key in gone {
            self.drop_pending(&key);
            self.drop_bound(&key, now);
        }
        // Bound pods first, so the cache is whole before anything is
        // scheduled against it.
        let (bound, unbound): (Vec<Object>, Vec<Object>) = (items.into_iter())
            .partition(|o| matches!(o, Object::Pod(p) if !p.spec.node_name.is_empty()));
        for object in bound.into_iter().chain(unbound) {
            if let Object::Pod(pod) = object {
                self.pod_upserted(pod, now);
            }
        }
    }

    fn pod_upserted(&mut self, pod: Pod, now: Instant) {
        let key = Service::key(&pod);
        if !pod.spec.node_name.is_empty() {
            self.pod_bound(key, pod, now);
            return;
        }
        if let Some(known) = self.bound.get(&key) {
            // A bound pod is never unbound: the same pod seen unbound is
            // an event from before its bind (our bind's answer can come
            // before the watch catches up). Another pod of the name: the
            // bound one was deleted (its delete was missed).
            if known.uid == pod.metadata.uid {
                return;
            }
            self.drop_bound(&key, now);
        }
        if pod.metadata.is_terminating() || pod.status.phase.is_terminal() {
            self.drop_pending(&key);
            return;
        }
        if let Some(in_flight) = self.binding.get_mut(&key) {
            if in_flight.pod.metadata.uid == pod.metadata.uid {
                in_flight.pod = pod;
                return;
            }
            self.drop_pending(&key);
        }
        // A status change (such as our own condition) is no reason to try
        // again; a new pod, or a new spec or labels, is.
        let retry = self.pending.get(&key).is_none_or(|old| {
            old.metadata.uid != pod.metadata.uid
                || old.spec != pod.spec
                || old.metadata.labels != pod.metadata.labels
        });
        self.pending.insert(key.clone(), pod);
        if retry {
            self.queue.add(key);
        }
    }

    fn pod_bound(&mut self, key: String, pod: Pod, now: Instant) {
        if self.pending.remove(&key).is_some() {
            self.queue.forget(&key);
        }
        let terminal = pod.status.phase.is_terminal();
        if let Some(in_flight) = self.binding.get(&key) {
            if in_flight.node == pod.spec.node_name
                && in_flight.pod.metadata.uid == pod.metadata.uid
            {
                // Our bind, seen before its answer: the cache has it.
                self.bind_seen(&key, &pod);
                if terminal {
                    self.drop_bound(&key, now);
                }
                return;
            }
            // Bound elsewhere by someone else: our bind will fail.
            self.drop_pending(&key);
        }
        if terminal {
            self.drop_bound(&key, now);
            return;
        }
        let seen = BoundPod::of(&pod);
        if self.bound.get(&key) != Some(&seen) {
            self.cache.add_pod(&pod);
            self.bound.insert(key, seen);
        }
    }
}
