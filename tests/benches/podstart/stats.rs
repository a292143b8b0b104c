//! Percentiles over samples in microseconds, and their printing in ms.

/// The value at percentile `p` (0..=1) of `values`, nearest rank; `None`
/// when there are none.
pub fn percentile(values: &[i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i])
}

/// Microseconds as milliseconds, `-` for nothing.
pub fn ms(us: Option<i64>) -> String {
    match us {
        Some(us) => format!("{:.2}", us as f64 / 1000.0),
        None => "-".into(),
    }
}

/// `ours / floor`, `-` when either is missing.
pub fn ratio(ours: Option<i64>, floor: Option<i64>) -> String {
    match (ours, floor) {
        (Some(o), Some(f)) if f > 0 => format!("{:.2}x", o as f64 / f as f64),
        _ => "-".into(),
    }
}

/// Median and p99 of a column.
pub fn p50_p99(values: &[i64]) -> (Option<i64>, Option<i64>) {
    (percentile(values, 0.5), percentile(values, 0.99))
}
