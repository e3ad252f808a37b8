"""Content-chunked files (format v3) read in place: etc://, RemotePath, etc cat, the stream.

A file a push cut by content has no place of its own: its chunks lie in chunk objects.
Every read-without-pull path must give its bytes, fetching only the chunks a range
touches, each verified against its chunk digest.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import etcetera as etc
from etcetera.api.session import session
from etcetera.engine import manifests
from etcetera.errors import EtceteraError, IntegrityError, ManifestError
from etcetera.format import layout
from etcetera.format.chunkobjects import Extent
from etcetera.format.compression import compress
from etcetera.format.hashing import combine
from etcetera.format.manifest import FileEntry, Manifest
from etcetera.fs import EtcFileSystem
from etcetera.reading import open_version
from etcetera.reading.chunks import ChunkMap
from etcetera.settings import Config
from tests import hostile
from tests.support import RepoSpec, cli_env, write_tree

pytestmark = pytest.mark.anyio

MiB = 1 << 20
BIG = "data/train/big.bin"


def _files(text: bool = False) -> dict[str, bytes]:
    rng = random.Random(11)
    if text:  # compressible, yet varied enough to be cut into many chunks
        big = "".join(rng.choices("abcdefgh \n", k=20 * MiB)).encode()
    else:
        big = rng.randbytes(20 * MiB)
    files = {f"data/train/{i:03d}.txt": f"train {i}\n".encode() * (20 + i) for i in range(30)}
    files[BIG] = big
    files["README.md"] = b"# sample\n"
    return files


def _push(repo: RepoSpec, tmp_path: Path, *, text: bool = False, compression: int = 3) -> Config:
    """Push the sample with content-defined chunks; a reader's config (a cold home)."""
    cfg = repo.config(
        home=tmp_path / "home",
        content_chunks=True,
        pack_size=64 * 1024,
        compression=compression,
    )
    etc.register(write_tree(tmp_path / "sample", _files(text)), config=cfg)
    etc.push("sample", config=cfg)
    return repo.config(home=tmp_path / "reader")


