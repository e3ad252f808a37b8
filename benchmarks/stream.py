"""The streaming iterator against ``etc pull`` of the same partition (issue 14).

    python benchmarks/stream.py                      # 20,000 x 4 KiB, file:// and moto
    python benchmarks/stream.py --targets file --files 5000

For each target, one run (ratios within one run, not timed tests):

1. the partition (``--files`` files of ``--size`` bytes in ``data/train``) is pushed;
2. ``etc.pull`` of the partition into a fresh home: files/s, requests;
3. ``etc.stream`` of the partition from another fresh home (a cold cache), read alone,
   then again (cold again) by a consumer that takes a training step of ``--work-us``
   microseconds per sample after each batch of 64 (a sleep, as on an accelerator):
   files/s, requests, and the share of time the consumer waited on the iterator after
   the first second;
4. what the stream wrote: every new file must be under the home's ``.cache/``.

The goals: files/s at least 0.8x the pull's (with ``--work-us 0``, the stream alone),
data requests within 10 % of the pull's, nothing written outside the cache, and the
consumer waiting less than 5 % of the time after the first second. Prints a table
and writes ``results/stream-<time>.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import Table, fmt, start_moto, write_json  # noqa: E402

import etcetera as etc  # noqa: E402
from etcetera.engine import transport  # noqa: E402
from etcetera.format import layout  # noqa: E402
from etcetera.reading import aopen_version  # noqa: E402

#: Ranged reads of objects (packs, blobs) so far: the data requests, counted exactly.
DATA = [0]
_stream = transport.Transport.stream


def _counted(self: transport.Transport, key: str, offset: int, length: int | None) -> Any:
    if key.startswith(layout.OBJECTS):
        DATA[0] += 1
    return _stream(self, key, offset, length)


transport.Transport.stream = _counted  # type: ignore[method-assign]


def tree(root: Path, files: int, size: int) -> None:
    part = root / "data" / "train"
    part.mkdir(parents=True)
    for i in range(files):
        (part / f"{i:06d}.bin").write_bytes(i.to_bytes(4, "big") * (size // 4))


async def _entries(cfg: etc.Config) -> list[Any]:
    async with aopen_version("bench", config=cfg) as v:
        return await v.files("data/train")


def listing(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()}


def consume(stream: etc.Stream, work_us: float, batch: int = 64) -> dict[str, Any]:
    """Read every sample, and after each ``batch`` a training step of ``batch * work_us``.

    The step sleeps, as a step on an accelerator (or in a library that releases the
    GIL) leaves the interpreter to the iterator's thread meanwhile.
    """
    it = iter(stream)
    start = time.perf_counter()
    waited = waited_late = 0.0
    n = 0
    while True:
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        waited += t1 - t0
        if t0 - start >= 1.0:
            waited_late += t1 - t0
        n += 1
        if work_us and n % batch == 0:
            time.sleep(batch * work_us / 1e6)
    total = time.perf_counter() - start
    late = max(total - 1.0, 1e-9)
    return {
        "files": n,
        "seconds": total,
        "waited": waited,
        "wait_share_after_1s": waited_late / late,
    }


def run(
    target: str, url: str, settings: dict[str, Any], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    src = work / f"src-{target}"
    tree(src, args.files, args.size)
    pusher = etc.Config(url=url, home=work / f"home-push-{target}", **settings)
    etc.register(src, "bench", config=pusher)
    etc.push("bench", config=pusher)

    pull_home = work / f"home-pull-{target}"
    DATA[0] = 0
    t0 = time.perf_counter()
    pulled = etc.pull(
        "bench", config=etc.Config(url=url, home=pull_home, **settings), partitions=["train"]
    )
    pull_s = time.perf_counter() - t0
    pull_requests = pulled.stats.requests
    pull_data = DATA[0]

    stream_home = work / f"home-stream-{target}"
    cfg = etc.Config(url=url, home=stream_home, **settings)
    stream = etc.stream("bench", "train", config=cfg, seed=1)
    before = listing(stream_home)
    DATA[0] = 0
    alone = consume(stream, 0.0)
    stream_data = DATA[0]
    assert stream.stats is not None
    stream_requests = stream.stats.requests
    written = listing(stream_home) - before
    outside = sorted(p for p in written if not p.startswith(".cache/"))

    # The same again from a cold cache, with a consumer that does work per sample.
    shutil.rmtree(stream_home / ".cache" / "objects", ignore_errors=True)
    paced = consume(etc.stream("bench", "train", config=cfg, seed=1), args.work_us)
    packs = len({f.object for f in etc.sync.run(_entries, cfg)})
    return {
        "packs": packs,
        "pull_data_requests": pull_data,
        "stream_data_requests": stream_data,
        "target": target,
        "files": args.files,
        "size": args.size,
        "pull_seconds": pull_s,
        "pull_files_per_s": args.files / pull_s,
        "pull_requests": pull_requests,
        "stream_seconds": alone["seconds"],
        "stream_files_per_s": args.files / alone["seconds"],
        "stream_requests": stream_requests,
        "ratio_files_per_s": (args.files / alone["seconds"]) / (args.files / pull_s),
        "written_outside_cache": outside,
        "paced_work_us": args.work_us,
        "paced_seconds": paced["seconds"],
        "paced_wait_share_after_1s": paced["wait_share_after_1s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--targets", default="file,s3")
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--work-us", type=float, default=200.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="etc-bench-stream-"))
    rows = []
    moto = None
    try:
        for target in args.targets.split(","):
            if target == "file":
                repo = work / "repo"
                repo.mkdir()
                rows.append(run("file", f"file://{repo}", {}, args, work))
            elif target == "s3":
                moto = moto or start_moto(work)
                bucket = moto.create_bucket()
                settings = {
                    "endpoint_url": moto.endpoint,
                    "region": "us-east-1",
                    "aws_access_key_id": "testing",
                    "aws_secret_access_key": "testing",
                }
                rows.append(run("s3", f"s3://{bucket}", settings, args, work))
            else:
                raise SystemExit(f"unknown target {target!r}: file or s3")
    finally:
        if moto is not None:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        [
            "target",
            "packs",
            "pull f/s",
            "stream f/s",
            "ratio",
            "pull data req",
            "stream data req",
            "outside cache",
            "wait after 1s",
        ]
    )
    for r in rows:
        table.add(
            r["target"],
            r["packs"],
            fmt(r["pull_files_per_s"]),
            fmt(r["stream_files_per_s"]),
            fmt(r["ratio_files_per_s"], 2),
            r["pull_data_requests"],
            r["stream_data_requests"],
            len(r["written_outside_cache"]),
            f"{100 * r['paced_wait_share_after_1s']:.1f} %",
        )
    print(table.render())
    print(
        "goals: ratio >= 0.8; data requests within 10 %; nothing outside the cache; "
        f"wait < 5 % (consumer at {args.work_us:g} us/sample)"
    )
    dated, _ = write_json({"rows": rows, "pid": os.getpid()}, "stream")
    print(f"wrote {dated}")


if __name__ == "__main__":
    main()
