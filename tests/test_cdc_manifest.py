"""Content-chunked files in v3 manifests: extents round-trip, hostile chunk lists refused."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from etcetera.errors import ManifestError
from etcetera.format.chunkobjects import Extent
from etcetera.format.hashing import CHUNK_SIZE, combine
from etcetera.format.manifest import FileEntry, FileTable, Manifest, ObjectEntry
from etcetera.format.v2 import decode_manifest, encode_manifest

MiB = 1024 * 1024


def _d(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


def _obj(i: int) -> str:
    return hashlib.sha256(f"obj{i}".encode()).hexdigest()


def _chunked(
    path: str, sizes: list[int], where: list[tuple[int, int]], first: int
) -> tuple[FileEntry, tuple[Extent, ...]]:
    digests = [_d(first + k) for k in range(len(sizes))]
    ext = tuple(
        Extent(d, n, _obj(o), at) for d, n, (o, at) in zip(digests, sizes, where, strict=True)
    )
    entry = FileEntry(
        path, sum(sizes), 0o644, combine(digests), "", 0, tuple(d.hex() for d in digests)
    )
    return entry, ext


def _manifest() -> Manifest:
    sizes = [3 * MiB, 4 * MiB, 2 * MiB, 1 * MiB]  # 10 MiB: larger than one fixed chunk
    a, ea = _chunked("data/train/a.bin", sizes, [(1, 0), (1, 3 * MiB), (2, 0), (2, 2 * MiB)], 0)
    # b shares a's first two chunks (same object, same place) and has one of its own.
    b_sizes = [3 * MiB, 4 * MiB, 3 * MiB]
    digests = [_d(0), _d(1), _d(9)]
    eb = (ea[0], ea[1], Extent(_d(9), 3 * MiB, _obj(2), 3 * MiB))
    b = FileEntry(
        "data/train/b.bin",
        sum(b_sizes),
        0o644,
        combine(digests),
        "",
        0,
        tuple(d.hex() for d in digests),
    )
    objects = {
        _obj(1): ObjectEntry(_obj(1), "chunks", 7 * MiB),
        _obj(2): ObjectEntry(_obj(2), "chunks", 6 * MiB),
    }
    return Manifest((a, b), objects, ("train",), CHUNK_SIZE, extents={a.path: ea, b.path: eb})


def test_content_chunked_files_round_trip_through_a_v3_manifest() -> None:
    manifest = _manifest()
    encoded = encode_manifest(manifest)
    back = decode_manifest(encoded.root, encoded.pieces)
    assert back == manifest
    assert back.extents["data/train/b.bin"][2].object == _obj(2)


def _broken(change: str) -> Manifest:
    m = _manifest()
    ea = list(m.extents["data/train/a.bin"])
    if change == "sizes":
        ea[3] = ea[3]._replace(size=ea[3].size - 1)
    elif change == "outside":
        ea[3] = ea[3]._replace(offset=5 * MiB + 1)
    elif change == "shared":  # b's own chunk declared with a's digest but another length
        eb = list(m.extents["data/train/b.bin"])
        eb[2] = eb[2]._replace(digest=_d(3))
        b = m.files[1]
        digests = [_d(0), _d(1), _d(3)]
        b = b._replace(digest=combine(digests), chunks=tuple(d.hex() for d in digests))
        return replace(
            m, files=FileTable.of((m.files[0], b)), extents={**m.extents, b.path: tuple(eb)}
        )
    return replace(m, extents={**m.extents, "data/train/a.bin": tuple(ea)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("sizes", "do not add up"),
        ("outside", "outside its object"),
        ("shared", "listed with two lengths"),
    ],
)
def test_hostile_chunk_lists_are_refused_in_one_line(change: str, message: str) -> None:
    encoded = encode_manifest(_broken(change))
    with pytest.raises(ManifestError, match=message) as err:
        decode_manifest(encoded.root, encoded.pieces)
    assert "\n" not in str(err.value)
