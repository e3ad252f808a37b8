"""One frozen object for every size and budget of a transfer."""

from __future__ import annotations

from dataclasses import dataclass

from .. import defaults
from ..format.hashing import CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """Sizes and budgets of a transfer.

    The API layer builds it from the settings (``connect.transfer_options``); a field
    named like a setting takes that setting's value, and its default is the setting's
    default (:mod:`etcetera.defaults`). ``chunk_size`` is the format's, not a setting.

    Attributes:
        concurrency: requests in flight at most.
        io_threads: worker threads for disk I/O and hashing.
        part_size: multipart part and download range size (rounded to whole chunks).
        pack_size: target size of a pack of small files.
        pack_threshold: files smaller than this are packed.
        compression: zstd level of the objects a push compresses (0: none).
        memory_budget: bytes of file data held in memory by the transfer at most,
            whatever ``concurrency`` is.
        retries: attempts after the first for a retryable failure.
        retry_delay: first backoff delay (seconds); doubles, capped, with full jitter.
        retry_max_delay: longest backoff delay (seconds).
        bandwidth_limit: bytes per second over all requests, or ``None``.
        content_chunks: whether a push cuts large files by content (format v3).
        chunk_size: the format's hash chunk size.
    """

    concurrency: int = defaults.CONCURRENCY
    io_threads: int = defaults.IO_THREADS
    part_size: int = defaults.PART_SIZE
    pack_size: int = defaults.PACK_SIZE
    pack_threshold: int = defaults.PACK_THRESHOLD
    compression: int = defaults.COMPRESSION
    memory_budget: int = defaults.MEMORY_BUDGET
    retries: int = defaults.RETRIES
    retry_delay: float = defaults.RETRY_DELAY
    retry_max_delay: float = defaults.RETRY_MAX_DELAY
    bandwidth_limit: int | None = None
    content_chunks: bool = False
    chunk_size: int = CHUNK_SIZE

    def part_size_for(self, size: int, min_part: int, max_parts: int) -> int:
        """Part size for an object of ``size`` bytes: whole chunks, within store limits."""
        part = max(self.part_size, min_part, self.chunk_size)
        part = -(-part // self.chunk_size) * self.chunk_size
        while -(-size // part) > max_parts:
            part *= 2
        # Bounded by memory too, and still whole chunks (each part is verified by chunk).
        cap = max(self.memory_budget // 2 // self.chunk_size * self.chunk_size, self.chunk_size)
        return min(part, cap)
