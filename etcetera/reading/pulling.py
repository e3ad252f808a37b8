"""What a pull takes from the cache of reads in place instead of downloading it.

A file whose every unit the cache holds (read before through ``etc://``, ``etc cat``
or the streaming iterator) is written, verified, into the pull's temporary folder,
and offered to the engine as a local copy: the pull links it into place and counts
it as reused, not downloaded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread

from ..api.session import Session
from ..engine.pull import LocalCopy, ReuseLookup
from ..format.chunkobjects import Extent
from ..format.manifest import FileEntry
from . import plan
from .cache import ObjectCache
from .chunks import ChunkMap
from .version import object_cache

_BATCH = 32 * 1024 * 1024  # bytes of cached units read in one thread hop


async def cached_copies(
    s: Session,
    files: list[FileEntry],
    chunk_size: int,
    tmp: Path,
    also: ReuseLookup | None,
    extents: Mapping[str, tuple[Extent, ...]] | None = None,
) -> ReuseLookup | None:
    """A reuse lookup for ``fetch``: ``also``'s copies, then files the cache holds whole.

    ``extents``: the manifest's content-chunked files (their units are their chunks).
    Returns ``also`` as it is when the cache is off or empty.
    """
    cache = object_cache(s)
    if cache.limit <= 0 or not await anyio.to_thread.run_sync(cache.root.is_dir):
        return also
    found: dict[str, LocalCopy] = {}
    batch: list[FileEntry] = []
    size = 0
    for f in files:
        if not f.size or f.size > _BATCH or (also is not None and also(f) is not None):
            continue  # (a file larger than a batch is downloaded: memory stays bounded)
        batch.append(f)
        size += f.size
        if size >= _BATCH:
            found |= await anyio.to_thread.run_sync(_write, cache, batch, chunk_size, extents, tmp)
            batch, size = [], 0
    if batch:
        found |= await anyio.to_thread.run_sync(_write, cache, batch, chunk_size, extents, tmp)
    if not found:
        return also

    def lookup(f: FileEntry) -> LocalCopy | None:
        return (also(f) if also is not None else None) or found.get(f.digest)

    return lookup


def _write(
    cache: ObjectCache,
    files: list[FileEntry],
    chunk_size: int,
    extents: Mapping[str, tuple[Extent, ...]] | None,
    tmp: Path,
) -> dict[str, LocalCopy]:
    """Write the files the cache holds whole into ``tmp`` (a worker thread)."""
    chunked = extents or {}
    wanted = {
        f.digest: (
            list(ChunkMap(f, chunked[f.path]).units)
            if f.path in chunked
            else plan.units(f, chunk_size)
        )
        for f in files
    }
    got = cache.lookup(u for units in wanted.values() for u in units)
    out: dict[str, LocalCopy] = {}
    by_digest = {f.digest: f for f in files}
    for digest, units in wanted.items():
        if not all(u in got for u in units):
            continue
        path = tmp / f"cached-{digest}"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                for u in units:
                    fh.write(got[u])
            os.chmod(path, by_digest[digest].mode)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        out[digest] = LocalCopy(str(path))
    return out
