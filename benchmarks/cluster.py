"""Distributed push and pull (``etcetera.distributed`` on a Dask LocalCluster) against one process.

    python benchmarks/cluster.py                  # 4 x (2,000 x 1-16 KiB + 2 x 16 MiB), 2 workers
    python benchmarks/cluster.py --quick          # 2 x (300 x 1-16 KiB + 1 x 4 MiB)
    python benchmarks/cluster.py --workers 1 --repeat 5

Starts its own moto server and a ``distributed.LocalCluster`` (worker processes, 2
threads each, scheduler in this process), all on 127.0.0.1. A seeded tree of
``--partitions`` partitions, each with ``--small`` files of ``--small-kib`` KiB and
``--big`` files of ``--big-mib`` MiB (random bytes: nothing deduplicates), plus
``meta.json``, is written once; per-worker folders are hard links into it (worker k
holds partitions k, k+N, ...; worker 0 also holds the files outside ``data/``).

Measured, median of ``--repeat``, each on a fresh bucket and a fresh home:

- push: ``etcetera.push`` (sync API, in this process) against ``etcetera.distributed.push``
  with the tree on a shared path (one root string) and with per-worker folders;
- no-op push: the same tree again to the same bucket and home (hash caches warm),
  locally and distributed;
- pull: ``etcetera.pull`` against ``etcetera.distributed.pull`` into one shared home and
  with ``per_worker=True`` (one home per worker).

Apart: the wall time of starting the cluster, of the workers' first imports, and of
Dask's own round trips (a no-op task, ``client.run``). For every run, CPU seconds of
this process (client, scheduler and nannies), of the worker processes and of moto, of
everything else on the machine (``/proc/stat``: other people's jobs skew a run), and
the start and stop of each Dask task (task stream), printed as a timeline. A call still
running after ``--stall`` seconds gets every thread's stack dumped once (this process,
and the workers by ``faulthandler`` on SIGUSR1), kept in the JSON and summarised.

Checked before anything is reported: every distributed push has the local push's
manifest digest, file count and size; no-op pushes are no-ops; every pulled tree holds
exactly the source's paths and sizes (per-worker shards: disjoint ``data/`` files that
together make the whole, the files outside ``data/`` on each). A failed check prints
what failed and exits 1 without a table.

etcetera runs from a snapshot of the package taken at the start (others edit it
meanwhile), in this process and in the workers. Prints the command, a table, and
writes ``results/cluster-<time>.json`` and ``results/cluster-latest.json``.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from common import (
    ACCESS_KEY,
    CLK_TCK,
    REGION,
    SECRET_KEY,
    MiB,
    Server,
    Table,
    clean_env,
    fmt,
    machine_info,
    proc_cpu_seconds,
    snapshot_etcetera,
    start_moto,
    versions,
    write_json,
)

if TYPE_CHECKING:
    from distributed import Client

    from etcetera import Config

T = TypeVar("T")
KiB = 1024
MB = 1e6
NAME = "ds"
#: Modules every worker imports before anything is timed (the driver imports them too).
WARM_MODULES = ("etcetera.distributed", "etcetera.backends.s3", "etcetera.api.pull")


class CheckFailed(Exception):
    """A correctness check failed: no number may be reported."""


def check(ok: bool, what: str) -> None:
    """Raise :class:`CheckFailed` with ``what`` unless ``ok``."""
    if not ok:
        raise CheckFailed(what)


# -- the dataset -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What the generated tree holds."""

    partitions: int
    small: int
    small_min: int  # bytes
    small_max: int  # bytes
    big: int
    big_size: int  # bytes
    seed: int


