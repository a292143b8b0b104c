# shellcheck shell=bash
# ensure_debs PKG...: install the Debian packages that are missing, running
# `apt-get update` at most once per invocation. Idempotent: installed
# packages are left alone, so a warm machine does no network work.
ensure_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing ${missing[*]} needs root (run as root, or install them yourself)" >&2
    return 1
  fi
  if [ -z "${NODERUN_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export NODERUN_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_cargo_tool CRATE BINARY: `cargo install` CRATE unless BINARY is on PATH.
ensure_cargo_tool() {
  local crate=$1 binary=$2
  if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/$binary" ]; then
    echo "== installing $crate (cargo install)"
    cargo install --locked --quiet "$crate"
  fi
}
