//! [`SchedulingQueue`]: which pending pod is tried next, and when a pod
//! that failed is tried again. Pure bookkeeping over keys and instants (the
//! caller passes `now`), so its rules are unit-tested without a clock.
//!
//! A pod is in at most one of three places:
//! - active: tried in arrival order;
//! - backoff: its bind failed (or it was retried early); it goes back to
//!   active once its backoff, doubling per failed attempt up to a cap, is
//!   over;
//! - unschedulable: no node fit. It stays there until the cluster changes
//!   ([`SchedulingQueue::cluster_changed`]: then to backoff, or active if
//!   its backoff is already over) or until it has waited `retry_period`.
//!
//! A popped pod is in none of them until the caller says how its attempt
//! ended ([`SchedulingQueue::forget`] once bound or gone).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;
use tokio::time::Instant;

/// How long pods wait before they are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt; doubled per attempt since.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// An unschedulable pod is tried again after this long even if the
    /// cluster has not changed.
    pub retry_period: Duration,
}

impl Default for Backoff {
    /// kube-scheduler's: 1 s doubling to 10 s; unschedulable pods at
    /// least every 60 s.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            retry_period: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts (1: the first).
    pub fn after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// Where a queued pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    /// Ready at.
    Backoff(Instant),
    /// Parked at.
    Unschedulable(Instant),
}

#[derive(Debug, Clone, Copy, Default)]
struct History {
    /// Failed attempts since it was last forgotten.
    attempts: u32,
    last_failure: Option<Instant>,
}

/// The pending pods by key (`namespace/name`), see the module docs.
#[derive(Debug)]
pub struct SchedulingQueue<K> {
    backoff: Backoff,
    places: HashMap<K, Place>,
    /// Keys in arrival order; a key no longer `Active` in `places` is
    /// skipped when reached (removal without a scan).
    active: VecDeque<K>,
    /// `(ready at, key)`; stale entries skipped the same way.
    waiting: BinaryHeap<Reverse<(Instant, K)>>,
    /// `(parked at, key)` in the order parked (`now` only grows); stale
    /// entries skipped the same way.
    parked: VecDeque<(Instant, K)>,
    history: HashMap<K, History>,
}

impl<K: Clone + Eq + Hash + Ord> SchedulingQueue<K> {
    pub fn new(backoff: Backoff) -> SchedulingQueue<K> {
        SchedulingQueue {
            backoff,
            places: HashMap::new(),
            active: VecDeque::new(),
            waiting: BinaryHeap::new(),
            parked: VecDeque::new(),
            history: HashMap::new(),
        }
    }

    /// A pod to schedule (new, or changed so that it may fit now): to
    /// active, unless it is already active or backing off.
    pub fn add(&mut self, key: K) {
        match self.places.get(&key) {
            Some(Place::Active | Place::Backoff(_)) => {}
            Some(Place::Unschedulable(_)) | None => self.activate(key),
        }
    }

    /// The next pod to try; it leaves the queue until it is put back.
    pub fn pop(&mut self) -> Option<K> {
        while let Some(key) = self.active.pop_front() {
            if self.places.get(&key) == Some(&Place::Active) {
                self.places.remove(&key);
                return Some(key);
            }
        }
        None
    }

    /// Whether [`pop`](Self::pop) has a pod to give.
    pub fn has_active(&mut self) -> bool {
        while let Some(key) = self.active.front() {
            if self.places.get(key) == Some(&Place::Active) {
                return true;
            }
            self.active.pop_front();
        }
        false
    }

    /// Its attempt failed for a passing reason (a bind conflict): try
    /// again after its backoff.
    pub fn retry_later(&mut self, key: K, now: Instant) {
        let attempts = self.fail(&key, now);
        let ready = now + self.backoff.after(attempts);
        self.places.insert(key.clone(), Place::Backoff(ready));
        self.waiting.push(Reverse((ready, key)));
    }

    /// No node fits it: park it until the cluster changes.
    pub fn park_unschedulable(&mut self, key: K, now: Instant) {
        self.fail(&key, now);
        self.places.insert(key.clone(), Place::Unschedulable(now));
        self.parked.push_back((now, key));
    }

    /// A node was added or changed, or a pod went away: every parked pod
    /// may fit now. Each goes to backoff for what is left of its wait.
    pub fn cluster_changed(&mut self, now: Instant) {
        for (at, key) in std::mem::take(&mut self.parked) {
            if self.places.get(&key) != Some(&Place::Unschedulable(at)) {
                continue;
            }
            let history = self.history.get(&key).copied().unwrap_or_default();
            let ready = history
                .last_failure
                .map(|at| at + self.backoff.after(history.attempts));
            match ready {
                Some(ready) if ready > now => {
                    self.places.insert(key.clone(), Place::Backoff(ready));
                    self.waiting.push(Reverse((ready, key)));
                }
                _ => self.activate(key),
            }
        }
    }

