#!/usr/bin/env bash
# vm-test.sh: run noderun test binaries inside a small qemu VM whose kernel is
# a pure cgroup v2 host (the development host has a hybrid v1/v2 layout).
#
# usage: scripts/vm-test.sh [OPTIONS] [BINARY [ARGS...]]
#        scripts/vm-test.sh [OPTIONS] --cargo-test PKG[:TEST] ... [-- ARGS...]
#
# Every test runs in turn, as root, inside one VM boot. The script exits 0
# only when every test exited 0; it fails with a clear message on a timeout,
# a kernel panic or a missing result line.
#
# What to run:
#   BINARY [ARGS...]        a binary and its arguments (everything after
#                           BINARY belongs to it)
#   --bin PATH              a binary to run (repeatable); gets the common ARGS
#   --cargo-test PKG[:TEST] build the package's test binaries with
#                           `cargo test --no-run` and run them (repeatable).
#                           TEST is an integration test target name, or `lib`
#                           for the unit tests; without it every test target
#                           of PKG runs. Binaries of PKG are included too, at
#                           their host paths, so CARGO_BIN_EXE_* work, and
#                           the package's source directory (without target/),
#                           which is also the tests' working directory, as
#                           under cargo.
#   -- ARGS...              common arguments for every --bin and --cargo-test
#                           binary (e.g. `-- --ignored cgroup`)
#
# Options:
#   --cargo-flags "FLAGS"   extra flags for cargo (e.g. "--release
#                           --all-features"); word-split
#   --test-threads N        append --test-threads=N to every test's arguments
#   --env NAME=VALUE        set a variable for the tests (repeatable). NODERUN_*
#                           and RUST_* variables of the caller pass through;
#                           RUST_BACKTRACE defaults to 1; NODERUN_IN_VM=1.
#   --file SRC[:DEST]       add a file (an executable's shared libraries come
#                           with it), at DEST or at its host path (repeatable)
#   --tree DIR[:DEST]       add a directory tree (repeatable)
#   --strip                 strip debug info from the test binaries (a smaller
#                           initramfs; backtraces keep function names)
#   --modules "M1 M2"       load these kernel modules too (with dependencies)
#   --no-default-modules    do not load the default modules:
#                           overlay veth bridge br_netfilter dummy tun
#                           nf_tables nft_chain_nat nft_nat nft_masq nft_ct
#   --timeout SECONDS       whole-VM time limit (default 600)
#   --switch-root           move the root from the initramfs into a tmpfs
#                           at boot (pivot_root, which container runtimes
#                           need, refuses the initramfs); costs a copy
#   --test-timeout SECONDS  time limit of each test binary inside the VM
#                           (default: the whole-VM limit minus 60 s); a test
#                           past it has its processes' states and kernel
#                           stacks printed to the console, then is killed
#   --mem SIZE              guest memory (default 2G)
#   --smp N                 guest CPUs (default 2)
#   --quiet                 do not stream the console; show its tail on failure
#   --log FILE              also keep the console log in FILE
#   --keep                  keep the work directory (initramfs, logs)
#   --shell                 console on this terminal, and a shell after the
#                           tests (no time limit unless --timeout is given)
#   --refresh-kernel        look up and fetch the newest kernel package again
#   -h, --help              this text
#
# Environment:
#   NODERUN_VM_CACHE        kernel cache (default /var/cache/noderun-vm)
#   NODERUN_VM_KERNEL_PACKAGE  kernel package (default linux-image-cloud-amd64)
#
# Output: the guest console is streamed; each test ends with a line
#   NODERUN-VM-RESULT <name> exit=<code> seconds=<n>
# (taken from a second serial port, so test output cannot garble it), then a
# summary with the boot time (qemu start to init ready) and the total time.
#
# Examples:
#   scripts/vm-test.sh --cargo-test noderun-tests:vm_selftest -- --ignored
#   scripts/vm-test.sh --cargo-test noderun-runtime --test-threads 1 -- cgroup
#   scripts/vm-test.sh target/debug/some-tool --flag
#
# Needs root (apt-get, device nodes). Uses TCG, never KVM (KVM hangs on the
# development host). Installs qemu-system-x86, busybox-static, cpio, xz-utils
# and zstd with apt-get when missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
vmlib=$here/lib/vm
# shellcheck source=lib/packages.sh disable=SC1091
source "$here/lib/packages.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "vm-test: error: $*" >&2; exit 2; }
log() { echo "vm-test: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

default_modules="overlay veth bridge br_netfilter dummy tun nf_tables nft_chain_nat nft_nat nft_masq nft_ct"

# ---------------------------------------------------------------- arguments
bins=() cargo_tests=() common_args=() files=() trees=() envs=()
pos_bin="" pos_args=()
cargo_flags="" test_threads="" strip=0 extra_modules="" use_default_modules=1
timeout="" test_timeout="" switch_root=0 mem=2G smp=2 quiet=0 keep=0 shell=0 refresh=0 log_copy=""

need() { [ "$#" -ge 2 ] || die "option $1 needs a value"; }
while [ "$#" -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --bin) need "$@"; bins+=("$2"); shift 2 ;;
    --cargo-test) need "$@"; cargo_tests+=("$2"); shift 2 ;;
    --cargo-flags) need "$@"; cargo_flags=$2; shift 2 ;;
    --test-threads) need "$@"; test_threads=$2; shift 2 ;;
    --env) need "$@"; [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE"; envs+=("$2"); shift 2 ;;
    --file) need "$@"; files+=("$2"); shift 2 ;;
    --tree) need "$@"; trees+=("$2"); shift 2 ;;
    --strip) strip=1; shift ;;
    --modules) need "$@"; extra_modules="$extra_modules $2"; shift 2 ;;
    --no-default-modules) use_default_modules=0; shift ;;
    --timeout) need "$@"; timeout=$2; shift 2 ;;
    --test-timeout) need "$@"; test_timeout=$2; shift 2 ;;
    --switch-root) switch_root=1; shift ;;
    --mem) need "$@"; mem=$2; shift 2 ;;
    --smp) need "$@"; smp=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --log) need "$@"; log_copy=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --shell) shell=1; shift ;;
    --refresh-kernel) refresh=1; shift ;;
    --) shift; common_args=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) pos_bin=$1; shift; pos_args=("$@"); break ;;
  esac
