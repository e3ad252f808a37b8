"""``python -m etcetera.demo``: push a sample dataset to file:// and pull it back.

It makes a sample dataset, pushes it to a file:// repository, pulls it into a fresh
home with the Python API, then once more with the ``etc`` command (its progress bar on a
terminal), and prints what moved and how fast.

Everything happens in a temporary folder (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import etcetera as etc


def _make_sample(root: Path, small: int, large_mib: int, seed: int) -> None:
    rng = random.Random(seed)
    for part, count in (("train", small * 4 // 5), ("test", small - small * 4 // 5)):
        folder = root / "data" / part
        folder.mkdir(parents=True)
        for i in range(count):
            rows = "".join(f"<row id='{i}.{j}' v='{rng.random():.6f}'/>\n" for j in range(20))
            (folder / f"data{i:05d}.xml").write_text(f"<rows>\n{rows}</rows>\n")
    if large_mib:
        (root / "data" / "train" / "blob.bin").write_bytes(os.urandom(large_mib << 20))
    (root / "meta.json").write_text('{"description": "etcetera demo dataset"}')
    (root / "README.md").write_text("A sample dataset made by python -m etcetera.demo\n")


def main() -> None:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000, help="small files (default 5000)")
    parser.add_argument("--large-mib", type=int, default=64, help="one large file, MiB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="etc-demo-"))
    sample = base / "sample"
    repo = base / "repository"
    repo.mkdir()
    _make_sample(sample, args.files, args.large_mib, seed=1)
    url = f"file://{repo}"
    print(f"sample dataset: {sample} ({args.files} small files + {args.large_mib} MiB file)")
    print(f"repository:     {url}")

    laptop = etc.Config(url, home=base / "laptop-home")
    etc.register(sample, config=laptop)
    t0 = time.monotonic()
    pushed = etc.push("sample", config=laptop)
    t_push = time.monotonic() - t0
    s = pushed.stats
    print(
        f"push: version {pushed.version}, {pushed.files} files, {pushed.size / 1e6:.1f} MB in "
        f"{s.objects_sent} objects ({s.requests} requests) in {t_push:.2f} s: "
        f"{pushed.size / 1e6 / t_push:.0f} MB/s, {pushed.files / t_push:.0f} files/s"
    )
    again = etc.push("sample", config=laptop)
    print(f"push again: no-op={again.noop}")

    worker = etc.Config(url, home=base / "worker-home")
    t0 = time.monotonic()
    ds = etc.dataset("sample", auto_pull=True, config=worker)
    t_pull = time.monotonic() - t0
    files = sum(1 for _ in ds.location.rglob("*") if _.is_file())
    size = sum(p.stat().st_size for p in ds.location.rglob("*") if p.is_file())
    print(
        f"pull: {files} files, {size / 1e6:.1f} MB into {ds.location} in {t_pull:.2f} s: "
        f"{size / 1e6 / t_pull:.0f} MB/s, {files / t_pull:.0f} files/s (verified, flushed)"
    )
    print(f"partitions: {ds.partitions()}, meta: {ds.meta}")

    # The same pull from the command line, into a third home: the bar draws on stderr.
    env = {**os.environ, "ETC_URL": url, "ETC_HOME": str(base / "cli-home")}
    for command in (["pull", "sample"], ["info", "sample"]):
        print(f"\n$ etc {' '.join(command)}", flush=True)
        subprocess.run([sys.executable, "-m", "etcetera", *command], env=env, check=True)
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"kept {base}")


if __name__ == "__main__":
    main()
