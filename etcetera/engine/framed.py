"""Reading logical bytes of an object, whatever its encoding, and learning a stored one's.

A reader asks for logical bytes ``[offset, offset + length)`` of an object. For an
``identity`` object that is the same stored range; for a ``zstd`` object it is the
stored range of the frames that hold them (one request), inflated frame by frame in
worker threads, each bounded by its logical length, and cut to the range asked. What
comes out is unverified, as a stored range is: callers hash it against the manifest.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio.to_thread

from ..errors import IntegrityError
from ..format import layout
from ..format.compression import inflate
from ..format.frames import (
    MIN_FRAME,
    FrameTable,
    frame_count,
    read_seek_table,
    seek_table_size,
    stored_size,
)
from ..format.manifest import ObjectEntry
from .transport import Transport


async def stream(
    t: Transport, obj: ObjectEntry, offset: int, length: int
) -> AsyncGenerator[bytes, None]:
    """Blocks of logical bytes ``offset .. offset + length`` of ``obj`` (not verified)."""
    key = layout.object_key(obj.id)
    if not obj.frames:
        body = t.stream(key, offset, length)
        async with aclosing(body):
            async for block in body:
                yield block
        return
    if length <= 0:
        return
    table = FrameTable.of(obj.frames, obj.size, obj.frame_size)
    first, count, start, stored = table.span(offset, length)
    skip = offset - first * obj.frame_size  # logical bytes of the first frame before the range
    left = length
    frame = first
    pending = bytearray()
    body = t.stream(key, start, stored)
    async with aclosing(body):
        async for block in body:
            pending += block
            while frame < first + count:
                need = table.starts[frame + 1] - table.starts[frame]
                if len(pending) < need:
                    break
                raw = bytes(pending[:need])
                del pending[:need]
                data = await anyio.to_thread.run_sync(
                    inflate, raw, table.inflated(frame), f"object {obj.id}", limiter=t.io
                )
                piece = memoryview(data)[skip : skip + left]
                skip = 0
                left -= len(piece)
                frame += 1
                yield bytes(piece) if len(piece) != len(data) else data
    if frame != first + count or pending:
        raise IntegrityError(f"object {obj.id} holds other bytes than its frame table says")


async def framing_of(t: Transport, obj: ObjectEntry, stored: int) -> ObjectEntry | None:
    """``obj`` as the store holds it (``stored`` bytes), or ``None`` if it is not ``obj``.

    An object whose stored size is its logical size is identity; another must end in a
    seek table (:mod:`etcetera.format.frames`) that covers ``obj.size`` logical bytes.
    """
    if stored == obj.size:
        return obj._replace(encoding="identity", frame_size=0, frames=())
    key = layout.object_key(obj.id)
    guess = min(stored, seek_table_size(frame_count(obj.size, MIN_FRAME)))
    blocks: list[bytes] = []
    body = t.stream(key, stored - guess, guess)
    async with aclosing(body):
        async for block in body:
            blocks.append(block)
    try:
        frames, logical, frame_size = read_seek_table(b"".join(blocks), f"object {obj.id}")
    except IntegrityError:
        return None
    if logical != obj.size or stored_size(frames) != stored:
        return None
    return obj._replace(encoding="zstd", frame_size=frame_size, frames=frames)
