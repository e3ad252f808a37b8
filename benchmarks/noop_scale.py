"""The no-op push and pull of 100,000 files through the ``etc`` CLI on moto (goal 4).

    python benchmarks/noop_scale.py --quick       # 10,000 files, ~1 min
    python benchmarks/noop_scale.py               # 100,000 x 4 KiB, ~4-6 min

A tree of N x 4 KiB files (the ``small`` workload's shape and seed, N = ``--files``) is
pushed to a fresh moto and pulled into a second home, then pushed and pulled again
``--runs`` times each (default 5) with nothing changed: each of those is one ``etc``
process, start-up included, timed from exec to exit. The medians are judged against
the goals (< 1.5 s push, < 0.6 s pull at 100,000 files) with ``MET`` / ``MISSED``, as
``run.py`` judges the 20,000-file no-op. ``etc --version`` is timed as often, for the
floor that process start-up alone sets.

etcetera runs from a snapshot of ``etcetera/`` taken at the start. Prints every run,
the medians and the goals, the machine line of ``run.py``, and writes
``results/noop-scale-<time>.json`` and ``results/noop-scale-latest.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ceiling import best_rates, machine_line, machine_rates
from common import (
    Measured,
    MiB,
    Table,
    clean_env,
    fmt,
    load_line,
    machine_info,
    run_measured,
    snapshot_etcetera,
    versions,
    write_json,
)
from peers import Etcetera, rmtree
from report import NOOP_SCALE_FILES, NOOP_SCALE_SECONDS, Goal
from scaling import point
from workloads import FULL, KiB, Spec, generate

QUICK_FILES = 10_000


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_FILES:,} files")
    p.add_argument("--files", type=int, help=f"files in the tree (default {NOOP_SCALE_FILES:,})")
    p.add_argument("--runs", type=int, default=5, help="no-op runs each way (default 5)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--seed", type=int, default=20240605)
    return p.parse_args(argv)


def goals(
    medians: dict[str, float], cpus: dict[str, float], files: int, counts: dict[str, int]
) -> list[Goal]:
    """Goal 4 at 100,000 files, one line per direction (scaled when fewer files ran)."""
    out = []
    for direction, limit in NOOP_SCALE_SECONDS.items():
        if direction not in medians:
            out.append(Goal(f"4 noop {direction}", "s3", None, "no run succeeded"))
            continue
        wall, met = medians[direction], medians[direction] < limit
        detail = (
            f"{wall:.2f} s {'<' if met else '>='} {limit:g} s for {files:,} files "
            f"(CLI, process start included, median of {counts[direction]}; "
            f"its CPU {cpus[direction]:.2f} s, which other people's load changes less)"
        )
        out.append(Goal(f"4 noop {direction}", "s3", met, detail, files < NOOP_SCALE_FILES))
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the tree, push and pull it once, then time the no-ops."""
    args = parse(argv)
    started, started_load = time.monotonic(), os.getloadavg()
    files = args.files or (QUICK_FILES if args.quick else NOOP_SCALE_FILES)
    work = Path(tempfile.mkdtemp(prefix="etc-noop-scale-", dir=args.work))
    etc_cmd, code = snapshot_etcetera(work / "snapshot")
    rates = machine_rates()
    print(machine_line(rates))
    small = FULL["small"]
    spec = Spec("small", files, 4 * KiB, 4 * KiB, small.test_share, small.per_dir)
    runs: list[tuple[str, Measured, int, int]] = []
    starts: list[Measured] = []
    try:
        t0 = time.monotonic()
        wl = generate(spec, work / "src" / "dataset", args.seed)
        print(
            f"{spec.describe()} = {wl.size / MiB:,.0f} MiB "
            f"(generated in {time.monotonic() - t0:.0f} s); pushing, pulling, then "
            f"{args.runs} no-ops each way on moto"
        )
        tool = Etcetera(etc_cmd)
        runs = point(tool, "s3", wl.root, work, f"n{files}", args.runs)
        env = clean_env(work / "env", etc_cmd.env())
        starts = [run_measured([*etc_cmd.argv, "--version"], env) for _ in range(args.runs)]
    finally:
        rmtree(work)
    rates = best_rates(rates, machine_rates())
    elapsed = time.monotonic() - started

    t = Table(["op", "wall s", "files/s", "cpu s", "RSS MiB", "srv cpu s", "note"])
    for op, m, n, _ in runs:
        t.add(op, fmt(m.wall, 2), fmt(n / m.wall, 0), fmt(m.cpu, 2), fmt(m.maxrss / MiB, 0),
              fmt(m.server_cpu, 2), "" if m.ok else m.output.strip()[-100:])  # fmt: skip
    print()
    print(t.render())
    walls = {
        d: [m.wall for op, m, _, _ in runs if op == f"noop {d}" and m.ok] for d in ("push", "pull")
    }
    medians = {d: statistics.median(w) for d, w in walls.items() if w}
    cpus = {
        d: statistics.median(m.cpu for op, m, _, _ in runs if op == f"noop {d}" and m.ok)
        for d in medians
    }
    start_wall = statistics.median(m.wall for m in starts) if starts else None
    for d, w in walls.items():
        if w:
            print(f"noop {d}: median {medians[d]:.2f} s of {len(w)} (" +
                  ", ".join(f"{x:.2f}" for x in sorted(w)) + ")")  # fmt: skip
    if start_wall is not None:
        print(f"etc --version: median {start_wall:.2f} s (process start alone)")
    print(machine_line(rates))
    goal_list = goals(medians, cpus, files, {d: len(w) for d, w in walls.items()})
    print("\nGoal 4, 100,000 files (issue 13):")
    for g in goal_list:
        print("  " + g.line())
    print(f"\nnoop_scale took {elapsed / 60:.1f} min" + load_line(started_load))
    doc: dict[str, Any] = {
        "mode": "quick" if files < NOOP_SCALE_FILES else "full",
        "command": " ".join(["python", "benchmarks/noop_scale.py", *(argv or sys.argv[1:])]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "loadavg": {"start": started_load, "end": os.getloadavg()},
        "machine": {**machine_info(), **rates},
        "versions": versions(),
        "etcetera_code": code,
        "files": files,
        "bytes": wl.size,
        "runs": [
            {"op": op, "files": n, "bytes": size, **asdict(m), "output": m.output[-500:]}
            for op, m, n, size in runs
        ],
        "version_runs_s": [m.wall for m in starts],
        "medians_s": medians,
        "cpu_medians_s": cpus,
        "goals": [asdict(g) for g in goal_list],
    }
    dated, _ = write_json(doc, "noop-scale")
    print(f"results: {dated} (and noop-scale-latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
