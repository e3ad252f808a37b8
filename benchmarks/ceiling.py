"""The raw ceilings: what the libraries, the disk and the CPU do with no etcetera code in the path.

    python benchmarks/ceiling.py --quick              # 3 x 32 MiB, moto, fake-gcs and file
    python benchmarks/ceiling.py                      # 16 x 64 MiB (the ``large`` workload)
    python benchmarks/ceiling.py --workloads large,small --targets s3

For each target it moves the same seeded tree as ``run.py`` (``workloads.py``):

* **s3, gs**: a bare aiobotocore client against moto, a bare gcloud-aio-storage client
  against fake-gcs-server, each in a fresh interpreter (``bare.py``; its CPU and peak RSS read by
  ``/usr/bin/time``, the server's CPU from ``/proc``), pushing from disk and pulling to
  disk (then ``sync -f``, timed). It does what etcetera does on that store, with
  etcetera's defaults (read from ``etcetera/defaults.py`` as data: no etcetera code is
  imported) and etcetera's client settings, but written directly against the SDK.
  See :data:`METHOD` for the exact method and where it differs.
* **file**: ``cp -r`` + ``sync -f`` of the tree, both ways (the machine's copy limit).
* **machine**: hashlib SHA-256 MB/s on one core and on every core, zlib CRC32 and
  CRC32C MB/s on one core, the CPU model and whether it has SHA extensions (``sha_ni``).

``run.py`` imports :class:`Ceiling` (a tool beside the peers, run in the same rounds)
and :func:`machine_rates`; the issue's limits are built from them in ``report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    GiB,
    Measured,
    MiB,
    Table,
    fmt,
    run_measured,
    start_fake_gcs,
    start_moto,
    tree_stats,
    write_json,
)
from peers import DATASET, Cell, Target, Tool, rmtree
from workloads import FULL, QUICK, Workload, generate

HERE = Path(__file__).resolve().parent
#: The format's hash chunk size (``etcetera.format.hashing.CHUNK_SIZE``): parts are whole chunks.
CHUNK = 8 * MiB

METHOD = {
    "s3": (
        "aiobotocore, AioConfig(max_pool_connections=concurrency, payload signing off, "
        "request_checksum_calculation and response_checksum_validation 'when_required', "
        "path addressing), bytes bodies not wrapped in BytesIO (as etcetera unregisters "
        "convert_body_to_file_like_object); push: files over the part size as multipart "
        "uploads of part-size parts, others as one PutObject, files under pack_threshold "
        "concatenated into packs of pack_size, each body read with os.pread in a thread "
        "and sent with a zlib CRC32 (ChecksumAlgorithm CRC32) computed in a thread; pull: "
        "whole GetObject per object (etcetera sends no ranges to a local moto), 1 MiB "
        "body reads, os.pwrite in a thread. Differs from etcetera: no SHA-256 (the goal "
        "adds its cost), botocore's own retries left on, bodies charged once (not twice) "
        "against memory_budget"
    ),
    "gs": (
        "gcloud-aio-storage over one aiohttp session (TCPConnector(limit=concurrency)), "
        "unsigned; push: files over the part size as parallel composite uploads as "
        "etcetera does them (a marker object, parts as temporary objects with their "
        "CRC32C, composes of up to 32, then a listing and a delete per temporary), others "
        "as one multipart upload with its CRC32C, small files in packs; pull: "
        "download_stream in part-size ranges for objects over the part size (ranges are "
        "cheap on fake-gcs), whole otherwise, 1 MiB reads, os.pwrite in a thread. "
        "Differs from etcetera: no SHA-256, bodies charged once against memory_budget"
    ),
}


# -- settings ------------------------------------------------------------------------------
def etcetera_defaults(root: Path = ROOT) -> dict[str, Any]:
    """etcetera's defaults, read from ``etcetera/defaults.py`` as data (no package import).

    ``defaults.py`` imports nothing inside etcetera, so loading it by path keeps every
    etcetera module out of this process (and out of the measured children).
    """
    path = root / "etcetera" / "defaults.py"
    spec = importlib.util.spec_from_file_location("_etc_defaults", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {root}/etcetera/defaults.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {
        "concurrency": mod.CONCURRENCY,
        "io_threads": mod.IO_THREADS,
        "part_size": mod.PART_SIZE,
        "pack_size": mod.PACK_SIZE,
        "pack_threshold": mod.PACK_THRESHOLD,
        "memory_budget": mod.MEMORY_BUDGET,
        "checksums": mod.CHECKSUMS,
    }


@dataclass(frozen=True)
class Settings:
    """How a ceiling run moves bytes; the defaults are etcetera's.

    Attributes:
        concurrency: requests in flight at most (and the size of the connection pool).
        io_threads: worker threads for disk reads, writes and checksums.
        part_size: etcetera's ``part_size`` setting (the part size used is derived from it
            as etcetera derives it: whole chunks, at least the store's minimum, at most
            half the memory budget).
        pack_size: target size of a pack of small files.
        pack_threshold: files smaller than this are packed.
        memory_budget: bytes of request bodies in memory at most (0: unbounded).
        checksums: ``crc`` to send the CRC32 / CRC32C the store verifies, as etcetera
            does; ``none`` to send none.
    """

    concurrency: int
    io_threads: int
    part_size: int
    pack_size: int
    pack_threshold: int
    memory_budget: int
    checksums: str = "crc"

    @classmethod
    def defaults(cls, root: Path = ROOT, **overrides: Any) -> Settings:
        """etcetera's defaults, with ``overrides`` (``None`` values ignored)."""
        d = etcetera_defaults(root)
        d.pop("checksums")
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**d)

    def part_for(self, store: str) -> int:
        """The part size etcetera uses on ``store`` (``TransferConfig.part_size_for``)."""
        min_part = 5 * MiB if store == "s3" else 1
        part = max(self.part_size, min_part, CHUNK)
        part = -(-part // CHUNK) * CHUNK
        budget = self.memory_budget or 1 << 40
        return min(part, max(budget // 2 // CHUNK * CHUNK, CHUNK))


# -- what the parent runs ------------------------------------------------------------------
class Ceiling(Tool):
    """The raw ceiling as a tool: a bare SDK client in a subprocess, push then pull.

    It is not a peer: ``report.py`` uses its rows as the limit of etcetera's figures on
    the same target and workload.
    """

    name = "ceiling"
    label = "raw library ceiling"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.defaults()

    def is_peer(self, kind: str) -> bool:
        """Never a peer: it is the limit."""
        return False

    def missing(self, kind: str) -> str | None:
        """S3 and GCS only, and their SDKs must be importable."""
        if kind == "file":
            return "on file:// the limit is cp -r + sync plus SHA-256 on every core"
        module = "aiobotocore" if kind == "s3" else "gcloud.aio.storage"
        with contextlib.suppress(ImportError, ValueError):
            if importlib.util.find_spec(module) is not None:
                return None
        return f"{module} is not installed"

    def child(self, cell: Cell, op: str, root: Path) -> Measured:
        """Run one measured push or pull in a fresh interpreter."""
        assert cell.target.server is not None
        spec = {
            "op": op,
            "store": cell.target.kind,
            "endpoint": cell.target.server.endpoint,
            "bucket": cell.location,
            "root": str(root),
            "prefix": DATASET,
            "part": self.settings.part_for(cell.target.kind),
            **asdict(self.settings),
        }
        cmd: list[str | Path] = [sys.executable, HERE / "bare.py", json.dumps(spec)]
        return run_measured(
            cmd, self.env(cell), servers=cell.target.servers, timeout=cell.cap, cwd=HERE
        )

    def push(self, cell: Cell) -> Measured:
        """Push ``cell.src`` to the cell's bucket."""
        return self.child(cell, "push", cell.src)

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """Pull the bucket into a fresh folder."""
        dest = cell.scratch / "pulled"
        return self.child(cell, "pull", dest), dest


def child_report(m: Measured) -> dict[str, Any]:
    """The JSON line a child printed last (its own counts and timings), or ``{}``."""
    for line in reversed(m.output.strip().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                report: dict[str, Any] = json.loads(line)
                return report
    return {}


# -- the machine ---------------------------------------------------------------------------
def cpu_facts() -> dict[str, Any]:
    """CPU model, cores usable by this process, and whether the CPU has SHA extensions."""
    model, flags = "unknown", set[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # x86 names it sha_ni; ARM's SHA-256 instructions show as sha2.
    return {"cpu_model": model, "cores": cores or 1, "sha_ext": bool({"sha_ni", "sha2"} & flags)}


def _rate(
    fn: Callable[[bytes], object],
    chunks: list[bytes],
    seconds: float,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Bytes per second of ``fn`` over ``chunks``, round after round, for ``seconds``.

    By default the seconds are this thread's CPU time, not wall time: on a shared
    machine the CPU time a byte costs is the CPU's own rate, however busy the cores are.
    """
    done, started = 0, clock()
    while True:
        for chunk in chunks:
            fn(chunk)
            done += len(chunk)
        elapsed = clock() - started
        if elapsed >= seconds:
            return done / elapsed


def _sha256(chunk: bytes) -> object:
    return hashlib.sha256(chunk).digest()


def _crc32c_fn() -> Callable[[bytes], object] | None:
    with contextlib.suppress(ImportError):
        import google_crc32c

        fn: Callable[[bytes], object] = google_crc32c.value
        return fn
    return None


def machine_rates(seconds: float = 0.2, trials: int = 3) -> dict[str, Any]:
    """SHA-256, CRC32 and CRC32C rates on this CPU, per CPU-second of one thread.

    SHA-256 runs over 8 MiB chunks (the format's). ``sha256_mbps_core`` is bytes over the
    hashing thread's CPU time (best of ``trials``), so other people's load on a shared
    machine changes it little; ``sha256_mbps_cores`` is that times the cores, the figure
    the issue's machine limit uses; ``sha256_mbps_parallel`` is what every core did at
    once in wall time here (hashlib releases the GIL), which the load does change.
    """
    facts = cpu_facts()
    cores = facts["cores"]
    chunks = [os.urandom(CHUNK) for _ in range(2)]
    one = max(_rate(_sha256, chunks, seconds) for _ in range(trials))

    def parallel() -> float:
        rates: list[float] = [0.0] * cores

        def work(i: int) -> None:
            rates[i] = _rate(_sha256, chunks, seconds, time.perf_counter)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(cores)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return sum(rates)

    together = max(parallel() for _ in range(trials))
    crc32 = max(_rate(zlib.crc32, chunks, seconds / 2) for _ in range(trials))
    crc32c_fn = _crc32c_fn()
    crc32c = (
        max(_rate(crc32c_fn, chunks, seconds / 2) for _ in range(trials)) if crc32c_fn else None
    )
    return {
        **facts,
        "sha256_mbps_core": one / 1e6,
        "sha256_mbps_cores": one * cores / 1e6,
        "sha256_mbps_parallel": together / 1e6,
        "sha256_s_per_gib_core": GiB / one,
        "crc32_mbps_core": crc32 / 1e6,
        "crc32c_mbps_core": crc32c / 1e6 if crc32c else None,
        "loadavg": os.getloadavg(),
    }


def best_rates(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The faster of two measurements of :func:`machine_rates` (the machine is shared)."""
    best = a if a["sha256_mbps_core"] >= b["sha256_mbps_core"] else b
    out = dict(best)
    for key in ("sha256_mbps_parallel", "crc32_mbps_core", "crc32c_mbps_core"):
        vals = [x[key] for x in (a, b) if x.get(key)]
        out[key] = max(vals) if vals else None
    out["samples"] = [
        {k: x[k] for k in ("sha256_mbps_core", "sha256_mbps_parallel", "loadavg")} for x in (a, b)
    ]
    return out


def machine_line(m: dict[str, Any]) -> str:
    """One line for beside a table: CPU, SHA extensions, SHA-256 per core and on all cores."""
    sha = "with SHA extensions" if m.get("sha_ext") else "without SHA extensions"
    return (
        f"machine: {m.get('cpu_model', '?')}, {m.get('cores')} cores, {sha}; hashlib SHA-256 "
        f"{m['sha256_mbps_core']:,.0f} MB/s a core ({m['sha256_s_per_gib_core']:.2f} s/GiB), "
        f"x{m.get('cores')} = {m['sha256_mbps_cores']:,.0f} MB/s "
        f"({m['sha256_mbps_parallel']:,.0f} on all cores at once, wall time); "
        f"CRC32 {m['crc32_mbps_core']:,.0f} MB/s a core"
        + (f", CRC32C {m['crc32c_mbps_core']:,.0f}" if m.get("crc32c_mbps_core") else "")
    )


# == standalone ============================================================================
def copy_sync(src: Path, dest: Path) -> dict[str, Any]:
    """``cp -r SRC DEST`` then ``sync -f DEST``, each timed; the CPU of both."""
    env = {"PATH": "/usr/bin:/bin"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    cp = run_measured(["cp", "-r", src, dest], env)
    if not cp.ok:
        raise RuntimeError(f"cp -r failed: {cp.output[-300:]}")
    sync = run_measured(["sync", "-f", dest], env)
    return {
        "ok": True,
        "cp_s": cp.wall,
        "sync_s": sync.wall,
        "wall_s": cp.wall + sync.wall,
        "cpu_s": cp.cpu + sync.cpu,
    }


def _flush(path: Path) -> None:
    """Write back dirty pages (untimed), so that a run does not pay for the one before it."""
    subprocess.run(["sync", "-f", str(path)], check=False)


def _rates(r: dict[str, Any], files: int, size: int) -> dict[str, Any]:
    wall = r["wall_s"]
    r["mbps"] = size / wall / 1e6 if wall else None
    r["files_per_s"] = files / wall if wall else None
    r["cpu_s_per_gib"] = r["cpu_s"] / (size / GiB) if size else None
    return r


def _measured(m: Measured, sync: Measured | None) -> dict[str, Any]:
    return {
        "ok": m.ok,
        "wall_s": m.wall + (sync.wall if sync else 0.0),
        "sync_s": sync.wall if sync else 0.0,
        "cpu_s": m.cpu + (sync.cpu if sync else 0.0),
        "maxrss": m.maxrss,
        "server_cpu_s": m.server_cpu,
        "child": child_report(m),
        "note": "" if m.ok else m.output[-400:],
    }


def bare_round(tool: Ceiling, target: Target, wl: Workload, scratch: Path) -> dict[str, Any]:
    """One push then pull (``sync -f`` included) through the bare client, on a fresh bucket."""
    rmtree(scratch)
    scratch.mkdir(parents=True)
    cell = Cell(target, wl.root, target.new_location("ceiling"), scratch, 1800.0)
    out: dict[str, Any] = {}
    try:
        _flush(scratch)
        push = tool.push(cell)
        out["push"] = _rates(_measured(push, None), wl.files, wl.size)
        if not push.ok:
            return out
        _flush(scratch)
        pull, dest = tool.pull(cell)
        sync = run_measured(["sync", "-f", dest if dest.exists() else scratch], {"PATH": "/bin"})
        r = out["pull"] = _rates(_measured(pull, sync), wl.files, wl.size)
        got = tree_stats(dest) if dest.exists() else (0, 0)
        if got != (wl.files, wl.size):
            r["ok"], r["note"] = False, f"incomplete: {got[0]:,} files, {got[1]:,} bytes arrived"
        return out
    finally:
        rmtree(scratch)


def copy_round(wl: Workload, scratch: Path) -> dict[str, Any]:
    """``cp -r`` + ``sync -f`` of the tree into a fresh folder (push) and back out (pull)."""
    rmtree(scratch)
    try:
        _flush(wl.root)
        push = _rates(copy_sync(wl.root, scratch / "repo" / DATASET), wl.files, wl.size)
        _flush(scratch)
        pull = _rates(copy_sync(scratch / "repo" / DATASET, scratch / "back"), wl.files, wl.size)
        return {"push": push, "pull": pull}
    finally:
        rmtree(scratch)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per direction over the rounds that succeeded."""
    out: dict[str, Any] = {}
    for d in ("push", "pull"):
        rs = [r[d] for r in rounds if d in r]
        good = [r for r in rs if r["ok"]]
        cell: dict[str, Any] = {"n": len(good)}
        for key in ("wall_s", "mbps", "files_per_s", "cpu_s_per_gib", "server_cpu_s", "sync_s"):
            vals = [r[key] for r in good if r.get(key) is not None]
            cell[key] = statistics.median(vals) if vals else None
        cell["maxrss"] = max((r.get("maxrss") or 0 for r in good), default=0) or None
        cell["notes"] = sorted({r["note"] for r in rs if r.get("note")})
        out[d] = cell
    return out


LABEL = {"s3": "moto", "gs": "fake-gcs", "file": "file"}
WHAT = {"s3": "bare aiobotocore", "gs": "bare gcloud-aio-storage", "file": "cp -r + sync"}


def render(doc: dict[str, Any]) -> str:
    """The table of every workload, target and direction measured."""
    t = Table(
        [
            "workload",
            "target",
            "dir",
            "what",
            "n",
            "wall s",
            "MB/s",
            "files/s",
            "cpu s/GiB",
            "RSS MiB",
            "srv cpu s",
            "note",
        ]
    )
    for name, wl in doc["workloads"].items():
        for kind, cell in wl["targets"].items():
            for d in ("push", "pull"):
                c = cell["summary"][d]
                rss = c.get("maxrss")
                t.add(
                    name,
                    LABEL.get(kind, kind),
                    d,
                    WHAT.get(kind, kind),
                    c["n"],
                    fmt(c["wall_s"], 2),
                    fmt(c["mbps"]),
                    fmt(c["files_per_s"], 0),
                    fmt(c["cpu_s_per_gib"], 2),
                    fmt(rss / MiB if rss else None, 0),
                    fmt(c["server_cpu_s"], 2) if kind != "file" else "-",
                    "; ".join(c["notes"])[:60],
                )
    return t.render()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="quick sizes (large: 3 x 32 MiB)")
    p.add_argument("--workloads", default="large", help="comma-separated: large,small,mixed,text")
    p.add_argument("--targets", default="s3,gs,file", help="comma-separated: s3,gs,file")
    p.add_argument("--rounds", type=int, help="runs per cell (default 3; quick 1)")
    p.add_argument("--concurrency", type=int, help="requests in flight (default: etcetera's)")
    p.add_argument("--part-size", type=int, help="bytes (default: etcetera's)")
    p.add_argument("--memory-budget", type=int, help="bytes of bodies held at most (0: no bound)")
    p.add_argument("--checksums", choices=("crc", "none"), default="crc", help="default: crc")
    p.add_argument("--seed", type=int, default=20240605)
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure the ceilings of the chosen workloads and targets; print them and write JSON."""
    args = parse(argv)
    started = time.monotonic()
    specs = QUICK if args.quick else FULL
    names = [n for n in args.workloads.split(",") if n]
    kinds = [k for k in args.targets.split(",") if k]
    rounds = args.rounds or (1 if args.quick else 3)
    settings = Settings.defaults(
        concurrency=args.concurrency,
        part_size=args.part_size,
        memory_budget=args.memory_budget,
        checksums=args.checksums,
    )
    tool = Ceiling(settings)
    mode = "quick" if args.quick else "full"
    work = Path(tempfile.mkdtemp(prefix="etc-ceiling-", dir=args.work))
    (work / "logs").mkdir()
    print(f"raw ceilings ({mode}), scratch {work}")
    print(f"settings (etcetera's defaults unless given): {asdict(settings)}")
    machine = machine_rates()
    print(machine_line(machine))
    doc: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python", "benchmarks/ceiling.py", *(argv or sys.argv[1:])]),
        "finished": None,
        "settings": asdict(settings),
        "part_size_used": {k: settings.part_for(k) for k in ("s3", "gs")},
        "method": METHOD,
        "machine": machine,
        "workloads": {},
    }
    try:
        for name in names:
            wl = generate(specs[name], work / "src" / name / DATASET, args.seed)
            print(f"{name}: {specs[name].describe()} = {wl.size / MiB:,.0f} MiB")
            per: dict[str, Any] = {}
            for kind in kinds:
                runs: list[dict[str, Any]] = []
                server = None
                if kind == "s3":
                    server = start_moto(work / "logs")
                elif kind == "gs":
                    server = start_fake_gcs(work / "servers", work / "logs")
                try:
                    target = Target(kind, server, work / "repos")
                    for rnd in range(rounds):
                        if server is None:
                            got = copy_round(wl, work / "cell")
                        else:
                            got = bare_round(tool, target, wl, work / "cell")
                        runs.append(got)
                        print(
                            f"  {LABEL[kind]} round {rnd}: "
                            + ", ".join(
                                f"{d} {r['wall_s']:.2f} s" + ("" if r["ok"] else " FAILED")
                                for d, r in got.items()
                            )
                        )
                finally:
                    if server is not None:
                        server.stop()
                per[kind] = {"summary": summary(runs), "runs": runs}
            doc["workloads"][name] = {
                "spec": asdict(specs[name]),
                "files": wl.files,
                "bytes": wl.size,
                "targets": per,
            }
            rmtree(work / "src" / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc["elapsed_s"] = time.monotonic() - started
    doc["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    print()
    print(render(doc))
    print(machine_line(machine))
    dated, _ = write_json(doc, "ceiling")
    print(f"\nceiling run took {doc['elapsed_s'] / 60:.1f} min; results: {dated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
