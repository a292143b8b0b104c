//! Eviction signals and hard thresholds, as the kubelet names and parses
//! them (`--eviction-hard memory.available<100Mi,nodefs.available<10%`),
//! and which thresholds a set of observations meets. Pure code.

use noderun_core::{NodeConditionType, Quantity};
use std::collections::BTreeMap;
use std::fmt;

/// What the eviction manager watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Memory the node can still hand out (bytes).
    MemoryAvailable,
    /// Free space of the filesystem holding the node's state (bytes).
    NodeFsAvailable,
    /// Free inodes of that filesystem.
    NodeFsInodesFree,
    /// Free space of the filesystem holding images and snapshots (bytes).
    ImageFsAvailable,
    /// Free inodes of that filesystem.
    ImageFsInodesFree,
    /// Process ids still free.
    PidAvailable,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    /// The kubelet's name of the signal.
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The node condition a met threshold of this signal turns True.
    pub fn condition(self) -> NodeConditionType {
        match self {
            Signal::MemoryAvailable => NodeConditionType::MemoryPressure,
            Signal::PidAvailable => NodeConditionType::PidPressure,
            _ => NodeConditionType::DiskPressure,
        }
    }

    /// Whether the signal counts bytes (shown as `100Mi`) or items.
    fn in_bytes(self) -> bool {
        matches!(
            self,
            Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A threshold's amount: absolute, or a share of the signal's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Bytes, or a count (inodes, pids).
    Absolute(i64),
    /// Percent of the capacity, in (0, 100].
    Percent(f64),
}

/// `signal < amount`: met when the available amount falls below it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub amount: Amount,
}

impl Threshold {
    /// The amount in the signal's unit, for a capacity of `capacity`.
    pub fn min_available(&self, capacity: i64) -> i64 {
        match self.amount {
            Amount::Absolute(n) => n,
            Amount::Percent(p) => (capacity as f64 * p / 100.0).round() as i64,
        }
    }

    /// The amount as written in kubelet's messages (`100Mi`, `10%`).
    pub fn quantity_text(&self) -> String {
        match self.amount {
            Amount::Absolute(n) => amount_text(self.signal, n),
            Amount::Percent(p) => format!("{p}%"),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<{}", self.signal, self.quantity_text())
    }
}

/// An amount of `signal` as a reader expects it: bytes in the largest
/// binary unit that divides them (`100Mi`, `1536Ki`), counts as they are.
pub fn amount_text(signal: Signal, n: i64) -> String {
    if !signal.in_bytes() {
        return n.to_string();
    }
    bytes_text(n)
}

/// Bytes in the largest binary unit that divides them.
pub fn bytes_text(n: i64) -> String {
    for (suffix, shift) in [("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        let unit = 1i64 << shift;
        if n != 0 && n % unit == 0 {
            return format!("{}{suffix}", n / unit);
        }
    }
    if n.abs() >= 1 << 10 {
        return format!("{}Ki", n / 1024);
    }
    n.to_string()
}

/// Why an `--eviction-hard` value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("eviction threshold {0:?}: write SIGNAL<AMOUNT, such as memory.available<100Mi or nodefs.available<10% (only `<` is supported)")]
    Syntax(String),
    #[error("eviction threshold {item:?}: unsupported signal {signal:?} (supported: memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)")]
    Signal { item: String, signal: String },
    #[error("eviction threshold {item:?}: {reason}")]
    Amount { item: String, reason: String },
    #[error("eviction threshold {item:?}: the signal {signal} is given twice")]
    Duplicate { item: String, signal: Signal },
}

/// The kubelet's defaults on Linux, used when `--eviction-hard` is not
/// given (given, it replaces them all, as kubelet's flag does).
pub fn default_thresholds() -> Vec<Threshold> {
    let t = |signal, amount| Threshold { signal, amount };
    vec![
        t(Signal::MemoryAvailable, Amount::Absolute(100 << 20)),
        t(Signal::NodeFsAvailable, Amount::Percent(10.0)),
        t(Signal::NodeFsInodesFree, Amount::Percent(5.0)),
        t(Signal::ImageFsAvailable, Amount::Percent(15.0)),
        t(Signal::ImageFsInodesFree, Amount::Percent(5.0)),
    ]
}

/// Parse `signal<amount,...` (an empty text: no thresholds, eviction off).
pub fn parse_thresholds(text: &str) -> Result<Vec<Threshold>, ThresholdError> {
    let mut out: Vec<Threshold> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, amount) = item
            .split_once('<')
            .ok_or_else(|| ThresholdError::Syntax(item.into()))?;
        let (name, amount) = (name.trim(), amount.trim());
        let signal = Signal::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| ThresholdError::Signal {
                item: item.into(),
                signal: name.into(),
            })?;
        let bad = |reason: String| ThresholdError::Amount {
            item: item.into(),
            reason,
        };
        let amount = match amount.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("{amount:?} is not a percentage")))?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(bad(format!("the percentage {p} must be in (0, 100]")));
                }
                Amount::Percent(p)
            }
            None => {
                let q = Quantity::parse(amount).map_err(|e| bad(e.to_string()))?;
                if q.is_negative() {
                    return Err(bad(format!("the amount {amount} must not be negative")));
                }
                if !signal.in_bytes() && q.millis() % 1000 != 0 {
                    return Err(bad(format!("{signal} counts whole items, not {amount}")));
                }
                Amount::Absolute(q.value())
            }
        };
        if out.iter().any(|t| t.signal == signal) {
            return Err(ThresholdError::Duplicate {
                item: item.into(),
                signal,
            });
        }
        out.push(Threshold { signal, amount });
    }
    Ok(out)
}

