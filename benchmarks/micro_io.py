"""The measurements etcetera's engine design rests on.

    python benchmarks/micro_io.py --quick      # ~1-2 minutes
    python benchmarks/micro_io.py              # 256 MiB file, 20,000 tiny files
    python benchmarks/micro_io.py --part disk,ranges,engine,startup

(a) ``disk``: aiofiles against ``os.pread``/``os.pwrite`` in worker threads
    (``anyio.to_thread.run_sync``): 1 MiB blocks of one large file, and many 4 KiB files
    (one thread hop per file against one per batch of 256).
(b) ``ranges``: one object fetched whole against fetched as concurrent ranges, and a
    few small ranges of it (files out of a pack), against moto and fake-gcs through
    etcetera's own back-ends (``etcetera.connect.open_backend``), with raw
    aiobotocore as a reference on moto. Client and server CPU are both counted: moto
    reads the whole object for each range.
(c) ``engine``: push and pull of many tiny files on ``file://`` through the async API,
    in microseconds per file, then push, pull and no-op push under cProfile (event loop and worker
    threads together) with the top 15 functions by own time and etcetera's top 15 by
    cumulative time.
(d) ``startup``: the fixed cost of the ``etc`` CLI (interpreter and imports), which
    every no-op push or pull pays.

The etcetera package is copied at start and imported from the copy, so edits made by
others meanwhile do not change the code measured. Prints tables, writes
``results/micro_io-<time>.json`` and ``results/micro_io-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from common import (
    MiB,
    Server,
    Table,
    clean_env,
    fmt,
    machine_info,
    snapshot_etcetera,
    start_fake_gcs,
    start_moto,
    versions,
    write_json,
)
from peers import rmtree

KiB = 1024
REPEATS = 3
#: Operations profiled in part (c), in this order (the no-op push follows the push).
PROFILED = ("push", "pull", "noop push")


def cpu_now() -> float:
    """CPU seconds of this process, every thread included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall and CPU seconds of one awaited call."""
    c0, t0 = cpu_now(), time.perf_counter()
    await fn()
    return time.perf_counter() - t0, cpu_now() - c0


def drop_dirty(path: Path) -> None:
    """Flush written data so that the next measurement starts clean."""
    subprocess.run(["sync", "-f", str(path)], check=False)


# ---------------------------------------------------------------------------------------
# (a) disk


async def disk_part(work: Path, big: int, nsmall: int) -> list[dict[str, Any]]:
    """aiofiles against os.pread/os.pwrite in threads, for blocks and for small files."""
    import aiofiles

    rows: list[dict[str, Any]] = []
    block = MiB
    data = os.urandom(block)
    path = work / "big.bin"
    limiter = anyio.CapacityLimiter(8)

    def add(case: str, method: str, wall: float, cpu: float, nbytes: int, nfiles: int) -> None:
        rows.append(
            {
                "case": case,
                "method": method,
                "wall": wall,
                "cpu": cpu,
                "bytes": nbytes,
                "files": nfiles,
            }
        )
        rate = f"{nbytes / wall / 1e6:.0f} MB/s" if nfiles <= 1 else f"{nfiles / wall:,.0f} files/s"
        print(f"  {case:<22} {method:<34} {wall:6.2f} s  {rate}")

    # -- 1 MiB blocks: write ------------------------------------------------------------
    async def w_aiofiles() -> None:
        async with aiofiles.open(path, "wb") as f:
            for _ in range(big // block):
                await f.write(data)

    async def w_pwrite_seq() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for i in range(big // block):
                await anyio.to_thread.run_sync(os.pwrite, fd, data, i * block, limiter=limiter)
        finally:
            os.close(fd)

    async def w_pwrite_conc() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            async with anyio.create_task_group() as tg:
                for i in range(big // block):
                    tg.start_soon(_pwrite, fd, data, i * block, limiter)
        finally:
            os.close(fd)

    def w_sync() -> None:
        with open(path, "wb") as f:
            for _ in range(big // block):
                f.write(data)

    async def w_sync_async() -> None:
        w_sync()

    cases_w = [
        ("aiofiles write, sequential", w_aiofiles),
        ("os.pwrite in thread, sequential", w_pwrite_seq),
        ("os.pwrite in threads, 8 at once", w_pwrite_conc),
        ("plain write loop (no thread hop)", w_sync_async),
    ]
    # Cases alternate within each of REPEATS rounds; the median round counts.
    got: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases_w}
    for _ in range(REPEATS):
        for name, fn in cases_w:
            path.unlink(missing_ok=True)
            drop_dirty(work)
            got[name].append(await timed(fn))
    for name, _ in cases_w:
        add("1 MiB blocks, write", name, *_median_pair(got[name]), big, 1)

    # -- 1 MiB blocks: read (from page cache) --------------------------------------------
    async def r_aiofiles() -> None:
        async with aiofiles.open(path, "rb") as f:
            while await f.read(block):
                pass

    async def r_pread_seq() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            for i in range(big // block):
                await anyio.to_thread.run_sync(os.pread, fd, block, i * block, limiter=limiter)
        finally:
            os.close(fd)

    async def r_pread_conc() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            async with anyio.create_task_group() as tg:
                for i in range(big // block):
                    tg.start_soon(_pread, fd, block, i * block, limiter)
        finally:
            os.close(fd)

    async def r_sync() -> None:
        with open(path, "rb") as f:
            while f.read(block):
                pass

    cases_r = [
        ("aiofiles read, sequential", r_aiofiles),
        ("os.pread in thread, sequential", r_pread_seq),
        ("os.pread in threads, 8 at once", r_pread_conc),
        ("plain read loop (no thread hop)", r_sync),
    ]
    got = {name: [] for name, _ in cases_r}
    for _ in range(REPEATS):
        for name, fn in cases_r:
            got[name].append(await timed(fn))
    for name, _ in cases_r:
        add("1 MiB blocks, read", name, *_median_pair(got[name]), big, 1)
    path.unlink(missing_ok=True)

    # -- many 4 KiB files ----------------------------------------------------------------
    small = os.urandom(4 * KiB)
    root = work / "small"

    def names(tag: str) -> list[str]:
        d = root / tag
        for k in range(0, nsmall, 1000):
            (d / f"d{k // 1000}").mkdir(parents=True, exist_ok=True)
        return [str(d / f"d{k // 1000}" / f"f{k}") for k in range(nsmall)]

    def write_one(p: str) -> None:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, small)
        finally:
            os.close(fd)

    def write_batch(ps: list[str]) -> None:
        for p in ps:
            write_one(p)

    def read_one(p: str) -> bytes:
        fd = os.open(p, os.O_RDONLY)
        try:
            return os.read(fd, 8 * KiB)
        finally:
            os.close(fd)

    def read_batch(ps: list[str]) -> None:
        for p in ps:
            read_one(p)

    async def per_file(fn: Callable[[str], object], ps: list[str]) -> None:
        sem = anyio.Semaphore(64)

        async def one(p: str) -> None:
            async with sem:
                await anyio.to_thread.run_sync(fn, p, limiter=limiter)

        async with anyio.create_task_group() as tg:
            for p in ps:
                tg.start_soon(one, p)

    async def batched(fn: Callable[[list[str]], None], ps: list[str]) -> None:
        async with anyio.create_task_group() as tg:
            for k in range(0, len(ps), 256):
                tg.start_soon(_in_thread, fn, ps[k : k + 256], limiter)

    async def aio_write(ps: list[str]) -> None:
        sem = anyio.Semaphore(64)

        async def one(p: str) -> None:
            async with sem, aiofiles.open(p, "wb") as f:
                await f.write(small)

        async with anyio.create_task_group() as tg:
            for p in ps:
                tg.start_soon(one, p)

    async def aio_read(ps: list[str]) -> None:
        sem = anyio.Semaphore(64)

        async def one(p: str) -> None:
            async with sem, aiofiles.open(p, "rb") as f:
                await f.read()

        async with anyio.create_task_group() as tg:
            for p in ps:
                tg.start_soon(one, p)

    async def plain(fn: Callable[[list[str]], None], ps: list[str]) -> None:
        fn(ps)

    methods: list[
        tuple[str, Callable[[list[str]], Awaitable[None]], Callable[[list[str]], Awaitable[None]]]
    ] = [
        ("aiofiles open/write|read/close", aio_write, aio_read),
        (
            "one thread hop per file",
            lambda ps: per_file(write_one, ps),
            lambda ps: per_file(read_one, ps),
        ),
        (
            "one thread hop per 256 files",
            lambda ps: batched(write_batch, ps),
            lambda ps: batched(read_batch, ps),
        ),
        (
            "plain loop (no thread hop)",
            lambda ps: plain(write_batch, ps),
            lambda ps: plain(read_batch, ps),
        ),
    ]
    for i, (name, write, read) in enumerate(methods):
        ps = names(f"m{i}")
        drop_dirty(work)
        wall, cpu = await timed(lambda ps=ps, write=write: write(ps))  # type: ignore[misc]
        add("4 KiB files, create", name, wall, cpu, nsmall * 4 * KiB, nsmall)
        wall, cpu = await timed(lambda ps=ps, read=read: read(ps))  # type: ignore[misc]
        add("4 KiB files, read", name, wall, cpu, nsmall * 4 * KiB, nsmall)
        rmtree(root / f"m{i}")
    return rows


def _median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The (wall, cpu) pair of the median wall time."""
    ordered = sorted(pairs)
    return ordered[len(ordered) // 2]


async def _pwrite(fd: int, data: bytes, offset: int, limiter: anyio.CapacityLimiter) -> None:
    await anyio.to_thread.run_sync(os.pwrite, fd, data, offset, limiter=limiter)


async def _pread(fd: int, n: int, offset: int, limiter: anyio.CapacityLimiter) -> None:
    await anyio.to_thread.run_sync(os.pread, fd, n, offset, limiter=limiter)


async def _in_thread(
    fn: Callable[[list[str]], None], ps: list[str], limiter: anyio.CapacityLimiter
) -> None:
    await anyio.to_thread.run_sync(fn, ps, limiter=limiter)


# ---------------------------------------------------------------------------------------
# (b) whole object against ranges


async def ranges_part(work: Path, size: int) -> list[dict[str, Any]]:
    """Whole GETs against ranged GETs through etcetera's back-ends (and raw aiobotocore)."""
    import etcetera
    from etcetera.connect import open_backend

    rows: list[dict[str, Any]] = []
    payload = os.urandom(size)
    for kind in ("s3", "gs"):
        server = start_moto(work) if kind == "s3" else start_fake_gcs(work / "srv", work)
        try:
            bucket = server.create_bucket()
            conf: dict[str, Any] = {"endpoint_url": server.endpoint, "home": work / "home"}
            if kind == "s3":
                conf |= {
                    "region": "us-east-1",
                    "aws_access_key_id": "testing",
                    "aws_secret_access_key": "testing",
                }
            else:
                conf |= {"anonymous": True}
            backend = open_backend(etcetera.Config(f"{kind}://{bucket}", **conf))
            try:
                await backend.put("obj", payload)
                rows += await _range_cases(kind, backend, server, size)
            finally:
                await backend.aclose()
            if kind == "s3":
                rows += await _raw_boto(server, bucket, size)
        finally:
            server.stop()
    return rows


async def _range_cases(kind: str, backend: Any, server: Server, size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    async def read(offset: int, length: int) -> int:
        n = 0
        gen = backend.stream("obj", offset, length)
        try:
            async for block in gen:
                n += len(block)
        finally:
            await gen.aclose()
        return n

    async def ranges(part: int, concurrency: int) -> None:
        sem = anyio.Semaphore(concurrency)

        async def one(off: int) -> None:
            async with sem:
                await read(off, min(part, size - off))

        async with anyio.create_task_group() as tg:
            for off in range(0, size, part):
                tg.start_soon(one, off)

    async def few_small() -> None:
        # 16 files of 64 KiB spread over the object: a partial pull out of one pack.
        step = size // 16
        async with anyio.create_task_group() as tg:
            for k in range(16):
                tg.start_soon(read, k * step, 64 * KiB)

    cases: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
        ("whole object, one GET", lambda: read(0, size), size),
        ("16 MiB ranges, 8 at once", lambda: ranges(16 * MiB, 8), size),
        ("4 MiB ranges, 8 at once", lambda: ranges(4 * MiB, 8), size),
        ("16 x 64 KiB ranges (files of a pack)", few_small, 16 * 64 * KiB),
    ]
    for name, fn, nbytes in cases:
        s0 = server.cpu_seconds()
        wall, cpu = await timed(fn)
        srv = server.cpu_seconds() - s0
        rows.append(
            {
                "server": kind,
                "case": name,
                "via": "etcetera back-end",
                "wall": wall,
                "cpu": cpu,
                "server_cpu": srv,
                "bytes": nbytes,
            }
        )
        print(
            f"  {kind:<3} {name:<38} {wall:6.2f} s {nbytes / wall / 1e6:8.1f} MB/s  "
            f"client cpu {cpu:5.2f} s  server cpu {srv:5.2f} s"
        )
    return rows


async def _raw_boto(server: Server, bucket: str, size: int) -> list[dict[str, Any]]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    rows: list[dict[str, Any]] = []
    session = get_session()
    config = AioConfig(
        max_pool_connections=16,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    async with session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    ) as client:

        async def get(rng: str | None) -> None:
            kw = {"Range": rng} if rng else {}
            resp = await client.get_object(Bucket=bucket, Key="obj", **kw)
            async with resp["Body"] as body:
                while await body.read(MiB):
                    pass

        async def ranged() -> None:
            async with anyio.create_task_group() as tg:
                for off in range(0, size, 16 * MiB):
                    end = min(size, off + 16 * MiB) - 1
                    tg.start_soon(get, f"bytes={off}-{end}")

        for name, fn in (
            ("whole object, one GET", lambda: get(None)),
            ("16 MiB ranges, all at once", ranged),
        ):
            s0 = server.cpu_seconds()
            wall, cpu = await timed(fn)
            srv = server.cpu_seconds() - s0
            rows.append(
                {
                    "server": "s3",
                    "case": name,
                    "via": "raw aiobotocore",
                    "wall": wall,
                    "cpu": cpu,
                    "server_cpu": srv,
                    "bytes": size,
                }
            )
            print(
                f"  s3  {name:<38} {wall:6.2f} s {size / wall / 1e6:8.1f} MB/s  "
                f"client cpu {cpu:5.2f} s  server cpu {srv:5.2f} s  (raw aiobotocore)"
            )
    return rows


# ---------------------------------------------------------------------------------------
# (c) engine per-file overhead


class ThreadProfiles:
    """cProfile in every thread started while active (anyio's worker threads)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        prof = cProfile.Profile()
        with self._lock:
            self.profiles.append(prof)
        prof.enable()  # replaces this hook for the rest of the thread's life

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)


def engine_part(work: Path, nfiles: int, size: int) -> dict[str, Any]:
    """µs per file for push and pull on file://, then where the time goes."""
    import etcetera

    src = work / "tiny" / "dataset"
    for k in range(0, nfiles, 1000):
        part = "test" if k < nfiles // 10 else "train"
        d = src / "data" / part / f"d{k // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(k, min(nfiles, k + 1000)):
            (d / f"f{j:06d}.bin").write_bytes(j.to_bytes(4, "big") * (size // 4))
    out: dict[str, Any] = {"files": nfiles, "file_size": size}

    def configs(tag: str) -> tuple[Any, Any, Path]:
        repo = work / f"repo-{tag}"
        repo.mkdir(exist_ok=True)
        cfg_a = etcetera.Config(f"file://{repo}", home=work / f"home-a-{tag}")
        cfg_b = etcetera.Config(f"file://{repo}", home=work / f"home-b-{tag}")
        return cfg_a, cfg_b, repo

    async def plain() -> dict[str, Any]:
        cfg_a, cfg_b, _ = configs("plain")
        await etcetera.aregister(src, "tiny", config=cfg_a)
        res: dict[str, Any] = {}
        for op, call in (
            ("push", lambda: etcetera.apush("tiny", config=cfg_a)),
            ("pull", lambda: etcetera.apull("tiny", config=cfg_b)),
            ("noop push", lambda: etcetera.apush("tiny", config=cfg_a)),
            ("noop pull", lambda: etcetera.apull("tiny", config=cfg_b)),
        ):
            drop_dirty(work)
            wall, cpu = await timed(call)
            res[op] = {"wall": wall, "cpu": cpu}
        return res

    async def profiled(op: str) -> dict[str, Any]:
        # A fresh event loop per profiled operation: anyio's worker threads are made anew,
        # after the hook is set, so that each thread's profile holds this operation only.
        cfg_a, cfg_b, _ = configs("prof")
        if op == "push":
            await etcetera.aregister(src, "tiny", config=cfg_a)
        drop_dirty(work)
        main = cProfile.Profile()
        with ThreadProfiles() as threads:
            main.enable()
            wall, cpu = await timed(
                lambda: (
                    etcetera.apull("tiny", config=cfg_b)
                    if op == "pull"
                    else etcetera.apush("tiny", config=cfg_a)
                )
            )
            main.disable()
        return {"wall": wall, "cpu": cpu, **_top(main, threads.profiles)}

    out["plain"] = asyncio.run(plain())
    out["profiled"] = {op: asyncio.run(profiled(op)) for op in PROFILED}
    rmtree(work / "tiny")
    return out


def _top(main: cProfile.Profile, others: list[cProfile.Profile]) -> dict[str, Any]:
    stats = pstats.Stats(main)
    for p in others:
        try:
            stats.add(p)
        except (TypeError, ValueError):
            continue
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    entries = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        short = _short(filename)
        entries.append(
            {
                "function": f"{short}:{line}({func})",
                "calls": nc,
                "tottime": tt,
                "cumtime": ct,
                "etcetera": "/etcetera/" in filename,
            }
        )
    waiting = [e for e in entries if any(w in e["function"] for w in _WAITS)]
    busy = [e for e in entries if e not in waiting]
    by_own = sorted(busy, key=lambda e: -e["tottime"])[:15]
    by_cum = sorted((e for e in busy if e["etcetera"]), key=lambda e: -e["cumtime"])[:15]
    return {
        "top_own": by_own,
        "top_etcetera_cumulative": by_cum,
        "threads": len(others),
        "waiting_s": sum(e["tottime"] for e in waiting),
    }


#: Where a thread sits idle: the event loop in epoll, a worker thread on its queue's lock.
_WAITS = ("'acquire' of '_thread.lock'", "'poll' of 'select.epoll'")


def _short(filename: str) -> str:
    for marker in ("/etcetera/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) + 1 :]
    return filename


# ---------------------------------------------------------------------------------------
# (d) CLI start-up


def startup_part(
    etc_argv: tuple[str, ...], env_extra: dict[str, str], work: Path
) -> dict[str, Any]:
    """Wall time of ``etc --version`` and of importing the API and each back-end."""
    env = clean_env(work / "env", env_extra)
    out: dict[str, Any] = {}

    def best_of(cmd: list[str], n: int = 3) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=False)
            times.append(time.perf_counter() - t0)
        return min(times)

    py = sys.executable
    out["python -c pass"] = best_of([py, "-c", "pass"])
    out["etc --version"] = best_of([*etc_argv, "--version"])
    out["import etcetera"] = best_of([py, "-c", "import etcetera"])
    out["import etcetera + s3 back-end"] = best_of(
        [py, "-c", "import etcetera, etcetera.backends.s3"]
    )
    out["import etcetera + gcs back-end"] = best_of(
        [py, "-c", "import etcetera, etcetera.backends.gcs"]
    )
    proc = subprocess.run(
        [py, "-X", "importtime", "-c", "import etcetera, etcetera.backends.s3, etcetera.cli"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    mods: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:
                mods.append((int(parts[1]), name.strip()))
    out["slowest_top_level_imports_us"] = sorted(mods, reverse=True)[:10]
    return out


# ---------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--part", default="disk,ranges,engine,startup")
    p.add_argument("--files", type=int, help="tiny files for the engine part")
    p.add_argument("--work", type=Path, default=None)
    return p.parse_args(argv)


def print_profile(title: str, res: dict[str, Any]) -> str:
    """The profile tables of one operation."""
    t = Table(["own s", "cum s", "calls", "function"])
    for e in res["top_own"]:
        t.add(fmt(e["tottime"], 3), fmt(e["cumtime"], 3), f"{e['calls']:,}", e["function"])
    u = Table(["cum s", "own s", "calls", "etcetera function"])
    for e in res["top_etcetera_cumulative"]:
        u.add(fmt(e["cumtime"], 3), fmt(e["tottime"], 3), f"{e['calls']:,}", e["function"])
    return (
        f"{title}: top 15 by own time (event loop + {res['threads']} worker threads; "
        f"{res['waiting_s']:.2f} s idle in epoll or on a worker's queue left out)\n"
        f"{t.render()}\n\n{title}: etcetera's top 15 by cumulative time\n{u.render()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for."""
    args = parse(argv)
    parts = set(args.part.split(","))
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="etc-micro-", dir=args.work))
    cmd, code = snapshot_etcetera(work / "snapshot")
    assert cmd.pythonpath is not None
    sys.path.insert(0, cmd.pythonpath)  # import the snapshot, not the tree being edited
    os.environ.update(clean_env(work / "env"))
    doc: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python", "benchmarks/micro_io.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "versions": versions(),
        "etcetera_code": code,
    }
    text: list[str] = []
    nfiles = args.files or (5_000 if args.quick else 20_000)
    try:
        if "disk" in parts:
            big = 256 * MiB if args.quick else 1024 * MiB
            nsmall = 2_000 if args.quick else 10_000
            print(f"(a) disk: {big // MiB} MiB in 1 MiB blocks; {nsmall:,} files of 4 KiB")
            rows = asyncio.run(disk_part(work, big, nsmall))
            doc["disk"] = rows
            t = Table(["case", "method", "wall s", "MB/s", "files/s", "cpu us/MiB or /file"])
            for r in rows:
                per = r["cpu"] / (r["bytes"] / MiB) if r["files"] <= 1 else r["cpu"] / r["files"]
                t.add(
                    r["case"],
                    r["method"],
                    fmt(r["wall"], 3),
                    fmt(r["bytes"] / r["wall"] / 1e6),
                    fmt(r["files"] / r["wall"], 0) if r["files"] > 1 else "-",
                    fmt(per * 1e6, 0),
                )
            text.append("(a) aiofiles against os.pread/pwrite in worker threads\n" + t.render())
        if "ranges" in parts:
            size = 32 * MiB if args.quick else 128 * MiB
            print(f"(b) ranges: one {size // MiB} MiB object on moto and fake-gcs")
            rows = asyncio.run(ranges_part(work, size))
            doc["ranges"] = rows
            t = Table(["server", "case", "via", "wall s", "MB/s", "client cpu s", "server cpu s"])
            for r in rows:
                t.add(
                    {"s3": "moto", "gs": "fake-gcs"}[r["server"]],
                    r["case"],
                    r["via"],
                    fmt(r["wall"], 3),
                    fmt(r["bytes"] / r["wall"] / 1e6),
                    fmt(r["cpu"], 2),
                    fmt(r["server_cpu"], 2),
                )
            text.append("(b) whole-object GET against ranged GETs\n" + t.render())
        if "engine" in parts:
            print(f"(c) engine: push and pull of {nfiles:,} files of 64 B on file://")
            res = engine_part(work, nfiles, 64)
            doc["engine"] = res
            t = Table(
                ["op", "wall s", "us/file (wall)", "cpu s", "us/file (cpu)", "profiled wall s"]
            )
            for op in ("push", "pull", "noop push", "noop pull"):
                p, q = res["plain"][op], res["profiled"].get(op)
                t.add(
                    op,
                    fmt(p["wall"], 2),
                    fmt(p["wall"] / nfiles * 1e6, 0),
                    fmt(p["cpu"], 2),
                    fmt(p["cpu"] / nfiles * 1e6, 0),
                    fmt(q["wall"], 2) if q else "-",
                )
            text.append(f"(c) engine per-file overhead ({nfiles:,} files, file://)\n" + t.render())
            for op in PROFILED:
                text.append(print_profile(op, res["profiled"][op]))
        if "startup" in parts:
            print("(d) start-up")
            res = startup_part(cmd.argv, cmd.env(), work)
            doc["startup"] = res
            t = Table(["what", "wall s"])
            for k, v in res.items():
                if isinstance(v, float):
                    t.add(k, fmt(v, 3))
            lines = [
                f"  {us / 1e3:7.1f} ms  {name}" for us, name in res["slowest_top_level_imports_us"]
            ]
            text.append(
                "(d) fixed cost of every etc command (best of 3)\n"
                + t.render()
                + "\nslowest imports (cumulative, -X importtime):\n"
                + "\n".join(lines)
            )
    finally:
        rmtree(work)
    doc["elapsed_s"] = time.monotonic() - started
    print()
    print("\n\n".join(text))
    dated, _ = write_json(doc, "micro_io")
    print(f"\nmicro_io took {doc['elapsed_s'] / 60:.1f} min; results: {dated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
