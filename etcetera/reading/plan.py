"""What a read fetches: verified units, coalesced into ranges per object (pure).

The smallest unit of bytes the format can verify is a file of one chunk (a packed
small file, a small blob: its digest is the SHA-256 of its bytes) or one chunk of a
larger file (its chunk digest). A read of any byte range of a file fetches the units
it touches; the units of one object are then coalesced into few ranges.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ..format.manifest import FileEntry, ObjectEntry

MiB = 1024 * 1024
#: Bytes a coalesced read of one object may fetch beyond what was asked for.
WASTE = MiB


class Unit(NamedTuple):
    """Bytes of one object that hash to a digest of the manifest.

    Attributes:
        object: the object's id.
        offset: where the unit starts in the object.
        length: its bytes.
        digest: SHA-256 (hex) of those bytes.
        path: the file they belong to (for messages).
    """

    object: str
    offset: int
    length: int
    digest: str
    path: str


class Span(NamedTuple):
    """One ranged read of an object and the units it covers (sorted by offset)."""

    object: str
    offset: int
    length: int
    units: tuple[Unit, ...]


def units(entry: FileEntry, chunk_size: int, start: int = 0, end: int | None = None) -> list[Unit]:
    """The units holding bytes ``start .. end`` of a file (``end``: its size at most)."""
    stop = entry.size if end is None else min(end, entry.size)
    if start >= stop:
        return []
    out = []
    for i in range(start // chunk_size, (stop - 1) // chunk_size + 1):
        lo = i * chunk_size
        digest = entry.chunks[i] if entry.chunks else entry.digest
        out.append(
            Unit(
                entry.object,
                entry.offset + lo,
                min(chunk_size, entry.size - lo),
                digest,
                entry.path,
            )
        )
    return out


def coalesce(
    wanted: Iterable[Unit],
    objects: Mapping[str, ObjectEntry],
    *,
    cheap_ranges: bool,
    longest: int = 16 * MiB,
) -> list[Span]:
    """Ranged reads covering ``wanted``, largest first.

    Per object, the gaps between wanted units are closed smallest first while the bytes
    they add stay within :data:`WASTE` (where ranges are cheap), or within what was
    asked for plus :data:`WASTE` (where each range costs the store the whole object,
    so fewer, longer ranges pay). Where ranges are cheap, a read is cut between units
    once it passes ``longest`` bytes, so that a large file arrives over several
    concurrent requests.
    """
    by_object: dict[str, dict[int, Unit]] = {}
    for u in wanted:
        by_object.setdefault(u.object, {})[u.offset] = u
    spans: list[Span] = []
    for oid, found in by_object.items():
        ordered = [found[k] for k in sorted(found)]
        asked = sum(u.length for u in ordered)
        budget = WASTE if cheap_ranges else WASTE + asked
        if not cheap_ranges and oid in objects and asked * 2 >= objects[oid].size:
            budget = objects[oid].size  # most of it: one read, as a pull does
        gaps = sorted(
            (max(0, b.offset - (a.offset + a.length)), i)
            for i, (a, b) in enumerate(itertools.pairwise(ordered))
        )
        joined = [False] * len(ordered)
        for gap, i in gaps:
            if gap > budget:
                break
            budget -= gap
            joined[i] = True
        group = [ordered[0]]
        for i, u in enumerate(ordered[1:]):
            long = cheap_ranges and u.offset + u.length - group[0].offset > longest
            if joined[i] and not long:
                group.append(u)
            else:
                spans.append(_span(oid, group))
                group = [u]
        spans.append(_span(oid, group))
    spans.sort(key=lambda s: -s.length)
    return spans


def _span(oid: str, group: list[Unit]) -> Span:
    start = group[0].offset
    end = max(u.offset + u.length for u in group)  # units of a hostile pack may overlap
    return Span(oid, start, end - start, tuple(group))
