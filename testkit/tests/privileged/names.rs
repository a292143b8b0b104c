//! Unique names: no collisions across threads, the length rule, and the
//! pid that keeps processes apart.

use noderun_testkit::{unique_name, unique_name_long, IFNAMSIZ_MAX, MAX_SHORT_PREFIX};
use std::collections::HashSet;

const THREADS: usize = 8;
const PER_THREAD: usize = 1000;

fn from_threads(make: fn() -> String) -> Vec<String> {
    let handles: Vec<_> = (0..THREADS)
        .map(|_| std::thread::spawn(move || (0..PER_THREAD).map(|_| make()).collect::<Vec<_>>()))
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("name thread"))
        .collect()
}

#[test]
fn short_names_are_unique_across_threads_and_fit_ifnamsiz() {
    let names = from_threads(|| unique_name("nrt"));
    let distinct: HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), THREADS * PER_THREAD);
    for name in &names {
        assert!(
            name.len() <= IFNAMSIZ_MAX,
            "{name} is longer than {IFNAMSIZ_MAX}"
        );
        assert!(name.starts_with("nrt"), "{name}");
    }
}

#[test]
fn long_names_are_unique_across_threads() {
    let names = from_threads(|| unique_name_long("noderun-testkit"));
    let distinct: HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), THREADS * PER_THREAD);
}

#[test]
fn short_name_encodes_this_pid() {
    // Different processes differ in this fixed-width field, so they cannot
    // collide whatever their counters are.
    let prefix = "p".repeat(MAX_SHORT_PREFIX);
    let name = unique_name(&prefix);
    let pid_field = &name[prefix.len()..prefix.len() + 5];
    let pid = u32::from_str_radix(pid_field, 36).expect("base-36 pid");
    assert_eq!(pid, std::process::id(), "{name}");
}
