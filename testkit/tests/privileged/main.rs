//! Privileged tests of the testkit's guards: each guard must remove what it
//! owns when dropped normally and when the test body panics, with real
//! mounts, network namespaces, cgroups and processes. Run as root.

mod cgroup;
mod child;
mod cleanup;
mod mount;
mod names;
mod netns;
mod snapshot;
mod support;
mod tempdir;
