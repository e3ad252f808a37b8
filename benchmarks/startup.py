"""What the ``etc`` CLI costs before and besides its requests: start-up and the no-ops.

    python benchmarks/startup.py                     # 20,000 files, file:// and moto
    python benchmarks/startup.py --old main          # the same, against main's code
    python benchmarks/startup.py --files 2000 --runs 5 --targets file

The ``small`` workload (20,000 x 4 KiB, ``--files`` to change) is pushed and pulled
once per target (a ``file://`` folder, a fresh moto server) and per code measured; then
``--runs`` rounds time ``etc --version``, the no-op push and the no-op pull, each one
``etc`` process from exec to exit: wall and CPU seconds, medians. With ``--old REF`` the
code of that git commit runs too, alternating with the working tree's in every round
(which goes first alternates too), so that drifts of a shared machine hit both alike.
``-X importtime`` runs of each no-op give the modules imported and the largest
cumulative import times (medians of ``--import-runs``).

Every code runs from a snapshot of ``etcetera/`` taken at the start. Prints the tables
and the machine line (CPU model, SHA-256 MB/s), and writes
``results/startup-<time>.json`` and ``results/startup-latest.json``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ceiling import best_rates, machine_line, machine_rates
from common import (
    ROOT,
    EtcCommand,
    Measured,
    Table,
    clean_env,
    fmt,
    load_line,
    machine_info,
    run_measured,
    snapshot_etcetera,
    tree_stats,
    versions,
    write_json,
)
from peers import Cell, Etcetera, Target, rmtree
from scaling import start
from workloads import FULL, KiB, Spec, generate

#: Packages a no-op should import only where its back-end or its data needs them.
WATCHED = (
    "aiobotocore",
    "botocore",
    "aiohttp",
    "gcloud",
    "pyfastcdc",
    "zstandard",
    "numpy",
    "pydantic_settings",
    "cyclopts",
    "etcetera.engine.push",
    "etcetera.engine.pull",
)
TOP = 12


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int, default=FULL["small"].files, help="files in the tree")
    p.add_argument("--runs", type=int, default=7, help="timed rounds (default 7)")
    p.add_argument("--import-runs", type=int, default=3, help="-X importtime runs of each no-op")
    p.add_argument("--targets", default="file,s3", help="file, s3 or both (default)")
    p.add_argument("--old", metavar="REF", help="also measure this git commit's code")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--seed", type=int, default=20240605)
    return p.parse_args(argv)


def snapshot_ref(ref: str, dest: Path) -> tuple[EtcCommand, dict[str, Any]]:
    """``etcetera/`` as commit ``ref`` has it, byte-compiled; how to run it."""
    dest.mkdir(parents=True)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "etcetera"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True)
    compileall.compile_dir(dest / "etcetera", quiet=1)
    return EtcCommand((sys.executable, "-P", "-m", "etcetera"), str(dest)), {"commit": commit}


@dataclass
class Code:
    """One code measured: its name in the tables, how to run it, its cells."""

    name: str
    tool: Etcetera
    info: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)
    runs: dict[str, list[Measured]] = field(default_factory=dict)
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, key: str, m: Measured) -> None:
        """Keep one timed run under ``key`` (``--version``, ``file noop pull`` ...)."""
        self.runs.setdefault(key, []).append(m)


def prepare(code: Code, target: Target, src: Path, work: Path, files: int) -> None:
    """Push ``src`` and pull it into a second home, so that what follows is a no-op."""
    scratch = work / "cells" / f"{target.kind}-{code.name}"
    scratch.mkdir(parents=True)
    cell = Cell(target, src, target.new_location(code.name), scratch, 1800.0)
    code.tool.prepare(cell)
    pushed = code.tool.push(cell)
    pulled, dest = code.tool.pull(cell) if pushed.ok else (pushed, scratch / "b")
    if not (pushed.ok and pulled.ok) or tree_stats(dest)[0] != files:
        raise SystemExit(f"{code.name} on {target.kind}: {(pushed.output + pulled.output)[-800:]}")
    code.cells[target.kind] = cell


def import_profile(code: Code, cell: Cell, op: str, runs: int) -> dict[str, Any]:
    """Modules a no-op imports and the largest cumulative import times (median ms)."""
    side = "a" if op == "push" else "b"
    argv = list(code.tool.etc(op, "bench"))
    argv[1:1] = ["-X", "importtime"]
    cumulative: dict[str, list[float]] = {}
    modules: list[set[str]] = []
    for _ in range(runs):
        proc = subprocess.run(
            argv, env=code.tool.home_env(cell, side), capture_output=True, text=True, check=False
        )
        names = set()
        for line in proc.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[1].strip().isdigit():
                name = parts[2].strip()
                names.add(name)
                cumulative.setdefault(name, []).append(int(parts[1]) / 1000)
        modules.append(names)
    medians = {n: statistics.median(v) for n, v in cumulative.items()}
    return {
        "modules": round(statistics.median(len(m) for m in modules)),
        "top_ms": sorted(medians.items(), key=lambda kv: -kv[1])[:TOP],
        "watched": [w for w in WATCHED if any(n == w or n.startswith(w + ".") for n in modules[0])],
    }


def timed_round(codes: list[Code], kinds: list[str], rnd: int) -> None:
    """One round: ``--version`` and each no-op of every code, the order alternating."""
    order = codes if rnd % 2 == 0 else codes[::-1]
    for code in order:
        env = clean_env(next(iter(code.cells.values())).scratch / "env", code.tool.command.env())
        code.record("etc --version", run_measured(code.tool.etc("--version"), env))
    for kind in kinds:
        for op in ("push", "pull"):
            for code in order:
                cell = code.cells[kind]
                m = code.tool.noop_push(cell) if op == "push" else code.tool.noop_pull(cell)
                if not m.ok:
                    raise SystemExit(f"{code.name} {kind} noop {op}: {m.output[-800:]}")
                code.record(f"{kind} noop {op}", m)


def report(codes: list[Code], keys: list[str]) -> str:
    """The timing table (medians) and the import tables."""
    names = [c.name for c in codes]
    headers = ["run"] + [f"{n} wall s" for n in names] + [f"{n} cpu s" for n in names]
    change = ["cpu new/old"] if len(codes) == 2 else []
    t = Table([*headers, *change, "runs"])
    for key in keys:
        walls = [statistics.median(m.wall for m in c.runs[key]) for c in codes]
        cpus = [statistics.median(m.cpu for m in c.runs[key]) for c in codes]
        ratio = [fmt(cpus[1] / cpus[0], 2)] if change else []
        t.add(key, *(fmt(w, 3) for w in walls), *(fmt(c, 3) for c in cpus), *ratio,
              len(codes[0].runs[key]))  # fmt: skip
    out = [t.render()]
    for code in codes:
        for what, prof in code.imports.items():
            top = ", ".join(f"{n} {ms:.0f}" for n, ms in prof["top_ms"])
            absent = [w for w in WATCHED if w not in prof["watched"]]
            out.append(
                f"\n{code.name}, {what}: {prof['modules']} modules imported, among them "
                f"{', '.join(prof['watched']) or 'none'} (not {', '.join(absent) or '-'})\n"
                f"  largest cumulative imports, ms: {top}"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Build the tree, push and pull it once per target and code, then time the no-ops."""
    args = parse(argv)
    started, started_load = time.monotonic(), os.getloadavg()
    kinds = args.targets.split(",")
    work = Path(tempfile.mkdtemp(prefix="etc-startup-", dir=args.work))
    rates = machine_rates()
    print(machine_line(rates))
    new_cmd, new_info = snapshot_etcetera(work / "new")
    codes = [Code("new" if args.old else "etc", Etcetera(new_cmd), new_info)]
    if args.old:
        old_cmd, old_info = snapshot_ref(args.old, work / "old")
        codes.insert(0, Code("old", Etcetera(old_cmd), {**old_info, "ref": args.old}))
    small = FULL["small"]
    spec = Spec("small", args.files, 4 * KiB, 4 * KiB, small.test_share, small.per_dir)
    servers = []
    try:
        wl = generate(spec, work / "src" / "dataset", args.seed)
        print(f"{spec.describe()}; {args.runs} rounds on {', '.join(kinds)}")
        for kind in kinds:
            server = start(kind, work)
            servers += [server] if server is not None else []
            target = Target(kind, server, work / "repos")
            for code in codes:
                prepare(code, target, wl.root, work, wl.files)
        for rnd in range(args.runs):
            timed_round(codes, kinds, rnd)
            print(f"round {rnd + 1} of {args.runs} done", flush=True)
        for code in codes:
            for kind in kinds:
                for op in ("push", "pull"):
                    code.imports[f"{kind} noop {op}"] = import_profile(
                        code, code.cells[kind], op, args.import_runs
                    )
    finally:
        for server in servers:
            server.stop()
        rmtree(work)
    rates = best_rates(rates, machine_rates())
    keys = ["etc --version"] + [f"{k} noop {op}" for k in kinds for op in ("push", "pull")]
    print()
    print(report(codes, keys))
    print()
    print(machine_line(rates))
    elapsed = time.monotonic() - started
    print(f"startup took {elapsed / 60:.1f} min" + load_line(started_load))
    doc: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/startup.py", *(argv or sys.argv[1:])]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "loadavg": {"start": started_load, "end": os.getloadavg()},
        "machine": {**machine_info(), **rates},
        "versions": versions(),
        "files": args.files,
        "codes": {
            c.name: {
                "etcetera_code": c.info,
                "runs": {
                    k: [{"wall": m.wall, "cpu": m.cpu} for m in ms] for k, ms in c.runs.items()
                },
                "medians": {
                    k: {
                        "wall": statistics.median(m.wall for m in ms),
                        "cpu": statistics.median(m.cpu for m in ms),
                    }
                    for k, ms in c.runs.items()
                },
                "imports": c.imports,
            }
            for c in codes
        },
    }
    dated, _ = write_json(doc, "startup")
    print(f"results: {dated} (and startup-latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
