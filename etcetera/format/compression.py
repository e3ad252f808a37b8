"""Compressing an object into frames when it pays, and inflating one frame safely.

Whether an object is compressed is decided by its bytes: a trial compresses a few
samples spread over it at zstd's fastest level, and only an object whose samples
shrink by at least :data:`MIN_SAVING` is compressed whole. Incompressible data (media,
archives, random bytes) costs the samples alone. The layout written is
:mod:`etcetera.format.frames`'s. zstandard releases the GIL: callers run these in
worker threads.
"""

from __future__ import annotations

import threading

import zstandard

from ..errors import IntegrityError
from .frames import MAX_FRAME, frame_bound, seek_table

FRAME_SIZE = 1 << 20  # logical bytes per frame: a read inflates at most this much extra
MIN_SAVING = 1 / 8  # the share a trial must save
SAMPLE = 64 << 10  # bytes per trial sample ...
SAMPLES = 4  # ... and samples per object (less for a small one)
MIN_OBJECT = 4 << 10  # objects smaller than this are stored as they are

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """The calling thread's compressor for ``level`` (a compressor is not thread-safe)."""
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    found = cache.get(level)
    if found is None:
        found = cache[level] = zstandard.ZstdCompressor(
            level=level, write_content_size=True, write_checksum=False
        )
    return found


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def pays(data: bytes | bytearray | memoryview) -> bool:
    """Whether compressing ``data`` is worth it, from a trial on samples of it."""
    view = memoryview(data)
    size = len(view)
    if size < MIN_OBJECT:
        return False
    if size <= SAMPLE * SAMPLES:
        samples = [view]
    else:
        step = (size - SAMPLE) // (SAMPLES - 1)
        samples = [view[i * step : i * step + SAMPLE] for i in range(SAMPLES)]
    fast = _compressor(1)
    taken = sum(len(s) for s in samples)
    kept = sum(len(fast.compress(s)) for s in samples)
    return kept <= taken * (1 - MIN_SAVING)


def compress(
    data: bytes | bytearray | memoryview, level: int, frame_size: int = FRAME_SIZE
) -> tuple[bytes, tuple[int, ...]] | None:
    """``data`` as a framed object: its stored bytes and each frame's stored length.

    ``None`` when the whole does not save :data:`MIN_SAVING` after all (the caller
    stores the object as it is).
    """
    view = memoryview(data)
    frames = compress_frames(view, level, frame_size)
    lengths = tuple(len(f) for f in frames)
    if sum(lengths) > len(view) * (1 - MIN_SAVING):
        return None
    frames.append(seek_table(lengths, len(view), frame_size))
    return b"".join(frames), lengths


def compress_frames(
    data: bytes | bytearray | memoryview, level: int, frame_size: int = FRAME_SIZE
) -> list[bytes]:
    """``data`` cut into ``frame_size`` bytes, each compressed as one zstd frame."""
    view = memoryview(data)
    comp = _compressor(level)
    return [comp.compress(view[i : i + frame_size]) for i in range(0, len(view), frame_size)]


def inflate(frame: bytes | memoryview, expected: int, what: str) -> bytes:
    """The logical bytes of one stored frame, refused unless exactly ``expected`` long.

    The frame's declared content size is checked before anything is allocated
    (python-zstandard sizes its output by it), and inflation is bounded by
    ``expected``: a frame that would inflate past it is an error, not memory.

    Raises:
        IntegrityError: not a zstd frame, or not ``expected`` bytes inflated.
    """
    if not 0 < expected <= MAX_FRAME or len(frame) > frame_bound(MAX_FRAME):
        raise IntegrityError(f"{what}: a frame is out of bounds")
    try:
        declared = zstandard.frame_content_size(frame)
        if declared not in (-1, expected):
            raise IntegrityError(
                f"{what}: a frame declares {declared} bytes, the manifest {expected}"
            )
        out = _decompressor().decompress(frame, max_output_size=expected)
    except zstandard.ZstdError:
        raise IntegrityError(f"{what}: a frame is not zstd data or inflates too far") from None
    if len(out) != expected:
        raise IntegrityError(f"{what}: a frame inflates to {len(out)} bytes, not {expected}")
    return out
