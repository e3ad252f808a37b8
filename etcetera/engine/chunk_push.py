"""Upload of chunk objects (the new chunks of large files, see ``format/chunkobjects.py``).

A chunk object is read from the local files its chunks come from, every chunk checked
against the digest it was hashed with (a file that changed since is refused, not
stored), and sent in one PUT, or multipart in parts of whole chunks so that each part
is checked as it is read; compressed in frames where a trial says it pays
(:mod:`.chunk_encode`). An object already in the repository (an earlier push, or
another dataset with the same chunks) is not sent; an unfinished multipart upload of
one (a push that was interrupted) is continued, its stored parts kept when their
size and store checksum match the local bytes.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence

import anyio

from ..backends.base import LocalObjects, PartRef
from ..errors import EtceteraError, SourceChangedError
from ..format import layout
from ..format.chunkobjects import ChunkObject, Source
from ..format.hashing import crc32_combine
from ..format.manifest import ObjectEntry
from . import chunk_encode, framed
from .fdpaths import open_file
from .transport import Transport, TransportUpload
from .unfinished import Unfinished, same_part

_STEP = 4 * 1024 * 1024  # bytes checked at once in a copy


#: ``path -> (size, mtime_ns)`` of the files a push scanned: one that moved since is refused.
Scanned = Mapping[str, tuple[int, int]]


def _opened(path: str, fds: dict[str, int], scanned: Scanned | None) -> int:
    """``path`` open in ``fds`` (opened once), refused if its size or mtime moved since the scan.

    Raises:
        SourceChangedError: a file gone, unreadable, or not as scanned.
    """
    fd = fds.get(path)
    if fd is None:
        try:
            fd = fds[path] = open_file(path)
        except OSError:
            raise SourceChangedError(path) from None
        want = scanned.get(path) if scanned is not None else None
        if want is not None:
            st = os.fstat(fd)
            if (st.st_size, st.st_mtime_ns) != want:
                raise SourceChangedError(path)
    return fd


def _follows(prev: Source | None, m: Source) -> bool:
    """Whether chunk ``m`` comes right after ``prev`` in the same file (one CRC run)."""
    return prev is not None and prev.path == m.path and prev.offset + prev.size == m.offset


def read_members(members: Sequence[Source], buf: memoryview, scanned: Scanned | None = None) -> int:
    """Read chunks into ``buf`` back to back, each checked; their CRC32 (a worker thread).

    A chunk is checked by the file's running CRC32 (:attr:`Source.crc`), continued over
    each run of chunks that follow one another in a file: one CRC pass, which also gives
    the store's checksum of ``buf`` with one combination per run (two to eight times
    cheaper than hashing again with SHA-256; it guards against accidents, not adversaries).
    A chunk read from a copy the push made (``crc`` ``None``) needs no check.

    Raises:
        SourceChangedError: a chunk's bytes are not those hashed, or its file is not as
            ``scanned`` (the file changed).
    """
    at = 0
    crc = 0  # of buf so far
    fds: dict[str, int] = {}
    run_start = run_crc0 = running = 0  # the current run of one file's chunks
    prev: Source | None = None
    try:
        for m in members:
            fd = _opened(m.path, fds, scanned)
            view = buf[at : at + m.size]
            if os.preadv(fd, [view], m.offset) != m.size:
                raise SourceChangedError(m.path)
            if not _follows(prev, m):
                if at:
                    crc = _append(crc, run_crc0, running, at - run_start)
                run_start, run_crc0 = at, m.crc0 or 0
                running = run_crc0
            running = zlib.crc32(view, running)
            if m.crc is not None and running != m.crc:
                raise SourceChangedError(m.path)
            prev = m
            at += m.size
        if at:
            crc = _append(crc, run_crc0, running, at - run_start)
    finally:
        for fd in fds.values():
            os.close(fd)
    return crc


def _append(crc: int, start: int, end: int, length: int) -> int:
    """``crc`` then ``length`` bytes that took a running CRC from ``start`` to ``end``."""
    run = end ^ crc32_combine(start, 0, length) if start else end
    return crc32_combine(crc, run, length) if crc else run


def _spans(members: Sequence[Source]) -> list[tuple[str, int, int]]:
    """``(path, offset, length)``: the members as runs of bytes that follow on in a file."""
    out: list[tuple[str, int, int]] = []
    for m in members:
        if out and out[-1][0] == m.path and out[-1][1] + out[-1][2] == m.offset:
            path, offset, length = out[-1]
            out[-1] = (path, offset, length + m.size)
        else:
            out.append((m.path, m.offset, m.size))
    return out


def _open_spans(spans: Sequence[tuple[str, int, int]], scanned: Scanned | None) -> dict[str, int]:
    """A descriptor of each file of ``spans``, each checked to hold its ranges.

    Raises:
        SourceChangedError: a file gone, unreadable, not as ``scanned``, or shorter than a range.
    """
    fds: dict[str, int] = {}
    try:
        for path, offset, length in spans:
            fd = _opened(path, fds, scanned)
            if os.fstat(fd).st_size < offset + length:
                raise SourceChangedError(path)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def _check_copy(copy: str, members: Sequence[Source]) -> None:
    """Check each chunk of a copy by its running CRC32, in steps of 4 MiB (a worker thread).

    Raises:
        SourceChangedError: a chunk whose bytes are not those hashed.
    """
    buf = memoryview(bytearray(_STEP))
    fd = os.open(copy, os.O_RDONLY)
    try:
        at = 0
        prev: Source | None = None
        running = 0
        for m in members:
            if not _follows(prev, m):
                running = m.crc0 or 0
            done = 0
            while done < m.size:
                n = os.preadv(fd, [buf[: min(_STEP, m.size - done)]], at + done)
                if not n:
                    raise SourceChangedError(m.path)
                running = zlib.crc32(buf[:n], running)
                done += n
            if m.crc is not None and running != m.crc:
                raise SourceChangedError(m.path)
            prev = m
            at += m.size
    finally:
        os.close(fd)


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

    def __init__(self, t: Transport, scanned: Scanned | None = None, level: int = 0) -> None:
        """An uploader through ``t``.

        Args:
            t: the push's transport.
            scanned: each file's size and mtime as the push scanned it, by path.
            level: the zstd level of objects that compress well (0: all as they are).
        """
        self.t = t
        self.scanned = scanned
        self.level = level
        #: The objects sent or found stored compressed, as stored (the others: identity).
        self.stored: dict[str, ObjectEntry] = {}
        self._unfinished = Unfinished(t)

    async def send_all(self, objects: Sequence[ChunkObject]) -> None:
        """Upload every object not yet stored, largest first, by the transport's workers."""
        order = sorted(objects, key=lambda o: -o.size)
        await self.t.each(order, self.send)

    async def send(self, obj: ChunkObject) -> None:
        """Upload one chunk object unless the repository holds it already."""
        key = layout.object_key(obj.id)
        found = await self.t.head(key)
        if found is not None:
            held = await framed.framing_of(self.t, chunk_encode.entry_of(obj), found.size)
            if held is not None:
                if held.frames:
                    self.stored[obj.id] = held
                self.t.stats.objects_skipped += 1
                return
        caps = self.t.backend.capabilities
        part = max(self.t.config.part_size, caps.min_part_size)
        copies = caps.send_copies
        local = self.t.local
        if await self._compressed(obj, key, part):
            self.t.stats.objects_sent += 1
            return
        if local is not None:  # file://: copied in the kernel, as one write
            await self._copy_in(local, key, obj)
        elif obj.size <= part:
            async with self.t.budget.hold(obj.size * copies):
                # A fresh buffer, not the transport's pool: chunk objects vary in
                # size, and a pool keyed by size would keep one of each.
                buf = bytearray(obj.size)
                await anyio.to_thread.run_sync(
                    read_members, obj.members, memoryview(buf), self.scanned, limiter=self.t.io
                )
                await self.t.put(key, buf)
        else:
            await self._multipart(key, obj, part, copies)
        self.t.stats.objects_sent += 1

    async def _compressed(self, obj: ChunkObject, key: str, part: int) -> bool:
        """Send ``obj`` compressed if a trial says it pays (:mod:`.chunk_encode`); whether sent."""
        if self.level <= 0 or not await anyio.to_thread.run_sync(
            chunk_encode.trial, obj.members, limiter=self.t.io
        ):
            return False

        def read(members: Sequence[Source], buf: memoryview) -> int:
            return read_members(members, buf, self.scanned)

        upload, stored = await self._resumable(key) if obj.size > part else (None, {})
        resume = None if upload is None else (upload, stored)  # an interrupted push's parts
        sent = await chunk_encode.send(self.t, obj, key, part, self.level, read, resume)
        if sent is not None and sent.frames:
            self.stored[obj.id] = sent
        return sent is not None

    async def _copy_in(self, local: LocalObjects, key: str, obj: ChunkObject) -> None:
        """Copy an object's chunks into ``local`` in the kernel, check them, publish it.

        Chunks read from a file of the tree (not a copy the push made) are checked in
        the copy, by their running CRC32, before it is published: a file that changed
        since it was hashed is refused.
        """
        spans = _spans(obj.members)
        fds = await anyio.to_thread.run_sync(_open_spans, spans, self.scanned, limiter=self.t.io)
        try:
            ranges = [(fds[path], offset, length) for path, offset, length in spans]
            copy = await self.t.stage_ranges(local, layout.OBJECTS, ranges)
        finally:
            for fd in fds.values():
                os.close(fd)
        try:
            if any(m.crc is not None for m in obj.members):
                await anyio.to_thread.run_sync(
                    _check_copy, copy.path, obj.members, limiter=self.t.io
                )
            await self.t.call(key, lambda: copy.publish(key))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await copy.discard()
            raise

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
                    read_members, members, memoryview(buf), self.scanned, limiter=self.t.io
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
