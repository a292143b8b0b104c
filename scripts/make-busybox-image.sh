#!/usr/bin/env bash
# make-busybox-image.sh [OUT]: build a small OCI image layout from Debian's
# busybox-static, as the directory OUT (default target/images/busybox-oci)
# and the tar OUT.tar, named docker.io/library/busybox:latest.
#
# The rootfs has /bin/busybox with a symlink per applet, /etc/passwd and
# /etc/group for root, and empty /tmp /proc /sys /dev /root. One tar.gz
# layer; config with Cmd ["sh"], no Entrypoint, PATH in Env. The output is
# deterministic (fixed mtimes, owners, gzip header and JSON layout): the
# same busybox binary always gives the same digests.
#
# Example: scripts/make-busybox-image.sh /tmp/bb && ls /tmp/bb /tmp/bb.tar
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:-$repo/target/images/busybox-oci}

# shellcheck source=lib/packages.sh
source "$here/lib/packages.sh"
ensure_debs busybox-static

busybox=/bin/busybox
if [ ! -x "$busybox" ]; then
  echo "error: $busybox is missing although busybox-static is installed" >&2
  exit 1
fi

arch=$(dpkg --print-architecture)
mkdir -p "$(dirname "$out")"
python3 - "$out" "$busybox" "$arch" <<'PY'
import gzip, hashlib, io, json, os, shutil, subprocess, sys, tarfile

out, busybox, arch = sys.argv[1], sys.argv[2], sys.argv[3]
MTIME = 0
NAME = "docker.io/library/busybox:latest"


def info(name, kind, mode, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "root", "root"
    return ti


def layer_tar():
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    applets = sorted(a for a in set(applets) if a and "/" not in a and a != "busybox")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d, mode in [("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555),
                        ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777)]:
            tar.addfile(info(d, tarfile.DIRTYPE, mode))
        data = open(busybox, "rb").read()
        tar.addfile(info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for applet in applets:
            tar.addfile(info("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, text in [("etc/group", "root:x:0:\n"),
                           ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")]:
            raw = text.encode()
            tar.addfile(info(name, tarfile.REGTYPE, 0o644, len(raw)), io.BytesIO(raw))
    return buf.getvalue()


def blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return "sha256:" + digest


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


tar_bytes = layer_tar()
gz = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as z:
    z.write(tar_bytes)
blobs = {}
layer = blob(blobs, gz.getvalue())
config = dumps({
    "architecture": arch,
    "os": "linux",
    "created": "1970-01-01T00:00:00Z",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "scripts/make-busybox-image.sh"}],
})
config_digest = blob(blobs, config)
manifest = dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": config_digest, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer, "size": len(gz.getvalue())}],
})
manifest_digest = blob(blobs, manifest)
index = dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": len(manifest),
        "platform": {"architecture": arch, "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": NAME},
    }],
})
files = {"oci-layout": dumps({"imageLayoutVersion": "1.0.0"}), "index.json": index}
files.update({"blobs/sha256/" + d: data for d, data in sorted(blobs.items())})

tmp = out + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
for name, data in files.items():
    path = os.path.join(tmp, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
shutil.rmtree(out, ignore_errors=True)
os.rename(tmp, out)

with tarfile.open(out + ".tar.tmp", mode="w", format=tarfile.GNU_FORMAT) as tar:
    for d in ["blobs", "blobs/sha256"]:
        tar.addfile(info(d, tarfile.DIRTYPE, 0o755))
    for name in sorted(files, key=lambda n: (n != "oci-layout", n)):
        tar.addfile(info(name, tarfile.REGTYPE, 0o644, len(files[name])), io.BytesIO(files[name]))
os.rename(out + ".tar.tmp", out + ".tar")
print(f"{NAME} {manifest_digest}")
print(f"  layout {out}")
print(f"  tar    {out}.tar")
PY
