# shellcheck shell=bash
# make_busybox_bundle DIR ARGS_JSON: an OCI bundle in DIR whose rootfs holds
# Debian's busybox-static and a few applet links, with a config.json from
# `runc spec` (the reference runtime's own default) running ARGS_JSON
# (e.g. '["/bin/true"]') without a terminal.
make_busybox_bundle() {
  local dir=$1 args=$2 applet
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  for applet in sh true false ls cat echo sleep hostname id mount ps grep head; do
    ln -sf busybox "$dir/rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
  echo 'root:x:0:' > "$dir/rootfs/etc/group"
  rm -f "$dir/config.json"
  (cd "$dir" && runc spec)
  python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
json.dump(c, open(path, "w"), indent=2)
PY
}
