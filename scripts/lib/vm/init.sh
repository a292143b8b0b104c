#!/bin/sh
# shellcheck disable=SC1091  # the sourced files are generated per run
# /init of the noderun test VM (busybox ash, PID 1). Installed by
# scripts/vm-test.sh together with /etc/vm-test/{env.sh,modules,plan.sh}.
#
# Sets up a pure cgroup v2 host (every controller enabled in the root's
# cgroup.subtree_control), loads the kernel modules, then runs every test in
# /etc/vm-test/plan.sh. Each test's outcome goes to the console and, as a
# clean machine-readable line, to the second serial port (/dev/ttyS1):
#
#   NODERUN-VM-RESULT <name> exit=<code> seconds=<n>
#
# followed by `NODERUN-VM-DONE` once all ran, then `poweroff -f`. PID 1 must never exit
# (that is a kernel panic), so every step tolerates failure.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root USER=root LOGNAME=root SHELL=/bin/sh TMPDIR=/tmp TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The kernel may have started us without a console (no /dev/console in the
# archive): reattach stdio now that devtmpfs is there.
exec </dev/console >/dev/console 2>&1

# pivot_root(2) refuses the initramfs (rootfs cannot be unmounted), and
# container runtimes need it: with /etc/vm-test/switch-root, copy the
# archive into a tmpfs and make that the root, then start over from there.
if [ -f /etc/vm-test/switch-root ] && [ -z "${NODERUN_VM_SWITCHED:-}" ]; then
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 tmpfs /newroot
    for entry in /* /.[!.]*; do
        case $entry in
            /proc|/sys|/dev|/newroot|'/.[!.]*') ;;
            *) cp -a "$entry" /newroot/ ;;
        esac
    done
    mkdir -p /newroot/proc /newroot/sys /newroot/dev
    mount --move /dev /newroot/dev
    umount /sys /proc
    export NODERUN_VM_SWITCHED=1
    exec switch_root /newroot /init
fi
read -r t_init _ </proc/uptime

say() { echo "noderun-vm: $*"; }
result() {
    # Console for humans, ttyS1 for the host's parser (no interleaving there).
    echo "$*"
    echo "$*" >/dev/ttyS1 2>/dev/null
}
uptime_s() { read -r up _ </proc/uptime; echo "$up"; }
finish() {
    sync
    poweroff -f
    sleep 5
    echo o >/proc/sysrq-trigger
    while :; do sleep 3600; done
}

mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
# The initramfs root is already writable memory. A tmpfs over /tmp or /run
# would hide files the harness staged there (a checkout under /tmp puts the
# test binaries at /tmp/...), so mount one only on an empty directory.
for d in /tmp:1777 /run:0755; do
    dir=${d%%:*}
    if [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
        mount -t tmpfs -o "mode=${d##*:}" tmpfs "$dir"
    else
        chmod "${d##*:}" "$dir"
    fi
done
mkdir -p /run/netns /run/lock /var/lib /var/log /root
[ -e /var/run ] || ln -s /run /var/run
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

# Pure cgroup v2: one unified hierarchy, every available controller enabled
# for the root's children (the kernel runs with cgroup_no_v1=all).
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup ||
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
read -r controllers </sys/fs/cgroup/cgroup.controllers
for c in $controllers; do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
        say "could not enable cgroup controller $c"
done
say "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

# Kernel modules, already in dependency order: one `PATH [PARAM=VALUE...]` a line.
if [ -s /etc/vm-test/modules ]; then
    loaded=""
    while read -r ko params; do
        [ -n "$ko" ] || continue
        # shellcheck disable=SC2086  # module parameters are words
        if insmod "$ko" $params 2>/tmp/insmod.err; then
            m=${ko##*/}; loaded="$loaded ${m%.ko}"
        else
            say "insmod $ko failed: $(cat /tmp/insmod.err)"
        fi
    done </etc/vm-test/modules
    rm -f /tmp/insmod.err
    read -r t_mod _ </proc/uptime
    say "modules (${t_init}s to ${t_mod}s uptime):$loaded"
fi

hostname noderun-vm
ip link set lo up
# shellcheck disable=SC3045  # busybox ash has ulimit -n and -c
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null
# shellcheck disable=SC3045
ulimit -c 0

# dump_tasks: every user process's state, wait channel and kernel stack per
# thread, so that a hung test says where it waits.
dump_tasks() {
    for task in /proc/[0-9]*/task/[0-9]*; do
        readlink "${task%/task/*}/exe" >/dev/null 2>&1 || continue   # kernel threads
        state=$(cut -d' ' -f2-4 "$task/stat" 2>/dev/null) || continue
        echo "--- task ${task#/proc/}: $state wchan=$(cat "$task/wchan" 2>/dev/null)"
        sed 's/^/    /' "$task/stack" 2>/dev/null
    done
    echo w >/proc/sysrq-trigger 2>/dev/null
}

# watchdog NAME PID SECONDS: if PID still runs after SECONDS (0: never),
# print every task's state and kill the test's processes.
watchdog() {
    [ "$3" -gt 0 ] 2>/dev/null || return 0
    waited=0
    while [ "$waited" -lt "$3" ]; do
        sleep 1
        kill -0 "$2" 2>/dev/null || return 0
        waited=$((waited + 1))
    done
    say "=== $1 still running after $3s (NODERUN_VM_TEST_TIMEOUT): task states"
    dump_tasks
    kill -9 "$2" 2>/dev/null
}

# run_test NAME DIR PATH [ARGS...]: run one test binary in DIR, report it.
run_test() {
    name=$1 dir=$2
    shift 2
    say "=== running $name: $*"
    start=$(uptime_s)
    (cd "$dir" 2>/dev/null || cd /; exec "$@" </dev/null) &
    test_pid=$!
    watchdog "$name" "$test_pid" "${NODERUN_VM_TEST_TIMEOUT:-0}" &
    dog_pid=$!
    wait "$test_pid"
    rc=$?
    kill "$dog_pid" 2>/dev/null
    end=$(uptime_s)
    secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
    say "=== $name exited with $rc after ${secs}s"
    result "NODERUN-VM-RESULT $name exit=$rc seconds=$secs"
}

# The tests run in a subshell: an error in the generated files (a failing
# `.` ends a non-interactive shell) must not end PID 1. NODERUN-VM-DONE
# says that the whole plan ran.
(
    [ -f /etc/vm-test/env.sh ] && . /etc/vm-test/env.sh
    export NODERUN_IN_VM=1
    result "NODERUN-VM-READY uptime=$(uptime_s)"
    if [ -f /etc/vm-test/plan.sh ]; then
        . /etc/vm-test/plan.sh
    else
        say "no /etc/vm-test/plan.sh: nothing to run"
    fi
    result "NODERUN-VM-DONE"
)

if [ -f /etc/vm-test/shell ]; then
    say "debug shell (exit to power off)"
    setsid cttyhack sh
fi
finish
