"""Interleaved container-start timing for scripts/bench-runtime.sh.

Each cycle runs `<runtime> --root <state> run --bundle <bundle> <id>` once per
runtime, in a rotating order so that no runtime always goes first, and
records the wall time from fork to reaping. Prints median and p95 per
runtime, the ratio of each to the first runtime, and each runtime's peak
RSS.

Peak RSS is VmHWM of the runtime's process read from /proc while it waits
for a container running `sleep` (--rss-bundle): wait4's ru_maxrss cannot
be used, because it counts the pages the forked Python child had before it
exec'd the runtime.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def run_once(binary, state, bundle, cid):
    start = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--root", state, "run", "--bundle", bundle, cid],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, _ = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{binary} run {cid} failed with {proc.returncode}: {err.strip()}")
    return elapsed * 1000.0


def peak_rss_kib(binary, state, bundle, cid):
    """VmHWM of `<runtime> run` while its container sleeps."""
    proc = subprocess.Popen(
        [binary, "--root", state, "run", "--bundle", bundle, cid],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hwm = 0
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    proc.wait()
    return hwm


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rss-bundle", required=True, help="a bundle running `sleep 1`")
    ap.add_argument("--runtime", action="append", required=True, help="name=path")
    a = ap.parse_args()
    runtimes = [r.split("=", 1) for r in a.runtime]
    times = {name: [] for name, _ in runtimes}
    rss = {name: 0 for name, _ in runtimes}
    for name, _ in runtimes:
        os.makedirs(os.path.join(a.work, f"state-{name}"), exist_ok=True)
    # Two warm-up cycles per runtime (page cache, first-run costs), not counted.
    for cycle in range(-2, a.cycles):
        order = runtimes[cycle % len(runtimes):] + runtimes[:cycle % len(runtimes)]
        for name, binary in order:
            ms = run_once(binary, os.path.join(a.work, f"state-{name}"), a.bundle, f"b{cycle + 2}")
            if cycle >= 0:
                times[name].append(ms)
    for name, binary in runtimes:
        rss[name] = peak_rss_kib(binary, os.path.join(a.work, f"state-{name}"), a.rss_bundle, "rss")
    base = runtimes[0][0]
    base_median = statistics.median(times[base])
    print(f"\ncontainer run (busybox /bin/true), {a.cycles} interleaved cycles per runtime")
    print(f"{'runtime':<8} {'median ms':>10} {'p95 ms':>8} {'vs ' + base:>9} {'peak RSS':>10}")
    for name, _ in runtimes:
        med = statistics.median(times[name])
        print(f"{name:<8} {med:>10.2f} {p95(times[name]):>8.2f} {med / base_median:>8.2f}x {rss[name] / 1024:>7.1f} MiB")


if __name__ == "__main__":
    main()
