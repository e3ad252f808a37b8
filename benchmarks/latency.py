"""What a network's round trip does to per-file tools and to packed transfers.

    python benchmarks/latency.py --quick        # 600 x 4 KiB and 100 mixed files, ~2-3 min
    python benchmarks/latency.py                # 20,000 x 4 KiB and 2,000 x 50-500 KiB
    python benchmarks/latency.py --files 5000 --delay 50 --direct

The ``small`` and ``mixed`` workloads of ``run.py`` (same seeds, same bytes) are pushed
and pulled by etcetera (its ``etc`` CLI), s5cmd and rclone against a moto server on
127.0.0.1, through the fault proxy of the tests (``tests/faultproxy.py``) with no faults
and a fixed delay: once with none (``+0 ms``, the proxy alone) and once with ``--delay``
milliseconds (default 20) added to every request and to every new connection, which is
what a round trip to a cloud region costs. ``--direct`` adds a pass straight to moto
(what the proxy itself costs). Every round runs every pass in turn, each on a fresh
moto and proxy, the tools in alternation as in ``run.py`` (same cells: pull followed
by ``sync -f``, peers killed at ``--peer-cap`` seconds and credited what they did).

Prints a table (files/s and MB/s per tool, etcetera over the best peer, and each tool's
rate with the delay over its rate without), the machine line of ``run.py``, and writes
``results/latency-<time>.json`` and ``results/latency-latest.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ceiling import best_rates, machine_line, machine_rates
from common import (
    ROOT,
    MiB,
    Server,
    Table,
    _terminate,
    fmt,
    load_line,
    machine_info,
    proc_cpu_seconds,
    start_moto,
    versions,
    write_json,
)
from peers import rmtree
from report import Row, Run, find, summarize
from run import OURS, Bench, peer_versions, round_options
from workloads import FULL, QUICK, Workload, generate

TOOLS = ("etcetera", "s5cmd", "rclone")
DIRECT = "direct"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="run.py's quick sizes")
    p.add_argument("--files", type=int, help="files of the small workload (default 20,000)")
    p.add_argument("--delay", type=float, default=20.0, help="round trip in ms (default 20)")
    p.add_argument("--direct", action="store_true", help="also run straight to moto")
    p.add_argument("--workloads", default="small,mixed", help="comma-separated")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    round_options(p)
    p.add_argument("--serve-proxy", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    # What run.py's Bench reads: moto only, no ceiling, no no-op pass.
    args.targets, args.ceiling_workloads, args.no_noop = "s3", "", True
    return args


# -- the proxy, in a process of its own (its CPU is then measured, and the GIL is its own) --
def serve_proxy(upstream: str, delay_ms: float) -> int:
    """Run the fault proxy with no rules and a delay; print its port; serve until killed."""
    sys.path.insert(0, str(ROOT))  # tests/ is a package of the repository, not installed
    from tests.faultproxy import FaultProxy

    proxy = FaultProxy(upstream, "s3", delay=delay_ms / 1000).start()
    print(proxy.port, flush=True)
    threading.Event().wait()  # until the driver terminates this process
    return 0


@dataclass
class Proxied(Server):
    """moto behind the delay proxy: clients get the proxy's endpoint.

    The CPU charged to a run is moto's plus the proxy's; stopping stops both.
    """

    proxy: subprocess.Popen[bytes] | None = None

    def cpu_seconds(self) -> float:
        """moto's CPU seconds so far, plus the proxy's."""
        extra = proc_cpu_seconds(self.proxy.pid) if self.proxy else 0.0
        return super().cpu_seconds() + extra

    def stop(self) -> None:
        """Stop the proxy, then moto (each by its PID)."""
        if self.proxy is not None:
            _terminate(self.proxy)
        super().stop()


def start_proxied(logs: Path, delay_ms: float) -> Proxied:
    """A fresh moto and a delay proxy in front of it."""
    moto = start_moto(logs)
    log = (logs / f"proxy-{time.monotonic_ns()}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-proxy", moto.endpoint, "--delay", str(delay_ms)],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        _terminate(proc)
        moto.stop()
        raise RuntimeError(f"the delay proxy did not start (see {logs})")
    return Proxied("s3", moto.proc, f"http://127.0.0.1:{int(port)}", proxy=proc)


class LatencyBench(Bench):
    """run.py's rounds and cells, on moto behind the delay proxy of the current pass."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(args, work)
        #: The current pass: milliseconds of delay, or ``None`` for straight to moto.
        self.delay_ms: float | None = 0.0

    def start(self, kind: str) -> Server | None:
        """moto, behind the proxy unless this pass is direct."""
        if self.delay_ms is None:
            return start_moto(self.logs)
        return start_proxied(self.logs, self.delay_ms)

    def alternate(self, wl: Workload, delays: list[float | None]) -> list[Run]:
        """Every round runs every pass in turn, so that the machine's drifts hit them alike.

        The order of the passes is reversed every other round. Each pass is its own
        target in the runs returned (so each has its own best peer), with the round kept.
        """
        tools, rounds, peer_rounds = self.tools, self.etc_rounds, self.args.peer_rounds
        self.etc_rounds = self.args.peer_rounds = 1
        out: list[Run] = []
        try:
            for rnd in range(max(rounds, peer_rounds)):
                self.tools = [t for t in tools if rnd < (rounds if t.name in OURS else peer_rounds)]
                for delay in delays if rnd % 2 == 0 else delays[::-1]:
                    self.delay_ms = delay
                    print(f" round {rnd + 1}, {label(delay)}")
                    self.workload(wl)
                    out += [replace(r, target=label(delay), round=rnd) for r in self.runs]
                    self.runs.clear()
        finally:
            self.tools, self.etc_rounds, self.args.peer_rounds = tools, rounds, peer_rounds
        return out


