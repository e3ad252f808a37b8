"""Iterate progress events of a transfer instead of passing a callback."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ..engine.progress import ProgressEvent

T = TypeVar("T")


class Watch(Generic[T]):
    """Progress events of a running transfer, then its result.

    ``async for event in watch`` yields :class:`ProgressEvent` until the transfer ends;
    ``watch.result`` is then what the transfer returned.
    """

    def __init__(self, events: MemoryObjectReceiveStream[ProgressEvent]) -> None:
        self._events = events
        self._result: T | None = None
        self._done = False

    @property
    def result(self) -> T:
        """What the transfer returned (after the events are exhausted)."""
        if not self._done:
            raise RuntimeError("the transfer has not finished: iterate the events first")
        return self._result  # type: ignore[return-value]

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self._events.__aiter__()


@asynccontextmanager
async def watch(
    fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> AsyncIterator[Watch[T]]:
    """Run ``fn(*args, progress=..., **kwargs)`` and iterate its progress events.

    Example::

        async with etc.api.watch(etc.apull, "sample") as transfer:
            async for event in transfer:
                print(event.phase, event.bytes_done, event.bytes_total)
        print(transfer.result.version)
    """
    # Events are throttled (10 a second at most), so an unbounded buffer stays small.
    send, receive = anyio.create_memory_object_stream[ProgressEvent](math.inf)
    w: Watch[T] = Watch(receive)

    async def run() -> None:
        async with send:
            w._result = await fn(*args, progress=send.send_nowait, **kwargs)
            w._done = True

    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(run)
        yield w
