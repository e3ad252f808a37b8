"""Writing a chunked file from a local copy of its previous version and ranged reads.

The plan (``format/chunkplan.py``) says which chunks the local file holds and which
reads fetch the rest. Copies go first, in a worker thread, each chunk hashed as it is
copied; a chunk whose local bytes are not its digest (the local file changed since it
was pulled) is fetched instead. Reads are held in memory under the transfer's byte
budget, every chunk in them checked against its digest before it is written. The file
is written in the staging folder; the caller renames it into place once it is whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing

import anyio

from ..errors import IntegrityError, TransientError
from ..format import layout
from ..format.chunkobjects import Extent
from ..format.chunkplan import Copy, Piece, PullPlan, Read, coalesce
from ..format.manifest import ObjectEntry
from . import framed
from .fdpaths import open_file
from .transport import Transport

_BLOCK = 1024 * 1024
_PLACE_STEP = 4 * 1024 * 1024  # bytes of a read in before its whole chunks are written


def copy_chunks(local: str, fd: int, copies: Sequence[Copy]) -> list[Copy]:
    """Copy chunks from ``local`` into ``fd``, each hashed; those that did not match.

    A worker thread runs it; the copy is 1 MiB at a time through one buffer, so a chunk
    of any size costs no more memory.
    """
    failed: list[Copy] = []
    buf = memoryview(bytearray(_BLOCK))
    try:
        src = open_file(local)
    except OSError:
        return list(copies)
    try:
        for c in copies:
            h = hashlib.sha256()
            done = 0
            while done < c.extent.size:
                n = os.preadv(src, [buf[: min(_BLOCK, c.extent.size - done)]], c.src + done)
                if not n:
                    break
                h.update(buf[:n])
                os.pwrite(fd, buf[:n], c.dst + done)
                done += n
            if done != c.extent.size or h.digest() != c.extent.digest:
                failed.append(c)
    finally:
        os.close(src)
    return failed


def place(fd: int, pieces: Sequence[Piece], data: memoryview, path: str) -> None:
    """Check chunks of a read (``data``) against their digests and write them where they belong.

    Raises:
        IntegrityError: a chunk's bytes are not its digest (the repository is corrupt
            or hostile).
    """
    for p in pieces:
        view = data[p.at : p.at + p.size]
        if len(view) != p.size or hashlib.sha256(view).digest() != p.digest:
            raise IntegrityError(f"chunk {p.digest.hex()[:16]} of {path} does not match its digest")
        for dst in p.dsts:
            os.pwrite(fd, view, dst)


def holds(fd: int, at: int, size: int, digest: bytes, buf: memoryview) -> bool:
    """Whether ``fd`` holds ``size`` bytes of SHA-256 ``digest`` at ``at`` (read into ``buf``)."""
    h = hashlib.sha256()
    got = 0
    while got < size:
        n = os.preadv(fd, [buf[: min(len(buf), size - got)]], at + got)
        if not n:
            return False
        h.update(buf[:n])
        got += n
    return h.digest() == digest


def check_placed(fd: int, read: Read, path: str) -> None:
    """Check each chunk of a read where it was copied, against its digest (a worker thread).

    Raises:
        IntegrityError: a chunk's bytes are not its digest.
    """
    buf = memoryview(bytearray(_BLOCK))
    for p in read.pieces:
        for dst in p.dsts:
            if not holds(fd, dst, p.size, p.digest, buf):
                raise IntegrityError(
                    f"chunk {p.digest.hex()[:16]} of {path} does not match its digest"
                )


async def fetch(
    t: Transport, read: Read, fd: int, path: str, obj: ObjectEntry | None = None
) -> None:
    """Download one ranged read of a chunk object and place its chunks.

    ``obj``: how the object is stored (``None``: as it is). A compressed one is read by
    the frames holding the range, each inflated within its logical length
    (:func:`framed.stream`). On ``file://``, an object stored as it is, into a file open
    for reading too, has its chunks copied into place in the kernel, then checked there.
    """
    key = layout.object_key(read.object)
    local = t.local
    framed_obj = obj is not None and bool(obj.frames)
    if (
        local is not None
        and not framed_obj
        and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    ):
        ranges = [(read.start + p.at, dst, p.size) for p in read.pieces for dst in p.dsts]
        await t.copy_ranges(local, key, fd, ranges)
        await anyio.to_thread.run_sync(check_placed, fd, read, path, limiter=t.io)
        return
    # Chunks are written as their bytes arrive (a few MiB at a time): a pull interrupted
    # mid-read keeps them (``in_place``), not only the reads that were whole.
    pieces = sorted(read.pieces, key=lambda p: p.at)
    placed = 0  # pieces written so far
    async with t.budget.hold(read.length):
        buf = bytearray(read.length)
        view = memoryview(buf)
        got = 0
        if obj is None:
            body = t.stream(key, read.start, read.length)
        else:  # inflated frame by frame when stored compressed
            body = framed.stream(t, obj, read.start, read.length)
        async with aclosing(body):
            async for block in body:
                if got + len(block) > read.length:
                    raise TransientError(
                        f"object {key} sent more than the {read.length} bytes asked"
                    )
                view[got : got + len(block)] = block
                got += len(block)
                ready = placed
                while ready < len(pieces) and pieces[ready].at + pieces[ready].size <= got:
                    ready += 1
                if ready > placed and got - pieces[placed].at >= _PLACE_STEP:
                    batch = pieces[placed:ready]
                    await anyio.to_thread.run_sync(place, fd, batch, view, path, limiter=t.io)
                    placed = ready
        rest = pieces[placed:]
        await anyio.to_thread.run_sync(place, fd, rest, view[:got], path, limiter=t.io)


async def write_chunked(
    t: Transport,
    plan: PullPlan,
    path: str,
    fd: int,
    local: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
    objects: Mapping[str, ObjectEntry] | None = None,
) -> int:
    """Write a chunked file into ``fd`` (in the staging folder) from ``local`` and reads.

    Args:
        t: the pull's transport.
        plan: the file's pull plan.
        path: the file's path in the dataset (for messages).
        fd: the staged file, open for writing.
        local: a local copy of the previous version, or ``None``.
        progress: told the bytes of the file written, as they are (copies, then reads).
        objects: how each chunk object is stored, by id (``None``: all as they are).

    Returns:
        The bytes taken from ``local`` (counted as reused).
    """
    await anyio.to_thread.run_sync(os.ftruncate, fd, plan.size, limiter=t.io)
    reads = list(plan.reads)
    copied = 0
    if plan.copies and local is not None:
        failed = await anyio.to_thread.run_sync(copy_chunks, local, fd, plan.copies, limiter=t.io)
        copied = plan.bytes_copied - sum(c.extent.size for c in failed)
        reads += coalesce((c.extent, c.dst) for c in failed)
    elif plan.copies:
        reads += coalesce((c.extent, c.dst) for c in plan.copies)
    t.stats.bytes_reused += copied
    progress(copied)

    async def one(read: Read) -> None:
        await fetch(t, read, fd, path, objects.get(read.object) if objects else None)
        progress(sum(p.size * len(p.dsts) for p in read.pieces))

    await t.each(reads, one)
    return copied


def in_place(fd: int, extents: Sequence[Extent]) -> frozenset[int]:
    """Indexes of the chunks a partly written file already holds at their places.

    An interrupted pull left them: each is hashed where it belongs before it is kept.
    """
    done: set[int] = set()
    buf = memoryview(bytearray(_BLOCK))
    at = 0
    for i, e in enumerate(extents):
        if holds(fd, at, e.size, e.digest, buf):
            done.add(i)
        at += e.size
    return frozenset(done)
