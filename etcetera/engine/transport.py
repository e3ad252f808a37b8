"""Every request of a transfer goes through here: bounded, retried, counted, paced.

:class:`Transport` wraps a back-end with the transfer's request limiter (how many
requests are in flight), retries with capped exponential backoff and full jitter
for errors marked ``retryable``, a token-bucket bandwidth limit, and the counters
of :class:`~etcetera.engine.progress.TransferStats`.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import TypeVar

import anyio

from ..backends.base import (
    Backend,
    Buffer,
    LocalObjects,
    ObjectInfo,
    PartRef,
    StagedObject,
    Upload,
)
from ..errors import BackendError, EtceteraError, TransientError
from .budget import ByteBudget
from .config import TransferConfig
from .progress import TransferStats

T = TypeVar("T")
_SNIFF = 4096  # bytes of a body that Transport.read shows its sniff


class RateLimiter:
    """A token bucket in bytes per second with an injectable clock and sleep."""

    def __init__(
        self,
        rate: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    async def consume(self, n: int) -> None:
        """Wait until ``n`` bytes may pass."""
        now = self._clock()
        start = max(self._next, now)
        self._next = start + n / self.rate
        if start > now:
            await self._sleep(start - now)


class Transport:
    """A back-end as one operation uses it: the operation's only bounds and counters.

    An operation (a push, a pull, an ``info``) makes exactly one, through its session:
    its request limit, byte budget, I/O-thread limit and statistics are the ones the
    user set, whatever steps the operation takes.

    Attributes:
        backend: the repository's back-end.
        config: sizes and budgets.
        stats: what this operation did, counted once.
        requests: requests in flight at most ``config.concurrency``.
        budget: bytes of file data in memory at most ``config.memory_budget``.
        io: worker threads for disk I/O and hashing at most ``config.io_threads``.
    """

    def __init__(self, backend: Backend, config: TransferConfig) -> None:
        self.backend = backend
        self.config = config
        self.stats = TransferStats()
        # A semaphore, not a CapacityLimiter: a streamed body holds its slot across
        # yields, and an abandoned generator may be finalised by another task.
        self.requests = anyio.Semaphore(config.concurrency)
        self.budget = ByteBudget(config.memory_budget)
        self.io = anyio.CapacityLimiter(config.io_threads)
        self._rate = RateLimiter(config.bandwidth_limit) if config.bandwidth_limit else None
        self._buffers: dict[int, list[bytearray]] = {}

    @contextlib.contextmanager
    def buffer(self, size: int) -> Iterator[bytearray]:
        """A buffer of ``size`` bytes for one read-then-send, reused by the next one.

        Fresh memory of part size is mapped and zero-filled by the kernel page by page;
        a reused buffer is not. Take its bytes from :attr:`budget` first: a buffer is
        back in the pool only while no one holds its bytes, so the pool never holds
        more than the budget allowed at once.
        """
        free = self._buffers.setdefault(size, [])
        buf = free.pop() if free else bytearray(size)
        try:
            yield buf
        finally:
            free.append(buf)

    async def each(self, items: Sequence[T], fn: Callable[[T], Awaitable[None]]) -> None:
        """Run ``fn`` on every item, in order, by at most ``concurrency`` workers at once.

        The engine's one worker pool: jobs are taken in the order given (largest first,
        by the callers), and a failure cancels the rest.
        """
        it = iter(items)

        async def worker() -> None:
            for item in it:
                await fn(item)

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.config.concurrency, len(items))):
                tg.start_soon(worker)

    async def _pace(self, n: int) -> None:
        if self._rate is not None and n:
            await self._rate.consume(n)

    def _delay(self, attempt: int) -> float:
        cap = min(self.config.retry_max_delay, self.config.retry_delay * (2**attempt))
        return random.uniform(0, cap)

    async def _again(self, exc: EtceteraError, what: str, attempt: int) -> None:
        """Back off before attempt ``attempt + 1`` of ``what``, or raise ``exc`` (the one policy).

        Only errors marked ``retryable`` are tried again, ``config.retries`` times at most,
        after a capped exponential delay with full jitter.
        """
        if not exc.retryable:
            raise exc
        if attempt >= self.config.retries:
            raise type(exc)(f"{exc} (gave up on {what} after {attempt + 1} attempts)") from exc
        self.stats.retries += 1
        await anyio.sleep(self._delay(attempt + 1))

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one request under the limiter, retrying retryable failures."""
        attempt = 0
        while True:
            try:
                async with self.requests:
                    self.stats.requests += 1
                    return await fn()
            except EtceteraError as exc:
                await self._again(exc, what, attempt)
            attempt += 1

    async def head(self, key: str) -> ObjectInfo | None:
        """HEAD an object."""
        return await self.call(key, lambda: self.backend.head(key))

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
        """PUT a whole object."""
        await self._pace(len(data))

        async def go() -> None:
            await self.backend.put(key, data, if_absent=if_absent)
            self.stats.bytes_sent += len(data)

        await self.call(key, go)

    async def read(
        self, key: str, max_size: int, sniff: Callable[[bytes], int] | None = None
    ) -> bytes:
        """A whole small object (manifest, record), refusing one over ``max_size``.

        ``sniff`` lowers the bound from what the object's first bytes (up to 4 KiB) say
        it is; either bound refuses the body as soon as it passes it, not once read.
        """
        pieces: list[bytes] = []
        size = 0
        limit = sniff or (lambda _head: max_size)
        bound: int | None = None  # known once 4 KiB arrived (or the whole, if smaller)
        body = self.stream(key, 0, None)
        async with aclosing(body):
            async for block in body:
                size += len(block)
                pieces.append(block)
                if bound is None and size >= _SNIFF:
                    bound = min(max_size, limit(b"".join(pieces)[:_SNIFF]))
                if size > (cap := max_size if bound is None else bound):
                    raise BackendError(f"object {key} is larger than {cap} bytes: refusing it")
        data = b"".join(pieces)
        if bound is None and size > (bound := min(max_size, limit(data))):
            raise BackendError(f"object {key} is larger than {bound} bytes: refusing it")
        return data

    async def stream(
        self, key: str, offset: int, length: int | None
    ) -> AsyncGenerator[bytes, None]:
        """Stream a range; a failure mid-body resumes from the last byte received."""
        got = 0
        attempt = 0
        while True:
            remaining = None if length is None else length - got
            if remaining == 0:
                return
            try:
                async with self.requests:
                    self.stats.requests += 1
                    source = self.backend.stream(key, offset + got, remaining)
                    async with aclosing(source) as body:
                        async for block in body:
                            got += len(block)
                            self.stats.bytes_received += len(block)
                            await self._pace(len(block))
                            yield block
                if length is not None and got < length:
                    raise TransientError(f"object {key} ended early ({got} of {length} bytes)")
                return
            except EtceteraError as exc:
                await self._again(exc, key, attempt)
            attempt += 1

    @property
    def local(self) -> LocalObjects | None:
        """The back-end, where its objects are files on this machine (see ``LocalObjects``).

        ``None`` with a bandwidth limit too: it paces every byte, and a copy in the kernel
        cannot be paced.
        """
        if self._rate is None and isinstance(self.backend, LocalObjects):
            return self.backend
        return None

    async def stage(self, local: LocalObjects, folder: str, fd: int) -> StagedObject:
        """Copy a local file into a temporary object of ``local`` (this transport's back-end)."""
        return await self.call(folder, lambda: local.stage(folder, fd))

    async def stage_ranges(
        self, local: LocalObjects, folder: str, ranges: Sequence[tuple[int, int, int]]
    ) -> StagedObject:
        """Copy ranges of local files, back to back, into a temporary object of ``local``."""
        staged = await self.call(folder, lambda: local.stage_ranges(folder, ranges))
        self.stats.bytes_sent += sum(r[2] for r in ranges)
        return staged

    async def copy_out(
        self, local: LocalObjects, key: str, fd: int, offset: int, length: int
    ) -> None:
        """Copy a range of an object of ``local`` into a local file."""
        await self.call(key, lambda: local.copy_out(key, fd, offset, length))
        self.stats.bytes_received += length

    async def copy_ranges(
        self, local: LocalObjects, key: str, fd: int, ranges: Sequence[tuple[int, int, int]]
    ) -> None:
        """Copy ranges ``(offset in key, offset in fd, length)`` of an object of ``local``."""
        await self.call(key, lambda: local.copy_ranges(key, fd, ranges))
        self.stats.bytes_received += sum(r[2] for r in ranges)

    async def upload(self, key: str) -> TransportUpload:
        """Start a multipart upload; its requests then go through this transport too."""
        return TransportUpload(self, await self.call(key, lambda: self.backend.upload(key)))

    async def uploads(self, prefix: str) -> list[TransportUpload]:
        """The unfinished uploads under a prefix (retried as a whole), to resume or abort."""

        async def go() -> list[Upload]:
            return [u async for u in self.backend.uploads(prefix)]

        return [TransportUpload(self, u) for u in await self.call(prefix, go)]

    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under a prefix (retried as a whole)."""

        async def go() -> list[ObjectInfo]:
            return [o async for o in self.backend.list(prefix)]

        return await self.call(prefix, go)


class TransportUpload:
    """A back-end's upload object as a transfer uses it: every request through the transport.

    ``put_part`` and ``parts`` are one request (a listing: pages) each, limited, retried
    and counted like any other. ``complete`` and ``abort`` may be several requests (a
    GCS composite upload composes in rounds, then deletes its temporaries): the upload
    gets the transport's ``call`` and sends each of them through it, rather than the
    whole being wrapped in one call, which would hold a request slot while its inner
    requests wait for one, and retry finished composes along with a failed one.
    """

    def __init__(self, transport: Transport, upload: Upload) -> None:
        self.transport = transport
        self.upload = upload

    @property
    def key(self) -> str:
        """The key of the object being uploaded."""
        return self.upload.key

    @property
    def upload_id(self) -> str:
        """The store's id of the upload."""
        return self.upload.upload_id

    @property
    def initiated(self) -> datetime | None:
        """When the upload was started, where the store says."""
        return self.upload.initiated

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """Upload one part (``crc32``: its CRC32, when the caller knows it)."""
        t = self.transport
        await t._pace(len(data))

        async def go() -> PartRef:
            ref = await self.upload.put_part(number, data, crc32=crc32)
            t.stats.bytes_sent += len(data)
            return ref

        return await t.call(f"{self.key} part {number}", go)

    async def parts(self) -> list[PartRef]:
        """The parts already stored, in number order (retried as a whole)."""

        async def go() -> list[PartRef]:
            return [p async for p in self.upload.parts()]

        return await self.transport.call(f"{self.key} parts", go)

    async def complete(self, parts: Sequence[PartRef]) -> None:
        """Assemble the parts into the object, each request limited and retried."""
        await self.upload.complete(parts, self.transport.call)

    async def abort(self) -> None:
        """Discard the upload, even while the caller is being cancelled (for at most 30 s)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(30):
            await self.upload.abort(self.transport.call)

    async def abort_after(self, exc: BaseException) -> None:
        """Discard the upload after ``exc`` if retrying will not mend it.

        That is an etcetera error (retries spent, not retryable, or the file changed).
        A cancelled or killed push keeps its upload, for a later push to resume by key
        or gc to remove. A failure to abort is not reported: ``exc`` is the one to.
        """
        failed = (
            exc.split(EtceteraError)[1] is None
            if isinstance(exc, BaseExceptionGroup)
            else isinstance(exc, EtceteraError)
        )
        if failed:
            with contextlib.suppress(EtceteraError):
                await self.abort()
