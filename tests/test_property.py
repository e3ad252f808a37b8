"""Random trees survive a push and a pull byte for byte, modes kept."""

from __future__ import annotations

import itertools
import shutil
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import etcetera as etc
from etcetera.format.paths import find_clashes
from tests.support import snapshot, write_tree

_counter = itertools.count()

_name = st.text(alphabet=st.sampled_from("abcXYZ019_-.é中ßΩ "), min_size=1, max_size=8).map(
    lambda s: unicodedata.normalize("NFC", s).strip(" .") or "x"
)
_path = st.lists(_name, min_size=1, max_size=3).map("/".join)
_content = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    st.integers(min_value=1, max_value=40_000).map(lambda n: bytes(range(256)) * (n // 256 + 1)),
)
_mode = st.sampled_from([0o644, 0o755, 0o640, 0o600])  # kept as they are (umask 022)


@st.composite
def trees(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, int]]:
    partitions = draw(st.lists(_name, min_size=1, max_size=3, unique_by=str.casefold))
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for rel in draw(st.lists(_path, max_size=25)):
        part = draw(st.sampled_from([*partitions, None]))
        path = f"data/{part}/{rel}" if part else f"extra/{rel}"
        if find_clashes([*files, path]):
            continue
        files[path] = draw(_content)
        modes[path] = draw(_mode)
    for part in partitions:
        files.setdefault(f"data/{part}/keep.txt", b"k")
    if find_clashes(files):
        files = {f"data/{partitions[0]}/only.txt": b"only"}
        modes = {}
    return files, modes


@given(trees())
def test_random_trees_roundtrip(
    tmp_path_factory: object, tree: tuple[dict[str, bytes], dict[str, int]]
) -> None:
    import pytest

    assert isinstance(tmp_path_factory, pytest.TempPathFactory)
    base = tmp_path_factory.mktemp(f"prop{next(_counter)}")
    files, modes = tree
    root = write_tree(base / "src", files, modes)
    (base / "repo").mkdir()
    url = f"file://{base / 'repo'}"
    cfg = etc.Config(url, home=base / "h1", pack_size=4096, pack_threshold=8192)
    etc.register(root, "rand", config=cfg)
    etc.push("rand", config=cfg)
    pulled = etc.pull("rand", config=etc.Config(url, home=base / "h2"))
    assert snapshot(pulled.location) == snapshot(root)
    shutil.rmtree(base)


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_crc32_of_pieces_combines_to_the_crc32_of_the_whole(pieces: list[bytes]) -> None:
    import zlib

    from etcetera.format.hashing import crc32_combine

    crc = zlib.crc32(pieces[0])
    for piece in pieces[1:]:
        crc = crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))


def test_a_part_checked_by_crc_yields_the_crc_the_store_checks(tmp_path: Path) -> None:
    import os
    import zlib

    from etcetera.engine.push import _read_part
    from etcetera.engine.scan import ScannedFile
    from etcetera.format.hashing import digest_file
    from etcetera.format.manifest import FileEntry

    chunk = 4096
    data = os.urandom(5 * chunk + 17)
    path = tmp_path / "f"
    path.write_bytes(data)
    digest, size = digest_file(path, chunk)
    st_ = path.stat()
    src = ScannedFile("f", str(path), size, 0o644, st_.st_mtime_ns, st_.st_ino)
    src.crcs = digest.crcs
    entry = FileEntry("f", size, 0o644, digest.hex, "obj", 0, digest.chunks)
    buf = bytearray(2 * chunk)
    crc = _read_part(src, entry, 2 * chunk, memoryview(buf), chunk)
    assert bytes(buf) == data[2 * chunk : 4 * chunk]
    assert crc == zlib.crc32(buf)


_CHUNK = 1024
_sizes = st.one_of(
    st.sampled_from([0, 1, _CHUNK - 1, _CHUNK, _CHUNK + 1, 2 * _CHUNK, 7 * _CHUNK + 3]),
    st.integers(min_value=0, max_value=80 * _CHUNK),
)


@given(st.lists(_sizes, min_size=1, max_size=6), st.integers(min_value=1, max_value=9))
def test_files_hashed_in_ranges_equal_the_sequential_digest(
    tmp_path_factory: object, sizes: list[int], threads: int
) -> None:
    """Chunk-parallel hashing gives, bit for bit, the digest, chunks and CRCs of one pass."""
    import functools
    import random

    import anyio
    import pytest

    from etcetera.engine.scan import HashCache, hash_files, scan_tree
    from etcetera.format.hashing import digest_file

    assert isinstance(tmp_path_factory, pytest.TempPathFactory)
    base = tmp_path_factory.mktemp(f"hash{next(_counter)}")
    # Random bytes: equal chunks would hide chunks joined out of order.
    rng = random.Random(len(sizes) * 1000 + threads)
    root = write_tree(base, {f"data/p/f{i}.bin": rng.randbytes(n) for i, n in enumerate(sizes)})
    scan = scan_tree(root)
    hashed = anyio.run(
        functools.partial(
            hash_files,
            scan,
            HashCache(None),
            name="t",
            chunk_size=_CHUNK,
            io=anyio.CapacityLimiter(threads),
            progress=None,
        )
    )
    for scanned, local in zip(scan.files, hashed, strict=True):
        digest, size = digest_file(scanned.source, _CHUNK)
        assert size == local.size == scanned.size
        assert (local.digest, local.chunks, scanned.crcs) == (
            digest.hex,
            digest.chunks,
            digest.crcs,
        )
