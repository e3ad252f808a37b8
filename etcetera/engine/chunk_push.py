"""Upload of chunk objects (the new chunks of large files, see ``format/chunkobjects.py``).

A chunk object is read from the local files its chunks come from, every chunk checked
against the digest it was hashed with (a file that changed since is refused, not
stored), and sent in one PUT, or multipart in parts of whole chunks so that each part
is checked as it is read. An object already in the repository (an earlier push, or
another dataset with the same chunks) is not sent; an unfinished multipart upload of
one (a push that was interrupted) is continued, its stored parts kept when their
size and store checksum match the local bytes.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence

import anyio

from ..backends.base import PartRef
from ..errors import EtceteraError, SourceChangedError
from ..format import layout
from ..format.chunkobjects import ChunkObject, Source
from .transport import Transport, TransportUpload
from .unfinished import Unfinished, same_part


def read_members(members: Sequence[Source], buf: memoryview) -> int:
    """Read chunks into ``buf`` back to back, each checked; their CRC32 (a worker thread).

    Raises:
        SourceChangedError: a chunk's bytes are not those hashed (the file changed).
    """
    at = 0
    crc = 0
    fds: dict[str, int] = {}
    try:
        for m in members:
            fd = fds.get(m.path)
            if fd is None:
                try:
                    fd = fds[m.path] = os.open(m.path, os.O_RDONLY)
                except OSError:
                    raise SourceChangedError(m.path) from None
            view = buf[at : at + m.size]
            if os.preadv(fd, [view], m.offset) != m.size:
                raise SourceChangedError(m.path)
            if hashlib.sha256(view).digest() != m.digest:
                raise SourceChangedError(m.path)
            crc = zlib.crc32(view, crc)
            at += m.size
    finally:
        for fd in fds.values():
            os.close(fd)
    return crc


def parts_of(obj: ChunkObject, part: int) -> list[tuple[int, int, tuple[Source, ...]]]:
    """``(number, offset, members)`` of each part: runs of whole chunks, ``part`` bytes or more."""
    out: list[tuple[int, int, tuple[Source, ...]]] = []
    run: list[Source] = []
    start = at = 0
    for m in obj.members:
        run.append(m)
        at += m.size
        if at - start >= part:
            out.append((len(out) + 1, start, tuple(run)))
            run, start = [], at
    if run:
        out.append((len(out) + 1, start, tuple(run)))
    return out


class ChunkUploader:
    """Sends the new chunk objects of one push through its transport."""

    def __init__(self, t: Transport) -> None:
        self.t = t
        self._unfinished = Unfinished(t)

    async def send_all(self, objects: Sequence[ChunkObject]) -> None:
        """Upload every object not yet stored, largest first, by the transport's workers."""
        order = sorted(objects, key=lambda o: -o.size)
        await self.t.each(order, self.send)

    async def send(self, obj: ChunkObject) -> None:
        """Upload one chunk object unless the repository holds it already."""
        key = layout.object_key(obj.id)
        found = await self.t.head(key)
        if found is not None and found.size == obj.size:
            self.t.stats.objects_skipped += 1
            return
        caps = self.t.backend.capabilities
        part = max(self.t.config.part_size, caps.min_part_size)
        copies = caps.send_copies
        # On file:// one write beats parts written aside and then joined.
        if obj.size <= part or self.t.local is not None:
            async with self.t.budget.hold(obj.size * copies):
                # A fresh buffer, not the transport's pool: chunk objects vary in
                # size, and a pool keyed by size would keep one of each.
                buf = bytearray(obj.size)
                await anyio.to_thread.run_sync(
                    read_members, obj.members, memoryview(buf), limiter=self.t.io
                )
                await self.t.put(key, buf)
        else:
            await self._multipart(key, obj, part, copies)
        self.t.stats.objects_sent += 1

    async def _resumable(self, key: str) -> tuple[TransportUpload | None, dict[int, PartRef]]:
        """An unfinished upload of ``key`` with parts, and its parts by number."""
        for upload in await self._unfinished.of(key):
            try:
                stored = await upload.parts()
            except EtceteraError:
                continue
            if stored:
                return upload, {p.number: p for p in stored}
        return None, {}

    async def _multipart(self, key: str, obj: ChunkObject, part: int, copies: int) -> None:
        plan = parts_of(obj, part)
        upload, stored = await self._resumable(key)
        if upload is None:
            upload = await self.t.upload(key)
        refs: dict[int, PartRef] = {}

        async def send(number: int, members: tuple[Source, ...]) -> None:
            length = sum(m.size for m in members)
            async with self.t.budget.hold(length * copies):
                buf = bytearray(length)
                crc = await anyio.to_thread.run_sync(
                    read_members, members, memoryview(buf), limiter=self.t.io
                )
                kept = stored.get(number)
                if kept is not None and kept.size == length and same_part(buf, kept.checksums, crc):
                    refs[number] = kept
                    self.t.stats.bytes_resumed += length
                else:
                    refs[number] = await upload.put_part(number, buf, crc32=crc)

        try:
            async with anyio.create_task_group() as tg:
                for number, _offset, members in plan:
                    tg.start_soon(send, number, members)
            await upload.complete([refs[n] for n in sorted(refs)])
        except BaseException as exc:
            await upload.abort_after(exc)
            raise
