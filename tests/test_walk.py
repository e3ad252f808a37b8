"""The threaded walk finds the same tree whatever its threads do."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from etcetera.engine.walk import WALK_THREADS, walk
from etcetera.errors import NotADatasetError


def _tree(root: Path) -> None:
    for i in range(30):
        (root / f"d{i % 7}" / f"s{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 7}" / f"s{i % 3}" / f"f{i}").write_bytes(b"x" * i)
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "d1" / "gone").symlink_to(root / "nowhere")
    os.mkfifo(root / "d2" / "pipe")
    (root / "skipme").write_text("")


def test_every_thread_count_gives_the_same_walk(tmp_path: Path) -> None:
    _tree(tmp_path)

    def ignored(name: str) -> bool:
        return name == "skipme"

    walks = [walk(str(tmp_path), "", frozenset(), ignored, threads=t) for t in (1, 2, 8)]
    files = [sorted((f.path, f.size) for f in w.files) for w in walks]
    assert files[0] == files[1] == files[2]
    assert len(files[0]) == 30 and ("d2/s0/f9", 9) in files[0]
    assert all(w.empty_dirs == ["empty/deeper"] for w in walks)
    assert all(
        w.warnings == ["skipped d1/gone: broken symlink", "skipped d2/pipe: not a regular file"]
        for w in walks
    )


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a")
    st = os.stat(tmp_path)
    with pytest.raises(NotADatasetError, match="symlink loop"):
        walk(str(tmp_path), "", frozenset({(st.st_dev, st.st_ino)}), lambda _: False, threads=3)


def test_a_walk_lists_folders_in_more_than_one_thread(tmp_path: Path) -> None:
    # Each folder's one file waits until the other folder's is seen: a walk that lists
    # one folder at a time breaks the barrier (after its timeout) instead of passing.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_bytes(b"x")
    barrier = threading.Barrier(2, timeout=60)
    listers: set[str] = set()

    def ignored(name: str) -> bool:
        if name == "f":
            listers.add(threading.current_thread().name)
            barrier.wait()
        return False

    walked = walk(str(tmp_path), "", frozenset(), ignored)
    assert WALK_THREADS > 1 and len(listers) == 2
    assert sorted(f.path for f in walked.files) == ["a/f", "b/f"]


def _listers(tmp_path: Path, pause: float, **rules: float) -> set[str]:
    for i in range(6):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_bytes(b"x")
    listers: set[str] = set()

    def ignored(name: str) -> bool:
        listers.add(threading.current_thread().name)
        time.sleep(pause)
        return False

    walked = walk(str(tmp_path), "", frozenset(), ignored, **rules)  # type: ignore[arg-type]
    assert len(walked.files) == 6
    return listers


def test_a_walk_on_fast_storage_stays_in_one_thread(tmp_path: Path) -> None:
    # A cached tree: four threads would only pass the GIL to each other.
    assert len(_listers(tmp_path, 0.0, slow_entry=math.inf, widen_after=math.inf)) == 1


def test_a_walk_widens_when_a_listing_is_slow(tmp_path: Path) -> None:
    # 10 ms per entry, as on a network file system: the next folders are listed together.
    assert len(_listers(tmp_path, 0.01, widen_after=math.inf)) > 1


def test_the_stamp_moves_with_any_stat_and_not_with_the_threads(tmp_path: Path) -> None:
    _tree(tmp_path)

    def stamp(threads: int = 1) -> str:
        return walk(str(tmp_path), "", frozenset(), lambda _: False, threads=threads).stamp

    first = stamp()
    assert stamp(threads=8) == first
    seen = {first}
    edits: list[Callable[[], object]] = [
        lambda: os.utime(tmp_path / "d0/s0/f0", ns=(1, 1)),
        lambda: os.chmod(tmp_path / "d0/s0/f0", 0o600),
        lambda: (tmp_path / "d1/s1/f1").write_bytes(b"yy"),
        lambda: (tmp_path / "new" / "folder").mkdir(parents=True),
        lambda: (tmp_path / "d3/s0/f3").rename(tmp_path / "d3/s0/g3"),
    ]
    for edit in edits:
        edit()
        now = stamp()
        assert now not in seen
        seen.add(now)
