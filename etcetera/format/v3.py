"""What format v3 adds to a piece: object encodings (frames) and where each chunk lives.

A v3 piece (:mod:`etcetera.format.pieces`) says, per object, how it is stored
(``identity``, or ``zstd`` in frames: :mod:`etcetera.format.frames`) and, per chunk of a
chunked file, its length, its object and its logical offset there. :func:`unplace`
checks those columns (a repository is hostile) and turns the table into the form the
checks of :class:`etcetera.format.validate.Tables` and the manifest model know: a file
at one offset of one object, with fixed chunks.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Mapping
from dataclasses import replace
from typing import NamedTuple

from ..errors import ManifestError
from . import frames as fr
from .chunkobjects import Extent
from .hashing import combine
from .pieces import Columns

MAX_STORED = 1 << 50  # as validate.MAX_SIZE: a larger object in a manifest is a lie


class Framing(NamedTuple):
    """How one object is stored: its encoding and, framed, its frames."""

    encoding: str
    frame_size: int
    frames: tuple[int, ...]


IDENTITY = Framing("identity", 0, ())


def check_framing(cols: Columns) -> list[Framing]:
    """The checked encoding of each object of a v3 table.

    Raises:
        ManifestError: an identity object whose stored size is not its size, a frame
            size out of bounds, a frame table that does not cover the object or does
            not add up to its stored size.
    """
    m = len(cols.object_ids)
    if not (
        len(cols.object_encodings)
        == len(cols.object_stored)
        == len(cols.object_frame_sizes)
        == len(cols.object_frames)
        == m
    ):
        raise ManifestError("manifest table columns disagree in length")
    out: list[Framing] = []
    for oid, enc, size, stored, fs, frames in zip(
        cols.object_ids,
        cols.object_encodings,
        cols.object_sizes,
        cols.object_stored,
        cols.object_frame_sizes,
        cols.object_frames,
        strict=True,
    ):
        if not 0 <= stored <= MAX_STORED:
            raise ManifestError(f"manifest object {oid} stored size {stored} is out of range")
        if enc == "identity":
            if stored != size or fs or frames:
                raise ManifestError(f"manifest object {oid} is identity but not stored as it is")
            out.append(IDENTITY)
            continue
        if enc != "zstd":
            raise ManifestError(f"manifest object encoding {enc!r} is unknown: upgrade etcetera")
        if not fr.MIN_FRAME <= fs <= fr.MAX_FRAME:
            raise ManifestError(f"manifest object {oid} frame size {fs} is out of range")
        if size < 1 or len(frames) != fr.frame_count(size, fs):
            raise ManifestError(f"manifest object {oid} frame table does not cover its size")
        bound = fr.frame_bound(fs)
        if not all(1 <= f <= bound for f in frames):
            raise ManifestError(f"manifest object {oid} has a frame longer than its bound")
        if fr.stored_size(frames) != stored:
            raise ManifestError(f"manifest object {oid} frame table does not add up to its size")
        out.append(Framing(enc, fs, frames))
    return out


def unplace(cols: Columns, chunk_size: int) -> tuple[Columns, list[Framing]]:
    """Check a v3 table's encodings and chunk places; the table in v2's form, the framings.

    A chunked file (two chunks or more; its own object ``-1``, offset ``0``) becomes a
    file at its first chunk's place, when its chunks lie back to back in one object
    and all but the last are ``chunk_size`` long. Any other placement (content-defined
    chunks, in chunk objects shared across files) keeps object ``-1``: its
    :func:`extents` say where its bytes are. A table without chunked files is handed
    back as it is (the same object).

    Raises:
        ManifestError: see :func:`check_framing`; a chunk list whose lengths do not add
            up to its file, or that does not hash to the file's digest, a chunk outside
            its object.
    """
    framing = check_framing(cols)
    n, m = len(cols.paths), len(cols.object_ids)
    if not (len(cols.chunk_lengths) == len(cols.chunk_objects) == len(cols.chunk_offsets) == n):
        raise ManifestError("manifest table columns disagree in length")
    if not any(cols.chunks):
        if any(cols.chunk_lengths) or any(cols.chunk_objects) or any(cols.chunk_offsets):
            raise ManifestError("manifest chunk places do not match its chunk lists")
        return cols, framing
    chunked = list(itertools.compress(range(n), cols.chunks))
    objects, offsets = array("i", cols.objects), array("Q", cols.offsets)
    for j in chunked:
        _place(cols, j, chunk_size, m, objects, offsets)
    return replace(cols, objects=objects, offsets=offsets), framing


def _place(
    cols: Columns, j: int, chunk_size: int, m: int, objects: array[int], offsets: array[int]
) -> None:
    """Check file ``j``'s chunks and set its object and offset from them."""
    path, digests = cols.paths[j], cols.chunks[j]
    lengths, where, starts = cols.chunk_lengths[j], cols.chunk_objects[j], cols.chunk_offsets[j]
    if not len(lengths) == len(where) == len(starts) == len(digests) >= 2:
        raise ManifestError(f"manifest chunks of {path!r} are malformed")
    if cols.objects[j] != -1 or cols.offsets[j] != 0:
        raise ManifestError(f"manifest file {path!r} has both chunks and a place of its own")
    if not all(1 <= c <= chunk_size for c in lengths) or sum(lengths) != cols.sizes[j]:
        raise ManifestError(f"manifest chunk sizes of {path!r} do not add up to the file")
    for obj, start, length in zip(where, starts, lengths, strict=True):
        if not 0 <= obj < m or not 0 <= start <= cols.object_sizes[obj] - length:
            raise ManifestError(f"manifest chunk of {path!r} lies outside its object")
    if combine([bytes.fromhex(c) for c in digests]) != cols.digests[j]:
        raise ManifestError(f"manifest chunks of {path!r} do not match its digest")
    first = starts[0]
    if (
        len(set(where)) != 1
        or any(c != chunk_size for c in lengths[:-1])
        or any(s != first + i * chunk_size for i, s in enumerate(starts))
    ):
        return  # content-defined: read through its extents
    objects[j], offsets[j] = where[0], first


