"""Content-defined chunks of large files (FastCDC, native).

A large file is cut where its content says, not every 8 MiB: an insertion shifts the
bytes after it but not the cut points, so the chunks after it are the chunks of the
previous version and are not sent again. Cut points come from FastCDC 2020 (the gear
rolling hash with normalised chunking, :mod:`pyfastcdc`'s Cython implementation, which
releases the GIL): a chunk ends at the first position at least ``min_size`` bytes past
its start where the gear hash's masked bits are zero, and at ``max_size`` at the latest.

A chunk is named by the SHA-256 of its bytes, taken in the same pass over the same
buffer as the cut (no copy), with its CRC32 where asked: the cut replaces the hashing
a push does of a file that is not cut, so chunking costs the gear hash alone on top of
it. The CRC32 lets the upload check, at a fifth of the cost of SHA-256, that the bytes
it reads to send are still those hashed. The manifest lists every chunk with its size,
so a reader never needs the parameters; they are recorded in the manifest's root
(:meth:`Chunking.describe`) so that a later writer cuts where the stored chunks were
cut.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from pyfastcdc import FastCDC

from .hashing import combine

KiB = 1024
MiB = 1024 * KiB
WINDOW = 16 * MiB  # bytes read at once; a chunk is cut only with max_size bytes in view

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Chunking:
    """Parameters of the content-defined cut.

    The defaults were chosen by the byte counts of ``benchmarks/delta.py``: an average
    chunk of about 0.77 MiB (``min_size`` plus a geometric tail of mean 256 KiB) keeps
    twenty small edits over 1 GiB near 2 % sent, and a ``min_size`` equal to the
    normalisation centre skips half of every chunk, so the gear hash costs about
    0.26 s of CPU per GiB.

    Attributes:
        min_size: no cut before this many bytes of a chunk.
        avg_size: FastCDC's centre (its mask bits come from it).
        max_size: a cut at this many bytes at the latest.
        normalization: FastCDC's normalised-chunking level (0-3).
        threshold: files of at least this size are cut by content; smaller files are one
            chunk (their digest is then their plain SHA-256). Informative: the files cut
            are those larger than the manifest's ``chunk_size``, so it is neither
            adopted from a root nor compared.
    """

    min_size: int = 512 * KiB
    avg_size: int = 512 * KiB
    max_size: int = 4 * MiB
    normalization: int = 1
    threshold: int = field(default=8 * MiB, compare=False)

    def describe(self) -> dict[str, object]:
        """What a manifest's root records of the parameters (readers need none)."""
        return {
            "algorithm": ALGORITHM,
            "min": self.min_size,
            "avg": self.avg_size,
            "max": self.max_size,
            "normalization": self.normalization,
            "threshold": self.threshold,
        }

    @classmethod
    def recorded(cls, doc: object, chunk_size: int) -> Chunking | None:
        """The parameters a root recorded (:meth:`describe`), or ``None``.

        ``None`` for anything this version cannot cut the same way: another algorithm,
        a missing or mistyped field, sizes FastCDC refuses. Hostile bytes get little say
        in what a cut costs: ``max`` is at most ``chunk_size`` (the manifest's: format
        v3 lists no chunk longer; the read window is twice it), ``min`` at least
        :data:`MIN_MIN` (the chunks a file is cut into). The recorded ``threshold`` is
        ignored (it is informative): the result has the default one.
        """
        if not isinstance(doc, dict) or doc.get("algorithm") != ALGORITHM:
            return None
        fields = [doc.get(k) for k in ("min", "avg", "max", "normalization")]
        if not all(type(v) is int for v in fields):
            return None
        lo, avg, hi, norm = (v for v in fields if isinstance(v, int))
        if not (MIN_MIN <= lo <= avg <= hi <= chunk_size and 0 <= norm <= 3):
            return None
        params = cls(lo, avg, hi, norm)
        try:
            params.chunker()  # FastCDC's own bounds (they depend on avg)
        except ValueError:
            return None
        return params

    def chunker(self) -> FastCDC:
        """The calling thread's FastCDC for these parameters (one is not thread-safe)."""
        cache: dict[Chunking, FastCDC] | None = getattr(_local, "chunkers", None)
        if cache is None:
            cache = _local.chunkers = {}
        cdc = cache.get(self)
        if cdc is None:
            cdc = cache[self] = FastCDC(
                self.avg_size,
                min_size=self.min_size,
                max_size=self.max_size,
                normalized_chunking=self.normalization,  # type: ignore[arg-type]
            )
        return cdc


ALGORITHM = "fastcdc-2020"
MIN_MIN = 64 * KiB  # the smallest min_size adopted (it bounds the chunks a manifest lists)
DEFAULT = Chunking()


