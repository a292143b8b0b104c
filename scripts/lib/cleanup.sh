# shellcheck shell=bash
# Stop what a script started and remove what it made, on exit, on failure
# and on Ctrl-C: `stop_on_exit PID` (a background process this script
# started: killed and waited for; `stop_now PID` stops it earlier),
# `remove_on_exit PATH` (a temp dir), `call_on_exit FUNCTION` (an undo
# step of the script's own, run first).
# Installs the EXIT/INT/TERM traps; a script sourcing this one sets no
# EXIT trap of its own.

_on_exit_pids=()
_on_exit_paths=()
_on_exit_calls=()

stop_on_exit() { _on_exit_pids+=("$1"); }
remove_on_exit() { _on_exit_paths+=("$1"); }
call_on_exit() { _on_exit_calls+=("$1"); }

# `stop_now PID`: stop a process given to stop_on_exit before the script
# ends, and forget it (the exit trap must not signal its PID once reused).
stop_now() {
  local pid=$1 p kept=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${_on_exit_pids[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  _on_exit_pids=("${kept[@]}")
}

_run_on_exit() {
  local pid path call
  for call in "${_on_exit_calls[@]}"; do
    "$call" || true
  done
  for pid in "${_on_exit_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for path in "${_on_exit_paths[@]}"; do
    rm -rf "$path"
  done
}
trap _run_on_exit EXIT
trap 'exit 130' INT TERM
