"""Interleaved container-start timing for scripts/bench-runtime.sh.

Each cycle runs `<runtime> --root <state> run --bundle <bundle> <id>` once per
runtime, in a rotating order so that no runtime always goes first, and
records the wall time from fork to reaping. Prints median and p95 per
runtime, the ratio of each to the first runtime, and the first runtime's
peak RSS (from wait4's rusage).
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
    _, status, rusage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{binary} run {cid} failed with {proc.returncode}: {err.strip()}")
    return elapsed * 1000.0, rusage.ru_maxrss


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--work", required=True)
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
            ms, maxrss = run_once(binary, os.path.join(a.work, f"state-{name}"), a.bundle, f"b{cycle + 2}")
            if cycle >= 0:
                times[name].append(ms)
                rss[name] = max(rss[name], maxrss)
    base = runtimes[0][0]
    base_median = statistics.median(times[base])
    print(f"\ncontainer run (busybox /bin/true), {a.cycles} interleaved cycles per runtime")
    print(f"{'runtime':<8} {'median ms':>10} {'p95 ms':>8} {'vs ' + base:>9} {'peak RSS':>10}")
    for name, _ in runtimes:
        med = statistics.median(times[name])
        print(f"{name:<8} {med:>10.2f} {p95(times[name]):>8.2f} {med / base_median:>8.2f}x {rss[name] / 1024:>7.1f} MiB")


if __name__ == "__main__":
    main()
