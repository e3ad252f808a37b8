"""Bytes moved (format v3's compression): push and pull of ``text`` and random bytes.

    python benchmarks/bytes_moved.py --quick      # 100 text files, 64 MiB of random bytes
    python benchmarks/bytes_moved.py              # the full ``text`` workload, 512 MiB random

For each workload (``text``: the XML-like workload of ``workloads.py``; ``random``:
files of seeded random bytes, as ``mixed`` but larger; ``text-cdc`` and ``random-cdc``:
one large file of each (64 MiB quick, 256 MiB full) pushed with ``content_chunks``, so
its chunk objects are what is compressed) and each target (file://, and
moto with ``--s3``), etcetera pushes to a fresh repository and pulls into a cold home,
with compression on (the default level) and off (``compression = 0``). Printed: bytes
sent by the push and received by the pull as a ratio of the tree's size (goals: text
at most 0.35x, random at most 1.01x), and the push's CPU seconds per GiB (goal: on
random bytes, compression adds at most 5 %). Byte counts are deterministic (the tests
assert them at a smaller scale); times are not. Writes ``results/bytes-<time>.json``
and ``results/bytes-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import Table, fmt, machine_info, start_moto, write_json
from workloads import FULL, QUICK, MiB, Spec, generate

import etcetera as etc
from etcetera.settings import Config

GiB = 1024 * MiB
TEXT_GOAL, RANDOM_GOAL, CPU_GOAL = 0.35, 1.01, 0.05


def _random_tree(root: Path, total: int, seed: int = 7) -> int:
    """Files of 256 KiB to 8 MiB of seeded random bytes, ``total`` bytes in all."""
    rng = np.random.Generator(np.random.PCG64(seed))
    written = i = 0
    while written < total:
        size = min(int(rng.integers(256 << 10, 8 << 20)), total - written)
        path = root / f"data/train/d{i // 100:03d}/r{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(size))
        written += size
        i += 1
    return written


def _large_text(root: Path, total: int, seed: int = 7) -> None:
    """One XML-like file of about ``total`` bytes (tags repeat, values vary)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    words = np.array(["river", "stone", "signal", "vector", "sample", "label", "anchor"])
    path = root / "data/train/big.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        written = n = 0
        while written < total:
            a, b = rng.choice(words, 1000), rng.choice(words, 1000)
            values, counts = rng.random(1000), rng.integers(0, 10**6, 1000)
            block = "".join(
                f'<record id="{n + i}"><name>{a[i]} {b[i]}</name><value>{values[i]:.5f}'
                f"</value><count>{counts[i]}</count></record>\n"
                for i in range(1000)
            )
            out.write(block)
            written += len(block)
            n += 1000


async def _one(
    url: str, settings: dict[str, Any], src: Path, work: Path, level: int
) -> dict[str, Any]:
    """Push ``src`` then pull it into a cold home; bytes and the push's CPU seconds."""
    if src.name.endswith("-cdc"):
        settings = {**settings, "content_chunks": True}
    cfg = Config(url, home=work / "home", compression=level, **settings)
    await etc.aregister(src, "bench", config=cfg)
    cpu, wall = time.process_time(), time.perf_counter()
    pushed = await etc.apush("bench", config=cfg)
    push_cpu, push_wall = time.process_time() - cpu, time.perf_counter() - wall
    wall = time.perf_counter()
    pulled = await etc.apull("bench", config=Config(url, home=work / "cold", **settings))
    return {
        "size": pushed.size,
        "push_bytes": pushed.stats.bytes_sent,
        "pull_bytes": pulled.stats.bytes_received,
        "push_cpu": push_cpu,
        "push_s": push_wall,
        "pull_s": time.perf_counter() - wall,
    }


