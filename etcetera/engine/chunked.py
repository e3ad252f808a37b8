"""Push and pull of large files as content-defined chunks, over one transport.

The steps a push and a pull of format v3 take for their large files: hash them into
chunks (:mod:`etcetera.format.cdc`), lay the chunks the repository lacks into chunk
objects and send those (:mod:`etcetera.engine.chunk_push`); on pull, copy what a local
copy of the previous version holds and fetch the rest (:mod:`etcetera.engine.chunk_pull`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio

from ..errors import SourceChangedError
from ..format import cdc
from ..format.chunkobjects import TARGET, Extent, PushPlan, plan_push
from ..format.chunkplan import local_offsets, plan
from .chunk_pull import write_chunked
from .chunk_push import ChunkUploader
from .transport import Transport


async def chunk_files(
    t: Transport, paths: Sequence[str], sizes: Sequence[int], params: cdc.Chunking = cdc.DEFAULT
) -> list[list[cdc.Chunk]]:
    """Chunks of each file, hashed in the transport's worker threads (one file a thread).

    Raises:
        SourceChangedError: a file whose size is not the one scanned.
    """
    out: list[list[cdc.Chunk]] = [[] for _ in paths]

    async def one(i: int) -> None:
        chunks, size = await anyio.to_thread.run_sync(
            cdc.chunk_file, paths[i], params, limiter=t.io
        )
        if size != sizes[i]:
            raise SourceChangedError(paths[i])
        out[i] = chunks

    order = sorted(range(len(paths)), key=lambda i: -sizes[i])
    await t.each(order, one)
    return out


async def push_chunked(
    t: Transport,
    files: Sequence[tuple[str, list[cdc.Chunk]]],
    known: Mapping[bytes, Extent],
    target: int = TARGET,
) -> PushPlan:
    """Send the chunks of ``(local path, chunks)`` that ``known`` lacks; the plan places all."""
    pushed = plan_push(((p, c) for p, c in files), known, target)
    await ChunkUploader(t).send_all(pushed.objects)
    return pushed


async def pull_chunked(
    t: Transport,
    path: str,
    extents: Sequence[Extent],
    fd: int,
    local: str | None = None,
    local_extents: Sequence[Extent] = (),
) -> int:
    """Write one chunked file into ``fd`` from a local copy and the repository.

    ``local_extents`` are the extents ``local`` was pulled with (its version's); every
    chunk taken from it is checked against its digest, so a local copy that changed
    since costs downloads, not correctness. Returns the bytes taken from ``local``.
    """
    have = local_offsets(local_extents) if local is not None else {}
    return await write_chunked(t, plan(extents, have), path, fd, local)
