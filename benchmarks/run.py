"""etcetera side by side with s5cmd, aws-cli, rclone, etcetera 0.0.12 and ``cp -r``.

    python benchmarks/run.py --quick      # scaled-down sizes, < 5 minutes on 2 cores
    python benchmarks/run.py              # full sizes (16 x 64 MiB, 20,000 x 4 KiB, ...)

Run ``bash benchmarks/setup_peers.sh`` once first. For each workload the script
generates a seeded tree, starts its own moto and fake-gcs-server on 127.0.0.1 (fresh
for each workload), and for every target (moto, fake-gcs, file://) runs each tool's
push then pull on a fresh bucket, the tools in alternation round after round.
``cp -r`` + ``sync -f`` of the same tree is measured in every round as the local limit
of a pull. Each pull is followed by ``sync -f`` of the pulled tree (timed with it),
since etcetera flushes a pulled dataset before showing it. After the ``small``
workload each tool pushes and pulls the same tree again: that is the ``noop`` row.

The raw ceiling (``ceiling.py``: a bare aiobotocore or gcloud-aio-storage client moving
the same tree the way etcetera does, with etcetera's defaults) runs in the same rounds
on moto and fake-gcs for the ``large`` and ``small`` workloads; hashlib's SHA-256 rate is
measured at the start and the end. Every etcetera figure is also printed as a fraction
of its limit (``of limit``), and the results hold a ``limits`` block per target.

Prints a table, the machine, and the goals of issue 13 (MET / MISSED), writes
``benchmarks/results/run-<time>.json`` and ``run-latest.json`` (with every raw run)
and draws ``docs/benchmarks.png``. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ceiling import Ceiling, Settings, best_rates, machine_line, machine_rates
from common import (
    ROOT,
    Measured,
    MiB,
    Server,
    machine_info,
    run_measured,
    snapshot_etcetera,
    start_fake_gcs,
    start_moto,
    tree_stats,
    versions,
    write_json,
)
from peers import TOOLS, Cell, Etcetera, EtceteraChunks, Target, Tool, rmtree
from report import (
    GOAL_RULES,
    LEGEND,
    NOOP_RUNS,
    GoalContext,
    Run,
    chart,
    chunk_lines,
    goal_summary,
    goals,
    limits,
    summarize,
    table,
    to_json,
)
from workloads import FULL, QUICK, Workload, generate

PER_OBJECT = {"s5cmd", "aws-cli", "rclone", "cp"}
MOTO_RSS_LIMIT = 1536 * MiB
#: Tools run in every etcetera round (the others: ``--peer-rounds`` rounds).
OURS = ("etcetera", "etcetera-cdc", "cp", "ceiling")
#: Tools measured on these workloads only (the chunked variant: large files).
ONLY_ON = {"etcetera-cdc": ("large",)}
ALL_TOOLS = (*TOOLS, Ceiling.name)


def round_options(p: argparse.ArgumentParser) -> None:
    """The options of :class:`Bench`'s rounds, which latency.py shares."""
    p.add_argument("--rounds", type=int, help="etcetera runs per cell (default 3; quick 1)")
    p.add_argument("--peer-rounds", type=int, default=1, help="peer runs per cell (default 1)")
    p.add_argument(
        "--peer-cap",
        type=float,
        help="seconds before a peer run is killed and its partial work counted (default 20)",
    )
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--seed", type=int, default=20240605)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scaled-down sizes (< 5 min)")
    round_options(p)
    p.add_argument("--workloads", default="large,small,mixed,text", help="comma-separated")
    p.add_argument("--targets", default="s3,gs,file", help="comma-separated: s3,gs,file")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated")
    p.add_argument(
        "--ceiling-workloads",
        default="large,small",
        help="workloads the raw ceiling runs on (default large,small)",
    )
    p.add_argument("--no-noop", action="store_true", help="skip the no-op push and pull")
    p.add_argument("--chart", type=Path, default=ROOT / "docs" / "benchmarks.png")
    p.add_argument("--no-chart", action="store_true")
    return p.parse_args(argv)


