"""Chunk objects: the chunks of large files, grouped into objects of tens of MiB.

A large file is a list of content-defined chunks (:mod:`etcetera.format.cdc`). A chunk
that an earlier version of the dataset already stores is referenced where it is; the
others are laid, in path and file order, into new chunk objects of about
:data:`TARGET` bytes, so that a 1 GiB file is some thirty uploads, not a thousand, and
a changed file sends only its new chunks. Chunk objects are shared across files and
versions: an extent names the object and the offset its chunk starts at.

Objects are cut after a chunk whose digest falls under a threshold proportional to its
size, once the object holds a quarter of the target, and always at twice the target:
cuts depend on the new chunks alone, so a push run again over the same tree lays the
same objects out (and resumes their uploads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ManifestError
from .table import ObjectEntry

TARGET = 32 * 1024 * 1024
_TAG = b"etcetera-chunks-v1\0"


class Extent(NamedTuple):
    """One chunk of a file as a manifest lists it.

    Attributes:
        digest: SHA-256 of the chunk's bytes (binary).
        size: bytes.
        object: id of the chunk object holding it.
        offset: where it starts in that object.
    """

    digest: bytes
    size: int
    object: str
    offset: int


class Source(NamedTuple):
    """A chunk to store: where its bytes are in a local file.

    ``crc`` and ``crc0`` are the running CRC32 of the file (:attr:`cdc.Chunk.crc`) at the
    chunk's end and at its start, as hashed: its bytes are checked by them when they are
    read to send. ``None`` where ``path`` is a copy the push made and hashed (its bytes
    are those hashed: nothing else writes there).
    """

    path: str
    offset: int
    size: int
    digest: bytes
    crc: int | None = None
    crc0: int | None = None


@dataclass(frozen=True, slots=True)
class ChunkObject:
    """A new chunk object: its id, size and members in order (back to back, no header)."""

    id: str
    size: int
    members: tuple[Source, ...]


def object_id(members: Iterable[Source]) -> str:
    """Id of a chunk object: SHA-256 of a tag and each member's digest and 8-byte size.

    Computable from the chunk list, without reading the bytes again.
    """
    h = hashlib.sha256(_TAG)
    for m in members:
        h.update(m.digest)
        h.update(m.size.to_bytes(8, "big"))
    return h.hexdigest()


def _cuts_after(chunk: Source, target: int) -> bool:
    h = int.from_bytes(chunk.digest[:8], "big")
    return h < (chunk.size << 64) // target


def group(chunks: Iterable[Source], target: int = TARGET) -> list[ChunkObject]:
    """Lay new chunks out into chunk objects of about ``target`` bytes (a pure function)."""
    out: list[ChunkObject] = []
    pending: list[Source] = []
    size = 0
    for c in chunks:
        pending.append(c)
        size += c.size
        if size >= 2 * target or (size >= target // 4 and _cuts_after(c, target)):
            out.append(ChunkObject(object_id(pending), size, tuple(pending)))
            pending, size = [], 0
    if pending:
        out.append(ChunkObject(object_id(pending), size, tuple(pending)))
    return out


def known_chunks(extent_lists: Iterable[Sequence[Extent]]) -> dict[bytes, Extent]:
    """Where each chunk that earlier versions list is stored (the first place seen).

    Raises:
        ManifestError: one digest listed with two sizes (a hostile or corrupt manifest:
            chunks shared between files must be the same bytes).
    """
    known: dict[bytes, Extent] = {}
    for extents in extent_lists:
        for e in extents:
            seen = known.setdefault(e.digest, e)
            if seen.size != e.size:
                raise ManifestError(
                    f"manifest lists chunk {e.digest.hex()[:16]} with sizes {seen.size} "
                    f"and {e.size}"
                )
    return known


@dataclass
class PushPlan:
    """What a push of large files stores, and how each file's extents read.

    Attributes:
        objects: new chunk objects to upload.
        extents: each file's chunk list, by path.
        reused: ids of stored chunk objects the new extents reference (a push in
            progress names them, so that gc keeps them).
        bytes_new: bytes of the new chunks (what the upload sends).
        bytes_reused: bytes of chunks already stored, or repeated within this push.
    """

    objects: list[ChunkObject] = field(default_factory=list)
    extents: dict[str, list[Extent]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    bytes_new: int = 0
    bytes_reused: int = 0


def plan_push(
    files: Iterable[tuple[str, Sequence[tuple[int, int, bytes, int | None]]]],
    known: Mapping[bytes, Extent],
    target: int = TARGET,
) -> PushPlan:
    """Which chunks a push sends, grouped into chunk objects, and every file's extents.

    Args:
        files: ``(path, chunks)`` of each large file, in path order; a chunk is
            ``(offset, size, digest, crc)`` as :func:`etcetera.format.cdc.chunk_fd` gives.
        known: chunks earlier versions store (:func:`known_chunks`).
        target: chunk object size.
    """
    plan = PushPlan()
    new: dict[bytes, Source] = {}
    order: list[tuple[str, list[tuple[bytes, int]]]] = []
    for path, chunks in files:
        listed: list[tuple[bytes, int]] = []
        crc0: int | None = 0
        for offset, size, digest, crc in chunks:
            listed.append((digest, size))
            if digest in known or digest in new:
                plan.bytes_reused += size
            else:
                new[digest] = Source(
                    path, offset, size, digest, crc, crc0 if crc is not None else None
                )
                plan.bytes_new += size
            crc0 = crc
        order.append((path, listed))
    plan.objects = group(new.values(), target)
    placed: dict[bytes, Extent] = {}
    for obj in plan.objects:
        at = 0
        for m in obj.members:
            placed[m.digest] = Extent(m.digest, m.size, obj.id, at)
            at += m.size
    for path, listed in order:
        extents = []
        for digest, size in listed:
            e = placed.get(digest)
            if e is None:
                e = known[digest]
                if e.size != size:
                    raise ManifestError(
                        f"stored chunk {digest.hex()[:16]} has {e.size} bytes, not {size}"
                    )
                plan.reused.add(e.object)
            extents.append(e)
        plan.extents[path] = extents
    return plan


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of the chunk objects the versions of a repository still reference.

    Attributes:
        objects: chunk objects some but not all of whose bytes a version references.
        size: stored bytes of those objects.
        unused: stored bytes in them that no version references (what a repack would
            free): of a compressed object, each frame's stored bytes in the share of
            its logical bytes no version references.
    """

    objects: int = 0
    size: int = 0
    unused: int = 0


