"""`etc log` and `etc diff` on a repository with many versions (file://).

Builds a dataset of FILES small files and pushes VERSIONS versions of it, each changing
one file, then times `etc log NAME` with an empty local cache (every record and manifest
read from the repository) and again with the manifests cached, `etc log -n 10`, and
`etc diff NAME@1 NAME@VERSIONS`. Prints a table; writes results/history-latest.json.

    python benchmarks/history.py --quick      # 300 versions
    python benchmarks/history.py              # 3,000 versions
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

import etcetera as etc

RESULTS = Path(__file__).parent / "results"


async def build(work: Path, versions: int, files: int) -> etc.Config:
    """A repository holding ``versions`` versions of dataset ``s``."""
    root = work / "s"
    (root / "data" / "train").mkdir(parents=True)
    for i in range(files):
        (root / "data" / "train" / f"{i}.txt").write_text(f"{i}" * 10)
    (work / "repo").mkdir()
    cfg = etc.Config(f"file://{work / 'repo'}", home=work / "pusher")
    await etc.aregister(root, config=cfg)
    for v in range(versions):
        (root / "data" / "train" / f"{v % files}.txt").write_text(f"v{v}" * (v % 7 + 1))
        await etc.apush("s", config=cfg, force=True, quiet=True)
    return cfg


def timed(env: dict[str, str], *args: str) -> dict[str, float]:
    """Wall and CPU seconds of one ``etc ARGS`` run (start-up included).

    CPU seconds (user + system of the child) are the figure to compare on a shared
    machine, where wall time moves with the load.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "etcetera", *args], env=env, capture_output=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # diff exits 1 when the sides differ
        raise SystemExit(f"etc {' '.join(args)} failed: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    """Build, time, print, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 versions, not 3,000")
    parser.add_argument("--versions", type=int, default=None)
    parser.add_argument("--files", type=int, default=200, help="files per version")
    args = parser.parse_args()
    versions = args.versions or (300 if args.quick else 3000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        anyio.run(build, work, versions, args.files)
        built = time.perf_counter() - started
        env = {**os.environ, "ETC_URL": f"file://{work / 'repo'}", "ETC_HOME": str(work / "h")}
        rows = {
            "etc log (cold cache)": timed(env, "log", "s"),
            "etc log (manifests cached)": timed(env, "log", "s"),
            "etc log -n 10": timed(env, "log", "s", "-n", "10"),
            f"etc diff s@1 s@{versions}": timed(env, "diff", "s@1", f"s@{versions}"),
            "etc --version (start-up)": timed(env, "--version"),
        }
    print(f"{versions} versions of {args.files} files (built in {built:.0f} s), file://")
    print(f"  {'':<32} {'wall s':>8} {'CPU s':>8}")
    for what, seconds in rows.items():
        print(f"  {what:<32} {seconds['wall']:8.2f} {seconds['cpu']:8.2f}")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    RESULTS.mkdir(exist_ok=True)
    doc = {
        "versions": versions,
        "files": args.files,
        "seconds": rows,
        "load_average": os.getloadavg()[0],
    }
    (RESULTS / "history-latest.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
