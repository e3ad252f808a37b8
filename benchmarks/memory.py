"""Peak memory of ``etc push`` / ``etc pull`` against the ``memory_budget`` setting.

    python benchmarks/memory.py                 # 8 x 64 MiB on moto, budgets 64 and 160 MiB
    python benchmarks/memory.py --files 16 --budgets 32,96,160,256

Starts its own moto server on 127.0.0.1, pushes and pulls the same tree once per budget
(a fresh bucket and home each time), and prints the peak RSS of each ``etc`` process as
``/usr/bin/time`` reports it. The budget bounds file data in memory; the rest is the
interpreter and the SDKs (about 95 MiB here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command under /usr/bin/time; return (peak RSS MiB, wall seconds)."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M %e", *cmd], env=env, capture_output=True, text=True, check=True
    )
    kib, wall = out.stderr.strip().splitlines()[-1].split()
    return int(kib) / 1024, float(wall)


def main() -> None:
    """Run the sweep and print a table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=8, help="files of 64 MiB (default 8)")
    p.add_argument("--budgets", default="64,160", help="MiB, comma-separated")
    args = p.parse_args()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = Path(tempfile.mkdtemp(prefix="etc-mem-"))
    rows = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        tree = base / "ds" / "data" / "train"
        tree.mkdir(parents=True)
        for i in range(args.files):
            (tree / f"big{i}.bin").write_bytes(os.urandom(64 * MiB))
        for budget in (int(b) for b in args.budgets.split(",")):
            bucket = f"mem-{budget}"
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"))
            env = {
                **os.environ,
                "ETC_URL": f"s3://{bucket}",
                "ETC_ENDPOINT_URL": endpoint,
                "ETC_AWS_ACCESS_KEY_ID": "bench",
                "ETC_AWS_SECRET_ACCESS_KEY": "bench",
                "ETC_HOME": str(base / f"push-{budget}"),
                "ETC_MEMORY_BUDGET": str(budget * MiB),
            }
            etc = [sys.executable, "-m", "etcetera", "-q"]
            subprocess.run([*etc, "register", str(base / "ds")], env=env, check=True)
            push_rss, push_s = _timed([*etc, "push", "ds"], env)
            env["ETC_HOME"] = str(base / f"pull-{budget}")
            pull_rss, pull_s = _timed([*etc, "pull", "ds"], env)
            rows.append(
                {"budget_mib": budget, "push_rss_mib": push_rss, "push_s": push_s,
                 "pull_rss_mib": pull_rss, "pull_s": pull_s}
            )  # fmt: skip
            print(
                f"budget {budget:4d} MiB: push peak RSS {push_rss:6.0f} MiB ({push_s:.1f} s), "
                f"pull peak RSS {pull_rss:6.0f} MiB ({pull_s:.1f} s)",
                flush=True,
            )
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(base, ignore_errors=True)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "memory-latest.json").write_text(
        json.dumps({"files": args.files, "file_mib": 64, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()