done
# The default time limit does not apply to an interactive --shell.
if [ -z "$timeout" ]; then
  if [ "$shell" = 1 ]; then timeout=31536000; else timeout=600; fi
fi
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
if [ -z "$test_timeout" ]; then
  test_timeout=$(( timeout > 120 ? timeout - 60 : timeout * 3 / 4 ))
fi
[[ $test_timeout =~ ^[0-9]+$ ]] || die "--test-timeout wants seconds"
[ -z "$test_threads" ] || [[ $test_threads =~ ^[0-9]+$ ]] || die "--test-threads wants a number"
if [ ${#bins[@]} -eq 0 ] && [ ${#cargo_tests[@]} -eq 0 ] && [ -z "$pos_bin" ] && [ "$shell" = 0 ]; then
  usage >&2
  exit 2
fi

t_start=$(now)

# ---------------------------------------------------------------- host tools
ensure_debs qemu-system-x86 busybox-static cpio xz-utils zstd
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || busybox=/bin/busybox
file "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  [ "$(ldd "$busybox" 2>&1 | grep -c '=>')" = 0 ] || die "$busybox is not static (install busybox-static)"

work=$(mktemp -d "${TMPDIR:-/tmp}/noderun-vm.XXXXXX")
qemu_pid="" tail_pid=""
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  if [ "$keep" = 1 ]; then log "work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- kernel
# The cache holds one unpacked kernel package per version plus `current`,
# the name of the one in use; later runs reuse it without any network.
cache=${NODERUN_VM_CACHE:-/var/cache/noderun-vm}
kpkg=${NODERUN_VM_KERNEL_PACKAGE:-linux-image-cloud-amd64}

kernel_ok() { # DIR
  local d=$1
  [ -d "$d/lib/modules" ] && [ -f "$(ls -d "$d"/lib/modules/*/ | head -1)modules.dep" ] &&
    ls "$d"/boot/vmlinuz-* >/dev/null 2>&1
}

fetch_kernel() {
  local real dl deb name
  real=$kpkg
  if ! [[ $kpkg =~ ^linux-image-[0-9] ]]; then
    # A metapackage: resolve the versioned image it depends on.
    real=$(apt-cache depends "$kpkg" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    if [ -z "$real" ]; then
      log "apt-get update (to resolve $kpkg)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      real=$(apt-cache depends "$kpkg" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    fi
    [ -n "$real" ] || die "cannot resolve kernel package $kpkg"
  fi
  dl=$cache/.download.$$
  rm -rf "$dl"; mkdir -p "$dl"
  log "downloading $real"
  (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$real" >/dev/null) ||
    { rm -rf "$dl"; die "apt-get download $real failed"; }
  deb=$(ls "$dl"/*.deb)
  name=$(basename "$deb" .deb)
  if ! kernel_ok "$cache/$name"; then
    rm -rf "${cache:?}/${name:?}" "$cache/$name.tmp"
    dpkg-deb -x "$deb" "$cache/$name.tmp"
    local kver
    kver=$(ls "$cache/$name.tmp/lib/modules")
    # The package ships no modules.dep (depmod runs at install time).
    "$busybox" depmod -b "$cache/$name.tmp" "$kver"
    mv "$cache/$name.tmp" "$cache/$name"
  fi
  rm -rf "$dl"
  echo "$name" >"$cache/current.tmp" && mv "$cache/current.tmp" "$cache/current"
  log "kernel cached in $cache/$name"
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ "$refresh" = 1 ] || ! [ -f "$cache/current" ] || ! kernel_ok "$cache/$(cat "$cache/current")"; then
  fetch_kernel
fi
kdir=$cache/$(cat "$cache/current")
flock -u 9
exec 9>&-
kver=$(ls "$kdir/lib/modules" | head -1)
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no kernel image $vmlinuz"

# ---------------------------------------------------------------- cargo tests
run_names=() run_dirs=() run_paths=()
declare -A run_argv=()
declare -A name_used=()
add_run() { # DIR PATH ARGS...
  local dir=$1 path=$2 name base n=2
  shift 2
  base=$(basename "$path")
  base=${base%-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]}
  base=${base//[^A-Za-z0-9_.-]/_}
  name=$base
  while [ -n "${name_used[$name]:-}" ]; do name=$base.$n; n=$((n + 1)); done
  name_used[$name]=1
  local i=${#run_names[@]}
  run_names+=("$name"); run_dirs+=("$dir"); run_paths+=("$path")
  local args=("$@")
  [ -n "$test_threads" ] && args+=("--test-threads=$test_threads")
  run_argv[$i]=$(quote_words "${args[@]}")
}

# Single-quote words for the guest's ash: quote_word W -> 'W';
# quote_words W... -> " 'W1' 'W2'..." (each with a leading space).
quote_word() { local q="'\\''"; printf "'%s'" "${1//\'/$q}"; }
quote_words() {
  local w
  for w in "$@"; do printf ' %s' "$(quote_word "$w")"; done
}

extra_paths=()   # further host files to include at their host path
pkg_dirs=()      # package source trees to include (cargo tests)
if [ ${#cargo_tests[@]} -gt 0 ]; then
  command -v cargo >/dev/null || die "cargo not found"
  for spec in "${cargo_tests[@]}"; do
    pkg=${spec%%:*} test=""
    [[ $spec == *:* ]] && test=${spec#*:}
    sel=()
    case $test in
      "") sel=(--tests) ;;
      lib) sel=(--lib) ;;
      *) sel=(--test "$test") ;;
    esac
    log "building: cargo test -p $pkg ${sel[*]} --no-run $cargo_flags"
    json=$work/cargo-$pkg.json
    # shellcheck disable=SC2086
    (cd "$repo" && cargo test -p "$pkg" "${sel[@]}" --no-run $cargo_flags \
        --message-format=json-render-diagnostics >"$json") ||
      die "cargo test --no-run failed for $spec"
    manifest_dir=$(cd "$repo" && cargo metadata --no-deps --format-version 1 |
      python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["name"] == sys.argv[1]:
        print(os.path.dirname(p["manifest_path"])); break
' "$pkg")
    [ -n "$manifest_dir" ] || die "no package $pkg in the workspace"
    pkg_dirs+=("$manifest_dir")
    # One line per artifact: "test<TAB>path" or "bin<TAB>path".
    mapfile -t arts < <(python3 - "$json" "$manifest_dir" <<'EOF'
import json, os, sys
path, mdir = sys.argv[1], sys.argv[2]
seen = set()
with open(path) as f:
    for line in f:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        if os.path.dirname(m.get("manifest_path", "")) != mdir:
            continue
        kind = "test" if m["profile"]["test"] else "bin"
        key = (kind, m["executable"])
        if key not in seen:
            seen.add(key)
            print(kind + "\t" + m["executable"])
EOF
)
    found=0
    for a in "${arts[@]}"; do
      kind=${a%%$'\t'*} exe=${a#*$'\t'}
      if [ "$kind" = test ]; then
        add_run "$manifest_dir" "$exe" "${common_args[@]}"
        found=1
      else
        extra_paths+=("$exe")
      fi
    done
    [ "$found" = 1 ] || die "cargo built no test binary for $spec"
  done
fi
for b in "${bins[@]}"; do
  if ! [ -f "$b" ] || ! [ -x "$b" ]; then die "not an executable: $b"; fi
  add_run / "$(realpath "$b")" "${common_args[@]}"
done
if [ -n "$pos_bin" ]; then
  if ! [ -f "$pos_bin" ] || ! [ -x "$pos_bin" ]; then die "not an executable: $pos_bin"; fi
  add_run / "$(realpath "$pos_bin")" "${pos_args[@]}"
fi

# ---------------------------------------------------------------- initramfs
t_build=$(now)
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc/vm-test,proc,sys,dev,tmp,run,root,var,mnt}
chmod 1777 "$root/tmp"

# copy_in SRC DEST: copy a file into the guest at DEST (a guest path), with
# the shared libraries it needs when it is a dynamic executable.
declare -A copied=()
copy_in() { # SRC DEST [strip]
  local src=$1 dest=$2
  [ -n "${copied[$dest]:-}" ] && return 0
  copied[$dest]=1
  mkdir -p "$root$(dirname "$dest")"
  if [ "${3:-}" = strip ] && [ "$strip" = 1 ]; then
    strip --strip-debug -o "$root$dest" "$src"
  else
    cp -L --preserve=mode "$src" "$root$dest"
  fi
  add_libs "$src"
}
add_libs() {
  local f=$1 out line lib
  head -c 4 "$f" 2>/dev/null | grep -q 'ELF' || return 0
  out=$(ldd "$f" 2>&1) || return 0   # static, or not for this loader
  while read -r line; do   # (read trims the leading tab)
    case $line in
      *"not found"*) die "$f needs a library that is missing: $line" ;;
      *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
      /*) lib=${line%% (*} ;;
      *) continue ;;
    esac
    lib=${lib//[[:space:]]/}
    [ -n "${copied[$lib]:-}" ] && continue
    copied[$lib]=1
    mkdir -p "$root$(dirname "$lib")"
    cp -L --preserve=mode "$lib" "$root$lib"
  done <<<"$out"
}

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -sf ../bin/busybox "$root/sbin/modprobe"   # the kernel's request_module
ln -sf ../bin/busybox "$root/sbin/init"
ln -sf ../../bin/busybox "$root/usr/bin/busybox"
install -m 0755 "$vmlib/init.sh" "$root/init"
if [ "$(id -u)" = 0 ]; then
  mknod -m 600 "$root/dev/console" c 5 1
  mknod -m 666 "$root/dev/null" c 1 3
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
printf '127.0.0.1 localhost noderun-vm\n::1 localhost ip6-localhost\n' >"$root/etc/hosts"
echo noderun-vm >"$root/etc/hostname"
: >"$root/etc/resolv.conf"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"

for d in "${pkg_dirs[@]}"; do
  kib=$(du -sk --exclude=target --exclude=.git "$d" | cut -f1)
  if [ "$kib" -gt 51200 ]; then
    log "not copying $d into the VM: ${kib} KiB of sources is too much (use --tree)"
    continue
  fi
  mkdir -p "$root$d"
  tar -C "$d" --exclude=./target --exclude=.git -cf - . | tar -C "$root$d" -xf -
done
for i in "${!run_paths[@]}"; do copy_in "${run_paths[$i]}" "${run_paths[$i]}" strip; done
for p in "${extra_paths[@]}"; do copy_in "$p" "$p" strip; done
for spec in "${files[@]}"; do
  src=${spec%%:*} dest=${spec#*:}
  [[ $spec == *:* ]] || dest=$(realpath "$src")
  [ -f "$src" ] || die "--file: no such file $src"
  copy_in "$src" "$dest"
done
for spec in "${trees[@]}"; do
  src=${spec%%:*} dest=${spec#*:}
  [[ $spec == *:* ]] || dest=$(realpath "$src")
  [ -d "$src" ] || die "--tree: no such directory $src"
  mkdir -p "$root$dest"
  cp -a "$src/." "$root$dest/"
done
for d in "${run_dirs[@]}"; do mkdir -p "$root$d"; done

# Kernel modules, decompressed (busybox insmod loads plain .ko), in load order.
mods=""
[ "$use_default_modules" = 1 ] && mods=$default_modules
mods="$mods $extra_modules"
: >"$root/etc/vm-test/modules"
if [ -n "${mods// /}" ]; then
  # shellcheck disable=SC2086
  order=$(python3 "$vmlib/modorder.py" "$kdir/lib/modules/$kver" $mods) || die "kernel modules: see above"
  mdest=/lib/modules/$kver
  mkdir -p "$root$mdest"
  declare -A plain=()
  for rel in $order; do
    out=${rel%.xz}; out=${out%.zst}; out=${out%.gz}
    plain[$rel]=$out
    mkdir -p "$(dirname "$root$mdest/$out")"
    case $rel in
      *.xz) xz -dc "$kdir/lib/modules/$kver/$rel" >"$root$mdest/$out" ;;
      *.zst) zstd -qdc "$kdir/lib/modules/$kver/$rel" >"$root$mdest/$out" ;;
      *.gz) gzip -dc "$kdir/lib/modules/$kver/$rel" >"$root$mdest/$out" ;;
      *) cp "$kdir/lib/modules/$kver/$rel" "$root$mdest/$out" ;;
    esac
    params=""   # dummy would make a dummy0 link that tests do not expect
    [ "$(basename "$out")" = dummy.ko ] && params=" numdummies=0"
    echo "$mdest/$out$params" >>"$root/etc/vm-test/modules"
  done
  # A modules.dep restricted to what is in the guest, for `modprobe`.
  while IFS= read -r line; do
    m=${line%%:*}
    [ -n "${plain[$m]:-}" ] || continue
    deps=""
    for d in ${line#*:}; do deps="$deps ${plain[$d]:-$d}"; done
    echo "${plain[$m]}:$deps"
  done <"$kdir/lib/modules/$kver/modules.dep" >"$root$mdest/modules.dep"
  cp "$kdir/lib/modules/$kver/modules.builtin" "$root$mdest/" 2>/dev/null || true
fi

# Environment for the tests.
{
  echo "export RUST_BACKTRACE=1"
  echo "export NODERUN_VM_TEST_TIMEOUT=$test_timeout"
  while IFS='=' read -r -d '' k v; do
    [[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    case $k in
      NODERUN_*|RUST_*) printf 'export %s=%s\n' "$k" "$(quote_word "$v")" ;;
    esac
  done < <(env -0)
  for kv in "${envs[@]}"; do
    printf 'export %s=%s\n' "${kv%%=*}" "$(quote_word "${kv#*=}")"
  done
} >"$root/etc/vm-test/env.sh"

# The plan: one run_test line per test binary.
{
  for i in "${!run_names[@]}"; do
    echo "run_test$(quote_words "${run_names[$i]}" "${run_dirs[$i]}" "${run_paths[$i]}")${run_argv[$i]}"
  done
} >"$root/etc/vm-test/plan.sh"
[ "$shell" = 1 ] && touch "$root/etc/vm-test/shell"
[ "$switch_root" = 1 ] && touch "$root/etc/vm-test/switch-root"

initrd=$work/initrd.cpio
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$initrd"
size_mb=$(( $(stat -c %s "$initrd") / 1048576 ))
log "initramfs: ${size_mb} MiB, ${#run_names[@]} test binar$([ ${#run_names[@]} = 1 ] && echo y || echo ies), kernel $kver ($(elapsed "$t_build" "$(now)")s to build)"

# ---------------------------------------------------------------- boot
console=$work/console.log
results=$work/results.log
: >"$console"; : >"$results"
cmdline="console=ttyS0 panic=-1 oops=panic cgroup_no_v1=all rdinit=/init quiet loglevel=4 i8042.noaux i8042.nokbd i8042.nopnp tsc=reliable no_timer_check"
# shellcheck disable=SC2054  # commas belong to qemu's option syntax
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -no-reboot
  -machine pc -accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem"
  -display none -vga none -nic none
  -kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline")
if [ "$shell" = 1 ]; then
  # shellcheck disable=SC2054
  qemu+=(-chardev stdio,id=con,signal=off,logfile="$console" -serial chardev:con -serial "file:$results")
else
  qemu+=(-serial "file:$console" -serial "file:$results" -monitor none)
fi

t_boot=$(now)
if [ "$shell" = 1 ]; then
  "${qemu[@]}" <&0 &   # (a background job's stdin is /dev/null otherwise)
else
  "${qemu[@]}" </dev/null >"$work/qemu.out" 2>&1 &
fi
qemu_pid=$!
if [ "$quiet" = 0 ] && [ "$shell" = 0 ]; then
  tail -n +1 -F -s 0.2 --pid="$qemu_pid" "$console" 2>/dev/null | tr -d '\r' &
  tail_pid=$!
fi

boot_s="" timed_out=0
deadline=$(( $(date +%s) + timeout ))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ -z "$boot_s" ] && grep -q '^NODERUN-VM-READY' "$results" 2>/dev/null; then
    boot_s=$(elapsed "$t_boot" "$(now)")
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    timed_out=1
    kill "$qemu_pid" 2>/dev/null || true
    break
  fi
  sleep 0.1
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
if [ -n "$tail_pid" ]; then
  wait "$tail_pid" 2>/dev/null || true
  tail_pid=""
fi
t_end=$(now)
[ -n "$boot_s" ] || ! grep -q '^NODERUN-VM-READY' "$results" || boot_s="<$(elapsed "$t_boot" "$t_end")"
[ -n "$log_copy" ] && tr -d '\r' <"$console" >"$log_copy"

# ---------------------------------------------------------------- verdict
tr -d '\r' <"$results" >"$results.txt"
failed=() problems=()
echo
echo "== vm-test results (kernel $kver, TCG, -smp $smp -m $mem)"
for i in "${!run_names[@]}"; do
  name=${run_names[$i]}
  line=$(grep -E "^NODERUN-VM-RESULT $(printf '%s' "$name" | sed 's/[.[\*^$]/\\&/g') exit=" "$results.txt" | tail -1 || true)
  if [ -z "$line" ]; then
    printf '  %-40s NO RESULT\n' "$name"
    failed+=("$name")
  else
    code=$(sed -E 's/.* exit=([0-9]+).*/\1/' <<<"$line")
    secs=$(sed -nE 's/.* seconds=([0-9.]+).*/\1/p' <<<"$line")
    if [ "$code" = 0 ]; then
      printf '  %-40s ok (%ss)\n' "$name" "$secs"
    else
      printf '  %-40s FAILED exit=%s (%ss)\n' "$name" "$code" "$secs"
      failed+=("$name")
    fi
  fi
done
if [ "$timed_out" = 1 ]; then
  problems+=("timed out after ${timeout}s (--timeout)")
fi
if grep -q 'Kernel panic' "$console"; then
  problems+=("kernel panic: $(grep -m1 'Kernel panic' "$console" | tr -d '\r')")
fi
if [ "$timed_out" = 0 ] && ! grep -q '^NODERUN-VM-DONE' "$results.txt"; then
  problems+=("the VM stopped before init finished (qemu exit status $qemu_rc)")
fi
if [ "$timed_out" = 0 ] && [ -s "$work/qemu.out" ]; then
  problems+=("qemu said: $(head -c 2000 "$work/qemu.out")")
fi
echo "  boot: ${boot_s:-n/a}s (qemu start to init ready)   VM: $(elapsed "$t_boot" "$t_end")s   total: $(elapsed "$t_start" "$t_end")s"

if [ ${#failed[@]} -eq 0 ] && [ ${#problems[@]} -eq 0 ]; then
  if [ ${#run_names[@]} -gt 0 ]; then echo "== vm-test: all ${#run_names[@]} passed"; else echo "== vm-test: done"; fi
  exit 0
fi
if [ "$quiet" = 1 ]; then
  echo "== last 60 console lines:"
  tail -n 60 "$console" | tr -d '\r' | sed 's/^/  | /'
fi
for p in "${problems[@]}"; do echo "vm-test: error: $p" >&2; done
[ ${#failed[@]} -eq 0 ] || echo "vm-test: error: failed: ${failed[*]}" >&2
exit 1
