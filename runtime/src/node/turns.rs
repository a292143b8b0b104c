//! [`StartTurns`]: how many pod starts run at once. A start is mostly
//! kernel work (a network namespace, a veth and addresses under the
//! kernel's rtnl lock, mounts, cgroups, a clone) and CPU-bound: with a
//! hundred at once on two cores, every phase of every pod waits on the
//! others' and each pod is Running only near the end of the burst; a few
//! at a time, the burst ends about as soon and most pods are Running much
//! earlier. A start that takes long (an image unpacked the first time, a
//! lock held elsewhere) gives its turn back after [`StartTurns::hold`] and
//! goes on without one, so a few slow starts never hold up the others.

use std::future::Future;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest a start keeps its turn (a normal one takes a few ms).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// Two turns per CPU (see the module doc; the podstart bench on this
/// 2-core VM, burst of 100: p50 per pod 0.42-0.56 s against 0.60-0.62 s
/// without turns, all Running after about the same time).
pub fn default_turns() -> usize {
    2 * std::thread::available_parallelism().map_or(1, usize::from)
}

#[derive(Debug)]
pub struct StartTurns {
    /// `None`: no limit.
    turns: Option<Semaphore>,
    hold: Duration,
}

impl StartTurns {
    /// `count` turns (0: no limit), each kept at most `hold`.
    pub fn new(count: usize, hold: Duration) -> StartTurns {
        StartTurns {
            turns: (count > 0).then(|| Semaphore::new(count)),
            hold,
        }
    }

    /// The longest a start keeps its turn.
    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// Run `start` once a turn is free; the turn is given back when it
    /// ends or after [`StartTurns::hold`], whichever comes first.
    pub async fn run<T>(&self, start: impl Future<Output = T>) -> T {
        let Some(turns) = &self.turns else {
            return start.await;
        };
        // Never closed, so acquiring cannot fail; without a turn the
        // start just runs.
        let turn = turns.acquire().await.ok();
        let mut start = std::pin::pin!(start);
        match tokio::time::timeout(self.hold, &mut start).await {
            Ok(done) => done,
            Err(_) => {
                drop(turn);
                start.await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::time::{sleep, Instant};

    /// Run `starts` of `each` at once through `turns`; the most that ran
    /// together, and how long all took.
    async fn burst(turns: StartTurns, starts: usize, each: Duration) -> (usize, Duration) {
        let turns = Arc::new(turns);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let begin = Instant::now();
        let tasks: Vec<_> = (0..starts)
            .map(|_| {
                let (turns, now, most) = (turns.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    turns
                        .run(async {
                            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            sleep(each).await;
                            now.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        (most.load(Ordering::SeqCst), begin.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn starts_take_turns_or_all_run_at_once() {
        // (turns, most running together, how long 9 starts of 10 ms took)
        let table = [(3, 3, 30), (1, 1, 90), (0, 9, 10)];
        for (count, expect_most, expect_ms) in table {
            let turns = StartTurns::new(count, DEFAULT_HOLD);
            let (most, took) = burst(turns, 9, Duration::from_millis(10)).await;
            assert_eq!(
                (most, took),
                (expect_most, Duration::from_millis(expect_ms)),
                "{count} turns"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_start_gives_its_turn_back() {
        // One turn, held 50 ms at most: a start of 1 s lets the next one
        // run after 50 ms, and both end by the slow one's end.
        let turns = Arc::new(StartTurns::new(1, Duration::from_millis(50)));
        let begin = Instant::now();
        let slow = {
            let turns = turns.clone();
            tokio::spawn(async move { turns.run(sleep(Duration::from_secs(1))).await })
        };
        tokio::task::yield_now().await;
        let quick = turns.run(async { begin.elapsed() }).await;
        assert_eq!(quick, Duration::from_millis(50));
        slow.await.unwrap();
        assert_eq!(begin.elapsed(), Duration::from_secs(1));
        assert_eq!(turns.hold(), Duration::from_millis(50));
    }
}
