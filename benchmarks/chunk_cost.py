"""What content-defined chunks cost a first push and pull of new large files.

    python benchmarks/chunk_cost.py                      # 4 x 256 MiB, file:// and moto, 3 rounds
    python benchmarks/chunk_cost.py --stores file,s3,gs  # fake-gcs-server too
    py-spy record -f raw -o push.txt -- python benchmarks/chunk_cost.py --stores file --rounds 1

Seeded random (incompressible) files are pushed through the API (``etc.push``) to a
fresh repository and pulled from it into a fresh home (``etc.pull``), with
``content_chunks`` off and on, alternating, for each store; each round gets a fresh
server (moto, fake-gcs-server) on 127.0.0.1, after an untimed push and pull of one
12 MiB file each way (so that neither side pays the imports of the first). Printed:
the median wall time and client CPU (this process's user + system time, not the
server's) per GiB, and the ratio on/off. Nothing is there to deduplicate: this is the
cost of chunking itself, which must stay within about 5 % before ``content_chunks`` can
be on by default. Writes ``results/chunk_cost-<time>.json`` and
``results/chunk_cost-latest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    MiB,
    Server,
    Table,
    fmt,
    machine_info,
    start_fake_gcs,
    start_moto,
    write_json,
)

sys.path.insert(0, str(ROOT))

import etcetera as etc

GiB = 1024 * MiB


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()``."""
    c, w = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - w, _cpu() - c


def sha256_mb_s() -> float:
    """hashlib SHA-256 over 256 MiB in one thread, MB/s (the best of three)."""
    data = os.urandom(64 * MiB) * 4
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        best = max(best, len(data) / (time.perf_counter() - t) / 1e6)
    return best


def _tree(work: Path, files: int, size: int, name: str = "tree") -> Path:
    src = work / name
    (src / "data" / "all").mkdir(parents=True)
    for i in range(files):
        rng = random.Random(i)
        with open(src / "data" / "all" / f"big-{i}.bin", "wb") as fh:
            for at in range(0, size, 8 * MiB):
                fh.write(rng.randbytes(min(8 * MiB, size - at)))
    return src


class Store:
    """Fresh repositories of one kind: ``file``, ``s3`` (moto) or ``gs`` (fake-gcs-server)."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        self.server: Server | None = None

    def fresh(self, label: str) -> tuple[str, dict[str, Any]]:
        """A new empty repository's URL and the settings to reach it."""
        self.close()
        if self.kind == "file":
            repo = self.work / f"repo-{label}"
            repo.mkdir()
            return f"file://{repo}", {}
        if self.kind == "s3":
            self.server = start_moto(self.work)
            keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
            return f"s3://{self.server.create_bucket()}", {
                "endpoint_url": self.server.endpoint,
                "region": "us-east-1",
                **keys,
            }
        self.server = start_fake_gcs(self.work, self.work)
        return f"gs://{self.server.create_bucket()}", {
            "endpoint_url": self.server.endpoint,
            "anonymous": True,
        }

    def close(self) -> None:
        """Stop this store's server and remove file:// repositories."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        for repo in self.work.glob("repo-*"):
            shutil.rmtree(repo)


def one_round(store: Store, src: Path, on: bool, label: str) -> dict[str, float]:
    """Push ``src`` to a fresh repository and pull it back; wall and CPU seconds of each."""
    url, extra = store.fresh(label)
    home1, home2 = store.work / f"h1-{label}", store.work / f"h2-{label}"
    try:
        cfg = etc.Config(url, home=home1, content_chunks=on, **extra)
        etc.register(src, "big", config=cfg)
        push_w, push_c = _timed(lambda: etc.push("big", config=cfg))
        pcfg = etc.Config(url, home=home2, **extra)
        pull_w, pull_c = _timed(lambda: etc.pull("big", config=pcfg))
        return {"push_wall": push_w, "push_cpu": push_c, "pull_wall": pull_w, "pull_cpu": pull_c}
    finally:
        shutil.rmtree(home1, ignore_errors=True)
        shutil.rmtree(home2, ignore_errors=True)
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--size", type=int, default=256, help="MiB per file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stores", default="file,s3", help="comma-separated: file, s3, gs")
    args = ap.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    size = args.size * MiB
    gib = args.files * size / GiB
    info = machine_info()
    sha = sha256_mb_s()
    print(f"CPU: {info.get('cpu_model', '?')}, {info['cpus']} cores; "
          f"hashlib SHA-256 {sha:,.0f} MB/s per core")  # fmt: skip
    print(f"{args.files} x {args.size} MiB random, {args.rounds} rounds, off/on alternating\n")
    doc: dict[str, Any] = {"machine": info, "sha256_mb_s": sha, "files": args.files,
                           "size": size, "rounds": args.rounds, "stores": {}}  # fmt: skip
    table = Table(["store", "step", "off s/GiB", "on s/GiB", "wall on/off",
                   "off CPU s/GiB", "on CPU s/GiB", "CPU on/off"])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="etc-chunkcost-") as tmp:
        work = Path(tmp)
        src = _tree(work, args.files, size)
        warm = _tree(work, 1, 12 * MiB, "warm")
        for kind in args.stores.split(","):
            store = Store(kind, work)
            for on in (False, True):  # untimed: the first push of a process pays its imports
                one_round(store, warm, on, "warm")
            runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
            for r in range(args.rounds):
                for on in (False, True) if r % 2 == 0 else (True, False):
                    label = "on" if on else "off"
                    runs[label].append(one_round(store, src, on, label))
            med = {
                label: {k: statistics.median(x[k] for x in rs) / gib for k in rs[0]}
                for label, rs in runs.items()
            }
            doc["stores"][kind] = {"runs": runs, "median_per_gib": med}
            for step in ("push", "pull"):
                off, on_ = med["off"], med["on"]
                w0, w1 = off[f"{step}_wall"], on_[f"{step}_wall"]
                c0, c1 = off[f"{step}_cpu"], on_[f"{step}_cpu"]
                table.add(kind, step, fmt(w0, 2), fmt(w1, 2), fmt(w1 / w0, 2),
                          fmt(c0, 2), fmt(c1, 2), fmt(c1 / c0, 2))  # fmt: skip
    print(table.render())
    dated, _ = write_json(doc, "chunk_cost")
    print(f"\nresults: {dated} (and chunk_cost-latest.json)")


if __name__ == "__main__":
    main()
