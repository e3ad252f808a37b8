"""Format v3 pieces: object encodings, frame tables and chunk places; hostile ones refused."""

from __future__ import annotations

import hashlib
from dataclasses import astuple, replace

import pytest
import zstandard

from etcetera.errors import ManifestError
from etcetera.format import frames, pieces, v3
from etcetera.format.hashing import combine, sha256_hex
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.v2 import ManifestRoot, decode_manifest, encode_manifest
from tests.test_manifest_v2 import _one_piece

CHUNK = 8 * 1024 * 1024
FRAME = 1 << 20


def _digest(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _framed(size: int, stored_each: int = 1000) -> tuple[int, ...]:
    return (stored_each,) * frames.frame_count(size, FRAME)


def _manifest() -> Manifest:
    """A framed pack of two files, an identity blob of three fixed chunks, an empty file."""
    chunks = (_digest(10), _digest(11), _digest(12))
    big = combine([bytes.fromhex(c) for c in chunks])
    pack = _digest(-1)
    size = 2 * CHUNK + 5
    files = (
        FileEntry("data/train/a", 3 * FRAME, 0o644, _digest(1), pack, 0),
        FileEntry("data/train/b", 10, 0o755, _digest(2), pack, 3 * FRAME),
        FileEntry("data/train/big", size, 0o644, big, big, 0, chunks),
        FileEntry("data/train/empty", 0, 0o644, sha256_hex(b"")),
    )
    objects = {
        pack: ObjectEntry(pack, "pack", 3 * FRAME + 10, "zstd", FRAME, _framed(3 * FRAME + 10)),
        big: ObjectEntry(big, "blob", size),
    }
    return Manifest(files, objects, ("train",))


def test_a_v3_manifest_round_trips_with_its_frames() -> None:
    manifest = _manifest()
    encoded = encode_manifest(manifest)
    assert ManifestRoot.parse(encoded.root).version == 3
    back = decode_manifest(encoded.root, encoded.pieces)
    assert back == manifest
    pack = back.objects[_digest(-1)]
    assert pack.stored_size == 4 * 1000 + frames.seek_table_size(4)
    assert back.objects[back.files[2].object].stored_size == 2 * CHUNK + 5


def _placed() -> pieces.Columns:
    """The train piece of :func:`_manifest`, decoded (v3 columns with chunk places)."""
    encoded = encode_manifest(_manifest())
    (stored,) = encoded.pieces.values()
    return pieces.decode(zstandard.ZstdDecompressor().decompress(stored), 3)


def test_the_piece_places_fixed_chunks_in_their_blob() -> None:
    cols = _placed()
    j = cols.paths.index("data/train/big")
    assert (cols.objects[j], cols.offsets[j]) == (-1, 0)
    assert cols.chunk_lengths[j] == (CHUNK, CHUNK, 5)
    assert cols.chunk_offsets[j] == (0, CHUNK, 2 * CHUNK)
    assert len(set(cols.chunk_objects[j])) == 1
    assert cols.object_encodings.count("zstd") == 1


def _with(cols: pieces.Columns, column: str, row: int, value: object) -> pieces.Columns:
    values = list(getattr(cols, column))
    values[row] = value
    return replace(cols, **{column: values})  # type: ignore[arg-type]


def _object(cols: pieces.Columns, kind: str) -> int:
    return cols.object_kinds.index(kind)


def _big(cols: pieces.Columns) -> int:
    return cols.paths.index("data/train/big")


def _hostile() -> dict[str, tuple[pieces.Columns, str]]:
    c = _placed()
    p, b, j = _object(c, "pack"), _object(c, "blob"), _big(c)
    frames_of = c.object_frames[p]
    return {
        "frames-past-stored": (_with(c, "object_stored", p, c.object_stored[p] - 1), "add up"),
        "frames-short": (_with(c, "object_frames", p, frames_of[:-1]), "cover"),
        "frame-too-long": (
            _with(c, "object_frames", p, (*frames_of[:-1], 3 * FRAME)),
            "bound",
        ),
        "frame-size-zero": (_with(c, "object_frame_sizes", p, 0), "frame size"),
        "frame-size-huge": (_with(c, "object_frame_sizes", p, 1 << 30), "frame size"),
        "identity-stored": (_with(c, "object_stored", b, 1), "identity"),
        "identity-frames": (_with(c, "object_frames", b, (10,)), "identity"),
        "logical-enormous": (_with(c, "object_stored", p, 1 << 60), "out of range"),
        "logical-enormous-blob": (
            _with(_with(c, "object_sizes", b, 1 << 60), "object_stored", b, 1 << 60),
            "out of range",
        ),
        "logical-enormous-framed": (_with(c, "object_sizes", p, 1 << 60), "cover"),
        "chunks-short": (_with(c, "chunk_lengths", j, (CHUNK, CHUNK, 4)), "add up"),
        "chunk-zero": (_with(c, "chunk_lengths", j, (2 * CHUNK, 0, 5)), "add up"),
        "chunk-outside": (_with(c, "chunk_offsets", j, (0, CHUNK, 2 * CHUNK + 1)), "outside"),
        "chunk-object": (_with(c, "chunk_objects", j, (b, b, 7)), "outside"),
        "chunk-and-place": (_with(c, "objects", j, b), "place of its own"),
        "chunk-digest": (
            _with(c, "chunks", j, (_digest(10), _digest(12), _digest(11))),
            "digest",
        ),
    }


@pytest.mark.parametrize("case", sorted(_hostile()))
def test_hostile_v3_pieces_get_one_line(case: str) -> None:
    cols, message = _hostile()[case]
    root, stored = _one_piece(cols, version=3)
    with pytest.raises(ManifestError, match=message) as err:
        decode_manifest(root, stored)
    assert "\n" not in str(err.value)


def _forged(raw: bytes, column: str, value: int) -> bytes:
    """``raw`` with the first byte of a u8 column of objects set to ``value``."""
    cols = pieces.decode(raw, 3)
    text_len = int.from_bytes(raw[16:20], "little")
    at = 20 + text_len + 32 * len(cols.object_ids)
    if column == "object_encodings":
        at += len(cols.object_ids)
    return raw[:at] + bytes([value]) + raw[at + 1 :]


@pytest.mark.parametrize("column", ["object_kinds", "object_encodings"])
def test_unknown_kind_and_encoding_codes_are_refused(column: str) -> None:
    raw = pieces.encode(_placed())
    with pytest.raises(ManifestError, match="unknown object"):
        pieces.decode(_forged(raw, column, 9), 3)


def test_layouts_must_match_their_root() -> None:
    raw = pieces.encode(_placed())
    with pytest.raises(ManifestError, match="layout v3 in a v2"):
        pieces.decode(raw, 2)
    with pytest.raises(ManifestError, match="newer layout"):
        pieces.decode(raw[:15] + b"\x09" + raw[16:])


def test_seek_tables_round_trip_and_refuse_lies() -> None:
    lengths = (700, 800, 90)
    table = frames.seek_table(lengths, 2 * FRAME + 5, FRAME)
    assert len(table) == frames.seek_table_size(3)
    assert frames.read_seek_table(b"junk" + table, "x") == (lengths, 2 * FRAME + 5, FRAME)
    bad = frames.seek_table(lengths, 3 * FRAME + 5, FRAME)  # last frame larger than the rest
    with pytest.raises(Exception, match="seek table"):
        frames.read_seek_table(bad, "x")
    with pytest.raises(Exception, match="seek table"):
        frames.read_seek_table(table[1:], "x")


def test_frame_spans_cover_what_a_range_needs() -> None:
    table = frames.FrameTable.of((10, 20, 30, 5), 3 * FRAME + 7, FRAME)
    assert table.span(0, 1) == (0, 1, 0, 10)
    assert table.span(FRAME - 1, 2) == (0, 2, 0, 30)
    assert table.span(3 * FRAME, 7) == (3, 1, 60, 5)
    assert table.inflated(3) == 7


def _lists(cols: pieces.Columns) -> list[object]:
    """The columns as lists (a decoded piece holds arrays, a placed one lists)."""
    return [v if isinstance(v, str) else list(v) for v in astuple(cols)]


def test_placing_and_unplacing_are_inverse() -> None:
    cols = _placed()
    flat, framing = v3.unplace(cols, CHUNK)
    assert not flat.placed or flat.objects[_big(cols)] != -1
    back = v3.place(replace(flat, object_encodings=[], chunk_lengths=[]), framing, CHUNK)
    assert _lists(back) == _lists(cols)