def generate(root: Path, shape: Shape) -> dict[str, int]:
    """Write the tree; return ``relative path -> size`` of every file."""
    rng = np.random.Generator(np.random.PCG64(shape.seed))
    files: dict[str, int] = {}
    for p in range(shape.partitions):
        part = root / "data" / f"p{p}"
        part.mkdir(parents=True)
        sizes = rng.integers(shape.small_min, shape.small_max + 1, shape.small).tolist()
        buf = rng.bytes(sum(sizes))
        offset = 0
        for j, size in enumerate(sizes):
            rel = f"data/p{p}/s{j:05d}.bin"
            (root / rel).write_bytes(buf[offset : offset + size])
            files[rel] = size
            offset += size
        for b in range(shape.big):
            rel = f"data/p{p}/big{b}.bin"
            (root / rel).write_bytes(rng.bytes(shape.big_size))
            files[rel] = shape.big_size
    meta = json.dumps({"generator": "benchmarks/cluster.py", **asdict(shape)}).encode()
    (root / "meta.json").write_bytes(meta)
    files["meta.json"] = len(meta)
    return files


def split(root: Path, dest: Path, names: list[Any], files: Mapping[str, int]) -> dict[Any, str]:
    """Per-worker folders of hard links: worker k holds partitions k, k+N, ...; worker 0
    also holds the files outside ``data/``. Returns ``worker name -> folder``."""
    parts = sorted({rel.split("/")[1] for rel in files if rel.startswith("data/")})
    owner = {part: i % len(names) for i, part in enumerate(parts)}
    roots: dict[Any, str] = {}
    for i, name in enumerate(names):
        folder = dest / f"w{i}"
        for rel in files:
            mine = owner[rel.split("/")[1]] == i if rel.startswith("data/") else i == 0
            if mine:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(root / rel, folder / rel)
        roots[name] = str(folder)
    return roots


def listing(root: Path) -> dict[str, int]:
    """``relative path -> size`` of every regular file under ``root``."""
    top = root.resolve()
    out: dict[str, int] = {}
    for dirpath, _, names in os.walk(top):
        for n in names:
            path = Path(dirpath) / n
            out[path.relative_to(top).as_posix()] = path.stat().st_size
    return out


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One Dask task that ran during a call: seconds from the call's start."""

    function: str
    worker: str
    start: float
    stop: float