/// One reading of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

/// The readings of one round (a signal the host could not read is absent).
pub type Observations = BTreeMap<Signal, Observation>;

/// The thresholds the observations meet, in the given order.
pub fn thresholds_met(thresholds: &[Threshold], observed: &Observations) -> Vec<Threshold> {
    thresholds
        .iter()
        .filter(|t| {
            observed
                .get(&t.signal)
                .is_some_and(|o| o.available < t.min_available(o.capacity))
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubelet_syntax() {
        let t = parse_thresholds(
            "memory.available<100Mi, nodefs.available<10%,pid.available<1k,imagefs.inodesFree<5%",
        )
        .unwrap();
        assert_eq!(
            t,
            [
                Threshold {
                    signal: Signal::MemoryAvailable,
                    amount: Amount::Absolute(100 << 20)
                },
                Threshold {
                    signal: Signal::NodeFsAvailable,
                    amount: Amount::Percent(10.0)
                },
                Threshold {
                    signal: Signal::PidAvailable,
                    amount: Amount::Absolute(1000)
                },
                Threshold {
                    signal: Signal::ImageFsInodesFree,
                    amount: Amount::Percent(5.0)
                },
            ]
        );
        assert_eq!(t[0].to_string(), "memory.available<100Mi");
        assert_eq!(t[1].to_string(), "nodefs.available<10%");
        assert_eq!(parse_thresholds("").unwrap(), []);
        assert_eq!(
            parse_thresholds("memory.available<1.5Gi").unwrap()[0].min_available(0),
            3 << 29
        );
    }

    #[test]
    fn bad_thresholds_are_refused_clearly() {
        let cases = [
            ("memory.available>100Mi", "only `<`"),
            ("memory.available=100Mi", "only `<`"),
            ("memory.free<100Mi", "unsupported signal \"memory.free\""),
            ("memory.available<lots", "not a number"),
            ("memory.available<-1Mi", "must not be negative"),
            ("nodefs.available<0%", "(0, 100]"),
            ("nodefs.available<101%", "(0, 100]"),
            ("nodefs.available<x%", "not a percentage"),
            ("pid.available<1500m", "whole items"),
            ("memory.available<1Gi,memory.available<2Gi", "given twice"),
        ];
        for (text, expected) in cases {
            let e = parse_thresholds(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn thresholds_are_met_below_their_amount() {
        let t = parse_thresholds("memory.available<100Mi,nodefs.available<10%").unwrap();
        let mut seen = Observations::new();
        seen.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 100 << 20,
                capacity: 1 << 30,
            },
        );
        seen.insert(
            Signal::NodeFsAvailable,
            Observation {
                available: 99,
                capacity: 1000,
            },
        );
        // Exactly at the threshold is not below it.
        assert_eq!(thresholds_met(&t, &seen), [t[1]]);
        seen.get_mut(&Signal::MemoryAvailable).unwrap().available -= 1;
        assert_eq!(thresholds_met(&t, &seen), t);
        // An unread signal meets nothing.
        assert_eq!(thresholds_met(&t, &Observations::new()), []);
    }

    #[test]
    fn amounts_read_as_kubelet_writes_them() {
        assert_eq!(bytes_text(100 << 20), "100Mi");
        assert_eq!(bytes_text(3 << 30), "3Gi");
        assert_eq!(bytes_text(1536 << 10), "1536Ki");
        assert_eq!(bytes_text(5000), "4Ki");
        assert_eq!(bytes_text(0), "0");
        assert_eq!(amount_text(Signal::PidAvailable, 4096), "4096");
        assert_eq!(
            Signal::PidAvailable.condition(),
            NodeConditionType::PidPressure
        );
        assert_eq!(
            Signal::ImageFsAvailable.condition(),
            NodeConditionType::DiskPressure
        );
    }
}
