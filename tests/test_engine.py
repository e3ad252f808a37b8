"""The engine end to end on every kind of repository: file://, s3:// (moto), gs:// (fake-gcs)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

import etcetera as etc
from etcetera.engine.progress import ProgressEvent
from etcetera.errors import VersionExistsError
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.anyio
MiB = 1024 * 1024


def _dataset(root: Path, n_small: int = 60, big: int = 0, seed: int = 0) -> Path:
    files = {
        f"data/train/f{i:04d}.txt": f"{seed}:{i}:".encode() * (i % 50 + 1) for i in range(n_small)
    }
    files.update({f"data/test/t{i:03d}.xml": b"<x>%d</x>" % i for i in range(n_small // 3)})
    files["meta.json"] = b'{"rows": 3}'
    files["README.md"] = b"hello"
    files["assets/nb/DataPreparation.ipynb"] = b"{}"
    files["data/train/empty.bin"] = b""
    if big:
        files["data/test/big.bin"] = os.urandom(big)
    return write_tree(root, files, {"data/train/f0001.txt": 0o755, "README.md": 0o640})


async def test_push_pull_roundtrip(repo: RepoSpec, tmp_path: Path) -> None:
    src = _dataset(tmp_path / "sample", big=11 * MiB)
    (src / "assets" / "empty-dir").mkdir()
    cfg = repo.config(home=tmp_path / "home1", pack_size=2048)
    await etc.aregister(src, config=cfg)
    pushed = await etc.apush("sample", config=cfg)
    assert pushed.version == 1 and not pushed.noop
    assert pushed.stats.bytes_sent >= pushed.size

    events: list[ProgressEvent] = []
    cfg2 = repo.config(home=tmp_path / "home2")
    pulled = await etc.apull("sample", config=cfg2, progress=events.append)
    assert pulled.version == 1
    assert snapshot(pulled.location) == snapshot(src)
    assert (pulled.location / "assets" / "empty-dir").is_dir()
    assert events and events[-1].bytes_done == events[-1].bytes_total == pulled.bytes_to_download
    ds = await etc.adataset("sample", config=cfg2)
    assert ds.partitions() == ["test", "train"]
    assert ds.meta == {"rows": 3}

    again = await etc.apull("sample", config=cfg2)
    assert again.noop
    noop = await etc.apush("sample", config=cfg)
    assert noop.noop and noop.version == 1 and noop.stats.bytes_sent == 0
    assert await etc.als(config=cfg, remote=True) == ["sample"]


async def test_incremental_push_and_pull_send_one_pack(repo: RepoSpec, tmp_path: Path) -> None:
    src = _dataset(tmp_path / "sample", n_small=300)
    pack = 1024
    cfg = repo.config(home=tmp_path / "home1", pack_size=pack)
    await etc.aregister(src, config=cfg)
    first = await etc.apush("sample", config=cfg)
    n_packs = first.stats.objects_sent
    assert n_packs >= 20

    target = src / "data/train/f0100.txt"
    target.write_bytes(target.read_bytes().replace(b"0", b"9"))
    with pytest.raises(etc.DatasetExistsError, match="as version 1 with other content") as refused:
        await etc.apush("sample", config=cfg)
    assert isinstance(refused.value, VersionExistsError) and refused.value.latest == 1
    second = await etc.apush("sample", config=cfg, force=True)
    assert second.version == 2
    assert second.stats.objects_sent == 1
    manifest_and_ref = 64 * 1024
    assert second.stats.bytes_sent <= 2 * pack + manifest_and_ref

    # Pull v1, then v2: the second pull downloads one pack's worth.
    cfg2 = repo.config(home=tmp_path / "home2")
    await etc.apull("sample@1", config=cfg2)
    inc = await etc.apull("sample", config=cfg2)
    assert inc.version == 2
    assert inc.downloaded == 1
    assert inc.reused >= 300
    assert inc.stats.bytes_received <= 2 * pack + manifest_and_ref
    assert snapshot(inc.location) == snapshot(src)
    old = await etc.adataset("sample", config=cfg2, version=1)
    assert old.version == 1


async def test_partial_pull_reads_only_its_partition(repo: RepoSpec, tmp_path: Path) -> None:
    src = _dataset(tmp_path / "sample", n_small=200)
    cfg = repo.config(home=tmp_path / "home1", pack_size=8 * 1024)
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)
    cfg2 = repo.config(home=tmp_path / "home2")
    part = await etc.apull("sample", config=cfg2, partitions=["test"])
    ds = await etc.adataset("sample", config=cfg2)
    assert ds.partitions() == ["test"]
    test_bytes = sum(p.stat().st_size for p in (src / "data/test").iterdir())
    outside = sum(len(b) for b in (b'{"rows": 3}', b"hello", b"{}"))
    assert part.stats.bytes_received <= test_bytes + outside + 64 * 1024
    full = await etc.apull("sample", config=cfg2)
    assert snapshot(full.location) == snapshot(src)
    assert full.reused + full.present >= len(list((src / "data/test").iterdir()))


async def test_cancelled_pull_resumes_with_only_the_remainder(
    repo: RepoSpec, tmp_path: Path
) -> None:
    src = _dataset(tmp_path / "sample", n_small=400, big=11 * MiB)
    pack = 2048
    cfg = repo.config(home=tmp_path / "home1", pack_size=pack)
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)

    home2 = tmp_path / "home2"
    # Paced (about a second in all), so that throttled progress events land mid-way
    # even on a loaded machine.
    slow = repo.config(home=home2, concurrency=1, part_size=5 * MiB, bandwidth_limit=12 * MiB)
    total = 0
    seen = 0
    with anyio.CancelScope() as scope:

        def cancel_midway(e: ProgressEvent) -> None:
            nonlocal total, seen
            if e.phase == "download":
                total, seen = e.bytes_total, e.bytes_done
                if e.bytes_done > e.bytes_total * 4 // 5:
                    scope.cancel()

        await etc.apull("sample", config=slow, progress=cancel_midway)
    assert scope.cancelled_caught
    assert 0 < seen < total
    assert not (home2 / "sample").exists()  # nothing visible after a failed pull

    resumed = await etc.apull("sample", config=slow)
    part = max(5 * MiB, 8 * MiB)  # a range is whole chunks of 8 MiB
    assert resumed.stats.bytes_received <= (total - seen) + part + 64 * 1024
    # What the first run verified and wrote (files, or chunks of the large blob) is kept.
    assert resumed.stats.bytes_received < total
    assert snapshot(resumed.location) == snapshot(src)


async def test_failed_pull_keeps_previous_copy(repo: RepoSpec, tmp_path: Path) -> None:
    src = _dataset(tmp_path / "sample", n_small=50)
    cfg = repo.config(home=tmp_path / "home1", pack_size=1024)
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)
    cfg2 = repo.config(home=tmp_path / "home2", concurrency=1)
    first = await etc.apull("sample", config=cfg2)
    before = snapshot(first.location)
    (src / "data/train/new.txt").write_bytes(b"new" * 1000)
    await etc.apush("sample", config=cfg, force=True)
    with anyio.CancelScope() as scope:

        def cancel(e: ProgressEvent) -> None:
            if e.phase == "download":
                scope.cancel()

        await etc.apull("sample", config=cfg2, progress=cancel)
    ds = await etc.adataset("sample", config=cfg2)
    assert ds.version == 1
    assert snapshot(ds.location) == before


@pytest.mark.parametrize("repo", ["s3", "gcs"], indirect=True)
async def test_large_and_many_small_files(repo: RepoSpec, tmp_path: Path) -> None:
    """A > 100 MiB file and a thousand small ones, byte-identical, with progress both ways."""
    src = _dataset(tmp_path / "sample", n_small=1000, big=101 * MiB)
    cfg = repo.config(home=tmp_path / "home1")
    await etc.aregister(src, config=cfg)
    up: list[ProgressEvent] = []
    pushed = await etc.apush("sample", config=cfg, progress=up.append)
    assert [e for e in up if e.phase == "upload"][-1].bytes_done == pushed.bytes_to_send
    assert pushed.stats.peak_memory <= cfg.memory_budget
    down: list[ProgressEvent] = []
    pulled = await etc.apull(
        "sample", config=repo.config(home=tmp_path / "h2"), progress=down.append
    )
    assert down[-1].bytes_done == down[-1].bytes_total == pulled.bytes_to_download
    assert snapshot(pulled.location) == snapshot(src)


async def test_progress_events_can_be_iterated(file_repo: RepoSpec, tmp_path: Path) -> None:
    from etcetera.api import watch

    src = _dataset(tmp_path / "sample", n_small=100)
    cfg = file_repo.config(home=tmp_path / "home1", pack_size=1024)
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)
    seen: list[ProgressEvent] = []
    async with watch(etc.apull, "sample", config=file_repo.config(home=tmp_path / "h2")) as w:
        async for event in w:
            seen.append(event)
    assert w.result.version == 1
    assert seen[-1].phase == "download"
    assert seen[-1].bytes_done == seen[-1].bytes_total == w.result.bytes_to_download


async def test_a_local_file_edited_since_it_was_pulled_is_not_reused(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = _dataset(tmp_path / "sample", n_small=40)
    cfg = file_repo.config(home=tmp_path / "home1", pack_size=1024)
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)
    cfg2 = file_repo.config(home=tmp_path / "home2")
    first = await etc.apull("sample", config=cfg2)
    # Edited in place (the same bytes length): the hash cache no longer vouches for it.
    edited = first.location / "data/train/f0003.txt"
    edited.chmod(0o644)
    edited.write_bytes(b"X" * edited.stat().st_size)
    (src / "data/train/new.txt").write_bytes(b"new")
    await etc.apush("sample", config=cfg, force=True)
    second = await etc.apull("sample", config=cfg2)
    assert snapshot(second.location) == snapshot(src)
    assert second.downloaded >= 2  # the new file and the edited one


async def test_pruned_versions_take_their_hash_cache_along(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = _dataset(tmp_path / "sample", n_small=10)
    cfg = file_repo.config(home=tmp_path / "home1")
    await etc.aregister(src, config=cfg)
    cfg2 = file_repo.config(home=tmp_path / "home2")
    for i in range(4):
        (src / "data/train/v.txt").write_bytes(b"v%d" % i)
        await etc.apush("sample", config=cfg, force=True)
        await etc.apull("sample", config=cfg2)
    caches = list((tmp_path / "home2" / ".cache" / "hashes").iterdir())
    kept = [p for p in (tmp_path / "home2" / ".versions" / "sample").iterdir() if p.is_dir()]
    assert len(kept) == 2
    assert len(caches) == 2


def test_parts_are_whole_chunks_even_under_a_small_memory_budget() -> None:
    """Each part is verified chunk by chunk: a part must start and end on a chunk."""
    from etcetera.engine.config import TransferConfig

    mib = 1 << 20
    for budget in (1 * mib, 20 * mib, 33 * mib, 160 * mib):
        config = TransferConfig(memory_budget=budget)
        part = config.part_size_for(1 << 30, 5 * mib, 10_000)
        assert part % config.chunk_size == 0 and part >= config.chunk_size
        assert part <= max(budget // 2, config.chunk_size)


async def test_a_large_file_is_hashed_in_ranges_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file of many chunks uses several threads, never more than the I/O limit."""
    import threading
    import time

    from etcetera.engine import scan as scan_module
    from etcetera.format.hashing import digest_chunks as real
    from etcetera.format.hashing import digest_file

    chunk = 64 * 1024
    root = write_tree(tmp_path / "t", {"data/p/big.bin": os.urandom(40 * chunk + 5)})
    active, most, ranges = 0, 0, []
    lock = threading.Lock()

    def digest_chunks(
        path: str, first: int, count: int | None, chunk_size: int, *, with_crc: bool = True
    ) -> tuple[list[bytes], list[int], int]:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            ranges.append((first, count))
        time.sleep(0.05)  # long enough for the other ranges to start meanwhile
        try:
            return real(path, first, count, chunk_size, with_crc=with_crc)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(scan_module, "digest_chunks", digest_chunks)
    scan = scan_module.scan_tree(root)
    (hashed,) = await scan_module.hash_files(
        scan,
        scan_module.HashCache(None),
        name="t",
        chunk_size=chunk,
        io=anyio.CapacityLimiter(4),
        progress=None,
    )
    assert sorted(ranges) == [(0, 11), (11, 11), (22, 11), (33, None)]
    assert most == 4
    digest, _ = digest_file(scan.files[0].source, chunk)
    assert (hashed.digest, hashed.chunks, scan.files[0].crcs) == (
        digest.hex,
        digest.chunks,
        digest.crcs,
    )
