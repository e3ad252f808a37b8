"""Small files are hashed one batch at a time while batches are fast, all at once when slow."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import anyio
import pytest

from etcetera.engine import scan as scan_module
from etcetera.format.hashing import Digest
from tests.support import write_tree

pytestmark = pytest.mark.anyio


async def _most_at_once(root: Path, pause: float, monkeypatch: pytest.MonkeyPatch) -> int:
    """The most batches of small files hashed at once, each taking ``pause`` longer."""
    real = scan_module._hash_batch
    active = most = 0
    lock = threading.Lock()

    def counted(batch: list[scan_module.ScannedFile], chunk_size: int) -> list[tuple[Digest, int]]:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(pause)
        try:
            return real(batch, chunk_size)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(scan_module, "_hash_batch", counted)
    scan = scan_module.scan_tree(root)
    hashed = await scan_module.hash_files(
        scan,
        scan_module.HashCache(None),
        name="t",
        chunk_size=1 << 20,
        io=anyio.CapacityLimiter(4),
        progress=None,
    )
    assert len(hashed) == 1024 and all(f.digest for f in hashed)
    return most


def _tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "t", {f"data/p/f{i:04d}": b"%d" % i for i in range(1024)})


async def test_fast_batches_of_small_files_are_hashed_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cached small files: threads at once would only hand the GIL to each other.
    monkeypatch.setattr(scan_module, "_SLOW_FILE", math.inf, raising=False)
    assert await _most_at_once(_tree(tmp_path), 0.01, monkeypatch) == 1


async def test_slow_batches_of_small_files_are_hashed_in_every_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 0.2 s a batch of 256 files (0.8 ms a file, as on a network file system): widened.
    assert await _most_at_once(_tree(tmp_path), 0.2, monkeypatch) > 1
