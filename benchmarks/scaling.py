"""How etcetera's cost grows: throughput against concurrency, time against dataset size.

    python benchmarks/scaling.py --quick             # ~2 minutes
    python benchmarks/scaling.py                     # concurrency 1..256, 1,000..100,000 files
    python benchmarks/scaling.py --target file --part size

Part ``concurrency``: one dataset of 1-8 MiB files (blobs and packs alike) pushed and
pulled at each ``concurrency`` setting, every other setting at its default; peak RSS is
checked against the 300 MiB goal at each one ("at any concurrency").
Part ``size``: trees of N x 4 KiB files pushed, pulled, then pushed and pulled again
(no-op, median of 3); the fitted slope is the cost per file, the intercept the fixed cost.

etcetera runs as its CLI from a snapshot of the package, on a fresh server (moto by
default) for every point. Prints tables, writes ``results/scaling-<time>.json`` and
``results/scaling-latest.json``, and draws ``results/scaling.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    RESULTS,
    Measured,
    MiB,
    Server,
    Table,
    fmt,
    machine_info,
    snapshot_etcetera,
    start_fake_gcs,
    start_moto,
    tree_stats,
    versions,
    write_json,
)
from peers import Cell, Etcetera, Target, rmtree
from report import RSS_LIMIT
from workloads import KiB, Spec, generate

QUICK_CONCURRENCY = (1, 4, 16, 64, 256)
FULL_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
QUICK_SIZES = (1_000, 3_000, 10_000)
FULL_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
NOOP_REPEATS = 3


@dataclass
class Point:
    """One measured operation at one setting."""

    part: str
    x: int
    op: str
    ok: bool
    files: int
    bytes: int
    wall: float
    cpu: float
    maxrss: int
    server_cpu: float
    note: str = ""

    @classmethod
    def of(cls, part: str, x: int, op: str, m: Measured, files: int, size: int) -> Point:
        """A point from one measured run."""
        return cls(part, x, op, m.ok, files, size, m.wall, m.cpu, m.maxrss, m.server_cpu, _note(m))


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--target", choices=("s3", "gs", "file"), default="s3")
    p.add_argument("--part", choices=("concurrency", "size", "both"), default="both")
    p.add_argument("--concurrency", help="comma-separated values (overrides the defaults)")
    p.add_argument("--sizes", help="comma-separated file counts (overrides the defaults)")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--seed", type=int, default=20240605)
    return p.parse_args(argv)


def start(kind: str, work: Path) -> Server | None:
    """A fresh server for ``kind``."""
    if kind == "s3":
        return start_moto(work)
    if kind == "gs":
        return start_fake_gcs(work / "servers", work)
    return None


def point(
    tool: Etcetera,
    kind: str,
    src: Path,
    work: Path,
    tag: str,
    noop: int = 0,
) -> list[tuple[str, Measured, int, int]]:
    """Push and pull, then ``noop`` no-op pushes and as many pulls, on a fresh server.

    Every run is returned (:func:`median_runs` keeps the median of each repeated one).
    """
    server = start(kind, work)
    target = Target(kind, server, work / "repos")
    scratch = work / "cells" / tag
    rmtree(scratch)
    scratch.mkdir(parents=True)
    location = target.new_location(tag)
    cell = Cell(target, src, location, scratch, 1800.0)
    out: list[tuple[str, Measured, int, int]] = []
    try:
        tool.prepare(cell)
        files, size = tree_stats(src)
        m = tool.push(cell)
        out.append(("push", m, files, size))
        if m.ok:
            m, dest = tool.pull(cell)
            got = tree_stats(dest) if dest.exists() else (0, 0)
            if m.ok and got != (files, size):
                m.returncode = -1
                m.output = f"incomplete: {got[0]} of {files} files"
            out.append(("pull", m, files, size))
            if m.ok:
                out += [("noop push", tool.noop_push(cell), files, size) for _ in range(noop)]
                out += [("noop pull", tool.noop_pull(cell), files, size) for _ in range(noop)]
    finally:
        rmtree(scratch)
        if kind == "file":
            rmtree(Path(location))
        if server is not None:
            server.stop()
    return out


def median_runs(
    out: list[tuple[str, Measured, int, int]],
) -> list[tuple[str, Measured, int, int]]:
    """One entry per operation: of a repeated one, the run of median wall time."""
    ops: dict[str, list[tuple[str, Measured, int, int]]] = {}
    for entry in out:
        ops.setdefault(entry[0], []).append(entry)
    return [sorted(es, key=lambda e: e[1].wall)[len(es) // 2] for es in ops.values()]


def _note(m: Measured) -> str:
    if m.ok:
        return ""
    lines = [ln for ln in m.output.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else f"exit {m.returncode}")[:120]


def concurrency_part(
    args: argparse.Namespace, work: Path, values: tuple[int, ...], points: list[Point]
) -> None:
    """Throughput against the ``concurrency`` setting."""
    spec = (
        Spec("mixed", 24, 1 * MiB, 8 * MiB, per_dir=100)
        if args.quick
        else Spec("mixed", 96, 1 * MiB, 8 * MiB, per_dir=100)
    )
    wl = generate(spec, work / "src-concurrency" / "dataset", args.seed)
    print(f"concurrency: {spec.describe()} = {wl.size / MiB:.0f} MiB on {args.target}")
    for c in values:
        tool = Etcetera(args.etc_cmd, {"concurrency": c})
        for op, m, files, size in point(tool, args.target, wl.root, work, f"c{c}"):
            points.append(Point.of("concurrency", c, op, m, files, size))
            print(
                f"  concurrency {c:>3} {op}: {m.wall:.2f} s, {size / m.wall / 1e6:.1f} MB/s, "
                f"RSS {m.maxrss / MiB:.0f} MiB {_note(m)}"
            )
    rmtree(work / "src-concurrency")


def size_part(
    args: argparse.Namespace, work: Path, values: tuple[int, ...], points: list[Point]
) -> None:
    """Time against the number of files."""
    for n in values:
        spec = Spec("small", n, 4 * KiB, 4 * KiB, test_share=0.1)
        t0 = time.monotonic()
        wl = generate(spec, work / f"src-{n}" / "dataset", args.seed)
        print(f"size: {n:,} x 4 KiB on {args.target} (generated in {time.monotonic() - t0:.1f} s)")
        tool = Etcetera(args.etc_cmd)
        # No-ops are short and noisy here: the median of NOOP_REPEATS runs counts.
        runs = point(tool, args.target, wl.root, work, f"n{n}", NOOP_REPEATS)
        for op, m, files, size in median_runs(runs):
            points.append(Point.of("size", n, op, m, files, size))
            print(f"  {n:>7,} files {op}: {m.wall:.2f} s, {n / m.wall:,.0f} files/s {_note(m)}")
        rmtree(work / f"src-{n}")


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line ``y = a + b x``: (intercept, slope)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - b * mx, b


def report(points: list[Point]) -> tuple[str, list[dict[str, Any]]]:
    """Tables of both parts and the per-file fits."""
    out: list[str] = []
    fits: list[dict[str, Any]] = []
    conc = [p for p in points if p.part == "concurrency"]
    if conc:
        t = Table(
            ["concurrency", "op", "wall s", "MB/s", "cpu s/GiB", "RSS MiB", "srv cpu s", "RSS goal"]
        )
        for p in conc:
            goal = "ok" if p.maxrss < RSS_LIMIT else f"MISSED (> {RSS_LIMIT // MiB} MiB)"
            t.add(
                p.x,
                p.op,
                fmt(p.wall, 2),
                fmt(p.bytes / p.wall / 1e6),
                fmt(p.cpu / (p.bytes / 1024**3), 2),
                fmt(p.maxrss / MiB, 0),
                fmt(p.server_cpu, 2),
                goal,
            )
        out.append("Throughput against concurrency\n" + t.render())
    size = [p for p in points if p.part == "size"]
    if size:
        t = Table(["files", "op", "wall s", "files/s", "cpu s", "RSS MiB", "srv cpu s", "note"])
        for p in size:
            t.add(
                f"{p.x:,}",
                p.op,
                fmt(p.wall, 2),
                fmt(p.x / p.wall, 0),
                fmt(p.cpu, 2),
                fmt(p.maxrss / MiB, 0),
                fmt(p.server_cpu, 2),
                p.note,
            )
        out.append("Time against dataset size (4 KiB files)\n" + t.render())
        ft = Table(["op", "fixed s", "us/file", "at 20,000 s", "cpu fixed s", "cpu us/file",
                    "noop goal < 2 s", "note"])  # fmt: skip
        for op in ("push", "pull", "noop push", "noop pull"):
            pts = [p for p in size if p.op == op and p.ok]
            if len(pts) < 2:
                continue
            xs = [float(p.x) for p in pts]
            a, b = fit(xs, [p.wall for p in pts])
            ca, cb = fit(xs, [p.cpu for p in pts])
            at20k = a + b * 20_000
            goal = ("ok" if at20k < 2 else "MISSED") if op.startswith("noop") else ""
            if b < 0 and goal:
                goal = "? (noisy)"
            # CPU is far less sensitive than wall time to other people's load on this machine.
            note = "wall too noisy to fit (negative slope)" if b < 0 else ""
            ft.add(op, fmt(a, 2), fmt(b * 1e6, 0), fmt(at20k, 2), fmt(ca, 2), fmt(cb * 1e6, 0),
                   goal, note)  # fmt: skip
            fits.append({"op": op, "fixed_s": a, "us_per_file": b * 1e6, "at_20000_s": at20k,
                         "cpu_fixed_s": ca, "cpu_us_per_file": cb * 1e6})  # fmt: skip
        out.append("Fitted cost (least squares over the sizes above; extrapolated to 20,000)\n"
                   + ft.render())  # fmt: skip
    return "\n\n".join(out), fits


def chart(points: list[Point], path: Path) -> None:
    """Two panels: MB/s against concurrency, seconds against files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for op in ("push", "pull"):
        pts = [p for p in points if p.part == "concurrency" and p.op == op and p.ok]
        a1.plot([p.x for p in pts], [p.bytes / p.wall / 1e6 for p in pts], marker="o", label=op)
    a1.set_xscale("log", base=2)
    a1.set_xlabel("concurrency")
    a1.set_ylabel("MB/s")
    a1.set_title("throughput against concurrency")
    a1.legend()
    for op in ("push", "pull", "noop push", "noop pull"):
        pts = [p for p in points if p.part == "size" and p.op == op and p.ok]
        a2.plot([p.x for p in pts], [p.wall for p in pts], marker="o", label=op)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("files (4 KiB)")
    a2.set_ylabel("seconds")
    a2.set_title("time against dataset size")
    a2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for."""
    args = parse(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="etc-scaling-", dir=args.work))
    args.etc_cmd, code = snapshot_etcetera(work / "snapshot")
    conc = (
        tuple(int(x) for x in args.concurrency.split(","))
        if args.concurrency
        else (QUICK_CONCURRENCY if args.quick else FULL_CONCURRENCY)
    )
    sizes = (
        tuple(int(x) for x in args.sizes.split(","))
        if args.sizes
        else (QUICK_SIZES if args.quick else FULL_SIZES)
    )
    points: list[Point] = []
    try:
        if args.part in ("concurrency", "both"):
            concurrency_part(args, work, conc, points)
        if args.part in ("size", "both"):
            size_part(args, work, sizes, points)
    finally:
        rmtree(work)
    text, fits = report(points)
    print()
    print(text)
    elapsed = time.monotonic() - started
    print(
        f"\nscaling ({'quick' if args.quick else 'full'}, {args.target}) took "
        f"{elapsed / 60:.1f} min"
    )
    doc = {
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python", "benchmarks/scaling.py", *(argv or sys.argv[1:])]),
        "target": args.target,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "machine": machine_info(),
        "versions": versions(),
        "etcetera_code": code,
        "points": [asdict(p) for p in points],
        "fits": fits,
    }
    dated, _ = write_json(doc, "scaling")
    chart(points, RESULTS / "scaling.png")
    print(f"results: {dated} (and scaling-latest.json); chart: {RESULTS / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