@dataclass
class Run:
    """One timed call."""

    wall: float
    cpu_driver: float  # this process: client, scheduler, nannies (and a local push or pull)
    cpu_workers: float
    cpu_moto: float
    cpu_machine: float  # every process on the machine (/proc/stat), ours included
    iowait: float  # CPU seconds idle while waiting for the disk (/proc/stat)
    tasks: list[Task] = field(default_factory=list)
    restarted: bool = False  # a worker process was replaced meanwhile (its CPU is lost)
    stall_dump: str = ""  # every thread's stack, taken when the call ran past --stall

    @property
    def cpu_ours(self) -> float:
        """CPU seconds of this process, the workers and moto."""
        return self.cpu_driver + self.cpu_workers + self.cpu_moto

    @property
    def cpu_other(self) -> float:
        """CPU seconds of everything else on the machine (other people's jobs)."""
        return max(0.0, self.cpu_machine - self.cpu_ours)

    @property
    def task_count(self) -> int:
        """Dask tasks that ran during the call."""
        return len(self.tasks)

    @property
    def task_seconds(self) -> float:
        """Compute seconds of those tasks, summed."""
        return sum(t.stop - t.start for t in self.tasks)

    def waves(self) -> list[tuple[float, float, list[Task]]]:
        """Tasks grouped into waves of overlapping tasks: ``(start, stop, tasks)``."""
        out: list[tuple[float, float, list[Task]]] = []
        for t in sorted(self.tasks, key=lambda t: t.start):
            if out and t.start < out[-1][1]:
                start, stop, members = out[-1]
                out[-1] = (start, max(stop, t.stop), [*members, t])
            else:
                out.append((t.start, t.stop, [t]))
        return out

    def timeline(self) -> str:
        """Where the wall time went: gaps (driver, Dask) and waves of tasks."""
        parts, at = [], 0.0
        for start, stop, members in self.waves():
            names = sorted({m.function for m in members})
            parts.append(f"{start - at:.2f} s")
            parts.append(
                f"[{len(members)} x {'/'.join(names)}: {stop - start:.2f} s, "
                f"{sum(m.stop - m.start for m in members):.1f} task-s]"
            )
            at = stop
        parts.append(f"{self.wall - at:.2f} s")
        return " > ".join(parts)


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy, and idle waiting for I/O, since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq (steal is the hypervisor's, guest is in user)
    busy = sum(fields[:7]) - fields[3] - fields[4]
    return busy / CLK_TCK, fields[4] / CLK_TCK


@dataclass
class Bench:
    """The servers, the cluster and the folders of one benchmark run."""

    work: Path
    server: Server
    client: Client
    stall: float = 120.0
    worker_pids: dict[str, int] = field(default_factory=dict)

    def config(self, bucket: str, home: Path) -> Config:
        """Settings for ``bucket`` on moto with ``home``; defaults for everything else."""
        from etcetera import Config

        return Config(
            f"s3://{bucket}",
            home=home,
            endpoint_url=self.server.endpoint,
            region=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def fresh(self, label: str) -> Path:
        """A new, not yet existing folder under the work folder."""
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.work)) / "home"

    def _cpu(self) -> tuple[float, float, float, float, float]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        workers = sum(proc_cpu_seconds(pid) for pid in self.worker_pids.values())
        machine, iowait = machine_cpu()
        return ru.ru_utime + ru.ru_stime, workers, self.server.cpu_seconds(), machine, iowait

    def _dump(self, seconds: float, folder: Path) -> None:
        """Every thread's stack, here and in each worker (``faulthandler`` on SIGUSR1)."""
        print(
            f"  STALL: the call has run for {seconds:.0f} s; dumping stacks to {folder}",
            file=sys.stderr,
            flush=True,
        )
        for pid in self.worker_pids.values():
            os.kill(pid, signal.SIGUSR1)  # only our own worker processes, by PID
        with (folder / f"driver-{os.getpid()}.txt").open("a") as f:
            faulthandler.dump_traceback(file=f, all_threads=True)

    def measure(self, fn: Callable[[], T]) -> tuple[T, Run]:
        """Call ``fn`` and time it: wall, CPU of every process, and its Dask tasks.

        Past ``self.stall`` seconds, the stacks of every thread of this process and of
        the workers are dumped once (the call goes on) and kept with the run.
        """
        from dask.utils import key_split
        from distributed import get_task_stream

        folder = Path(tempfile.mkdtemp(prefix="stacks-", dir=self.work))
        # Worker pids change if a nanny restarted a worker: ask (and arm) every time.
        self.worker_pids = self.client.run(_arm_stack_dump, str(folder))
        os.sync()  # earlier writes must not be flushed on this call's time
        before = self._cpu()
        watchdog = threading.Timer(self.stall, self._dump, (self.stall, folder))
        watchdog.daemon = True
        with get_task_stream(client=self.client) as stream:
            epoch = time.time()  # task start and stop times are the workers' time.time()
            started = time.perf_counter()
            watchdog.start()
            try:
                out = fn()
            finally:
                watchdog.cancel()
            wall = time.perf_counter() - started
        after = self._cpu()
        pids: dict[str, int] = self.client.run(os.getpid)
        tasks = [
            Task(key_split(t["key"]), str(t["worker"]), s["start"] - epoch, s["stop"] - epoch)
            for t in stream.data
            for s in t.get("startstops", ())
            if s["action"] == "compute"
        ]
        d, w, m, mach, io = (a - b for a, b in zip(after, before, strict=True))
        run = Run(
            wall,
            d,
            w,
            m,
            mach,
            io,
            tasks,
            sorted(pids.values()) != sorted(self.worker_pids.values()),
        )
        run.stall_dump = "\n".join(
            f"== {f.name}\n{f.read_text()}" for f in sorted(folder.iterdir()) if f.stat().st_size
        )
        shutil.rmtree(folder, ignore_errors=True)
        return out, run


