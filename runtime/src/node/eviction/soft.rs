//! Soft eviction thresholds, as the kubelet's `--eviction-soft` with
//! `--eviction-soft-grace-period`: a soft threshold turns its pressure
//! condition on as soon as it is met, but evicts only once it has been met
//! without a break for its grace period, and then stops the pod
//! gracefully (its own grace period, capped by
//! `--eviction-max-pod-grace-period`). Pure code.

use super::thresholds::{Observations, Signal, Threshold, ThresholdError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A soft threshold and how long it must hold before it evicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftThreshold {
    pub threshold: Threshold,
    pub grace: Duration,
}

/// Join `--eviction-soft` thresholds with `--eviction-soft-grace-period`
/// (`signal=duration,...`, durations parsed by `duration`): every soft
/// threshold needs a grace period, and every grace period a threshold.
pub fn with_grace_periods(
    soft: Vec<Threshold>,
    grace_periods: &str,
    duration: impl Fn(&str) -> Result<Duration, String>,
) -> Result<Vec<SoftThreshold>, ThresholdError> {
    let mut periods: BTreeMap<Signal, Duration> = BTreeMap::new();
    for item in grace_periods
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bad = |reason: String| ThresholdError::Amount {
            item: item.into(),
            reason,
        };
        let (name, text) = item
            .split_once('=')
            .ok_or_else(|| bad("write SIGNAL=DURATION, such as memory.available=1m30s".into()))?;
        let signal = Signal::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| ThresholdError::Signal {
                item: item.into(),
                signal: name.trim().into(),
            })?;
        let grace = duration(text.trim()).map_err(bad)?;
        if periods.insert(signal, grace).is_some() {
            return Err(ThresholdError::Duplicate {
                item: item.into(),
                signal,
            });
        }
        if !soft.iter().any(|t| t.signal == signal) {
            return Err(bad(format!(
                "a grace period for {signal}, which has no soft threshold (--eviction-soft)"
            )));
        }
    }
    soft.into_iter()
        .map(|threshold| {
            let grace =
                periods
                    .get(&threshold.signal)
                    .copied()
                    .ok_or_else(|| ThresholdError::Amount {
                        item: threshold.to_string(),
                        reason: format!(
                            "a soft threshold needs a grace period: add {}=DURATION to \
                         --eviction-soft-grace-period",
                            threshold.signal
                        ),
                    })?;
            Ok(SoftThreshold { threshold, grace })
        })
        .collect()
}

/// When each soft threshold was first seen met in its current run.
#[derive(Debug, Clone, Default)]
pub struct SoftMemory {
    first_met: BTreeMap<Signal, Instant>,
}

/// One round's soft thresholds: met now, and met for their grace period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftRound {
    pub met: Vec<Threshold>,
    pub due: Vec<Threshold>,
}

impl SoftMemory {
    /// Record one round; a threshold not met forgets when it was.
    pub fn observe(
        &mut self,
        soft: &[SoftThreshold],
        observed: &Observations,
        now: Instant,
    ) -> SoftRound {
        let thresholds: Vec<Threshold> = soft.iter().map(|s| s.threshold).collect();
        let met = super::thresholds::thresholds_met(&thresholds, observed);
        self.first_met
            .retain(|signal, _| met.iter().any(|t| t.signal == *signal));
        let due = soft
            .iter()
            .filter(|s| met.contains(&s.threshold))
            .filter(|s| {
                let since = *self.first_met.entry(s.threshold.signal).or_insert(now);
                now.saturating_duration_since(since) >= s.grace
            })
            .map(|s| s.threshold)
            .collect();
        SoftRound { met, due }
    }
}

/// The grace period a soft eviction gives the pod: its own, capped by
/// `max` when that is set.
pub fn pod_grace(
    pod_seconds: Option<i64>,
    default_seconds: i64,
    max: Option<Duration>,
) -> Duration {
    let own = Duration::from_secs(pod_seconds.unwrap_or(default_seconds).max(0) as u64);
    max.map_or(own, |m| own.min(m))
}

#[cfg(test)]
mod tests {
    use super::super::thresholds::{parse_thresholds, Observation};
    use super::*;

    fn seconds(text: &str) -> Result<Duration, String> {
        text.strip_suffix('s')
            .and_then(|n| n.parse().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| format!("bad duration {text:?}"))
    }

    #[test]
    fn every_soft_threshold_needs_a_grace_period() {
        let soft = parse_thresholds("memory.available<1Gi,nodefs.available<15%").unwrap();
        let joined = with_grace_periods(
            soft.clone(),
            "memory.available=90s, nodefs.available=60s",
            seconds,
        )
        .unwrap();
        assert_eq!(joined[0].grace, Duration::from_secs(90));
        assert_eq!(joined[1].grace, Duration::from_secs(60));
        let cases = [
            ("memory.available=90s", "needs a grace period"),
            ("memory.available=90s,nodefs.available=x", "bad duration"),
            ("memory.available=90s,nodefs.available", "SIGNAL=DURATION"),
            ("memory.available=1s,memory.available=2s", "given twice"),
            (
                "memory.available=1s,nodefs.available=1s,pid.available=1s",
                "no soft threshold",
            ),
            ("memory.free=1s", "unsupported signal"),
        ];
        for (text, expected) in cases {
            let e = with_grace_periods(soft.clone(), text, seconds)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
        assert_eq!(with_grace_periods(Vec::new(), "", seconds).unwrap(), []);
    }

    #[test]
    fn a_soft_threshold_evicts_after_holding_for_its_grace_period() {
        let soft = with_grace_periods(
            parse_thresholds("memory.available<1Gi").unwrap(),
            "memory.available=60s",
            seconds,
        )
        .unwrap();
        let reading = |available| {
            let mut o = Observations::new();
            o.insert(
                Signal::MemoryAvailable,
                Observation {
                    available,
                    capacity: 8 << 30,
                },
            );
            o
        };
        let (low, high) = (reading(512 << 20), reading(2 << 30));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut memory = SoftMemory::default();
        let r = memory.observe(&soft, &low, at(0));
        assert_eq!((r.met.len(), r.due.len()), (1, 0), "met, not yet due");
        assert_eq!(memory.observe(&soft, &low, at(59)).due.len(), 0);
        assert_eq!(memory.observe(&soft, &low, at(60)).due, [soft[0].threshold]);
        // A break starts the wait again.
        assert_eq!(memory.observe(&soft, &high, at(61)), SoftRound::default());
        assert_eq!(memory.observe(&soft, &low, at(62)).due.len(), 0);
        assert_eq!(memory.observe(&soft, &low, at(122)).due.len(), 1);
    }

    #[test]
    fn the_pod_grace_is_its_own_capped_by_the_maximum() {
        let s = Duration::from_secs;
        assert_eq!(pod_grace(Some(10), 30, None), s(10));
        assert_eq!(pod_grace(None, 30, None), s(30));
        assert_eq!(pod_grace(Some(60), 30, Some(s(20))), s(20));
        assert_eq!(pod_grace(Some(5), 30, Some(s(20))), s(5));
        assert_eq!(pod_grace(Some(-3), 30, None), s(0));
    }
}
