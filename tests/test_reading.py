"""Reading a version in place (etcetera.reading): lookups, verified bytes, requests, cache."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.api.session import session
from etcetera.errors import (
    DatasetNotFoundError,
    IntegrityError,
    ManifestError,
    PathNotFoundError,
)
from etcetera.format import layout
from etcetera.format.hashing import sha256_hex
from etcetera.format.record import VersionRecord
from etcetera.reading import ObjectCache, open_version
from etcetera.settings import Config
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio

MiB = 1 << 20


def _files() -> dict[str, bytes]:
    files = {f"data/train/{i:04d}.txt": f"train {i}\n".encode() * (50 + i % 7) for i in range(300)}
    files.update({f"data/test/{i:03d}.txt": f"test {i}\n".encode() * 20 for i in range(40)})
    # 3 chunks, incompressible: stored as they are, so a read fetches one whole chunk
    files["data/test/big.bin"] = random.Random(0).randbytes(20 * MiB)
    files["README.md"] = b"# sample\n"
    return files


async def _push(repo: RepoSpec, tmp_path: Path, **settings: object) -> tuple[Config, Config]:
    """Push the sample; the pusher's config, and a reader's with its own (cold) home."""
    cfg = repo.config(home=tmp_path / "home", pack_size=64 * 1024, **settings)
    await etc.aregister(write_tree(tmp_path / "sample", _files()), config=cfg)
    await etc.apush("sample", config=cfg)
    return cfg, repo.config(home=tmp_path / "reader", **settings)


async def test_one_file_costs_the_record_the_root_one_piece_one_range(
    repo: RepoSpec, tmp_path: Path
) -> None:
    _, reader = await _push(repo, tmp_path)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        assert s.stats.requests == 2  # the version record, the manifest root
        entry = await v.entry("data/train/0123.txt")
        data = await v.read(entry)
        assert data == _files()["data/train/0123.txt"]
        assert s.stats.requests == 4  # + one piece, + one range
        assert s.stats.bytes_received < 20_000  # the range is the file, not its pack


async def test_many_small_files_of_a_pack_are_one_read(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        test = [f for f in await v.files("data/test") if f.path.endswith(".txt")]
        assert len(test) == 40
        before = s.stats.requests
        got = await v.read_many(test)
        assert got == [_files()[f.path] for f in test]
        packs = {f.object for f in test}
        assert s.stats.requests - before == len(packs)


async def test_a_few_bytes_of_a_large_file_fetch_only_their_chunk(
    repo: RepoSpec, tmp_path: Path
) -> None:
    _, reader = await _push(repo, tmp_path)
    big = _files()["data/test/big.bin"]
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        entry = await v.entry("data/test/big.bin")
        before = s.stats.bytes_received
        start = 9 * MiB + 5
        assert await v.read(entry, start, start + 100) == big[start : start + 100]
        assert s.stats.bytes_received - before == 8 * MiB  # the one chunk, verified
        assert await v.read(entry, 8 * MiB - 3, 8 * MiB + 3) == big[8 * MiB - 3 : 8 * MiB + 3]


async def test_a_root_without_first_paths_is_searched(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path)
    backend = file_repo.backend()
    try:
        record = VersionRecord.parse(await _get(backend, layout.ref_key("sample", 1)), "sample", 1)
        doc = json.loads(await _get(backend, layout.manifest_key(record.manifest)))
        del doc["firsts"]  # as a root written before they were recorded
        old = json.dumps(doc, separators=(",", ":")).encode()
        await backend.put(layout.manifest_key(sha256_hex(old)), old)
        older = VersionRecord("sample", 2, sha256_hex(old), files=record.files, size=record.size)
        await backend.put(layout.ref_key("sample", 2), older.to_json())
    finally:
        await backend.aclose()
    async with session(reader) as s:
        v = await open_version(s, "sample", 2)
        assert v.index.root.firsts is None
        wanted = ("data/train/0000.txt", "data/train/0299.txt", "README.md", "data/test/big.bin")
        for path in wanted:
            entry = await v.entry(path)
            assert entry.size == len(_files()[path])
        with pytest.raises(PathNotFoundError, match=r"nearest: data/train/0001\.txt"):
            await v.entry("data/train/0001.tx")


async def _get(backend: object, key: str) -> bytes:
    from etcetera.backends.base import Backend

    assert isinstance(backend, Backend)
    return b"".join([b async for b in backend.stream(key)])


async def test_bad_names_say_what_there_is(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path)
    async with session(reader) as s:
        with pytest.raises(DatasetNotFoundError, match=r"no version 7 .*\(versions: 1\)"):
            await open_version(s, "sample", 7)
        with pytest.raises(DatasetNotFoundError, match="does not exist"):
            await open_version(s, "nosuch", 1)
        v = await open_version(s, "sample")
        assert v.number == 1
        with pytest.raises(PathNotFoundError, match=r"nearest: data/train/0042\.txt"):
            await v.entry("data/train/0042.text")
        with pytest.raises(FileNotFoundError):
            await v.entry("nothing/here")
        assert await v.is_dir("data/train") and await v.is_dir("data")
        assert not await v.is_dir("data/train/0001.txt")


async def test_corrupt_object_is_an_integrity_error(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path, compression=0)  # a stored byte is a file's
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        entry = await v.entry("data/train/0007.txt")
        path = Path(file_repo.url.removeprefix("file://")) / layout.object_key(entry.object)
        blob = bytearray(path.read_bytes())
        blob[entry.offset] ^= 0xFF
        path.write_bytes(bytes(blob))
        with pytest.raises(IntegrityError, match=r"0007\.txt"):
            await v.read(entry)
        assert not any((tmp_path / "reader").rglob("*-*"))  # nothing bad kept in the cache


async def test_the_cache_serves_a_second_reader_and_drops_a_bad_entry(
    repo: RepoSpec, tmp_path: Path
) -> None:
    _, reader = await _push(repo, tmp_path)
    want = _files()["data/train/0200.txt"]
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        assert await v.read(await v.entry("data/train/0200.txt")) == want
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        assert await v.read(await v.entry("data/train/0200.txt")) == want
        assert s.stats.requests == 1  # the record: root, piece and bytes from the cache
    kept = [p for p in (tmp_path / "reader" / ".cache" / "objects").rglob("*-*") if p.is_file()]
    assert len(kept) == 1
    kept[0].write_bytes(b"x" * kept[0].stat().st_size)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        assert await v.read(await v.entry("data/train/0200.txt")) == want
        assert s.stats.requests == 2  # the record, and the range fetched again


async def test_the_cache_stays_within_its_size(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path, cache_size=100_000)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        for f in (await v.files("data/train"))[::10]:
            await v.read(f)
        assert v.cache is not None
        assert 0 < v.cache.size() <= 100_000


async def test_an_unwritable_cache_warns_once_and_reads_on(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    _, reader = await _push(file_repo, tmp_path)
    cache = tmp_path / "reader" / ".cache"
    cache.mkdir(parents=True)
    (cache / "objects").write_text("not a folder")
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        files = (await v.files("data/test"))[:5]
        with pytest.warns(UserWarning, match="cannot be written") as caught:
            got = [await v.read(f) for f in files]
        assert got == [_files()[f.path] for f in files]
        assert len(caught) == 1


async def test_a_version_removed_while_read(file_repo: RepoSpec, tmp_path: Path) -> None:
    cfg, reader = await _push(file_repo, tmp_path)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        entry = await v.entry("data/test/003.txt")
        # etc rm --remote, then etc gc, while the reader holds the version
        await etc.arm_remote("sample@1", config=cfg)
        root = Path(file_repo.url.removeprefix("file://"))
        (root / layout.object_key(entry.object)).unlink(missing_ok=True)
        with pytest.raises(DatasetNotFoundError, match=r"removed .* while it was read"):
            await v.read(entry)


async def test_a_hostile_piece_is_refused(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(file_repo, tmp_path)
    backend = file_repo.backend()
    try:
        record = VersionRecord.parse(await _get(backend, layout.ref_key("sample", 1)), "sample", 1)
        doc = json.loads(await _get(backend, layout.manifest_key(record.manifest)))
        doc["firsts"][1] = doc["firsts"][1] + "x"  # a first path the piece does not start at
        bad = json.dumps(doc, separators=(",", ":")).encode()
        await backend.put(layout.manifest_key(sha256_hex(bad)), bad)
        await backend.put(
            layout.ref_key("sample", 2), VersionRecord("sample", 2, sha256_hex(bad)).to_json()
        )
    finally:
        await backend.aclose()
    async with session(reader) as s:
        v = await open_version(s, "sample", 2)
        with pytest.raises(ManifestError, match="first path"):
            await v.files("")
    assert os.path.isdir(tmp_path / "reader")


async def test_a_pull_after_reading_takes_the_cache(repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = await _push(repo, tmp_path)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        wanted = [*(await v.files("data/test")), await v.entry("README.md")]
        await v.read_many(wanted)
    pulled = await etc.apull("sample", config=reader, partitions=["test"])
    assert pulled.stats.files_downloaded == 0
    assert pulled.stats.files_reused == len(wanted) == 42
    folder = tmp_path / "reader" / "sample"
    for path in ("data/test/big.bin", "data/test/007.txt", "README.md"):
        assert (folder / path).read_bytes() == _files()[path]


async def test_processes_sharing_a_cache_stay_within_its_size(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    import anyio.to_thread

    from tests.support import cli_env, run_etc_together

    await _push(file_repo, tmp_path)
    env = cli_env(file_repo, tmp_path / "reader", cache_size=2_000)
    paths = sorted(p for p in _files() if p.startswith("data/train/"))
    jobs = [(["cat", "sample@1", p], env) for p in paths[:6]]
    done = await anyio.to_thread.run_sync(run_etc_together, jobs)
    assert [d.returncode for d in done] == [0] * len(jobs), [d.stderr for d in done]
    assert [d.stdout for d in done] == [_files()[p].decode() for p in paths[:6]]
    cache = ObjectCache(tmp_path / "reader" / ".cache" / "objects", 2_000)
    assert 0 < cache.size() <= 2_000 + 6 * 600  # each process adds one range at most past it
