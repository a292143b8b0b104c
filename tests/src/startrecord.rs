//! The daemon's own account of each pod start: the `pod start phases`
//! lines `noderun agent` logs (target `noderun::podstart`, see
//! runtime/src/node/startlog.rs), read back from its log by pod name.
//! Their times are CLOCK_MONOTONIC microseconds, the clock the bench reads
//! too, so they line up with the bench's own create / bound / Running
//! times.

use nix::time::{clock_gettime, ClockId};
use std::collections::HashMap;

/// Now on CLOCK_MONOTONIC, in microseconds: the clock of the records.
pub fn monotonic_micros() -> i64 {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    now.tv_sec() * 1_000_000 + now.tv_nsec() / 1_000
}

/// One pod's start as the daemon recorded it.
#[derive(Debug, Clone, Default)]
pub struct AgentRecord {
    pub seen_us: i64,
    pub begin_us: i64,
    pub sandbox_us: i64,
    pub network_us: i64,
    pub rootfs_us: i64,
    pub create_us: i64,
    pub start_us: i64,
    pub started_us: i64,
    pub status_us: i64,
}

const MARKER: &str = "pod start phases ";

/// Parse one log line; `None` unless it is a complete start record.
fn parse(line: &str) -> Option<(String, AgentRecord)> {
    let at = line.find(MARKER)?;
    let fields: HashMap<&str, &str> = line[at + MARKER.len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let num = |k: &str| fields.get(k)?.parse::<i64>().ok();
    let record = AgentRecord {
        seen_us: num("seen_us")?,
        begin_us: num("begin_us")?,
        sandbox_us: num("sandbox_us")?,
        network_us: num("network_us")?,
        rootfs_us: num("rootfs_us")?,
        create_us: num("create_us")?,
        start_us: num("start_us")?,
        started_us: num("started_us")?,
        status_us: num("status_us")?,
    };
    Some((fields.get("name")?.to_string(), record))
}

/// Every start record in the log text, by pod name (the last one wins).
pub fn read(log: &str) -> HashMap<String, AgentRecord> {
    log.lines().filter_map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_line_tracing_writes() {
        let line = "2026-12-02T16:00:00.000001Z  INFO noderun::podstart: pod start phases \
                    pod=0f2a namespace=default name=seq-7 seen_us=10 begin_us=20 sandbox_us=1 \
                    network_us=2 rootfs_us=3 create_us=4 start_us=5 started_us=40 status_us=50";
        let records = read(&format!("noise\n{line}\nother INFO pod started\n"));
        let r = &records["seq-7"];
        assert_eq!(
            (r.seen_us, r.begin_us, r.started_us, r.status_us),
            (10, 20, 40, 50)
        );
        assert_eq!(
            (
                r.sandbox_us,
                r.network_us,
                r.rootfs_us,
                r.create_us,
                r.start_us
            ),
            (1, 2, 3, 4, 5)
        );
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn a_cut_line_is_no_record() {
        assert!(
            read("x INFO noderun::podstart: pod start phases pod=a name=b seen_us=1").is_empty()
        );
    }
}
