"""A reading process's side of a stream: its session, the pinned version, its share.

Each process that iterates a stream opens one session here (so a forked worker
never uses its parent's connections), pins the same version again (the record is
immutable, and its manifest must be the one the stream was made with), computes the
rank's order and its own positions, and hands the pieces to :mod:`.reader`, which
reads them through the reading core (:class:`etcetera.reading.Version`: verified,
coalesced, through the session's transport and the home's cache).

The worker processes of one data loader need the same pieces (each takes every
``W``-th batch of a window): the first to need a piece fetches it into the shared
cache while the others wait on a lock file beside it, then read it from the cache,
so a piece is downloaded once per machine, not once per worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from anyio.abc import ObjectSendStream

from ..api.session import session
from ..engine.budget import ByteBudget
from ..errors import DatasetNotFoundError
from ..format.manifest import FileEntry
from ..format.selection import selected
from ..reading import Version, open_version
from . import order, reader
from .reader import Sample

if TYPE_CHECKING:
    from .stream import Stream


async def select(
    v: Version, partitions: Sequence[str], include: Sequence[str], exclude: Sequence[str]
) -> list[FileEntry]:
    """The files of the partitions that pass the patterns, in path order."""
    files: list[FileEntry] = []
    for p in partitions:
        files.extend(await v.files(f"data/{p}"))
    if include or exclude:
        files = [f for f in files if selected(f.path, include, exclude)]
    return files


async def produce(
    stream: Stream,
    send: ObjectSendStream[list[Sample]],
    worker: int,
    workers: int,
    batch: int,
    start: int,
) -> None:
    """Send this reader's samples of the stream's current epoch, from ``start``."""
    async with send, session(stream.config) as s:
        stream.stats = s.stats
        v = await open_version(s, stream.name, stream.version)
        if v.record.manifest != stream.manifest:
            raise DatasetNotFoundError(
                f"{v.ref} holds another manifest than when the stream was made: "
                "the version was removed and pushed again"
            )
        files = await select(v, stream.partitions, stream.include, stream.exclude)
        if len(files) != stream.count:
            raise DatasetNotFoundError(f"{v.ref} lists other files than when the stream was made")
        packs = {f.object for f in files if f.object and f.object != f.digest}
        plan = order.rank_order(
            files,
            order.units(files, packs),
            seed=stream.seed,
            epoch=stream.epoch,
            shuffled=stream.shuffle,
            world=stream.world,
            rank=stream.rank,
            partial=stream.partial,
            window=stream.window,
            window_bytes=stream.window_bytes,
        )
        positions = order.reader_positions(len(plan), start, worker, workers, batch)
        shared = v.cache is not None and v.cache.enabled and workers > 1

        async def fetch(piece: order.Piece) -> list[bytes]:
            members = [files[i] for i in piece.members]
            if not piece.object and not piece.end:  # empty files (a content-chunked file
                return [b""] * len(members)  # has no object either, but bytes)
            # One request per piece, as a pull reads a pack: the reader fetches several
            # pieces at once already.
            if not shared:
                return await v.read_many(members, split=False)
            async with _fetching(v, piece, members[0].digest):
                return await v.read_many(members, split=False)

        # The pieces held for the reader have a budget of their own: the transport's
        # is taken by each fetch while its range arrives, and one budget for both
        # could leave a fetch waiting on bytes held for pieces that wait on it.
        held = ByteBudget(s.config.memory_budget)
        await reader.read(held, s.config.concurrency, files, plan, positions, fetch, send)


@contextlib.asynccontextmanager
async def _fetching(v: Version, piece: order.Piece, digest: str) -> AsyncIterator[None]:
    """Hold the machine-wide lock of one piece (a file beside the cache) while it is read.

    A piece without an object (a content-chunked file) is named by its file's ``digest``.
    """
    assert v.cache is not None
    folder = v.cache.root / ".fetching"
    path = folder / f"{piece.object or digest}-{piece.start}-{piece.end}"

    def take() -> int | None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None  # no lock, no harm: the piece is fetched twice at worst
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    fd = await anyio.to_thread.run_sync(take, abandon_on_cancel=True)
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
