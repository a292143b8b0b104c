#!/usr/bin/env bash
# bench-pull.sh [N]: registry pull time of `noderun image pull` (release
# build) beside its peer `skopeo copy docker://... oci:DIR`, for two images
# served by a local docker-registry on 127.0.0.1:
#   busybox  the ~1 MB one-layer image of scripts/make-busybox-image.sh;
#   big      4 layers of 12 MiB random bytes + 8 MiB base64 text each
#            (80 MiB of files, ~70 MB gzipped), made here.
# Each of N rounds (default 10) pulls each image with each tool into a fresh
# directory, interleaved, and prints median and p95 (nearest rank) in ms and
# the ratio noderun/skopeo of the medians. Both run with a warm page cache
# and talk plain HTTP; noderun verifies and fsyncs every blob before naming
# it, skopeo copy verifies digests but does not fsync.
#
# The registry (its own config and storage in a temp dir) is killed by PID
# and every temp dir removed on exit, whatever the exit.
#
# Example: scripts/bench-pull.sh 20
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
rounds=${1:-10}
case $rounds in '' | *[!0-9]* | 0)
  echo "usage: $0 [N>0]" >&2
  exit 2
  ;;
esac

# shellcheck source=lib/packages.sh
source "$here/lib/packages.sh"
ensure_debs docker-registry skopeo busybox-static

# shellcheck source=lib/cleanup.sh
source "$here/lib/cleanup.sh"
work=$(mktemp -d /tmp/nr-bench-pull.XXXXXX)
remove_on_exit "$work"

echo "== building noderun (release)"
cargo build --release --quiet -p noderun-runtime --bin noderun --manifest-path "$repo/Cargo.toml"
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
noderun=$target_dir/release/noderun

echo "== making the images"
"$here/make-busybox-image.sh" "$work/busybox-oci" >/dev/null
python3 - "$work/big-oci" <<'PY'
# An OCI layout of 4 gzip layers, each a tar of 12 MiB random bytes and
# 8 MiB of base64 text (compressible to ~6 MiB), named "big:latest".
import base64, gzip, hashlib, io, json, os, sys, tarfile

out = sys.argv[1]
blobs = {}


def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return "sha256:" + digest


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


layers, diff_ids = [], []
for i in range(4):
    files = {f"layer{i}/random.bin": os.urandom(12 << 20),
             f"layer{i}/text.b64": base64.encodebytes(os.urandom(6 << 20))[: 8 << 20]}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dir_info = tarfile.TarInfo(f"layer{i}")
        dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(dir_info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    gz = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": blob(gz), "size": len(gz)})
config = dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids}})
manifest = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": blob(config), "size": len(config)},
                  "layers": layers})
index = dumps({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
    "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "big:latest"}}]})
os.makedirs(os.path.join(out, "blobs", "sha256"))
for digest, data in blobs.items():
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
with open(os.path.join(out, "index.json"), "wb") as f:
    f.write(index)
with open(os.path.join(out, "oci-layout"), "wb") as f:
    f.write(dumps({"imageLayoutVersion": "1.0.0"}))
PY

echo "== starting docker-registry on 127.0.0.1"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$work/storage"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
EOF
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
stop_on_exit "$registry_pid"
for _ in $(seq 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$registry_pid" 2>/dev/null; then
    echo "docker-registry exited: $(cat "$work/registry.log")" >&2
    exit 1
  fi
  sleep 0.05
done
host=127.0.0.1:$port

for image in busybox big; do
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$work/$image-oci" "docker://$host/bench/$image:latest"
done
sizes=$(for image in busybox big; do
  printf '%s %s MB; ' "$image" \
    "$(du -sb "$work/$image-oci/blobs" | awk '{printf "%.1f", $1 / 1e6}')"
done)
echo "   pushed: ${sizes%; }"

micros() { local t=${1/./}; echo $((10#$t)); }

# timed FILE CMD...: run CMD quietly, append its wall time in µs to FILE.
timed() {
  local file=$1 start end
  shift
  start=$EPOCHREALTIME
  if ! "$@" >"$work/cmd.log" 2>&1; then
    echo "failed: $* : $(cat "$work/cmd.log")" >&2
    exit 1
  fi
  end=$EPOCHREALTIME
  echo $(($(micros "$end") - $(micros "$start"))) >>"$file"
}

echo "== $rounds rounds, interleaved"
for ((i = 0; i < rounds; i++)); do
  for image in busybox big; do
    ref=$host/bench/$image:latest
    timed "$work/noderun-$image.us" "$noderun" --state-dir "$work/state" image pull "$ref"
    rm -rf "$work/state"
    timed "$work/skopeo-$image.us" skopeo --insecure-policy copy --quiet \
      --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-out:latest"
    rm -rf "$work/skopeo-out"
  done
done

# summary FILE: "median p95" in ms (nearest rank).
summary() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = int((NR + 1) / 2); p = int(NR * 0.95 + 0.999999)
    printf "%.1f %.1f", v[m] / 1000, v[p] / 1000 }'
}

echo
printf '%-8s %-8s %12s %12s\n' image tool "median ms" "p95 ms"
for image in busybox big; do
  read -r nm np <<<"$(summary "$work/noderun-$image.us")"
  read -r sm sp <<<"$(summary "$work/skopeo-$image.us")"
  printf '%-8s %-8s %12s %12s\n' "$image" noderun "$nm" "$np"
  printf '%-8s %-8s %12s %12s\n' "$image" skopeo "$sm" "$sp"
  awk -v a="$nm" -v b="$sm" -v i="$image" \
    'BEGIN { printf "%-8s noderun/skopeo median ratio %.2f\n", i, a / b }'
done
