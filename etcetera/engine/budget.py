"""A byte budget: an async semaphore counted in bytes, shared by one transfer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class ByteBudget:
    """Bounds the bytes of file data held in memory at once.

    A request larger than the whole budget is granted the whole budget, so that a
    single large part can still proceed (alone).
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._cond = anyio.Condition()
        #: Highest amount ever held at once (for benchmarks and tests).
        self.peak = 0

    @property
    def held(self) -> int:
        """Bytes currently held."""
        return self.total - self._free

    async def acquire(self, n: int) -> int:
        """Wait until ``n`` bytes (at most the total) are free, take them, return the amount."""
        n = min(max(n, 0), self.total)
        async with self._cond:
            while self._free < n:
                await self._cond.wait()
            self._free -= n
            self.peak = max(self.peak, self.total - self._free)
        return n

    async def release(self, n: int) -> None:
        """Give back ``n`` bytes taken by :meth:`acquire`."""
        async with self._cond:
            self._free += n
            self._cond.notify_all()

    @asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[int]:
        """Hold ``n`` bytes for the duration of a block."""
        got = await self.acquire(n)
        try:
            yield got
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(got)