def _arm_stack_dump(folder: str) -> int:
    """In a worker: dump every thread's stack to ``folder`` on SIGUSR1; return the pid."""
    path = Path(folder) / f"worker-{os.getpid()}.txt"
    # faulthandler keeps its own reference to the file; it writes without the GIL.
    faulthandler.register(signal.SIGUSR1, file=path.open("a"), all_threads=True)
    return os.getpid()


# -- the measured operations -----------------------------------------------------------------


@dataclass
class Expect:
    """What every push and pull must produce."""

    files: dict[str, int]
    manifest: str = ""  # the local push's digest, once known

    @property
    def count(self) -> int:
        """Files in the dataset."""
        return len(self.files)

    @property
    def size(self) -> int:
        """Bytes in the dataset."""
        return sum(self.files.values())


def push_runs(
    b: Bench, tree: Path, roots: dict[Any, str], expect: Expect, repeat: int
) -> tuple[dict[str, list[Run]], str]:
    """Every push mode, ``repeat`` times each; returns the runs and a bucket to pull from."""
    import etcetera as etc
    from etcetera import distributed as etc_dask

    runs: dict[str, list[Run]] = {}
    pull_bucket = ""

    def checked(mode: str, result: etc.PushResult, noop: bool = False) -> None:
        check(result.noop == noop, f"{mode}: noop is {result.noop}, expected {noop}")
        check(result.version == 1, f"{mode}: version {result.version}, expected 1")
        check(result.files == expect.count, f"{mode}: {result.files} files, {expect.count} sent")
        check(result.size == expect.size, f"{mode}: {result.size} bytes, {expect.size} sent")
        if not expect.manifest:
            expect.manifest = result.manifest
        check(
            result.manifest == expect.manifest,
            f"{mode}: manifest {result.manifest} differs from the local push's {expect.manifest}",
        )
        if not noop:
            check(result.bytes_to_send > 0, f"{mode}: sent nothing to a fresh bucket")

    for r in range(repeat):
        print(f"  push round {r + 1}/{repeat}", flush=True)
        # Local push, then the same again (a no-op), from this process.
        bucket = b.server.create_bucket()
        cfg = b.config(bucket, b.fresh("local-push"))
        etc.register(tree, name=NAME, config=cfg)
        result, run = b.measure(partial(etc.push, NAME, config=cfg))
        checked("local push", result)
        runs.setdefault("push/local", []).append(run)
        result, run = b.measure(partial(etc.push, NAME, config=cfg))
        checked("local no-op push", result, noop=True)
        runs.setdefault("noop/local", []).append(run)
        pull_bucket = pull_bucket or bucket

        # Distributed, the tree on a path every worker sees; then the same tree again.
        cfg = b.config(b.server.create_bucket(), b.fresh("dist-shared"))
        result, run = b.measure(partial(etc_dask.push, NAME, b.client, str(tree), config=cfg))
        checked("distributed push (shared path)", result)
        runs.setdefault("push/shared", []).append(run)
        result, run = b.measure(partial(etc_dask.push, NAME, b.client, str(tree), config=cfg))
        checked("distributed no-op push (shared path)", result, noop=True)
        runs.setdefault("noop/shared", []).append(run)

        # Distributed, each worker holding its own partitions.
        cfg = b.config(b.server.create_bucket(), b.fresh("dist-per-worker"))
        result, run = b.measure(partial(etc_dask.push, NAME, b.client, roots, config=cfg))
        checked("distributed push (per-worker folders)", result)
        runs.setdefault("push/per-worker", []).append(run)
    return runs, pull_bucket


