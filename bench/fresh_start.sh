#!/usr/bin/env bash
# What a newcomer waits for: from a fresh clone of this repository, with empty
# uv and pip caches (every package downloaded from the registry), the seconds
# from the start of `make run` to a 200 from /api/health.
#
#   bash bench/fresh_start.sh [runs]
set -u
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
port=${THREADLINE_PORT:-8766}
for run in $(seq 1 "${1:-1}"); do
  work=$(mktemp -d)
  git clone -q "$repo" "$work/clone"
  cd "$work/clone" || exit 1
  export UV_CACHE_DIR="$work/uv-cache" PIP_CACHE_DIR="$work/pip-cache" THREADLINE_PORT=$port
  start=$(date +%s.%N)
  installed=""
  make run > "$work/run.log" 2>&1 &
  make_pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/api/health"; do
    sleep 0.1
    if [ -z "$installed" ] && [ -f .venv/.installed-runtime ]; then installed=$(date +%s.%N); fi
    kill -0 "$make_pid" 2>/dev/null || { echo "make run failed: $work/run.log"; exit 1; }
  done
  end=$(date +%s.%N)
  printf 'run %s: %.1f s to a healthy server (install %.1f s); load %s\n' "$run" \
    "$(echo "$end - $start" | bc)" "$(echo "${installed:-$end} - $start" | bc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  pkill -TERM -f "^$work/clone/.venv/bin/python"
  wait "$make_pid" 2>/dev/null
  cd / && rm -rf "$work"
done
