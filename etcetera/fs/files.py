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
    whole, a large file by whole chunks of ``block_size``) and keeps them, so the reads
    that follow inside them cost nothing, and a reader that jumps (parquet's column
    chunks) fetches only what it reads. fsspec's own caches (``cache_type=...``)
    may be asked for instead.
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
        # Whole units: a range never re-fetches the chunk its neighbour fetched.
        lo = start // self._chunk * self._chunk
        hi = min(self.size, -(-end // self._chunk) * self._chunk)
        data: bytes = sync(self.fs.loop, self.fs._cat_file, self.path, lo, hi)
        self._held = (lo, data)
        return data[start - lo : end - lo]
