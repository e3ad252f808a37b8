"""Content-defined chunks of large files: the cut, chunk objects, delta push and pull.

Byte counts are deterministic, so the goals of the format are asserted here at 1/16
scale: 64 MiB files cut with a sixteenth of the default chunk sizes have as many chunks
as 1 GiB files with the defaults, so every ratio is the one at 1 GiB
(``benchmarks/delta.py`` measures the defaults at full size).
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from etcetera.backends.file import FileBackend
from etcetera.engine import pull as engine_pull
from etcetera.engine.chunked import chunk_files, pull_chunked, push_chunked
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport
from etcetera.errors import IntegrityError, ManifestError, SourceChangedError
from etcetera.format import cdc, layout
from etcetera.format.chunkobjects import Extent, known_chunks
from etcetera.format.chunkplan import check_extents, coalesce, plan
from etcetera.format.hashing import combine
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.urls import parse_url

pytestmark = pytest.mark.anyio

MiB = cdc.MiB
SIXTEENTH = cdc.Chunking(min_size=32 * 1024, avg_size=32 * 1024, max_size=256 * 1024)
SCALE = 64 * MiB  # stands for 1 GiB
TARGET = 2 * MiB  # chunk objects, at the same scale


def noise(n: int, seed: int) -> bytes:
    """``n`` deterministic random bytes."""
    rng = random.Random(seed)
    block = 8 * MiB
    return b"".join(rng.randbytes(min(block, n - i)) for i in range(0, n, block))


def test_a_file_is_cut_as_its_bytes_are_in_memory(tmp_path: Path) -> None:
    data = noise(20 * MiB + 12345, 1)
    (tmp_path / "f").write_bytes(data)
    chunks, size = cdc.chunk_file(tmp_path / "f")
    assert size == len(data)
    assert chunks == cdc.cut(memoryview(data))
    assert sum(c.size for c in chunks) == len(data)
    assert all(cdc.DEFAULT.min_size <= c.size <= cdc.DEFAULT.max_size for c in chunks[:-1])
    assert [c.offset for c in chunks] == [
        sum(c.size for c in chunks[:i]) for i in range(len(chunks))
    ]


def test_cuts_running_at_once_read_each_into_its_own_window(tmp_path: Path) -> None:
    """Read windows are kept between cuts (``KEPT_WINDOWS``), never shared by two at once."""
    count = cdc.KEPT_WINDOWS + 3
    files = [noise(cdc.WINDOW + MiB + 999 * i, 10 + i) for i in range(count)]
    for i, data in enumerate(files):
        (tmp_path / f"f{i}").write_bytes(data)
    for _ in range(2):  # the second time with the windows the first one left
        with ThreadPoolExecutor(count) as pool:
            got = list(pool.map(lambda i: cdc.chunk_file(tmp_path / f"f{i}"), range(count)))
        assert got == [(cdc.cut(memoryview(data)), len(data)) for data in files]


def test_an_empty_file_has_no_chunks_and_a_small_one_one(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    (tmp_path / "s").write_bytes(b"abc")
    assert cdc.chunk_file(tmp_path / "e") == ([], 0)
    chunks, size = cdc.chunk_file(tmp_path / "s")
    assert size == 3 and len(chunks) == 1
    import hashlib

    assert cdc.file_digest(chunks) == hashlib.sha256(b"abc").hexdigest()


def test_the_file_is_closed_when_its_parameters_are_refused(tmp_path: Path) -> None:
    """FastCDC refuses a centre above the maximum: the descriptor handed over is closed."""
    (tmp_path / "f").write_bytes(b"abc")
    refused = cdc.Chunking(min_size=64 * 1024, avg_size=4 << 20, max_size=512 * 1024)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    with pytest.raises(ValueError, match="avg_size"):
        cdc.chunk_fd(fd, refused)
    with pytest.raises(OSError, match="Bad file descriptor"):  # none opened since
        os.fstat(fd)


def _transport(tmp_path: Path) -> Transport:
    (tmp_path / "repo").mkdir(exist_ok=True)
    return Transport(FileBackend(parse_url(f"file://{tmp_path / 'repo'}")), TransferConfig())


async def _push(
    t: Transport, path: Path, known: dict[bytes, Extent], params: cdc.Chunking = SIXTEENTH
) -> tuple[list[Extent], int]:
    """Push one file; its extents and the bytes sent."""
    before = t.stats.bytes_sent
    size = path.stat().st_size
    (chunks,) = await chunk_files(t, [str(path)], [size], params)
    pushed = await push_chunked(t, [(str(path), chunks)], known, TARGET)
    return pushed.extents[str(path)], t.stats.bytes_sent - before


async def _pull(
    t: Transport, extents: list[Extent], dest: Path, local: Path | None, local_extents: list[Extent]
) -> int:
    """Pull one file into ``dest``; the bytes received."""
    before = t.stats.bytes_received
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        await pull_chunked(t, "f", extents, fd, str(local) if local else None, local_extents)
    finally:
        os.close(fd)
    return t.stats.bytes_received - before


def _insert(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + noise(SCALE // 1024, 9) + data[mid:]  # 1 MiB in 1 GiB


def _append(data: bytes) -> bytes:
    return data + noise(len(data) // 10, 8)


def _edits(data: bytes) -> bytes:
    out = bytearray(data)
    rng = random.Random(7)
    for i in range(20):  # spread: one in each twentieth
        at = i * len(out) // 20 + rng.randrange(len(out) // 20 - 100)
        out[at : at + 100] = rng.randbytes(100)
    return bytes(out)


@pytest.mark.parametrize(
    ("edit", "push_limit", "pull_limit"),
    [(_insert, 0.02, 0.02), (_append, 0.12, 0.12), (_edits, 0.05, 0.05)],
    ids=["insert-1MiB-per-GiB", "append-10pct", "twenty-edits"],
)
async def test_a_changed_file_moves_only_its_new_chunks(
    tmp_path: Path, edit: object, push_limit: float, pull_limit: float
) -> None:
    assert callable(edit)
    t = _transport(tmp_path)
    old = noise(SCALE, 3)
    new: bytes = edit(old)
    (tmp_path / "v1").write_bytes(old)
    (tmp_path / "v2").write_bytes(new)
    first, sent1 = await _push(t, tmp_path / "v1", {})
    assert sent1 == len(old)
    second, sent2 = await _push(t, tmp_path / "v2", known_chunks([first]))
    assert sent2 <= push_limit * len(old), sent2 / len(old)
    # A machine holding version 1 pulls version 2.
    got = await _pull(t, second, tmp_path / "out", tmp_path / "v1", first)
    assert got <= pull_limit * len(old), got / len(old)
    assert (tmp_path / "out").read_bytes() == new
    # One holding nothing pulls it whole; its reads span the gaps of replaced chunks
    # that are smaller than chunkplan.GAP (all of them at this scale, none at 1 GiB).
    got = await _pull(t, second, tmp_path / "fresh", None, [])
    assert len(new) <= got <= 1.05 * len(new)
    assert (tmp_path / "fresh").read_bytes() == new


async def test_a_local_copy_that_changed_is_fetched_instead(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    data = noise(4 * MiB, 4)
    (tmp_path / "v1").write_bytes(data)
    extents, _ = await _push(t, tmp_path / "v1", {})
    with open(tmp_path / "v1", "r+b") as fh:  # the user edited the pulled copy
        fh.seek(MiB)
        fh.write(b"x" * 1000)
    got = await _pull(t, extents, tmp_path / "out", tmp_path / "v1", extents)
    assert (tmp_path / "out").read_bytes() == data
    assert 0 < got < len(data)


async def test_a_file_that_changed_after_hashing_is_not_stored(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    (tmp_path / "v1").write_bytes(noise(4 * MiB, 5))
    (chunks,) = await chunk_files(t, [str(tmp_path / "v1")], [4 * MiB], SIXTEENTH)
    (tmp_path / "v1").write_bytes(noise(4 * MiB, 6))
    with pytest.raises(ExceptionGroup) as info:  # the API layer unwraps task groups
        await push_chunked(t, [(str(tmp_path / "v1"), chunks)], {}, TARGET)
    assert info.group_contains(SourceChangedError)
    assert not (tmp_path / "repo" / layout.OBJECTS).exists() or not [
        p for p in (tmp_path / "repo" / layout.OBJECTS).rglob("*") if p.is_file()
    ]


async def test_chunks_shared_across_files_are_stored_once(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    data = noise(6 * MiB, 10)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    sizes = [len(data)] * 2
    ca, cb = await chunk_files(t, [str(tmp_path / "a"), str(tmp_path / "b")], sizes, SIXTEENTH)
    pushed = await push_chunked(
        t, [(str(tmp_path / "a"), ca), (str(tmp_path / "b"), cb)], {}, TARGET
    )
    assert t.stats.bytes_sent == len(data) == pushed.bytes_new
    assert pushed.extents[str(tmp_path / "a")] == pushed.extents[str(tmp_path / "b")]
    assert all(o.size <= 2 * TARGET for o in pushed.objects) and len(pushed.objects) > 1


async def test_a_repeated_chunk_is_read_once(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    block = noise(512 * 1024, 11)
    data = block * 8  # the same chunks again and again
    (tmp_path / "v1").write_bytes(data)
    extents, sent = await _push(t, tmp_path / "v1", {})
    assert sent < len(data) // 4
    got = await _pull(t, extents, tmp_path / "out", None, [])
    assert (tmp_path / "out").read_bytes() == data
    assert got == sent


async def test_a_chunk_object_with_other_bytes_is_refused(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    (tmp_path / "v1").write_bytes(noise(3 * MiB, 12))
    extents, _ = await _push(t, tmp_path / "v1", {})
    key = tmp_path / "repo" / layout.object_key(extents[0].object)
    body = bytearray(key.read_bytes())
    body[10] ^= 1
    key.chmod(0o644)
    key.write_bytes(bytes(body))
    with pytest.raises(ExceptionGroup) as info:
        await _pull(t, extents, tmp_path / "out", None, [])
    assert info.group_contains(IntegrityError, match="does not match its digest")


def _ext(size: int, obj: str = "a" * 64, offset: int = 0, digest: bytes = b"\1" * 32) -> Extent:
    return Extent(digest, size, obj, offset)


def test_chunk_lists_whose_sizes_do_not_add_up_are_refused() -> None:
    objects = {"a" * 64: 100}
    check_extents("f", 100, [_ext(60), _ext(40, offset=60)], objects)
    with pytest.raises(ManifestError, match="add up to 90 bytes, not 100"):
        check_extents("f", 100, [_ext(60), _ext(30, offset=60)], objects)
    with pytest.raises(ManifestError, match="past the end of object"):
        check_extents("f", 100, [_ext(60), _ext(40, offset=61)], objects)
    with pytest.raises(ManifestError, match="chunk of 0 bytes"):
        check_extents("f", 100, [_ext(100), _ext(0)], objects)
    with pytest.raises(ManifestError, match="unlisted object"):
        check_extents("f", 100, [_ext(100, obj="b" * 64)], objects)
    with pytest.raises(ManifestError, match="chunk of"):
        check_extents("f", 2**40, [_ext(2**40)], {"a" * 64: 2**40})


def test_chunks_shared_between_files_with_different_declared_contents_are_refused() -> None:
    same = b"\2" * 32
    with pytest.raises(ManifestError, match="with sizes 10 and 20"):
        known_chunks([[_ext(10, digest=same)], [_ext(20, digest=same, offset=10)]])


def test_reads_coalesce_nearby_chunks_of_one_object_only() -> None:
    a, b = "a" * 64, "b" * 64
    fetch = [
        (_ext(10, a, 0, b"\1" * 32), 0),
        (_ext(10, a, 10, b"\2" * 32), 10),
        (_ext(10, b, 0, b"\3" * 32), 20),
        (_ext(10, a, 10_000_000, b"\4" * 32), 30),
    ]
    reads = coalesce(fetch)
    assert [(r.object, r.start, r.length, len(r.pieces)) for r in reads] == [
        (a, 0, 20, 2),
        (a, 10_000_000, 10, 1),
        (b, 0, 10, 1),
    ]
    p = plan([e for e, _ in fetch], {b"\3" * 32: 5})
    assert p.bytes_copied == 10 and p.bytes_fetched == 30 and p.size == 40


def test_gc_counts_the_bytes_partly_used_chunk_objects_hold() -> None:
    from etcetera.format.chunkobjects import usage

    a, b, c = "a" * 64, "b" * 64, "c" * 64
    live = [
        _ext(10, a, 0),
        _ext(10, a, 0),  # the same chunk in two versions
        _ext(10, a, 30),
        _ext(25, b, 0),
        _ext(15, b, 20),  # overlapping (another cut of the same bytes)
        _ext(5, "d" * 64, 0),  # not a chunk object of this count
    ]
    objects = {o: ObjectEntry(o, "chunks", n) for o, n in ((a, 50), (b, 35), (c, 40))}
    got = usage(objects, live)
    assert (got.objects, got.size, got.unused) == (1, 50, 30)
    # Compressed in frames of 16 bytes: each frame's stored bytes in its unused share.
    objects[a] = objects[a]._replace(encoding="zstd", frame_size=16, frames=(8, 8, 8, 4))
    got = usage(objects, live)
    # Used: 0..10 and 30..40. Frames 0..16 (6 free), 16..32 (14), 32..48 (8), 48..50 (2).
    want = 8 * 6 // 16 + 8 * 14 // 16 + 8 * 8 // 16 + 4 * 2 // 2
    assert (got.objects, got.size, got.unused) == (1, objects[a].stored_size, want)


async def _manifest_of(t: Transport, path: Path, known: dict[bytes, Extent]) -> Manifest:
    """Push ``path`` as chunks; the manifest of a dataset holding it at data/all/big.

    With the default chunk sizes: a pull cuts its local copy with them.
    """
    extents, _ = await _push(t, path, known, cdc.DEFAULT)
    digests = [e.digest for e in extents]
    entry = FileEntry(
        "data/all/big",
        path.stat().st_size,
        0o644,
        combine(digests),
        "",
        0,
        tuple(d.hex() for d in digests),
    )
    objects: dict[str, ObjectEntry] = {}
    for o in {e.object for e in extents}:
        info = await t.head(layout.object_key(o))
        assert info is not None
        objects[o] = ObjectEntry(o, "chunks", info.size)
    return Manifest((entry,), objects, ("all",), extents={entry.path: tuple(extents)})


async def test_the_engine_pulls_a_chunked_file_from_its_previous_version(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    old = noise(16 * MiB, 21)
    (tmp_path / "v1").write_bytes(old)
    (tmp_path / "v2").write_bytes(_insert(old))
    first = await _manifest_of(t, tmp_path / "v1", {})
    second = await _manifest_of(t, tmp_path / "v2", known_chunks([first.extents["data/all/big"]]))
    # Version 1 pulled whole, then version 2 next to it, copying what version 1 holds.
    dest1, dest2 = tmp_path / "d1", tmp_path / "d2"
    await engine_pull.fetch(t, first, list(first.files), dest1, tmp_path / "t1", name="big")
    assert (dest1 / "data/all/big").read_bytes() == old
    before = t.stats.bytes_received
    await engine_pull.fetch(
        t,
        second,
        list(second.files),
        dest2,
        tmp_path / "t2",
        name="big",
        previous=lambda p: str(dest1 / p),
    )
    assert (dest2 / "data/all/big").read_bytes() == _insert(old)
    # 64 KiB inserted and the chunks around it (0.77 MiB each on average).
    assert t.stats.bytes_received - before <= 0.25 * len(old)
    assert t.stats.bytes_reused >= 0.75 * len(old)
    assert oct((dest2 / "data/all/big").stat().st_mode & 0o777) == oct(0o644)


async def test_an_interrupted_chunked_pull_keeps_the_chunks_it_wrote(tmp_path: Path) -> None:
    t = _transport(tmp_path)
    data = noise(12 * MiB, 22)
    (tmp_path / "v1").write_bytes(data)
    m = await _manifest_of(t, tmp_path / "v1", {})
    (entry,) = m.files
    (tmp_path / "t").mkdir()
    # What a killed pull left: the first half of the file written.
    (tmp_path / "t" / f"{entry.digest}.chunked").write_bytes(data[: 6 * MiB])
    await engine_pull.fetch(t, m, [entry], tmp_path / "d", tmp_path / "t", name="big")
    assert (tmp_path / "d" / entry.path).read_bytes() == data
    assert t.stats.bytes_resumed >= 5 * MiB
    assert t.stats.bytes_received <= len(data) - 5 * MiB
