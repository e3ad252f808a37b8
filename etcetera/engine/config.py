"""One frozen object for every size and budget of a transfer."""

from __future__ import annotations

from dataclasses import dataclass

from ..format.hashing import CHUNK_SIZE

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """Sizes and budgets of a transfer.

    Attributes:
        concurrency: requests in flight at most.
        io_threads: worker threads for disk I/O and hashing.
        part_size: multipart part and download range size (rounded to whole chunks).
        pack_size: target size of a pack of small files.
        pack_threshold: files smaller than this are packed.
        memory_budget: bytes of file data held in memory by the transfer at most,
            whatever ``concurrency`` is.
        retries: attempts after the first for a retryable failure.
        retry_delay: first backoff delay (seconds); doubles, capped, with full jitter.
        retry_max_delay: longest backoff delay (seconds).
        bandwidth_limit: bytes per second over all requests, or ``None``.
        chunk_size: the format's hash chunk size.
    """

    concurrency: int = 32
    io_threads: int = 8
    part_size: int = 16 * MiB
    pack_size: int = 32 * MiB
    pack_threshold: int = 4 * MiB
    memory_budget: int = 160 * MiB
    retries: int = 5
    retry_delay: float = 0.2
    retry_max_delay: float = 10.0
    bandwidth_limit: int | None = None
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
