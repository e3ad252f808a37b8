"""Chunk objects sent compressed, when a trial says it pays, as packs and blobs are.

A chunk object is an object like any other: stored ``identity``, or ``zstd`` in frames of
:data:`~etcetera.format.compression.FRAME_SIZE` logical bytes with a seek table
(:mod:`etcetera.format.frames`). The decision is :func:`~etcetera.format.compression.pays`
on samples spread over the object, read from the files its chunks come from (no chunk
is read whole for it); the whole must then save as much too, else the object is sent as
it is. Every chunk is read whole and checked by the CRC32 it was hashed with (the
caller's ``read``: :func:`etcetera.engine.chunk_push.read_members`) before its bytes go
into a frame, and
the object's id stays the digest of its chunks' raw bytes: dedup does not see the
encoding. Frames do not follow chunk boundaries; a reader of one chunk fetches and
inflates the one to five frames holding it.
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Callable, Mapping, Sequence

import anyio.to_thread

from ..backends.base import PartRef
from ..format.chunkobjects import ChunkObject, Source
from ..format.compression import FRAME_SIZE, SAMPLE, SAMPLES, pays
from ..format.manifest import ObjectEntry
from . import framed_upload, storing
from .fdpaths import open_file
from .transport import Transport, TransportUpload

#: Reads chunks back to back into a buffer, each checked (a worker thread runs it).
ReadMembers = Callable[[Sequence[Source], memoryview], object]


def entry_of(obj: ChunkObject) -> ObjectEntry:
    """``obj`` as the manifest lists it before it is stored (``identity``)."""
    return ObjectEntry(obj.id, "chunks", obj.size)


def trial(members: Sequence[Source]) -> bool:
    """Whether the object of ``members`` compresses well, from samples (a worker thread).

    :data:`SAMPLES` reads of :data:`SAMPLE` bytes spread over the object, each within one
    chunk; a file that cannot be read gives no sample (its chunk is refused when it is
    read to send).
    """
    starts = _starts(members)
    size = starts[-1]
    step = max(0, size - SAMPLE) // (SAMPLES - 1)
    taken: list[bytes] = []
    for at in dict.fromkeys(min(i * step, size - 1) for i in range(SAMPLES) if size):
        i = bisect.bisect_right(starts, at) - 1
        m = members[i]
        within = at - starts[i]
        try:
            fd = open_file(m.path)
        except OSError:
            continue
        try:
            taken.append(os.pread(fd, min(SAMPLE, m.size - within), m.offset + within))
        finally:
            os.close(fd)
    return pays(b"".join(taken))


def read_range(
    members: Sequence[Source],
    starts: Sequence[int],
    offset: int,
    length: int,
    read: ReadMembers,
) -> memoryview:
    """The object's logical bytes ``offset .. offset + length`` (a worker thread).

    The chunks the range touches are read whole and checked (``read``): a chunk cut by
    the range's ends is read again by the next range (a few per cent more reading, no
    copy of the range).
    """
    i = bisect.bisect_right(starts, offset) - 1
    j = bisect.bisect_left(starts, offset + length)
    whole = bytearray(starts[j] - starts[i])
    read(members[i:j], memoryview(whole))
    skip = offset - starts[i]
    return memoryview(whole)[skip : skip + length]


def _starts(members: Sequence[Source]) -> list[int]:
    """The logical offset of each member in its object, then the object's size."""
    return [0, *itertools.accumulate(m.size for m in members)]


async def send(
    t: Transport,
    obj: ChunkObject,
    key: str,
    part: int,
    level: int,
    read: ReadMembers,
    resume: tuple[TransportUpload, Mapping[int, PartRef]] | None = None,
) -> ObjectEntry | None:
    """Send ``obj`` compressed at zstd ``level``; how it is stored, ``None`` if not sent.

    The caller ran :func:`trial`. An object of at most ``part`` bytes is read once and sent
    in one PUT, compressed if the whole saves enough, else as it is; a larger one is sent
    in parts of frames (:func:`framed_upload.upload`), and not at all when its frames
    do not shrink it (``None``: the caller sends it as it is); ``resume``: an unfinished
    upload of it to continue (its parts kept where they match).
    """
    entry = entry_of(obj)
    if obj.size > part:
        starts = _starts(obj.members)

        def take(offset: int, length: int) -> memoryview:
            return read_range(obj.members, starts, offset, length, read)

        frames = await framed_upload.upload(t, key, take, obj.size, part, level, resume)
        if frames is None:
            return None
        return entry._replace(encoding="zstd", frame_size=FRAME_SIZE, frames=frames)
    copies = t.backend.capabilities.send_copies
    async with t.budget.hold(obj.size * (1 + copies)):
        raw = bytearray(obj.size)
        await anyio.to_thread.run_sync(read, obj.members, memoryview(raw), limiter=t.io)
        stored, body = await anyio.to_thread.run_sync(
            storing.encode, entry, raw, level, limiter=t.io
        )
        await t.put(key, body)
    return stored