def pull_runs(
    b: Bench, bucket: str, names: list[Any], expect: Expect, repeat: int
) -> dict[str, list[Run]]:
    """Every pull mode, ``repeat`` times each, each into fresh homes."""
    import etcetera as etc
    from etcetera import distributed as etc_dask

    runs: dict[str, list[Run]] = {}
    data = {k: v for k, v in expect.files.items() if k.startswith("data/")}
    outside = {k: v for k, v in expect.files.items() if not k.startswith("data/")}

    def whole(mode: str, result: object) -> Path:
        check(isinstance(result, etc.PullResult), f"{mode}: returned {type(result).__name__}")
        assert isinstance(result, etc.PullResult)
        check(result.version == 1 and not result.noop, f"{mode}: version {result.version}")
        got = listing(result.location)
        check(
            got == expect.files,
            f"{mode}: {len(got)} files ({sum(got.values())} bytes) pulled, "
            f"{expect.count} ({expect.size} bytes) expected",
        )
        return result.location

    for r in range(repeat):
        print(f"  pull round {r + 1}/{repeat}", flush=True)
        home = b.fresh("local-pull")
        cfg = b.config(bucket, home)
        result, run = b.measure(partial(etc.pull, NAME, config=cfg))
        whole("local pull", result)
        runs.setdefault("pull/local", []).append(run)
        shutil.rmtree(home.parent)

        home = b.fresh("dist-pull-shared")
        cfg = b.config(bucket, home)
        shared, run = b.measure(partial(etc_dask.pull, NAME, b.client, config=cfg))
        whole("distributed pull (shared home)", shared)
        runs.setdefault("pull/shared", []).append(run)
        shutil.rmtree(home.parent)

        base = b.fresh("dist-pull-per-worker")
        homes = {name: str(base.parent / f"node{i}") for i, name in enumerate(names)}
        cfg = b.config(bucket, base)
        results, run = b.measure(
            partial(etc_dask.pull, NAME, b.client, config=cfg, per_worker=True, homes=homes)
        )
        mode = "distributed pull (per worker)"
        check(isinstance(results, dict), f"{mode}: returned {type(results).__name__}")
        assert isinstance(results, dict)
        check(len(results) == len(names), f"{mode}: {len(results)} results, {len(names)} workers")
        seen: dict[str, int] = {}
        used = {
            h for res in results.values() for h in homes.values() if res.location.is_relative_to(h)
        }
        check(used == set(homes.values()), f"{mode}: homes used {sorted(used)}, not one each")
        for address, res in results.items():
            got = listing(res.location)
            mine = {k: v for k, v in got.items() if k.startswith("data/")}
            check(not seen.keys() & mine.keys(), f"{mode}: shards of {address} overlap")
            seen |= mine
            check(
                {k: v for k, v in got.items() if not k.startswith("data/")} == outside,
                f"{mode}: {address} lacks files outside data/",
            )
        check(seen == data, f"{mode}: shards hold {len(seen)} data files, {len(data)} expected")
        runs.setdefault("pull/per-worker", []).append(run)
        shutil.rmtree(base.parent)
    return runs


# -- Dask's own costs ------------------------------------------------------------------------


def _module_file(name: str) -> str:
    """Import ``name`` (in a worker); return the file it came from."""
    return str(importlib.import_module(name).__file__)


def dask_overhead(client: Client, rounds: int = 30) -> dict[str, float]:
    """Round trips of a no-op task and of ``client.run``, and a batch of 200 no-op tasks."""
    from distributed import wait

    def timed(fn: Callable[[], object]) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    task = [timed(lambda: client.submit(abs, 0, pure=False).result()) for _ in range(rounds)]
    run = [timed(lambda: client.run(os.getpid)) for _ in range(rounds)]
    started = time.perf_counter()
    futures = [client.submit(abs, -i, pure=False) for i in range(200)]
    wait(futures)  # type: ignore[no-untyped-call]
    batch = time.perf_counter() - started
    return {
        "task_round_trip_ms": statistics.median(task) * 1000,
        "run_round_trip_ms": statistics.median(run) * 1000,
        "batch_200_tasks_s": batch,
        "batch_tasks_per_s": 200 / batch,
    }


# -- report ----------------------------------------------------------------------------------

