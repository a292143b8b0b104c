//! Privileged tests of the cgroup drivers on the host's own layout (v1 on a
//! hybrid host, v2 inside the qemu VM): limits are written and enforced,
//! freeze and kill reach every process, delete leaves nothing behind.

use noderun_runtime::cgroups::{self, Cgroups, Layout, Resources};
use std::path::PathBuf;

/// A test cgroup that is emptied and removed when dropped, even on panic.
struct TestCgroup {
    cg: Box<dyn Cgroups>,
}

impl TestCgroup {
    fn new() -> Option<TestCgroup> {
        if !noderun_testkit::privileged() {
            return None;
        }
        let layout = Layout::detect().expect("detect cgroup layout");
        let name = noderun_testkit::unique_name_long("noderun-test-cg");
        let cg = cgroups::open(&layout, &PathBuf::from(name)).expect("open cgroup");
        cg.create().expect("create cgroup");
        Some(TestCgroup { cg })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.cg.kill_all();
        if let Err(e) = self.cg.delete() {
            eprintln!("cleanup of test cgroup failed: {e}");
        }
    }
}

/// What a forked child does once it is inside the cgroup. Only
/// async-signal-safe work: the test process has threads.
#[derive(Clone, Copy)]
enum Work {
    /// Touch `bytes` of fresh anonymous memory, then exit 0.
    Allocate(usize),
    /// Fork children that wait forever until a fork fails; exit with the
    /// number of successful forks.
    ForkUntilRefused,
    /// Wait for a signal.
    Pause,
}

/// Fork a child, put it into `cg` before it does anything, then let it run
/// `work`. Returns its pid.
fn spawn_in(cg: &dyn Cgroups, work: Work) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: pipe() writes two fds into the array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes async-signal-safe calls (read, mmap,
    // fork, pause, _exit) before it exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child(fds[0], work);
    }
    close(fds[0]);
    cg.add_process(pid).expect("add child to cgroup");
    // SAFETY: writing one byte from a valid buffer to the write end we own.
    unsafe { libc::write(fds[1], b"g".as_ptr().cast(), 1) };
    close(fds[1]);
    pid
}

fn close(fd: i32) {
    // SAFETY: closing an fd this process owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// The forked child: only async-signal-safe calls, never returns.
fn child(ready: i32, work: Work) -> ! {
    let mut b = 0u8;
    // SAFETY: reading one byte into a local buffer.
    unsafe { libc::read(ready, (&mut b as *mut u8).cast(), 1) };
    match work {
        Work::Allocate(bytes) => exit(if touch_fresh_memory(bytes) { 0 } else { 2 }),
        Work::ForkUntilRefused => {
            let mut forks = 0;
            while forks < 100 {
                // SAFETY: the grandchild only pauses until it is killed.
                match unsafe { libc::fork() } {
                    0 => pause_forever(),
                    -1 => break,
                    _ => forks += 1,
                }
            }
            exit(forks)
        }
        Work::Pause => pause_forever(),
    }
}

/// Map `bytes` of anonymous memory and write to every page.
fn touch_fresh_memory(bytes: usize) -> bool {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: the mapping is `bytes` long, readable and writable, and
    // exclusively ours; a byte slice over it is valid for its lifetime.
    let mem = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), bytes) };
    for page in mem.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(mem);
    true
}