class Chunk(NamedTuple):
    """One content-defined chunk of a file.

    Attributes:
        offset: where it starts in the file.
        size: bytes.
        digest: SHA-256 of its bytes (binary).
        crc: CRC32 of the file's bytes from its start to this chunk's end (a running
            CRC: the bytes of a run of chunks are checked by continuing it from the
            previous chunk's, with no per-chunk combination), or ``None`` where the cut
            was asked for none.
    """

    offset: int
    size: int
    digest: bytes
    crc: int | None = None


def cut(view: memoryview, params: Chunking = DEFAULT, base: int = 0) -> list[Chunk]:
    """Chunks of an in-memory body (``base`` is added to their offsets)."""
    sha = hashlib.sha256
    return [
        Chunk(base + c.offset, c.length, sha(c.data).digest())
        for c in params.chunker().cut_buf(view)
    ]


@contextlib.contextmanager
def _window(size: int) -> Iterator[memoryview]:
    """A read window of ``size`` bytes, taken from the windows earlier cuts left.

    Fresh memory is mapped and zero-filled by the kernel page by page (measured: about
    1.5 s of system CPU per GiB, so 0.1 s for the windows of four cuts), so a window is
    kept for the next cut, in whatever thread: worker threads come and go with each
    operation, and a window kept per thread went with them. At most
    :data:`KEPT_WINDOWS` are kept (16 MiB each by default).
    """
    with _windows_lock:
        buf = next((b for b in _windows if len(b) >= size), None)
        if buf is not None:
            _windows.remove(buf)
    if buf is None:
        buf = bytearray(size)
    try:
        yield memoryview(buf)[:size]
    finally:
        with _windows_lock:
            if len(_windows) < KEPT_WINDOWS:
                _windows.append(buf)


#: Read windows kept between cuts (each :data:`WINDOW` bytes, or twice ``max_size``).
KEPT_WINDOWS = min(os.cpu_count() or 1, 4)
_windows: list[bytearray] = []
_windows_lock = threading.Lock()


def chunk_file(path: str | os.PathLike[str], params: Chunking = DEFAULT) -> tuple[list[Chunk], int]:
    """:func:`chunk_fd` of the file at a (short) path, without CRCs."""
    return chunk_fd(os.open(path, os.O_RDONLY), params)


def chunk_fd(
    fd: int, params: Chunking = DEFAULT, *, with_crc: bool = False
) -> tuple[list[Chunk], int]:
    """Chunks of an open file and the bytes read, in one pass; closes ``fd``.

    Call it in a worker thread. With ``with_crc``, the running CRC32 is taken in the
    same pass (from the same buffer, while it is in the cache): :attr:`Chunk.crc`.

    The file is read in windows of :data:`WINDOW` bytes; a chunk is cut only while at
    least ``max_size`` bytes from its start are in the window (or the file ends there),
    so the cuts are those of one pass over the whole file. The unfinished tail of a
    window is read again at the start of the next one (at most ``max_size`` bytes).

    Returns:
        The chunks in order (an empty file has none) and the bytes read, so that a
        caller can notice a file that changed between ``stat`` and hashing.
    """
    try:
        cdc = params.chunker()
        with _window(max(WINDOW, 2 * params.max_size)) as window:
            return _cut_windows(fd, window, cdc, params, with_crc)
    finally:
        os.close(fd)


def _cut_windows(
    fd: int, window: memoryview, cdc: FastCDC, params: Chunking, with_crc: bool
) -> tuple[list[Chunk], int]:
    """:func:`chunk_fd`'s pass over ``fd``, window by window."""
    sha = hashlib.sha256
    crc32 = zlib.crc32
    chunks: list[Chunk] = []
    start = 0  # file offset of the window's first byte: the next chunk's start
    running = 0
    while True:
        n = 0
        while n < len(window):
            got = os.preadv(fd, [window[n:]], start + n)
            if not got:
                break
            n += got
        end = n < len(window)  # the file ends inside this window
        view = window[:n]
        done = 0
        for c in cdc.cut_buf(view):
            if not end and c.offset + params.max_size > n:
                break  # not enough bytes in view to be sure of this cut
            data = c.data
            if with_crc:
                running = crc32(data, running)
            chunks.append(
                Chunk(
                    start + c.offset,
                    c.length,
                    sha(data).digest(),
                    running if with_crc else None,
                )
            )
            done = c.offset + c.length
        start += done
        if end:
            return chunks, start


def file_digest(chunks: list[Chunk] | tuple[Chunk, ...]) -> str:
    """A chunked file's digest: SHA-256 of its chunk digests, one chunk's own digest."""
    if len(chunks) == 1:
        return chunks[0].digest.hex()
    return combine([c.digest for c in chunks])