def label(delay_ms: float | None) -> str:
    """How a pass is named in the table and the JSON."""
    return DIRECT if delay_ms is None else f"+{delay_ms:g} ms"


def slowdowns(rows: list[Row], passes: list[str]) -> dict[tuple[str, str, str, str], float]:
    """Each row's rate over the same tool's rate in the ``+0 ms`` pass."""
    base = label(0.0)
    out: dict[tuple[str, str, str, str], float] = {}
    for r in rows:
        ref = find(rows, r.tool, r.workload, base, r.direction)
        if r.fps and ref is not None and ref.fps and r.target in passes:
            out[(r.tool, r.workload, r.target, r.direction)] = r.fps / ref.fps
    return out


def render(rows: list[Row], passes: list[str]) -> str:
    """The table: a row per workload, direction, pass and tool."""
    slow = slowdowns(rows, passes)
    t = Table(
        ["workload", "dir", "delay", "tool", "n", "wall s", "files/s", "MB/s",
         "vs best peer", "vs +0 ms", "note"]
    )  # fmt: skip
    order = {p: i for i, p in enumerate(passes)}
    tools = {name: i for i, name in enumerate(TOOLS)}
    for r in sorted(
        rows,
        key=lambda r: (r.workload, r.direction != "push", order.get(r.target, 9),
                       tools.get(r.tool, 9)),
    ):  # fmt: skip
        ratio = f"{r.ratio:.2f}x {r.best_peer}" if r.ratio is not None else ""
        s = slow.get((r.tool, r.workload, r.target, r.direction))
        note = r.note or ("capped" if r.partial else "")
        t.add(r.workload, r.direction, r.target, r.tool, r.runs, fmt(r.wall, 2), fmt(r.fps, 0),
              fmt(r.mbps), ratio, f"{s:.2f}x" if s is not None else "", note)  # fmt: skip
    return t.render()


def ratio_lines(rows: list[Row], passes: list[str]) -> list[str]:
    """One line per workload and direction: etcetera over the best peer in each pass."""
    out: list[str] = []
    for workload in sorted({r.workload for r in rows}):
        for direction in ("push", "pull"):
            parts = []
            for p in passes:
                r = find(rows, "etcetera", workload, p, direction)
                if r is not None and r.ratio is not None:
                    parts.append(f"{r.ratio:.2f}x {r.best_peer} at {p}")
            if parts:
                out.append(f"  {workload} {direction}: etcetera / best peer = " + ", ".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every pass on every workload; print the table; write the JSON."""
    args = parse(argv)
    if args.serve_proxy:
        return serve_proxy(args.serve_proxy, args.delay)
    started, started_load = time.monotonic(), os.getloadavg()
    specs = dict(QUICK if args.quick else FULL)
    if args.files:
        specs["small"] = dataclasses.replace(specs["small"], files=args.files)
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in specs]
    if unknown:
        sys.exit(f"unknown workload {unknown[0]!r}: choose from {', '.join(specs)}")
    delays: list[float | None] = [0.0, args.delay]
    if args.direct:
        delays.insert(0, None)
    passes = [label(d) for d in delays]
    work = Path(tempfile.mkdtemp(prefix="etc-latency-", dir=args.work))
    bench = LatencyBench(args, work)
    mode = "quick" if args.quick else "full"
    print(f"etcetera latency profile ({mode}): passes {', '.join(passes)}; scratch {work}")
    rates = machine_rates()
    print(machine_line(rates))
    runs: list[Run] = []
    try:
        for name in names:
            spec = specs[name]
            wl = generate(spec, work / "src" / name / "dataset", args.seed)
            print(f"{name}: {spec.describe()} = {wl.size / MiB:,.0f} MiB")
            runs += bench.alternate(wl, delays)
            rmtree(work / "src" / name)
    finally:
        rmtree(work)
    rates = best_rates(rates, machine_rates())
    elapsed = time.monotonic() - started
    rows = summarize(runs)
    print()
    print(render(rows, passes))
    print(
        "vs best peer: etcetera's files/s over the fastest peer's in the same pass; "
        "vs +0 ms: the tool's files/s in this pass over its own through the proxy with no delay."
    )
    print("\n".join(ratio_lines(rows, passes)))
    print(machine_line(rates))
    print(f"\n{mode} run took {elapsed / 60:.1f} min" + load_line(started_load))
    slow = slowdowns(rows, passes)
    doc: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python", "benchmarks/latency.py", *(argv or sys.argv[1:])]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "loadavg": {"start": started_load, "end": os.getloadavg()},
        "machine": {**machine_info(), **rates},
        "versions": {**versions(), **peer_versions()},
        "etcetera_code": bench.code,
        "workloads": {n: asdict(specs[n]) for n in names},
        "settings": {
            "delay_ms": args.delay,
            "passes": passes,
            "etcetera_rounds": bench.etc_rounds,
            "peer_rounds": args.peer_rounds,
            "peer_cap_s": bench.cap,
            "etcetera": "defaults",
            "server_cpu": "moto's plus the proxy's",
        },
        "runs": [asdict(r) for r in runs],
        "summary": [
            {**asdict(r), "vs_no_delay": slow.get((r.tool, r.workload, r.target, r.direction))}
            for r in rows
        ],
    }
    dated, _ = write_json(doc, "latency")
    print(f"results: {dated} (and latency-latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