def extents(placed: Columns, flat: Columns) -> dict[int, tuple[Extent, ...]]:
    """The extents of the files :func:`unplace` left without a place, by row.

    Args:
        placed: the checked v3 table.
        flat: what :func:`unplace` made of it.
    """
    ids = placed.object_ids
    out: dict[int, tuple[Extent, ...]] = {}
    for j in itertools.compress(range(len(flat.chunks)), flat.chunks):
        digests = flat.chunks[j]
        if flat.objects[j] == -1:
            out[j] = tuple(
                Extent(bytes.fromhex(d), n, ids[o], at)
                for d, n, o, at in zip(
                    digests,
                    placed.chunk_lengths[j],
                    placed.chunk_objects[j],
                    placed.chunk_offsets[j],
                    strict=True,
                )
            )
    return out


def place(
    cols: Columns,
    framing: list[Framing],
    chunk_size: int,
    loose: Mapping[str, tuple[Extent, ...]] | None = None,
) -> Columns:
    """A v2-form table (fixed chunks in the file's object) with v3's columns added.

    ``loose``: the extents of content-chunked files (object ``-1``), by path; their
    objects must be among the table's.
    """
    objects, offsets = list(cols.objects), list(cols.offsets)
    lengths: list[tuple[int, ...]] = []
    where: list[tuple[int, ...]] = []
    starts: list[tuple[int, ...]] = []
    index = {oid: i for i, oid in enumerate(cols.object_ids)} if loose else {}
    for j, digests in enumerate(cols.chunks):
        ext = loose.get(cols.paths[j]) if loose else None
        if ext is not None:
            lengths.append(tuple(e.size for e in ext))
            where.append(tuple(index[e.object] for e in ext))
            starts.append(tuple(e.offset for e in ext))
            continue
        if not digests:
            lengths.append(())
            where.append(())
            starts.append(())
            continue
        k, size, at = len(digests), cols.sizes[j], cols.offsets[j]
        lengths.append((chunk_size,) * (k - 1) + (size - chunk_size * (k - 1),))
        where.append((cols.objects[j],) * k)
        starts.append(tuple(at + i * chunk_size for i in range(k)))
        objects[j], offsets[j] = -1, 0
    return replace(
        cols,
        objects=objects,
        offsets=offsets,
        object_encodings=[f.encoding for f in framing],
        object_stored=[
            fr.stored_size(f.frames) if f.frames else size
            for f, size in zip(framing, cols.object_sizes, strict=True)
        ],
        object_frame_sizes=[f.frame_size for f in framing],
        object_frames=[f.frames for f in framing],
        chunk_lengths=lengths,
        chunk_objects=where,
        chunk_offsets=starts,
    )