@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=-5, max_value=500),
)
def test_a_chunk_map_gives_the_chunks_of_a_range_and_joins_them(
    sizes: list[int], start: int, length: int
) -> None:
    data = random.Random(len(sizes)).randbytes(sum(sizes))
    cuts = [0, *(sum(sizes[: i + 1]) for i in range(len(sizes)))]
    # The chunks lie in two objects, the odd ones first: not in file order.
    extents = [
        Extent(hashlib.sha256(data[a:b]).digest(), b - a, f"o{i % 2}", 1000 * i)
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    digests = tuple(e.digest.hex() for e in extents)
    entry = FileEntry("f", len(data), 0o644, combine([e.digest for e in extents]), "", 0, digests)
    m = ChunkMap(entry, extents)
    end = start + length
    touched = m.touched(start, end)
    want = data[start:end]
    assert bool(touched) == bool(want)
    got = {u: data[a:b] for u, (a, b) in zip(m.units, itertools.pairwise(cuts), strict=True)}
    assert m.assemble(start, end, got) == want
    assert m.assemble(start, end, {u: got[u] for u in touched}) == want  # no other chunk
    if want:
        lo, hi = m.bounds(start, end)
        assert lo in cuts and hi in cuts and lo <= start < end and min(end, len(data)) <= hi
        assert sum(u.length for u in touched) == hi - lo


@pytest.fixture
def reader(repo: RepoSpec, tmp_path: Path) -> Config:
    return _push(repo, tmp_path)


async def _manifest(cfg: Config, number: int = 1) -> Manifest:
    async with session(cfg) as s:
        v = await open_version(s, "sample", number)
        return await manifests.read_manifest(s.transport, v.record.manifest)


def _touched(extents: tuple[Extent, ...], start: int, end: int) -> list[Extent]:
    """The extents holding any byte of ``start .. end`` of their file."""
    out, at = [], 0
    for e in extents:
        if at < end and start < at + e.size:
            out.append(e)
        at += e.size
    return out


@pytest.fixture
def etcfs(reader: Config, repo: RepoSpec) -> Iterator[EtcFileSystem]:
    fs = EtcFileSystem(
        skip_instance_cache=True, url=repo.url, home=str(reader.home), **repo.settings
    )
    yield fs
    fs.close()


async def test_the_file_is_content_chunked_across_chunk_objects(reader: Config) -> None:
    m = await _manifest(reader)
    entry = next(f for f in m.files if f.path == BIG)
    assert entry.object == "" and len(m.extents[BIG]) > 10
    assert all(m.objects[e.object].kind == "chunks" for e in m.extents[BIG])


def test_etc_fs_reads_a_chunked_file_with_ranges_and_seeks(etcfs: EtcFileSystem) -> None:
    big = _files()[BIG]
    path = f"sample/{BIG}"
    assert etcfs.info(path)["size"] == len(big)
    sizes = {i["name"]: i["size"] for i in etcfs.ls("sample/data/train")}
    assert sizes[path] == len(big)
    assert etcfs.cat_file(path) == big
    assert etcfs.cat_file(path, 7 * MiB + 3, 9 * MiB - 5) == big[7 * MiB + 3 : 9 * MiB - 5]
    assert etcfs.cat_file(path, -100) == big[-100:]
    got = etcfs.cat_ranges(
        [path, path, "sample/data/train/003.txt", path],
        [0, 19 * MiB, 0, 5],
        [10, 20 * MiB, None, 4],
    )
    assert got == [big[:10], big[19 * MiB :], _files()["data/train/003.txt"], b""]
    with etcfs.open(path) as fh:
        fh.seek(12 * MiB + 1)
        assert fh.read(MiB) == big[12 * MiB + 1 : 13 * MiB + 1]
        fh.seek(-7, 2)
        assert fh.read() == big[-7:] and fh.tell() == len(big)
        fh.seek(3)
        assert fh.read(5) == big[3:8]


def test_remote_paths_and_the_stream_read_a_chunked_file(reader: Config) -> None:
    files = _files()
    with etc.remote("sample@1", config=reader) as ds:
        p = ds["train"] / "big.bin"
        assert p.stat().st_size == len(files[BIG])
        assert p.read_bytes() == files[BIG]
        with p.open() as fh:
            fh.seek(15 * MiB - 2)
            assert fh.read(4) == files[BIG][15 * MiB - 2 : 15 * MiB + 2]
    train = {k: v for k, v in files.items() if k.startswith("data/train/")}
    got = dict(etc.stream("sample", "train", config=reader, seed=1))
    assert got.keys() == train.keys()
    assert got[BIG] == files[BIG]
    assert got == train


async def test_a_mib_in_the_middle_fetches_only_the_chunks_covering_it(
    reader: Config, repo: RepoSpec, tmp_path: Path
) -> None:
    big = _files()[BIG]
    m = await _manifest(reader)
    lo, hi = 10 * MiB, 11 * MiB
    touched = _touched(m.extents[BIG], lo, hi)
    cold = repo.config(home=tmp_path / "cold")
    async with session(cold) as s:
        v = await open_version(s, "sample", 1)
        entry = await v.entry(BIG)
        requests, received = s.stats.requests, s.stats.bytes_received
        assert await v.read(entry, lo, hi) == big[lo:hi]
        # One ranged read per chunk object touched (a file's chunks lie side by side).
        assert s.stats.requests - requests == len({e.object for e in touched})
        assert s.stats.bytes_received - received == sum(e.size for e in touched)
        assert sum(e.size for e in touched) < 3 * MiB
    async with session(cold) as s:  # a second reader of the home: the cache serves it
        v = await open_version(s, "sample", 1)
        entry = await v.entry(BIG)
        received = s.stats.bytes_received
        assert await v.read(entry, lo + 5, hi - 5) == big[lo + 5 : hi - 5]
        assert s.stats.bytes_received == received
    fs = EtcFileSystem(
        skip_instance_cache=True, url=repo.url, home=str(tmp_path / "fs"), **repo.settings
    )
    try:
        with fs.open(f"sample/{BIG}") as fh:
            fh.seek(lo)
            before = fs.stats.bytes_received
            assert fh.read(hi - lo) == big[lo:hi]
            assert fs.stats.bytes_received - before == sum(e.size for e in touched)
    finally:
        fs.close()


async def test_a_corrupt_chunk_is_an_integrity_error(file_repo: RepoSpec, tmp_path: Path) -> None:
    reader = _push(file_repo, tmp_path)
    big = _files()[BIG]
    m = await _manifest(reader)
    extents = m.extents[BIG]
    bad = extents[len(extents) // 2]
    at = sum(e.size for e in extents[: len(extents) // 2])  # its file offset
    path = Path(file_repo.url.removeprefix("file://")) / layout.object_key(bad.object)
    stored = bytearray(path.read_bytes())
    stored[bad.offset + bad.size // 2] ^= 0xFF
    path.write_bytes(bytes(stored))
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        entry = await v.entry(BIG)
        with pytest.raises(IntegrityError, match=r"big\.bin") as err:
            await v.read(entry, at + 10, at + 20)
        assert "\n" not in str(err.value)
        assert await v.read(entry, 0, 1000) == big[:1000]  # other chunks still verify
    kept = [p.name.split("-") for p in (tmp_path / "reader").rglob(f"{bad.object}/*-*")]
    assert kept  # the good chunk read after it
    assert not [r for r in kept if int(r[0]) <= bad.offset < int(r[1])]  # not the bad one


async def test_hostile_chunk_places_are_one_line_errors(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    reader = _push(file_repo, tmp_path)
    repo = Path(file_repo.url.removeprefix("file://"))
    m = await _manifest(reader)
    extents = list(m.extents[BIG])
    last = extents[-1]
    extents[-1] = last._replace(offset=m.objects[last.object].size - last.size + 1)
    outside = replace(m, extents={**m.extents, BIG: tuple(extents)})
    hostile.record(repo, hostile.publish(repo, outside), 2, "sample")
    # A chunk object shorter than the manifest says.
    first = m.extents[BIG][0]
    short = first.object
    key = repo / layout.object_key(short)
    key.write_bytes(key.read_bytes()[: first.offset + first.size // 2])
    async with session(reader) as s:
        v2 = await open_version(s, "sample", 2)
        with pytest.raises(ManifestError, match="outside its object") as err:
            await v2.entry(BIG)
        assert "\n" not in str(err.value)
        v1 = await open_version(s, "sample", 1)
        entry = await v1.entry(BIG)
        with pytest.raises(EtceteraError, match=short[:16]) as err2:
            await v1.read(entry, 0, 10)
        assert "\n" not in str(err2.value)


async def test_framed_chunk_objects_are_inflated_and_verified(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    reader = _push(file_repo, tmp_path, text=True, compression=0)  # framed below, by hand
    big = _files(text=True)[BIG]
    repo = Path(file_repo.url.removeprefix("file://"))
    m = await _manifest(reader)
    objects = dict(m.objects)
    stored_total = 0
    for oid in {e.object for e in m.extents[BIG]}:
        path = repo / layout.object_key(oid)
        framed = compress(path.read_bytes(), 3, 64 * 1024)
        assert framed is not None
        data, frames = framed
        path.write_bytes(data)
        stored_total += len(data)
        objects[oid] = objects[oid]._replace(encoding="zstd", frame_size=64 * 1024, frames=frames)
    hostile.record(repo, hostile.publish(repo, replace(m, objects=objects)), 2, "sample")
    async with session(reader) as s:
        v = await open_version(s, "sample", 2)
        entry = await v.entry(BIG)
        received = s.stats.bytes_received
        assert await v.read(entry) == big
        # Compressed bytes arrive (a frame at the edge of two ranges twice at most).
        assert stored_total < len(big) // 2
        assert s.stats.bytes_received - received < stored_total + 4 * 64 * 1024
        lo = 10 * MiB + 7
        assert await v.read(entry, lo, lo + 100) == big[lo : lo + 100]


def test_etc_cat_writes_a_chunked_file(file_repo: RepoSpec, tmp_path: Path) -> None:
    reader = _push(file_repo, tmp_path)
    env = cli_env(file_repo, Path(reader.home))
    done = subprocess.run(
        [sys.executable, "-m", "etcetera", "cat", "sample@1", BIG],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == _files()[BIG]


async def test_a_pull_after_reading_takes_the_chunks_from_the_cache(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    reader = _push(file_repo, tmp_path)
    async with session(reader) as s:
        v = await open_version(s, "sample", 1)
        assert await v.read(await v.entry(BIG)) == _files()[BIG]
    pulled = await etc.apull("sample", config=reader)
    assert pulled.stats.files_reused >= 1
    assert pulled.stats.bytes_received < MiB  # the small files' packs, not the chunks
    assert (Path(reader.home) / "sample" / BIG).read_bytes() == _files()[BIG]


def test_workers_of_a_loader_share_a_chunked_file(file_repo: RepoSpec, tmp_path: Path) -> None:
    reader = _push(file_repo, tmp_path)
    s = etc.stream("sample", "train", config=reader, seed=2, batch_size=4)
    got = {x.path: x.data for w in range(2) for x in s.for_worker(w, 2)}
    assert got == {k: v for k, v in _files().items() if k.startswith("data/train/")}
