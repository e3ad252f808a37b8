"""A ``--to`` folder: whether it already holds what a pull asks for, so that a repeat is a no-op.

A pull ``--to DIR`` leaves nothing of etcetera's inside ``DIR`` (it is the user's); the
digests of the files it wrote go into the home's hash cache, keyed by the folder, so a
second identical pull compares the folder with the manifest without reading it again.
A folder the cache cannot vouch for (another home, files touched) is hashed: still no
download, and a changed file is found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from ..engine.scan import HashCache, hash_files, scan_tree
from ..engine.walk import ScannedFile
from ..format.hashing import Digest
from ..format.manifest import FileEntry
from ..home import Home
from .changes import table


async def holds(
    home: Home,
    target: Path,
    files: Sequence[FileEntry],
    partitions: Sequence[str],
    *,
    name: str,
    chunk_size: int,
    ignore: tuple[str, ...],
    io: anyio.CapacityLimiter,
    cut: Callable[[ScannedFile, str, bool], tuple[Digest, int]] | None = None,
) -> bool:
    """Whether ``target`` holds exactly ``files`` (and the ``partitions`` folders).

    ``cut`` (``engine.chunked.Cuts``, for a version with content-chunked files) names
    the files above ``chunk_size`` as that version does: by their cut.
    """
    if not all((target / "data" / p).is_dir() for p in partitions):
        return False
    scan = await anyio.to_thread.run_sync(scan_tree, target, ignore)
    if len(scan.files) != len(files):
        return False
    cache = await anyio.to_thread.run_sync(HashCache, home.cache_file(target.resolve()))
    found = await hash_files(
        scan, cache, name=name, chunk_size=chunk_size, io=io, progress=None, cut=cut
    )
    await anyio.to_thread.run_sync(cache.save)
    return table(found) == table(files)


def remember(home: Home, target: Path, files: Sequence[FileEntry]) -> None:
    """Keep the digests of the files just written into ``target`` (blocking)."""
    root = target.resolve()
    cache = HashCache(home.cache_file(root))
    cache.record_tree(root, files)
    cache.save()
