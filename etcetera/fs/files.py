"""An ``etc://`` file opened for reading: random access, ``seek``, readahead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

if TYPE_CHECKING:
    from .filesystem import EtcFileSystem


class EtcFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file of a pinned version; every byte it returns was verified.

    Readahead is by verified units: a read fetches the units it touches (a small file
    whole, a large file by whole chunks of ``block_size``, a content-chunked file by the
    chunks a push cut) and keeps them, so the reads that follow inside them cost
    nothing, and a reader that jumps (parquet's column chunks) fetches only what it
    reads. fsspec's own caches (``cache_type=...``) may be asked for instead.
    """

    def __init__(
        self, fs: EtcFileSystem, path: str, block_size: int, info: dict[str, Any], **kwargs: Any
    ) -> None:
        kwargs.setdefault("cache_type", "none")
        super().__init__(fs, path, mode="rb", block_size=block_size, size=info["size"], **kwargs)
        self.details = info
        self._chunk = block_size
        self._held: tuple[int, bytes] = (0, b"")

    def _fetch_range(self, start: int, end: int) -> bytes:
        at, held = self._held
        if at <= start and end <= at + len(held):
            return held[start - at : end - at]
        lo: int
        data: bytes
        lo, data = sync(self.fs.loop, _read_around, self.fs, self.path, start, end, self._chunk)
        self._held = (lo, data)
        return data[start - lo : end - lo]


async def _read_around(
    fs: EtcFileSystem, path: str, start: int, end: int, block: int
) -> tuple[int, bytes]:
    """Where they start, and the bytes of the whole units holding ``start .. end``.

    Whole units, so that a range never re-fetches the chunk its neighbour fetched: the
    ``block``-aligned blocks of a file of fixed chunks, the chunks a push cut by content.
    """
    _, v, inner = await fs._split(path)
    entry = await v.entry(inner)
    found = v.chunk_bounds(entry, start, end)
    lo, hi = found or (start // block * block, min(entry.size, -(-end // block) * block))
    return lo, await v.read(entry, lo, hi)
