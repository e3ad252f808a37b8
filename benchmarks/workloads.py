"""Seeded workloads, generated on the fly: the same seed gives the same bytes.

Every workload is a dataset tree (``data/<partition>/...``) that etcetera and the
peers move alike. Random bytes come from numpy's PCG64 (about 1 GB/s, against
~130 MB/s for ``random.randbytes``); text is built from a seeded vocabulary.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Spec:
    """The shape of a workload.

    Attributes:
        name: ``large``, ``small``, ``mixed`` or ``text``.
        files: number of files.
        min_size: smallest file, bytes.
        max_size: largest file, bytes (equal to ``min_size`` for fixed sizes).
        test_share: fraction of files in the ``test`` partition (the rest in ``train``).
        per_dir: files per sub-folder.
    """

    name: str
    files: int
    min_size: int
    max_size: int
    test_share: float = 0.2
    per_dir: int = 1000

    def describe(self) -> str:
        """E.g. ``16 x 64 MiB`` or ``2,000 x 50-500 KiB``."""
        if self.min_size == self.max_size:
            return f"{self.files:,} x {_size(self.min_size)}"
        return f"{self.files:,} x {_size(self.min_size)}-{_size(self.max_size)}"


def _size(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    return f"{n // KiB} KiB"


FULL: dict[str, Spec] = {
    "large": Spec("large", 16, 64 * MiB, 64 * MiB, test_share=0.25),
    "small": Spec("small", 20_000, 4 * KiB, 4 * KiB, test_share=0.1),
    "mixed": Spec("mixed", 2_000, 50 * KiB, 500 * KiB, per_dir=250),
    "text": Spec("text", 1_000, 16 * KiB, 240 * KiB, per_dir=250),
}

QUICK: dict[str, Spec] = {
    "large": Spec("large", 3, 32 * MiB, 32 * MiB, test_share=0.34),
    "small": Spec("small", 600, 4 * KiB, 4 * KiB, test_share=0.1),
    "mixed": Spec("mixed", 100, 50 * KiB, 500 * KiB, per_dir=50),
    "text": Spec("text", 100, 16 * KiB, 240 * KiB, per_dir=50),
}


@dataclass(frozen=True)
class Workload:
    """A generated tree.

    Attributes:
        spec: its shape.
        root: the dataset folder (holds ``data/``).
        files: number of files written.
        size: bytes written.
        compressed: for ``text``, the zlib level-6 size of a sample scaled to the whole.
    """

    spec: Spec
    root: Path
    files: int
    size: int
    compressed: int | None = None

    @property
    def name(self) -> str:
        """The workload's name."""
        return self.spec.name


def _paths(spec: Spec) -> Iterator[str]:
    """Relative paths: ``data/<partition>/<dir>/<name>`` in train/test partitions."""
    n_test = round(spec.files * spec.test_share)
    ext = {"large": "bin", "small": "bin", "mixed": "jpg", "text": "xml"}[spec.name]
    for i in range(spec.files):
        part = "test" if i < n_test else "train"
        j = i if i < n_test else i - n_test
        yield f"data/{part}/d{j // spec.per_dir:03d}/{spec.name}-{j:06d}.{ext}"


_WORDS = tuple(
    " ".join(
        (
            "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega river stone",
            "forest meadow harbor signal vector matrix tensor sample label train test image",
            "record value weight height width depth colour source target anchor buffer",
        )
    ).split()
)


def _xml(rng: random.Random, size: int, file_no: int) -> bytes:
    """An XML-like document of about ``size`` bytes: repetitive tags, varied values."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<dataset file="{file_no}">\n']
    total = len(parts[0])
    rid = 0
    words = _WORDS
    while total < size:
        w = rng.choices(words, k=4)
        rec = (
            f'  <record id="{file_no}-{rid}">\n'
            f"    <name>{w[0]} {w[1]}</name>\n"
            f'    <value unit="{w[2]}">{rng.random() * 1000:.4f}</value>\n'
            f"    <count>{rng.randrange(100000)}</count>\n"
            f"    <tags><tag>{w[3]}</tag><tag>{w[0]}</tag></tags>\n"
            f"  </record>\n"
        )
        parts.append(rec)
        total += len(rec)
        rid += 1
    parts.append("</dataset>\n")
    return "".join(parts).encode()


def generate(spec: Spec, root: Path, seed: int = 20240605) -> Workload:
    """Write the workload under ``root`` (which must not exist) and return it."""
    rng = np.random.Generator(np.random.PCG64([seed, len(spec.name), spec.files]))
    text_rng = random.Random(f"{seed}-{spec.name}")
    if spec.min_size == spec.max_size:
        sizes = [spec.min_size] * spec.files
    else:
        sizes = [int(s) for s in rng.integers(spec.min_size, spec.max_size + 1, spec.files)]
    total = 0
    sample_raw = sample_zip = 0
    made: set[Path] = set()
    for i, (rel, size) in enumerate(zip(_paths(spec), sizes, strict=True)):
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if spec.name == "text":
            data = _xml(text_rng, size, i)
            if sample_raw < 16 * MiB:
                sample_raw += len(data)
                sample_zip += len(zlib.compress(data, 6))
        else:
            data = rng.bytes(size)
        path.write_bytes(data)
        total += len(data)
    compressed = round(total * sample_zip / sample_raw) if sample_raw else None
    return Workload(spec, root, spec.files, total, compressed)
