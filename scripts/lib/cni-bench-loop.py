#!/usr/bin/env python3
"""Inner loop of scripts/bench-cni.sh, run inside the benchmark's "node"
network namespace: for one plugin, ADD then DEL each of the pod namespaces
nr-bcni-pod-<tag>-0..N-1, PARALLEL calls at a time, and print
"ADD <us>" / "DEL <us>" lines.

Each call is timed the way a container runtime makes it: the plugin is
started with posix_spawn (a vfork-style spawn, as Go's os/exec and
containerd/CRI-O do; not a fork of this interpreter), CNI_* in its
environment and the network configuration on its stdin, and the clock
stops when it has exited. A failed call prints the plugin's output on
stderr and the whole loop fails.

    cni-bench-loop.py PLUGIN CNI_PATH CONFIG_FILE TAG N PARALLEL
"""
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def call(plugin, cni_path, config, tag, verb, index):
    env = {
        "CNI_COMMAND": verb,
        "CNI_CONTAINERID": f"bench-{tag}-{index}",
        "CNI_NETNS": f"/run/netns/nr-bcni-pod-{tag}-{index}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path,
        "CNI_ARGS": "IgnoreUnknown=1",
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    with open(config, "rb") as stdin, tempfile.TemporaryFile() as out:
        actions = [
            (os.POSIX_SPAWN_DUP2, stdin.fileno(), 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
        ]
        start = time.perf_counter()
        pid = os.posix_spawn(plugin, [plugin], env, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            raise RuntimeError(f"{verb} bench-{tag}-{index} failed: {out.read().decode(errors='replace')}")
    return f"{verb} {round(elapsed * 1e6)}"


def main():
    plugin, cni_path, config, tag, n, parallel = sys.argv[1:7]
    n, parallel = int(n), int(parallel)
    try:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for verb in ("ADD", "DEL"):
                for first in range(0, n, parallel):
                    batch = range(first, min(first + parallel, n))
                    jobs = [pool.submit(call, plugin, cni_path, config, tag, verb, i) for i in batch]
                    for job in jobs:
                        print(job.result())
    except RuntimeError as e:
        print(e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