def main() -> None:
    """Run every cell, print the table and the goals, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes")
    parser.add_argument("--s3", action="store_true", help="also against moto")
    parser.add_argument("--rounds", type=int, default=2, help="runs per cell (least CPU kept)")
    parser.add_argument(
        "--only", choices=["text", "random", "text-cdc", "random-cdc"], help="one workload"
    )
    args = parser.parse_args()
    specs: dict[str, Spec] = QUICK if args.quick else FULL
    random_total = (64 if args.quick else 512) * MiB
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="etc-bytes-") as tmp:
        scratch = Path(tmp)
        trees: dict[str, Path] = {}
        if args.only in (None, "text"):
            trees["text"] = generate(specs["text"], scratch / "text").root
        if args.only in (None, "random"):
            _random_tree(scratch / "random", random_total)
            trees["random"] = scratch / "random"
        large = (64 if args.quick else 256) * MiB
        if args.only in (None, "text-cdc"):
            _large_text(scratch / "text-cdc", large)
            trees["text-cdc"] = scratch / "text-cdc"
        if args.only in (None, "random-cdc"):
            path = scratch / "random-cdc/data/train/big.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(np.random.Generator(np.random.PCG64(9)).bytes(large))
            trees["random-cdc"] = scratch / "random-cdc"
        targets: list[tuple[str, str, dict[str, Any]]] = []
        moto = start_moto(scratch) if args.s3 else None
        try:
            if moto is not None:
                keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
                settings = {"endpoint_url": moto.endpoint, "region": "us-east-1", **keys}
                targets.append(("moto", "s3://{bucket}", settings))
            targets.append(("file", f"file://{scratch}/repo-{{n}}", {}))
            n = 0
            for workload, src in trees.items():
                for target, url, settings in targets:
                    runs: dict[int, list[dict[str, Any]]] = {3: [], 0: []}
                    for _ in range(args.rounds):  # on and off in alternation
                        for level in (3, 0):
                            n += 1
                            if moto is not None and target == "moto":
                                where = url.format(bucket=moto.create_bucket())
                            else:
                                where = url.format(n=n)
                                Path(where.removeprefix("file://")).mkdir()
                            work = scratch / f"w{n}"
                            runs[level].append(asyncio.run(_one(where, settings, src, work, level)))
                            shutil.rmtree(work, ignore_errors=True)
                            if where.startswith("file://"):
                                shutil.rmtree(where.removeprefix("file://"), ignore_errors=True)
                    for level, got in runs.items():
                        best = min(got, key=lambda r: r["push_cpu"])
                        rows.append(
                            {"workload": workload, "target": target, "level": level, **best}
                        )
        finally:
            if moto is not None:
                moto.stop()
    _report(rows, args.quick)


def _report(rows: list[dict[str, Any]], quick: bool) -> None:
    table = Table(["workload", "target", "zstd", "size MB", "push x", "pull x", "push CPU s/GiB"])
    for r in rows:
        table.add(
            r["workload"],
            r["target"],
            str(r["level"]),
            fmt(r["size"] / 1e6),
            fmt(r["push_bytes"] / r["size"], 3),
            fmt(r["pull_bytes"] / r["size"], 3),
            fmt(r["push_cpu"] / (r["size"] / GiB), 2),
        )
    print(table.render())
    goals = []
    for r in rows:
        if r["level"] and r["workload"].startswith("text"):
            worst = max(r["push_bytes"], r["pull_bytes"]) / r["size"]
            what = f"{r['workload']} moves <= {TEXT_GOAL}x ({r['target']})"
            goals.append((what, worst <= TEXT_GOAL, worst))
        if r["level"] and r["workload"].startswith("random"):
            worst = max(r["push_bytes"], r["pull_bytes"]) / r["size"]
            goals.append(
                (
                    f"{r['workload']} moves <= {RANDOM_GOAL}x ({r['target']})",
                    worst <= RANDOM_GOAL,
                    worst,
                )
            )
            off = next(
                o
                for o in rows
                if o["workload"] == r["workload"] and o["target"] == r["target"] and not o["level"]
            )
            extra = r["push_cpu"] / max(off["push_cpu"], 1e-9) - 1
            goals.append(
                (
                    f"{r['workload']}: compression adds <= 5 % push CPU ({r['target']})",
                    extra <= CPU_GOAL,
                    extra,
                )
            )
    for what, met, value in goals:
        print(f"{'MET   ' if met else 'MISSED'} {what}: {value:.3f}")
    write_json({"machine": machine_info(), "quick": quick, "rows": rows}, "bytes")


if __name__ == "__main__":
    main()