ROWS = (
    ("push", "local", "push/local", "push/local"),
    ("push", "dist, shared path", "push/shared", "push/local"),
    ("push", "dist, per-worker folders", "push/per-worker", "push/local"),
    ("no-op push", "local", "noop/local", "noop/local"),
    ("no-op push", "dist, shared path", "noop/shared", "noop/local"),
    ("pull", "local", "pull/local", "pull/local"),
    ("pull", "dist, shared home", "pull/shared", "pull/local"),
    ("pull", "dist, per_worker=True", "pull/per-worker", "pull/local"),
)
HEADERS = ["op", "mode", "wall s", "max s", "MB/s", "files/s", "dist/local", "cpu here", "cpu wrk",
           "cpu moto", "moto %core", "ours %", "others %", "iowait %", "tasks"]  # fmt: skip


def med(runs: list[Run], get: Callable[[Run], float]) -> float:
    """Median of one figure over the runs."""
    return statistics.median(get(r) for r in runs)


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (the lower one of an even count)."""
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


def report(
    runs: dict[str, list[Run]], expect: Expect
) -> tuple[Table, list[str], list[dict[str, Any]]]:
    """The table, the timelines of the distributed rows, and the rows for the JSON document."""
    cpus = os.cpu_count() or 1
    table = Table(HEADERS)
    timelines: list[str] = []
    rows: list[dict[str, Any]] = []
    for op, mode, key, base in ROWS:
        rs = runs[key]
        wall = med(rs, lambda r: r.wall)
        local = med(runs[base], lambda r: r.wall)
        row: dict[str, Any] = {
            "op": op,
            "mode": mode,
            "key": key,
            "wall_s": wall,
            "mb_per_s": expect.size / MB / wall,
            "files_per_s": expect.count / wall,
            "speed_vs_local": local / wall,
            "cpu_here_s": med(rs, lambda r: r.cpu_driver),
            "cpu_workers_s": med(rs, lambda r: r.cpu_workers),
            "cpu_moto_s": med(rs, lambda r: r.cpu_moto),
            "moto_core_share": med(rs, lambda r: r.cpu_moto / r.wall),
            "ours_share": med(rs, lambda r: r.cpu_ours / (r.wall * cpus)),
            "others_share": med(rs, lambda r: r.cpu_other / (r.wall * cpus)),
            "iowait_share": med(rs, lambda r: r.iowait / (r.wall * cpus)),
            "tasks": med(rs, lambda r: r.task_count),
            "task_s": med(rs, lambda r: r.task_seconds),
            "timeline_of_median_run": median_run(rs).timeline(),
            "runs": [
                {**asdict(r), "task_count": r.task_count, "cpu_other": r.cpu_other} for r in rs
            ],
        }
        rows.append(row)
        table.add(
            op,
            mode,
            fmt(wall, 2),
            fmt(max(r.wall for r in rs), 2),
            fmt(row["mb_per_s"]),
            fmt(row["files_per_s"], 0),
            "-" if key == base else f"{row['speed_vs_local']:.2f}x",
            fmt(row["cpu_here_s"]),
            fmt(row["cpu_workers_s"]),
            fmt(row["cpu_moto_s"]),
            f"{100 * row['moto_core_share']:.0f}",
            f"{100 * row['ours_share']:.0f}",
            f"{100 * row['others_share']:.0f}",
            f"{100 * row['iowait_share']:.0f}",
            f"{row['tasks']:.0f}" if row["tasks"] else "-",
        )
        if row["tasks"]:
            timelines.append(f"  {op}, {mode}: {row['timeline_of_median_run']}")
    return table, timelines, rows


def incidents(runs: dict[str, list[Run]]) -> list[str]:
    """Runs that stalled past ``--stall`` or lost a worker, with the stacks that mattered."""
    out: list[str] = []
    for key, rs in runs.items():
        for i, r in enumerate(rs, 1):
            if not (r.stall_dump or r.restarted):
                continue
            what = [f"{key} round {i}: {r.wall:.1f} s"]
            what += ["a worker was restarted meanwhile"] if r.restarted else []
            out.append("  " + "; ".join(what))
            out += [f"    {line}" for line in busy_stacks(r.stall_dump)]
    return out


def busy_stacks(dump: str, frames: int = 12) -> list[str]:
    """Threads of a ``faulthandler`` dump inside etcetera, and each worker's event-loop
    thread; innermost frames first."""
    lines: list[str] = []
    process = ""
    for block in dump.split("\n\n"):
        head, *rest = block.strip().splitlines() or [""]
        if head.startswith("== "):
            process, head, *rest = head, *(rest or [""])
        # A worker's main thread runs its event loop (heartbeats): the signal lands there.
        loop = head.startswith("Current thread") and "worker-" in process
        if loop or any("etcetera" in line for line in rest):
            lines += [f"{process} {head}", *(f"  {x.strip()}" for x in rest[:frames])]
    return lines


# -- main ------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small tree (defaults below shrink)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=2, help="threads per worker (default 2)")
    p.add_argument("--partitions", type=int, help="partitions (default 4; quick 2)")
    p.add_argument("--small", type=int, help="small files a partition (default 2000; quick 300)")
    p.add_argument("--small-kib", default="1-16", help="small file sizes, KiB (default 1-16)")
    p.add_argument("--big", type=int, help="big files a partition (default 2; quick 1)")
    p.add_argument("--big-mib", type=int, help="big file size, MiB (default 16; quick 4)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument(
        "--stall",
        type=float,
        default=120.0,
        help="dump every thread's stack once a call runs this long (default 120 s)",
    )
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = p.parse_args(argv)
    quick = args.quick
    args.partitions = args.partitions or (2 if quick else 4)
    args.small = args.small if args.small is not None else (300 if quick else 2000)
    args.big = args.big if args.big is not None else (1 if quick else 2)
    args.big_mib = args.big_mib or (4 if quick else 16)
    lo, _, hi = args.small_kib.partition("-")
    args.small_range = (int(lo) * KiB, int(hi or lo) * KiB)
    if args.workers < 1 or args.partitions < args.workers:
        p.error("need 1 <= --workers <= --partitions (every worker folder holds a partition)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON."""
    args = parse(argv)
    print("$ " + shlex.join(sys.orig_argv), flush=True)
    began = time.perf_counter()
    shape = Shape(
        args.partitions,
        args.small,
        args.small_range[0],
        args.small_range[1],
        args.big,
        args.big_mib * MiB,
        args.seed,
    )
    work = Path(args.work or tempfile.mkdtemp(prefix="etc-cluster-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Workers inherit this environment: no ambient cloud or etcetera settings.
    env = clean_env(work / "env")
    os.environ.clear()
    os.environ.update(env)
    _, code = snapshot_etcetera(work / "code")
    sys.path.insert(0, str(work / "code"))  # in this process and, by spawn, in the workers
    for module in WARM_MODULES:
        importlib.import_module(module)
    doc: dict[str, Any] = {
        "command": shlex.join(sys.orig_argv),
        "machine": machine_info(),
        "versions": versions() | {m: _version(m) for m in ("distributed", "dask", "numpy")},
        "code": code,
        "shape": asdict(shape),
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "repeat": args.repeat,
    }
    server = start_moto(work)
    try:
        return _run(args, shape, work, server, doc, began)
    except CheckFailed as exc:
        print(f"\nCHECK FAILED: {exc}\nNo numbers reported.", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "missing"


def _run(
    args: argparse.Namespace,
    shape: Shape,
    work: Path,
    server: Server,
    doc: dict[str, Any],
    began: float,
) -> int:
    from distributed import Client, LocalCluster

    import etcetera

    check(
        Path(str(etcetera.__file__)).is_relative_to(work / "code"),
        f"etcetera came from {etcetera.__file__}, not the snapshot",
    )
    tree = work / "tree" / NAME
    started = time.perf_counter()
    expect = Expect(generate(tree, shape))
    gen_s = time.perf_counter() - started
    print(
        f"tree: {expect.count:,} files, {expect.size / MB:,.1f} MB "
        f"({shape.partitions} x ({shape.small} x {shape.small_min // KiB}-"
        f"{shape.small_max // KiB} KiB + {shape.big} x {shape.big_size // MiB} MiB) + meta.json), "
        f"written in {gen_s:.1f} s",
        flush=True,
    )
    started = time.perf_counter()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=args.workers,
            threads_per_worker=args.threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        client.wait_for_workers(args.workers)
        start_s = time.perf_counter() - started
        started = time.perf_counter()
        for module in WARM_MODULES:
            files: dict[str, str] = client.run(_module_file, module)
            check(
                all(Path(f).is_relative_to(work / "code") for f in files.values()),
                f"a worker imported {module} from elsewhere than the snapshot: {files}",
            )
        warm_s = time.perf_counter() - started
        overhead = dask_overhead(client)
        info = client.scheduler_info()["workers"]
        names = sorted(w["name"] for w in info.values())
        print(
            f"cluster: {args.workers} workers x {args.threads} threads, started in "
            f"{start_s:.2f} s; first imports in the workers {warm_s:.2f} s",
            flush=True,
        )
        roots = split(tree, work / "per-worker", names, expect.files)
        b = Bench(work, server, client, args.stall)
        runs, bucket = push_runs(b, tree, roots, expect, args.repeat)
        runs |= pull_runs(b, bucket, names, expect, args.repeat)
    table, timelines, rows = report(runs, expect)
    total = time.perf_counter() - began
    print()
    print(table.render())
    print(
        f"\nmedians of {args.repeat}; {expect.count:,} files, {expect.size / MB:,.1f} MB "
        "(MB = 10^6 bytes). dist/local = local wall / this wall (>1: faster than one "
        "process). cpu: seconds; here = this process (client, scheduler, nannies, and the "
        "local push or pull), wrk = the worker processes. moto %core = moto CPU / wall. "
        f"ours %, others %, iowait %: of the machine's {os.cpu_count()} cores over the wall "
        "time, used by our processes, by everything else running (other jobs), and idle "
        "waiting for the disk. tasks: Dask tasks run."
    )
    print(
        "\nTimelines (run of median wall): gap > [tasks in a wave: span, task-seconds] > gap;"
        " gaps are the driver and Dask between waves"
    )
    print("\n".join(timelines))
    trouble = incidents(runs)
    if trouble:
        print(f"\nIncidents (runs past --stall {args.stall:.0f} s or with a worker restarted):")
        print("\n".join(trouble))
    load = [doc["machine"]["loadavg_at_start"][0], os.getloadavg()[0]]
    doc["loadavg_at_end"] = os.getloadavg()
    print(
        f"\ncluster start {start_s:.2f} s (LocalCluster + Client + workers up), "
        f"first imports in the workers {warm_s:.2f} s; no-op task round trip "
        f"{overhead['task_round_trip_ms']:.1f} ms, client.run round trip "
        f"{overhead['run_round_trip_ms']:.1f} ms, 200 no-op tasks "
        f"{overhead['batch_200_tasks_s']:.2f} s ({overhead['batch_tasks_per_s']:.0f} tasks/s)."
        f"\nload average (1 min) at start {load[0]:.2f}, at end {load[1]:.2f}"
    )
    doc |= {
        "files": expect.count,
        "bytes": expect.size,
        "manifest": expect.manifest,
        "generate_s": gen_s,
        "cluster_start_s": start_s,
        "worker_first_imports_s": warm_s,
        "dask_overhead": overhead,
        "checks": "passed",
        "rows": rows,
        "total_s": time.perf_counter() - began,
    }
    dated, _ = write_json(doc, "cluster")
    print(f"\nwrote {dated} and cluster-latest.json; the whole run took {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