fn pause_forever() -> ! {
    loop {
        // SAFETY: pause() only waits for a signal.
        unsafe { libc::pause() };
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the forked child without running the parent's
    // atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

/// Wait for `pid`; returns (exit code, killing signal).
fn wait(pid: i32) -> (Option<i32>, Option<i32>) {
    let mut status = 0;
    // SAFETY: waiting for our own child; status is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid({pid})");
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else {
        (None, Some(libc::WTERMSIG(status)))
    }
}

const MIB: i64 = 1 << 20;

#[test]
fn limits_are_written_and_reported() {
    let Some(t) = TestCgroup::new() else { return };
    let r = Resources {
        memory_limit: Some(64 * MIB),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        pids_limit: Some(16),
        ..Resources::default()
    };
    t.cg.apply(&r).unwrap();
    let s = t.cg.stats().unwrap();
    assert_eq!(s.memory_limit, Some(64 * MIB as u64));
    assert_eq!(s.pids_limit, Some(16));
    // Raising and lowering again works (v1 memsw ordering, v2 cpu.max merge).
    t.cg.apply(&Resources {
        memory_limit: Some(128 * MIB),
        cpu_quota: Some(-1),
        ..Resources::default()
    })
    .unwrap();
    assert_eq!(t.cg.stats().unwrap().memory_limit, Some(128 * MIB as u64));
    for p in t.cg.paths() {
        assert!(p.is_dir(), "{} missing", p.display());
    }
}

#[test]
fn memory_limit_oom_kills_and_is_counted() {
    let Some(t) = TestCgroup::new() else { return };
    t.cg.apply(&Resources {
        memory_limit: Some(32 * MIB),
        memory_swap: Some(32 * MIB),
        ..Resources::default()
    })
    .unwrap();
    let pid = spawn_in(t.cg.as_ref(), Work::Allocate(256 * MIB as usize));
    assert_eq!(
        wait(pid),
        (None, Some(libc::SIGKILL)),
        "allocating past the limit must be OOM-killed"
    );
    assert!(
        t.cg.stats().unwrap().oom_kills >= 1,
        "the OOM kill is counted"
    );

    let pid = spawn_in(t.cg.as_ref(), Work::Allocate(4 * MIB as usize));
    assert_eq!(
        wait(pid),
        (Some(0), None),
        "allocating under the limit succeeds"
    );
}

#[test]
fn pids_limit_refuses_forks() {
    let Some(t) = TestCgroup::new() else { return };
    t.cg.apply(&Resources {
        pids_limit: Some(8),
        ..Resources::default()
    })
    .unwrap();
    let pid = spawn_in(t.cg.as_ref(), Work::ForkUntilRefused);
    let (code, _) = wait(pid);
    // The forking child itself is one of the 8.
    assert_eq!(code, Some(7), "forks allowed under pids.max=8");
    assert_eq!(
        t.cg.pids().unwrap().len(),
        7,
        "the grandchildren remain until killed"
    );
    t.cg.kill_all().unwrap();
    assert!(t.cg.pids().unwrap().is_empty());
}

#[test]
fn freeze_thaw_and_kill_all() {
    let Some(t) = TestCgroup::new() else { return };
    let pid = spawn_in(t.cg.as_ref(), Work::Pause);
    assert!(!t.cg.is_frozen());
    t.cg.freeze().unwrap();
    assert!(t.cg.is_frozen());
    t.cg.thaw().unwrap();
    assert!(!t.cg.is_frozen());
    assert_eq!(t.cg.pids().unwrap(), vec![pid]);
    t.cg.kill_all().unwrap();
    assert_eq!(wait(pid), (None, Some(libc::SIGKILL)));
    assert!(t.cg.pids().unwrap().is_empty());
}

#[test]
fn delete_removes_every_directory_and_is_idempotent() {
    let Some(t) = TestCgroup::new() else { return };
    let paths = t.cg.paths();
    t.cg.delete().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    t.cg.delete().unwrap();
}

#[test]
fn a_thread_moves_itself_in_where_the_layout_allows() {
    let Some(t) = TestCgroup::new() else {
        return;
    };
    let Some(join) = t.cg.self_join().expect("open the tasks files") else {
        // cgroup v2: the runtime places processes with add_process.
        return;
    };
    // A thread of its own: `0` moves only the calling thread, and the
    // cgroup is empty again once the thread has ended.
    let seen = std::thread::spawn(move || {
        join.join().expect("write 0 to every tasks file");
        std::fs::read_to_string("/proc/thread-self/cgroup").expect("read own cgroups")
    })
    .join()
    .expect("the joining thread");
    let dirs = t.cg.paths();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let relative = dir.file_name().unwrap().to_string_lossy().into_owned();
        let hierarchy = dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let line = seen
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == hierarchy))
            })
            .unwrap_or_else(|| panic!("no {hierarchy} line in {seen}"));
        assert!(
            line.ends_with(&format!("/{relative}")),
            "{hierarchy}: {line}"
        );
    }
}
