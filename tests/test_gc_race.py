"""gc racing a push, and two gcs at once: nothing published ever names a missing object.

A push uploads objects before its version record names them. Here the push is held
right after its uploads, a gc with no grace at all runs to completion, and the push then
publishes: the version pulls byte for byte. Two gcs started together both succeed and
no object is deleted by both.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import etcetera as etc
from etcetera.api import agc, arm_remote
from etcetera.engine import inflight, manifests
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.anyio

NAME = "sample"


@pytest.fixture(params=["file", "s3", "gcs", "s3rver"])
def store(request: pytest.FixtureRequest) -> RepoSpec:
    """Every back-end, and s3rver."""
    spec: RepoSpec = request.getfixturevalue(f"{request.param}_repo")
    return spec


async def _garbage(spec: RepoSpec, tmp: Path) -> None:
    """A version pushed, then removed: its objects are garbage for gc to collect."""
    cfg = spec.config(home=tmp / "old-home", pack_size=16 * 1024)
    tree = {f"data/train/old{i}.bin": bytes([i]) * 30_000 for i in range(4)}
    await etc.aregister(write_tree(tmp / "old" / "old", tree), config=cfg)
    await etc.apush("old", config=cfg)
    await arm_remote("old", config=cfg)


async def test_gc_while_a_push_is_paused_after_its_uploads(
    store: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _garbage(store, tmp_path)
    tree = {f"data/train/f{i}.bin": bytes([i + 7]) * 40_000 for i in range(5)}
    tree["data/test/big.bin"] = bytes(range(256)) * 40_000  # a blob of its own
    src = write_tree(tmp_path / "src" / NAME, tree)
    cfg = store.config(home=tmp_path / "home", pack_size=64 * 1024)
    await etc.aregister(src, config=cfg)

    paused, resume = anyio.Event(), anyio.Event()
    real_write = manifests.write_manifest

    async def write_after_gc(*args: Any) -> None:
        paused.set()
        with anyio.fail_after(60):
            await resume.wait()
        await real_write(*args)

    monkeypatch.setattr(manifests, "write_manifest", write_after_gc)
    outcome: list[etc.PushResult] = []

    async def push() -> None:
        outcome.append(await etc.apush(NAME, config=cfg))

    async with anyio.create_task_group() as tg:
        tg.start_soon(push)
        with anyio.fail_after(60):
            await paused.wait()
        swept = await agc(config=cfg, grace=timedelta(0))
        resume.set()
    assert swept.objects, "gc deleted the removed version's objects"
    assert outcome[0].version == 1
    monkeypatch.setattr(manifests, "write_manifest", real_write)
    pulled = await etc.apull(NAME, config=store.config(home=tmp_path / "reader"))
    assert snapshot(pulled.location) == snapshot(src)
    # Its marker gone, the push's objects are now kept by its version alone.
    again = await agc(config=cfg, grace=timedelta(0))
    assert again.objects == [] and again.manifests == []
    pulled = await etc.apull(NAME, config=store.config(home=tmp_path / "reader2"))
    assert snapshot(pulled.location) == snapshot(src)


async def test_two_gcs_at_once_delete_nothing_twice(store: RepoSpec, tmp_path: Path) -> None:
    await _garbage(store, tmp_path)
    cfg = store.config(home=tmp_path / "home")
    dry = await agc(config=cfg, dry_run=True, grace=timedelta(0))
    assert dry.objects and dry.manifests
    results: list[etc.GcResult] = []

    async def gc() -> None:
        results.append(await agc(config=cfg, grace=timedelta(0)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(gc)
        tg.start_soon(gc)
    first, second = results
    for field in ("objects", "manifests", "pieces"):
        a, b = getattr(first, field), getattr(second, field)
        assert not set(a) & set(b), field
        assert sorted(a + b) == sorted(getattr(dry, field)), field
    left = await agc(config=cfg, dry_run=True, grace=timedelta(0))
    assert left.objects == left.manifests == left.pieces == []


async def test_a_push_waits_while_a_gc_runs(file_repo: RepoSpec, tmp_path: Path) -> None:
    """A push that finds a gc's marker uploads nothing until that gc is done."""
    root = Path(file_repo.url.removeprefix("file://"))
    gc_marker = root / inflight.PREFIX / "gc-0123456789abcdef"
    write_tree(gc_marker.parent, {gc_marker.name: b"gc"})
    src = write_tree(tmp_path / "src" / NAME, {"data/train/a.bin": b"a" * 50_000})
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    done: list[etc.PushResult] = []

    async def push() -> None:
        done.append(await etc.apush(NAME, config=cfg))

    async with anyio.create_task_group() as tg:
        tg.start_soon(push)
        with anyio.fail_after(30):
            while len(list(gc_marker.parent.glob("push-*"))) == 0:
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # time enough to upload, were it not waiting
        assert not (root / "etc-v1" / "objects").exists() and not done
        gc_marker.unlink()
    assert done[0].version == 1
    assert list(gc_marker.parent.iterdir()) == []


async def test_an_expired_push_marker_protects_nothing(file_repo: RepoSpec, tmp_path: Path) -> None:
    """A marker left by a killed push expires after ``PUSH_LIFETIME``; gc then removes it."""
    await _garbage(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    dry = await agc(config=cfg, dry_run=True, grace=timedelta(0))
    root = Path(file_repo.url.removeprefix("file://"))
    doc = {"objects": dry.objects, "manifest": dry.manifests[0], "pieces": dry.pieces}
    folder = root / inflight.PREFIX
    write_tree(folder, {"push-young": json.dumps(doc).encode(), "push-old": b"not even JSON"})
    old = time.time() - inflight.PUSH_LIFETIME.total_seconds() - 60
    os.utime(folder / "push-old", (old, old))
    kept = await agc(config=cfg, grace=timedelta(0))
    assert kept.objects == [] and kept.manifests == []
    assert sorted(p.name for p in folder.iterdir()) == ["push-young"]
    os.utime(folder / "push-young", (old, old))
    swept = await agc(config=cfg, grace=timedelta(0))
    assert sorted(swept.objects) == sorted(dry.objects)
    assert list(folder.iterdir()) == []