class Bench:
    """One benchmark session: its servers, its runs, its missing peers."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.runs: list[Run] = []
        self.missing: dict[tuple[str, str, str], str] = {}
        self.etc_cmd, self.code = snapshot_etcetera(work / "snapshot")
        # The ceiling takes etcetera's defaults from the snapshot measured.
        self.ceiling = Settings.defaults(work / "snapshot")
        self.ceiling_workloads = {n for n in args.ceiling_workloads.split(",") if n}
        self.tools: list[Tool] = [self._tool(n) for n in args.tools.split(",") if n]
        self.etc_rounds: int = args.rounds or (1 if args.quick else 3)
        self.cap: float = args.peer_cap or 20.0

    def _tool(self, name: str) -> Tool:
        if name == "etcetera":
            return Etcetera(self.etc_cmd)
        if name == EtceteraChunks.name:
            return EtceteraChunks(self.etc_cmd)
        if name == Ceiling.name:
            return Ceiling(self.ceiling)
        if name not in TOOLS:
            sys.exit(f"unknown tool {name!r}: choose from {', '.join(ALL_TOOLS)}")
        return TOOLS[name]()

    # -- servers -------------------------------------------------------------------------
    def start(self, kind: str) -> Server | None:
        """A fresh server for a target kind (``None`` for ``file``)."""
        if kind == "s3":
            return start_moto(self.logs)
        if kind == "gs":
            return start_fake_gcs(self.work / "servers", self.logs)
        return None

    # -- one workload --------------------------------------------------------------------
    def workload(self, wl: Workload) -> None:
        """Every target and tool on one workload."""
        for kind in self.args.targets.split(","):
            target = Target(kind, self.start(kind), self.work / "repos")
            try:
                rounds = max(self.etc_rounds, self.args.peer_rounds)
                for rnd in range(rounds):
                    for tool in self.tools:
                        ours = tool.name in OURS
                        limit = self.etc_rounds if ours else self.args.peer_rounds
                        if rnd >= limit:
                            continue
                        if tool.name == Ceiling.name and wl.name not in self.ceiling_workloads:
                            continue
                        if wl.name not in ONLY_ON.get(tool.name, (wl.name,)):
                            continue
                        reason = tool.missing(kind)
                        if reason:
                            self.missing[(tool.name, kind, "*")] = reason
                            continue
                        self.cell(tool, target, wl, rnd)
                        target = self.recycle(target)
            finally:
                if target.server is not None:
                    target.server.stop()

    def recycle(self, target: Target) -> Target:
        """Restart moto when its memory has grown past the limit (every cell has its bucket)."""
        if target.server is not None and target.server.rss() > MOTO_RSS_LIMIT:
            target.server.stop()
            return Target(target.kind, self.start(target.kind), target.work)
        return target

    def cell(self, tool: Tool, target: Target, wl: Workload, rnd: int) -> None:
        """Push, pull (and for ``small``, the no-op pair) of one tool."""
        tag = f"{wl.name}-{target.kind}-{tool.name}-{rnd}"
        scratch = self.work / "cells" / tag
        rmtree(scratch)
        scratch.mkdir(parents=True)
        location = target.new_location(tag)
        cap = max(self.cap, 900.0) if tool.name in OURS else self.cap
        c = Cell(target, wl.root, location, scratch, cap)
        peer = tool.is_peer(target.kind) and tool.name != "etcetera"
        print(f"  {tag} ...", end="", flush=True)
        try:
            tool.prepare(c)
            pushed_files, pushed_bytes = wl.files, wl.size
            flush(self.work)
            m = tool.push(c)
            if m is not None:
                # On file:// every push is charged its sync -f, as every pull is.
                pushed = None
                if target.kind == "file" and m.ok:
                    pushed = sync_tree(Path(location))
                run = self.record(tool, target, wl.name, "push", rnd, m, wl, c, peer, pushed)
                print(f" push {run.wall:.1f}s", end="", flush=True)
                if not (run.ok or run.partial):
                    print(" FAILED")
                    return
                pushed_files, pushed_bytes = run.files, run.bytes
            flush(self.work)
            m, dest = tool.pull(c)
            sync = sync_tree(dest)
            files, size = tree_stats(dest) if dest.exists() else (0, 0)
            note = ""
            complete = (files, size) == (pushed_files, pushed_bytes)
            if m.ok and not complete:
                note = f"incomplete: {files:,} of {pushed_files:,} files arrived"
            partial = (m.timed_out or pushed_files < wl.files) and files > 0
            self.runs.append(
                Run(
                    tool.name,
                    target.kind,
                    wl.name,
                    "pull",
                    rnd,
                    m.ok and complete,
                    partial,
                    files,
                    size,
                    m.wall + sync.wall,
                    sync.wall,
                    m.cpu + sync.cpu,
                    m.maxrss,
                    m.server_cpu,
                    peer,
                    note or _failure(m),
                )
            )
            print(f" pull {m.wall + sync.wall:.1f}s", end="", flush=True)
            if wl.name == "small" and not self.args.no_noop and m.ok and complete:
                self.noop(tool, c, rnd, wl, peer, pushed_files < wl.files)
            print()
        except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
            # A broken setup step (e.g. ``etc register`` failing) costs this cell, not the run.
            print(f" FAILED: {exc}")
            self.runs.append(
                Run(tool.name, target.kind, wl.name, "push", rnd, False, False, wl.files,
                    wl.size, 0.0, 0.0, 0.0, 0, 0.0, peer, f"setup failed: {exc}"[:160])
            )  # fmt: skip
        finally:
            rmtree(scratch)
            if target.kind == "file":
                rmtree(Path(location))

    def noop(self, tool: Tool, c: Cell, rnd: int, wl: Workload, peer: bool, partial: bool) -> None:
        """Push and pull the same tree again: nothing should travel.

        etcetera's no-op on moto is measured ``NOOP_RUNS`` times over all rounds (the
        goal takes the median of 5); other cells once a round.
        """
        if partial:
            self.missing[(tool.name, c.target.kind, "noop")] = "its push of small was capped"
            return
        repeats = 1
        if tool.name == "etcetera" and c.target.kind == "s3":
            n = self.etc_rounds
            repeats = NOOP_RUNS // n + (1 if rnd < NOOP_RUNS % n else 0)
        for direction in [d for _ in range(repeats) for d in ("push", "pull")]:
            flush(self.work)
            m = tool.noop_push(c) if direction == "push" else tool.noop_pull(c)
            if isinstance(m, str):
                if tool.is_peer(c.target.kind):
                    self.missing[(tool.name, c.target.kind, "noop")] = m
                return
            self.runs.append(
                Run(
                    tool.name,
                    c.target.kind,
                    "noop",
                    direction,
                    rnd,
                    m.ok,
                    False,
                    wl.files,
                    wl.size,
                    m.wall,
                    0.0,
                    m.cpu,
                    m.maxrss,
                    m.server_cpu,
                    peer,
                    _failure(m),
                )
            )
            print(f" noop-{direction} {m.wall:.1f}s", end="", flush=True)

    def record(
        self,
        tool: Tool,
        target: Target,
        workload: str,
        direction: str,
        rnd: int,
        m: Measured,
        wl: Workload,
        c: Cell,
        peer: bool,
        sync: Measured | None = None,
    ) -> Run:
        """Store a push (with its ``sync``); a capped per-object peer is credited what it stored."""
        files, size, partial = wl.files, wl.size, False
        if m.timed_out and tool.name in PER_OBJECT:
            location = f"{c.location}/bench" if target.kind == "file" else c.location
            files, size = target.count(location)
            partial = files > 0
        run = Run(
            tool.name,
            target.kind,
            workload,
            direction,
            rnd,
            m.ok,
            partial,
            files,
            size,
            m.wall + (sync.wall if sync else 0.0),
            sync.wall if sync else 0.0,
            m.cpu + (sync.cpu if sync else 0.0),
            m.maxrss,
            m.server_cpu,
            peer,
            _failure(m),
        )
        self.runs.append(run)
        return run


def _failure(m: Measured) -> str:
    if m.timed_out:
        return f"killed at the {m.wall:.0f} s cap"
    if m.returncode != 0:
        last = [ln for ln in m.output.strip().splitlines() if ln.strip()][-1:] or [""]
        return f"exit {m.returncode}: {last[0][:120]}"
    return ""


def flush(path: Path) -> None:
    """Write back dirty pages (untimed) so that a run does not pay for the one before it."""
    subprocess.run(["sync", "-f", str(path)], check=False)


def sync_tree(dest: Path) -> Measured:
    """``sync -f`` of a pulled tree, timed (etcetera's pull already flushed)."""
    target = dest if dest.exists() else dest.parent
    return run_measured(["sync", "-f", str(target)], {"PATH": "/usr/bin:/bin"})


def peer_versions() -> dict[str, str]:
    """Versions of the peers as they report them."""
    from peers import AWS, OLD_ETC, S5CMD, venv_missing, venv_script

    def ask(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "missing"

    return {
        "s5cmd": ask([str(S5CMD), "version"]),
        "aws-cli": ask([str(a) for a in venv_script(AWS)] + ["--version"]),
        "rclone": ask(["rclone", "version"]),
        "etcetera-0.0.12": "missing" if venv_missing(OLD_ETC) else "0.0.12",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit 0 even when goals are missed (they are reported)."""
    args = parse(argv)
    started = time.monotonic()
    specs = QUICK if args.quick else FULL
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in specs]
    if unknown:
        sys.exit(f"unknown workload {unknown[0]!r}: choose from {', '.join(specs)}")
    work = Path(tempfile.mkdtemp(prefix="etc-bench-", dir=args.work))
    bench = Bench(args, work)
    mode = "quick" if args.quick else "full"
    print(f"etcetera benchmarks ({mode}), scratch {work}")
    # Hashing is measured at the start and at the end (the best of each counts): a shared
    # machine's load during one moment should not set the limit.
    rates = machine_rates()
    print(machine_line(rates))
    text_info: dict[str, Any] = {}
    small_files = 0
    try:
        for name in names:
            spec = specs[name]
            t0 = time.monotonic()
            wl = generate(spec, work / "src" / name / "dataset", args.seed)
            print(
                f"{name}: {spec.describe()} = {wl.size / MiB:,.0f} MiB "
                f"(generated in {time.monotonic() - t0:.1f} s)"
            )
            if name == "small":
                small_files = wl.files
            if wl.compressed:
                text_info = {"bytes": wl.size, "zlib6_bytes": wl.compressed}
            bench.workload(wl)
            rmtree(work / "src" / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rates = best_rates(rates, machine_rates())
    elapsed = time.monotonic() - started
    rows = summarize(bench.runs)
    limit_block = limits(rows, rates)
    goal_list = goals(rows, GoalContext(args.quick, small_files, rates))
    print()
    print(table(rows))
    print(LEGEND)
    print(machine_line(rates))
    if bench.missing:
        print("\nMissing (not run, with the reason):")
        for (tool, kind, what), reason in sorted(bench.missing.items()):
            scope = "all workloads" if what == "*" else what
            print(f"  {tool} on {kind} ({scope}): {reason}")
    if text_info:
        ratio = text_info["zlib6_bytes"] / text_info["bytes"]
        print(
            f"\ntext: zlib level 6 would shrink it to {ratio:.0%} "
            f"({text_info['bytes'] / MiB:.0f} -> {text_info['zlib6_bytes'] / MiB:.0f} MiB): "
            f"a yardstick; etcetera stores it zstd-compressed where a trial pays "
            f"(benchmarks/bytes_moved.py counts the bytes it moves)."
        )
    cdc = chunk_lines(rows)
    if cdc:
        print("\nWith content_chunks on against the default (same run):")
        for line in cdc:
            print("  " + line)
    print("\nGoals (issue 13):")
    for rule in GOAL_RULES:
        print(f"  goal {rule}")
    print()
    for g in goal_list:
        print("  " + g.line())
    print("  " + goal_summary(goal_list))
    budget = 300 if args.quick else 1800
    over = elapsed > budget
    print(
        f"\n{mode} run took {elapsed / 60:.1f} min"
        + (f": OVER the {budget // 60}-minute budget" if over else "")
    )
    doc: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "machine": {**machine_info(), **{k: rates[k] for k in ("cpu_model", "sha_ext")}},
        "versions": {**versions(), **peer_versions()},
        "etcetera_code": bench.code,
        "workloads": {n: asdict(specs[n]) for n in names},
        "settings": {
            "etcetera_rounds": bench.etc_rounds,
            "peer_rounds": args.peer_rounds,
            "peer_cap_s": bench.cap,
            "etcetera": "defaults",
            "ceiling": asdict(bench.ceiling),
            "ceiling_workloads": sorted(bench.ceiling_workloads),
        },
        "text_compression": text_info,
        "missing": [
            {"tool": k[0], "target": k[1], "scope": k[2], "reason": v}
            for k, v in sorted(bench.missing.items())
        ],
        "runs": [asdict(r) for r in bench.runs],
        **to_json(rows, goal_list, limit_block),
    }
    dated, _ = write_json(doc, "run")
    print(f"results: {dated} (and run-latest.json)")
    if not args.no_chart and rows:
        title = (
            f"etcetera benchmarks ({mode}, {doc['finished']}, {doc['machine'].get('cpus')} "
            f"cores; median of {bench.etc_rounds} for etcetera)"
        )
        chart(rows, args.chart, title)
        print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