def usage(objects: Mapping[str, ObjectEntry], extents: Iterable[Extent]) -> Usage:
    """The partly used chunk objects among ``objects`` (by id), from every live extent."""
    spans: dict[str, set[tuple[int, int]]] = {}
    for e in extents:
        if e.object in objects:
            spans.setdefault(e.object, set()).add((e.offset, e.offset + e.size))
    count = size = unused = 0
    for oid, ranges in spans.items():
        obj = objects[oid]
        merged = _merged(ranges)
        if sum(stop - start for start, stop in merged) >= obj.size:
            continue
        count += 1
        size += obj.stored_size
        unused += _unused_stored(obj, merged)
    return Usage(count, size, unused)


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` joined where they overlap or touch, in order."""
    out: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def _unused_stored(obj: ObjectEntry, used: Sequence[tuple[int, int]]) -> int:
    """Stored bytes of ``obj`` holding logical bytes outside ``used`` (merged, in order)."""
    if not obj.frames:
        return obj.size - sum(stop - start for start, stop in used)
    free = 0
    for k, stored in enumerate(obj.frames):
        lo = k * obj.frame_size
        hi = min(lo + obj.frame_size, obj.size)
        covered = sum(max(0, min(stop, hi) - max(start, lo)) for start, stop in used)
        free += stored * (hi - lo - covered) // (hi - lo)
    return free
