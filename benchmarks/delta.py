"""Bytes a changed large file moves, and what content-defined chunking costs (issue 17).

    python benchmarks/delta.py            # a 1 GiB file (about 4 GiB of scratch disk)
    python benchmarks/delta.py --quick    # 256 MiB

A seeded random file is pushed as chunks (``etcetera.engine.chunked``) to a fresh
file:// repository; then each of three new versions of it is pushed against the first
(a 1 MiB insertion in the middle, 10 % appended, twenty 100-byte edits one in each
twentieth of the file), and pulled by a machine that holds the first version. Bytes are
the transport's counters (bodies sent and received), which do not depend on the store.
The goals: at most 2 % sent and 2 % received for the insertion, 12 % sent for the
append, 5 % sent for the edits.

CPU per GiB, with and without chunking, over the same file in the same run: today's
fixed 8 MiB chunks (``hashing.digest_file``), the content-defined cut with the SHA-256
of each chunk in the same pass (``cdc.chunk_file``), and the cut alone; the chunking
cost is the second less the first (goal: at most 0.5 s). The first version's push and
pull through the API (``etc.push`` / ``etc.pull``) are timed both ways too:
``content_chunks`` off (today's blobs) and on. Writes ``results/delta-<time>.json``
and ``results/delta-latest.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from common import ROOT, MiB, Table, fmt, machine_info, write_json

sys.path.insert(0, str(ROOT))

import etcetera as etc
from etcetera.backends.file import FileBackend
from etcetera.engine.chunked import chunk_files, pull_chunked, push_chunked
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport
from etcetera.format import cdc, hashing
from etcetera.format.chunkobjects import Extent, known_chunks
from etcetera.urls import parse_url

T = TypeVar("T")
GiB = 1024 * MiB


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall seconds and the process's CPU seconds."""
    c, w = _cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def _write_random(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        for at in range(0, size, 8 * MiB):
            fh.write(rng.randbytes(min(8 * MiB, size - at)))


def _variant(src: Path, dest: Path, kind: str, size: int) -> None:
    """A new version of ``src``: ``insert``, ``append`` or ``edits``."""
    rng = random.Random(kind)
    if kind != "insert":
        shutil.copyfile(src, dest)
    if kind == "insert":
        with open(src, "rb") as fin, open(dest, "wb") as out:
            out.write(fin.read(size // 2))
            out.write(rng.randbytes(MiB))
            shutil.copyfileobj(fin, out, 8 * MiB)
    elif kind == "append":
        with open(dest, "ab") as out:
            for at in range(0, size // 10, 8 * MiB):
                out.write(rng.randbytes(min(8 * MiB, size // 10 - at)))
    else:
        with open(dest, "r+b") as out:
            for i in range(20):
                out.seek(i * size // 20 + rng.randrange(size // 20 - 100))
                out.write(rng.randbytes(100))


def _cut_only(path: Path) -> int:
    """The content-defined cut of a file without hashing its chunks (the cut's own cost).

    Read as ``cdc.chunk_file`` reads it: windows, each cut while ``max_size`` bytes are in view.
    """
    cutter, most = cdc.DEFAULT.chunker(), cdc.DEFAULT.max_size
    window = memoryview(bytearray(cdc.WINDOW))
    n = start = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            got = os.preadv(fd, [window], start)
            end = got < len(window)
            done = 0
            for c in cutter.cut_buf(window[:got]):
                if not end and c.offset + most > got:
                    break
                n += 1
                done = c.offset + c.length
            start += done
            if end:
                return n
    finally:
        os.close(fd)


class Repo:
    """A file:// repository and the chunked push and pull of one file through it."""

    def __init__(self, root: Path) -> None:
        root.mkdir()
        self.t = Transport(FileBackend(parse_url(f"file://{root}")), TransferConfig())

    def push(self, path: Path, known: dict[bytes, Extent]) -> tuple[list[Extent], int]:
        """Push ``path``; its extents and the bytes sent."""

        async def go() -> tuple[list[Extent], int]:
            before = self.t.stats.bytes_sent
            size = path.stat().st_size
            (chunks,) = await chunk_files(self.t, [str(path)], [size])
            pushed = await push_chunked(self.t, [(str(path), chunks)], known)
            return pushed.extents[str(path)], self.t.stats.bytes_sent - before

        return anyio.run(go)

    def pull(self, extents: list[Extent], dest: Path, local: Path | None, old: list[Extent]) -> int:
        """Pull into ``dest`` holding ``local`` (pulled with ``old``); the bytes received."""

        async def go() -> int:
            before = self.t.stats.bytes_received
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                await pull_chunked(
                    self.t, dest.name, extents, fd, str(local) if local else None, old
                )
            finally:
                os.close(fd)
            return self.t.stats.bytes_received - before

        return anyio.run(go)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 256 MiB file")
    ap.add_argument("--size", type=int, default=0, help="file size in MiB")
    args = ap.parse_args()
    size = (args.size or (256 if args.quick else 1024)) * MiB
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "size": size,
        "chunking": cdc.DEFAULT.describe(),
    }
    with tempfile.TemporaryDirectory(prefix="etc-delta-") as tmp:
        work = Path(tmp)
        v1 = work / "v1.bin"
        _write_random(v1, size, 17)
        gib = size / GiB
        cpu = Table(["hashing of the file", "wall s", "CPU s", "CPU s/GiB"])
        (_, w_fixed, c_fixed) = _timed(lambda: hashing.digest_file(v1))
        cpu.add(
            "fixed 8 MiB chunks (today)", fmt(w_fixed, 2), fmt(c_fixed, 2), fmt(c_fixed / gib, 3)
        )
        (_, w_cdc, c_cdc) = _timed(lambda: cdc.chunk_file(v1))
        cpu.add("content-defined + SHA-256", fmt(w_cdc, 2), fmt(c_cdc, 2), fmt(c_cdc / gib, 3))
        (_, w_cut, c_cut) = _timed(lambda: _cut_only(v1))
        cpu.add("content-defined cut alone", fmt(w_cut, 2), fmt(c_cut, 2), fmt(c_cut / gib, 3))
        extra = (c_cdc - c_fixed) / gib
        doc["cpu"] = {
            "fixed_s_per_gib": c_fixed / gib,
            "cdc_s_per_gib": c_cdc / gib,
            "cut_only_s_per_gib": c_cut / gib,
            "chunking_extra_s_per_gib": extra,
        }
        print(cpu.render())
        print(
            f"chunking costs {extra:.3f} s of CPU per GiB over today's hashing "
            f"(the cut alone, reading the file included: {c_cut / gib:.3f}): goal <= 0.5 "
            f"{'MET' if extra <= 0.5 else 'MISSED'}\n"
        )

        # The first version both ways through the API: content_chunks off, then on.
        speed = Table(["first version, file://", "wall s", "CPU s", "MB/s"])
        src = work / "tree"
        (src / "data" / "all").mkdir(parents=True)
        os.link(v1, src / "data" / "all" / "big.bin")
        doc["api"] = {}
        for on in (False, True):
            label = "on" if on else "off"
            (work / f"repo-{label}").mkdir()
            url = f"file://{work / f'repo-{label}'}"
            cfg = etc.Config(url, home=work / f"h1-{label}", content_chunks=on)
            etc.register(src, "big", config=cfg)
            _, w, c = _timed(lambda cfg=cfg: etc.push("big", config=cfg))
            speed.add(
                f"etc push, content_chunks {label}", fmt(w, 2), fmt(c, 2), fmt(size / w / 1e6)
            )
            doc["api"][f"push_{label}"] = {"wall": w, "cpu": c}
            pcfg = etc.Config(url, home=work / f"h2-{label}")
            _, w, c = _timed(lambda pcfg=pcfg: etc.pull("big", config=pcfg))
            speed.add(
                f"etc pull, content_chunks {label}", fmt(w, 2), fmt(c, 2), fmt(size / w / 1e6)
            )
            doc["api"][f"pull_{label}"] = {"wall": w, "cpu": c}
            shutil.rmtree(work / f"h2-{label}")
            shutil.rmtree(work / f"repo-{label}")
        print(speed.render(), "\n")
        repo = Repo(work / "repo")
        first, sent1 = repo.push(v1, {})
        doc["first_push_sent"] = sent1

        goals = {"insert": (0.02, 0.02), "append": (0.12, None), "edits": (0.05, None)}
        moved = Table(["new version", "sent", "of file", "received", "of file", "goal"])
        doc["edits"] = {}
        for kind, (push_goal, pull_goal) in goals.items():
            v2 = work / f"{kind}.bin"
            _variant(v1, v2, kind, size)
            second, sent = repo.push(v2, known_chunks([first]))
            out = work / f"{kind}.out"
            got = repo.pull(second, out, v1, first)
            same = _same(out, v2)
            ok = sent <= push_goal * size and (pull_goal is None or got <= pull_goal * size)
            goal = f"<= {push_goal:.0%} sent" + (f", {pull_goal:.0%} received" if pull_goal else "")
            moved.add(
                kind,
                f"{sent:,}",
                f"{sent / size:.2%}",
                f"{got:,}",
                f"{got / size:.2%}",
                f"{goal} {'MET' if ok and same else 'MISSED'}",
            )
            doc["edits"][kind] = {"sent": sent, "received": got, "identical": same, "met": ok}
            v2.unlink()
            out.unlink()
        print(moved.render())
    dated, _ = write_json(doc, "delta")
    print(f"\nresults: {dated} (and delta-latest.json)")


def _same(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 * MiB), fb.read(8 * MiB)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    main()
