"""Reading in place (issue 14): requests, bytes and latency of reads without a pull.

    python benchmarks/reading.py                  # 10^6 files, file:// (and moto with --s3)
    python benchmarks/reading.py --files 100000 --s3

A version of ``--files`` small files (64 bytes each, packs of 1 MiB) is written straight
into a fresh repository (objects, manifest pieces, root, record: what a push writes,
without walking a tree of a million files). Then, each from a cold home:

* *one file*: ``open_version`` (the record and the root), then one file read: the
  requests after the version record must be at most 3 (root, one piece, one range);
  the same for a root without ``firsts`` (the pieces are then searched);
* *cat_ranges*: 1,000 random files read in one ``cat_ranges`` through ``etc://``: its
  requests against the packs it touches, its bytes against what was asked plus 1 MiB a
  pack.

Counts are deterministic (the tests assert them at a smaller scale); times are printed.
Writes ``results/reading-<time>.json`` and ``results/reading-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Table, fmt, machine_info, write_json

from etcetera.api.session import session
from etcetera.connect import open_backend
from etcetera.format import layout
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.record import VersionRecord
from etcetera.format.v2 import encode_manifest
from etcetera.reading import open_version
from etcetera.settings import Config

FILE = 64
PER_PACK = (1 << 20) // FILE


def content(i: int) -> bytes:
    return f"{i:063d}\n".encode()


async def write_version(cfg: Config, n: int) -> tuple[int, int]:
    """Objects, pieces, root and record of ``big@1``; returns (packs, manifest pieces)."""
    backend = open_backend(cfg)
    files: list[FileEntry] = []
    objects: dict[str, ObjectEntry] = {}
    try:
        for lo in range(0, n, PER_PACK):
            members = [content(i) for i in range(lo, min(n, lo + PER_PACK))]
            pack = b"".join(members)
            oid = hashlib.sha256(pack).hexdigest()
            objects[oid] = ObjectEntry(oid, "pack", len(pack))
            await backend.put(layout.object_key(oid), pack)
            for k, data in enumerate(members):
                path = f"data/train/{(lo + k) // 1000:04d}/{lo + k:07d}.txt"
                digest = hashlib.sha256(data).hexdigest()
                files.append(FileEntry(path, FILE, 0o644, digest, oid, k * FILE))
        files.sort()
        manifest = Manifest(tuple(files), objects, ("train",))
        encoded = encode_manifest(manifest)
        for pid, stored in encoded.pieces.items():
            await backend.put(layout.piece_key(pid), stored)
        await backend.put(layout.manifest_key(encoded.digest), encoded.root)
        old = json.loads(encoded.root)
        del old["firsts"]
        legacy = json.dumps(old, separators=(",", ":")).encode()
        legacy_digest = hashlib.sha256(legacy).hexdigest()
        await backend.put(layout.manifest_key(legacy_digest), legacy)
        for number, digest in ((1, encoded.digest), (2, legacy_digest)):
            record = VersionRecord("big", number, digest, files=n, size=n * FILE)
            await backend.put(layout.ref_key("big", number), record.to_json())
        return len(objects), len(encoded.pieces)
    finally:
        await backend.aclose()


async def one_file(cfg: Config, number: int, path: str) -> dict[str, Any]:
    async with session(cfg) as s:
        t0 = time.perf_counter()
        v = await open_version(s, "big", number)
        data = await v.read(await v.entry(path))
        seconds = time.perf_counter() - t0
        return {
            "version": number,
            "firsts": v.index.root.firsts is not None,
            "requests_after_record": s.stats.requests - 1,  # all but the record
            "requests": s.stats.requests,
            "bytes": s.stats.bytes_received,
            "seconds": seconds,
            "ok": data == content(int(path.rsplit("/", 1)[1][:7])),
        }


def cat_ranges(cfg: Config, n: int, count: int) -> dict[str, Any]:
    from etcetera.fs import EtcFileSystem

    fs = EtcFileSystem(config=cfg, skip_instance_cache=True)
    try:
        rng = random.Random(14)
        chosen = rng.sample(range(n), count)
        paths = [f"big@1/data/train/{i // 1000:04d}/{i:07d}.txt" for i in chosen]
        for p in paths:  # the version, its root and the pieces: before, not in the batch
            fs.info(p)
        r0, b0, t0 = fs.stats.requests, fs.stats.bytes_received, time.perf_counter()
        got = fs.cat_ranges(paths, None, None)
        seconds = time.perf_counter() - t0
        packs = len({i // PER_PACK for i in chosen})
        requests = fs.stats.requests - r0
        return {
            "files": count,
            "packs_touched": packs,
            "requests": requests,
            "bytes": fs.stats.bytes_received - b0,
            "asked": count * FILE,
            "bound": count * FILE + packs * (1 << 20),
            "seconds": seconds,
            "ok": got == [content(i) for i in chosen],
        }
    finally:
        fs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=float, default=1e6)
    args = parser.parse_args()
    n = int(args.files)
    with tempfile.TemporaryDirectory(prefix="etc-reading-") as scratch:
        root = Path(scratch)
        (root / "repo").mkdir()
        cfg = Config(f"file://{root / 'repo'}", home=root / "home", cache_size=0)
        t0 = time.perf_counter()
        packs, pieces = asyncio.run(write_version(cfg, n))
        print(
            f"wrote {n:,} files in {packs} packs, {pieces} manifest pieces, "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        probe = f"data/train/{(n // 2) // 1000:04d}/{n // 2:07d}.txt"
        rows = [
            asyncio.run(one_file(cfg.model_copy(update={"home": root / f"h{v}"}), v, probe))
            for v in (1, 2)
        ]
        ranges = cat_ranges(cfg.model_copy(update={"home": root / "hr"}), n, 1000)
    table = Table(["one file, cold", "after the record", "bytes", "ms", "ok"])
    for r in rows:
        what = "root with firsts" if r["firsts"] else "root without (search)"
        table.add(what, r["requests_after_record"], r["bytes"], fmt(r["seconds"] * 1e3), r["ok"])
    print(table.render())
    print("(after the record: the root, the piece(s), the range; at most 3 with firsts)")
    t2 = Table(["cat_ranges files", "packs touched", "requests", "bytes", "bound", "ms", "ok"])
    t2.add(
        ranges["files"],
        ranges["packs_touched"],
        ranges["requests"],
        ranges["bytes"],
        ranges["bound"],
        fmt(ranges["seconds"] * 1e3),
        ranges["ok"],
    )
    print(t2.render())
    write_json(
        {"machine": machine_info(), "files": n, "one_file": rows, "cat_ranges": ranges}, "reading"
    )


if __name__ == "__main__":
    main()