    /// Move what is due to active: backoffs that are over, and pods
    /// unschedulable for `retry_period`.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((ready, _))) = self.waiting.peek() {
            if *ready > now {
                break;
            }
            let Some(Reverse((ready, key))) = self.waiting.pop() else {
                break;
            };
            if self.places.get(&key) == Some(&Place::Backoff(ready)) {
                self.activate(key);
            }
        }
        while let Some((at, _)) = self.parked.front() {
            if now.duration_since(*at) < self.backoff.retry_period {
                break;
            }
            let Some((at, key)) = self.parked.pop_front() else {
                break;
            };
            if self.places.get(&key) == Some(&Place::Unschedulable(at)) {
                self.activate(key);
            }
        }
    }

    /// The pod is bound or gone: drop it and its history.
    pub fn forget(&mut self, key: &K) {
        self.places.remove(key);
        self.history.remove(key);
    }

    /// When [`flush`](Self::flush) may next have something to move (it
    /// may find nothing: a pod that left is noticed only then).
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.waiting.peek().map(|Reverse((at, _))| *at);
        let parked = (self.parked.front()).map(|(at, _)| *at + self.backoff.retry_period);
        backoff.into_iter().chain(parked).min()
    }

    /// Whether `key` is parked as unschedulable.
    pub fn is_unschedulable(&self, key: &K) -> bool {
        matches!(self.places.get(key), Some(Place::Unschedulable(_)))
    }

    /// Every pod in the queue, wherever it is.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    fn activate(&mut self, key: K) {
        self.places.insert(key.clone(), Place::Active);
        self.active.push_back(key);
    }

    /// Count a failed attempt; returns the attempts so far.
    fn fail(&mut self, key: &K, now: Instant) -> u32 {
        let h = self.history.entry(key.clone()).or_default();
        h.attempts += 1;
        h.last_failure = Some(now);
        h.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn queue() -> SchedulingQueue<&'static str> {
        SchedulingQueue::new(Backoff {
            initial: S,
            max: 8 * S,
            retry_period: 60 * S,
        })
    }

    fn drain(q: &mut SchedulingQueue<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: S,
            max: 8 * S,
            retry_period: 60 * S,
        };
        let waits: Vec<u64> = (1..=6).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(b.after(u32::MAX), 8 * S);
    }

    #[test]
    fn pods_come_out_in_arrival_order_once() {
        let mut q = queue();
        for k in ["a", "b", "a", "c"] {
            q.add(k);
        }
        assert_eq!(q.len(), 3);
        assert!(q.has_active());
        assert_eq!(drain(&mut q), ["a", "b", "c"]);
        assert!(!q.has_active());
        assert!(q.is_empty());
    }

    #[test]
    fn a_failed_bind_waits_for_its_backoff() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("a");
        assert_eq!(q.pop(), Some("a"));
        q.retry_later("a", t0);
        // Adding it again (a watch event) does not skip the backoff.
        q.add("a");
        assert_eq!(q.pop(), None);
        assert_eq!(q.next_wakeup(), Some(t0 + S));
        q.flush(t0 + S / 2);
        assert_eq!(q.pop(), None);
        q.flush(t0 + S);
        assert_eq!(q.pop(), Some("a"));
        // The second failure waits twice as long.
        q.retry_later("a", t0 + S);
        q.flush(t0 + 2 * S);
        assert_eq!(q.pop(), None);
        q.flush(t0 + 3 * S);
        assert_eq!(q.pop(), Some("a"));
        // Forgetting resets the history: the next failure waits 1 s again.
        q.forget(&"a");
        q.retry_later("a", t0 + 10 * S);
        assert_eq!(q.next_wakeup(), Some(t0 + 11 * S));
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_change() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("a");
        q.add("b");
        assert_eq!(drain(&mut q), ["a", "b"]);
        q.park_unschedulable("a", t0);
        q.park_unschedulable("b", t0);
        assert!(q.is_unschedulable(&"a"));
        q.flush(t0 + 5 * S);
        assert_eq!(q.pop(), None, "nothing changed: they stay parked");
        // A change after their backoff: straight to active.
        q.cluster_changed(t0 + 5 * S);
        assert_eq!(drain(&mut q), ["a", "b"]);
        // A change within the backoff (2 s after the second failure):
        // they wait for what is left of it.
        q.park_unschedulable("a", t0 + 5 * S);
        q.cluster_changed(t0 + 6 * S);
        assert!(!q.is_unschedulable(&"a"));
        assert_eq!(q.pop(), None);
        q.flush(t0 + 7 * S);
        assert_eq!(q.pop(), Some("a"));
    }

    #[test]
    fn unschedulable_pods_are_retried_after_the_period_anyway() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("a");
        q.pop();
        q.park_unschedulable("a", t0);
        assert_eq!(q.next_wakeup(), Some(t0 + 60 * S));
        q.flush(t0 + 59 * S);
        assert_eq!(q.pop(), None);
        q.flush(t0 + 60 * S);
        assert_eq!(q.pop(), Some("a"));
    }

    #[test]
    fn an_updated_unschedulable_pod_is_tried_at_once_and_a_forgotten_one_never() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("a");
        q.add("b");
        drain(&mut q);
        q.park_unschedulable("a", t0);
        q.retry_later("b", t0);
        q.add("a");
        assert!(!q.is_unschedulable(&"a"));
        q.forget(&"b");
        q.flush(t0 + 100 * S);
        assert_eq!(drain(&mut q), ["a"]);
        q.add("c");
        q.forget(&"c");
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
        assert_eq!(q.next_wakeup(), None);
    }
}
