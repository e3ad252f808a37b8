"""The pull of a chunked file: what to copy from a local copy, what to fetch, in how few reads.

A machine that holds the previous version of a large file has most of the new
version's chunks already: each chunk found in the local file (by digest, from the
previous version's extents) is copied from it, the others are fetched from their chunk
objects in ranged reads, adjacent and nearby ranges of one object coalesced into one.
Every chunk, copied or fetched, is checked against its digest before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ManifestError
from .chunkobjects import Extent

GAP = 256 * 1024  # bytes of unneeded chunks a read spans rather than being split in two
MAX_READ = 32 * 1024 * 1024  # bytes of one ranged read (held in memory while it is checked)
MAX_CHUNK = 64 * 1024 * 1024  # a larger chunk is refused: a read holds one in memory


class Copy(NamedTuple):
    """A chunk taken from the local file: from ``src`` to ``dst`` of the new one."""

    src: int
    dst: int
    extent: Extent


class Piece(NamedTuple):
    """A chunk inside a read: ``at`` bytes into it, written at each of ``dsts``."""

    at: int
    size: int
    digest: bytes
    dsts: tuple[int, ...]


class Read(NamedTuple):
    """One ranged read of a chunk object, and the chunks it carries."""

    object: str
    start: int
    length: int
    pieces: tuple[Piece, ...]


@dataclass
class PullPlan:
    """How one chunked file is written: copies from the local file and reads.

    Attributes:
        size: the file's size.
        copies: chunks taken from the local copy.
        reads: ranged reads of chunk objects.
        bytes_copied: bytes of ``copies``.
        bytes_fetched: bytes the reads download (gaps included).
    """

    size: int
    copies: list[Copy] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    bytes_copied: int = 0
    bytes_fetched: int = 0


def check_extents(
    path: str, size: int, extents: Sequence[Extent], objects: Mapping[str, int]
) -> None:
    """Refuse a chunk list that a reader could not trust (a hostile repository).

    Raises:
        ManifestError: chunk sizes that do not add up to the file's size, an empty
            chunk or one over :data:`MAX_CHUNK`, a chunk in an object the manifest does
            not list, or past its end.
    """
    total = 0
    for e in extents:
        if not 0 < e.size <= MAX_CHUNK:
            raise ManifestError(f"manifest lists a chunk of {e.size} bytes for {path}")
        end = objects.get(e.object)
        if end is None:
            raise ManifestError(f"chunk of {path} is in an unlisted object {e.object[:16]}")
        if e.offset < 0 or e.offset + e.size > end:
            raise ManifestError(f"chunk of {path} runs past the end of object {e.object[:16]}")
        total += e.size
    if total != size:
        raise ManifestError(f"chunk sizes of {path} add up to {total} bytes, not {size}")


def local_offsets(extents: Iterable[Extent]) -> dict[bytes, int]:
    """Where each chunk of a local file starts in it, from the extents it was pulled with."""
    out: dict[bytes, int] = {}
    at = 0
    for e in extents:
        out.setdefault(e.digest, at)
        at += e.size
    return out


def plan(
    extents: Sequence[Extent],
    local: Mapping[bytes, int],
    *,
    done: frozenset[int] = frozenset(),
    gap: int = GAP,
    max_read: int = MAX_READ,
) -> PullPlan:
    """Split a file's chunks into copies from the local file and coalesced reads.

    ``done``: indexes of chunks already in place (an interrupted pull wrote them).
    """
    out = PullPlan(sum(e.size for e in extents))
    fetch: list[tuple[Extent, int]] = []
    at = 0
    for i, e in enumerate(extents):
        src = local.get(e.digest)
        if i in done:
            pass
        elif src is None:
            fetch.append((e, at))
        else:
            out.copies.append(Copy(src, at, e))
            out.bytes_copied += e.size
        at += e.size
    out.reads = coalesce(fetch, gap=gap, max_read=max_read)
    out.bytes_fetched = sum(r.length for r in out.reads)
    return out


def coalesce(
    fetch: Iterable[tuple[Extent, int]], *, gap: int = GAP, max_read: int = MAX_READ
) -> list[Read]:
    """Ranged reads for chunks ``(extent, destination)``: one per run of nearby chunks.

    A chunk written at several places (repeated content) is read once.
    """
    wanted: dict[tuple[str, int, bytes], list[int]] = {}
    sizes: dict[tuple[str, int, bytes], int] = {}
    for e, dst in fetch:
        key = (e.object, e.offset, e.digest)
        wanted.setdefault(key, []).append(dst)
        sizes[key] = e.size
    reads: list[Read] = []
    run: list[tuple[int, int, bytes, tuple[int, ...]]] = []
    obj, start, end = "", 0, 0

    def flush() -> None:
        if run:
            pieces = tuple(Piece(o - start, s, d, dsts) for o, s, d, dsts in run)
            reads.append(Read(obj, start, end - start, pieces))
            run.clear()

    for key in sorted(wanted):
        o, offset, digest = key
        size = sizes[key]
        stop = offset + size
        if o != obj or offset > end + gap or max(stop, end) - start > max_read:
            flush()
            obj, start, end = o, offset, stop
        end = max(end, stop)
        run.append((offset, size, digest, tuple(wanted[key])))
    flush()
    return reads
