"""What data loaders meet: the queue a sync consumer reads, PyTorch's worker info and types.

Nothing here imports torch: its module is looked up in ``sys.modules``, so that only a
process that imported torch itself sees a stream as a ``torch.utils.data`` dataset.
"""

from __future__ import annotations

import contextlib
import queue
import sys

import anyio
import anyio.to_thread
from anyio.abc import ObjectSendStream

from .reader import Sample


class Handoff(ObjectSendStream[list[Sample]]):
    """Samples for a sync consumer: a queue it reads without a hop through the event loop.

    The consumer takes lists of samples from a thread-safe queue (microseconds), so a
    data loader worker spends its time on its transform, not on thread hand-offs; a
    full queue makes the producer wait in a worker thread (back-pressure).
    """

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[list[Sample] | None] = queue.Queue(size)

    async def send(self, item: list[Sample]) -> None:
        """Queue a list of samples (waiting in a worker thread while the queue is full)."""
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            await anyio.to_thread.run_sync(self.queue.put, item, abandon_on_cancel=True)

    async def aclose(self) -> None:
        """Queue the end (``None``)."""
        await anyio.to_thread.run_sync(self.queue.put, None, abandon_on_cancel=True)

    def drain(self) -> None:
        """Empty the queue, so that a producer blocked on it (being cancelled) finishes."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()


def torch_worker() -> tuple[int, int] | None:
    """``(id, num_workers)`` inside a PyTorch data loader worker (torch already imported)."""
    data = sys.modules.get("torch.utils.data")
    info = data.get_worker_info() if data is not None else None
    return None if info is None else (int(info.id), int(info.num_workers))


def register_torch(cls: type) -> None:
    """Make ``cls`` a ``torch.utils.data.IterableDataset``, once torch is imported.

    A virtual subclass (``ABCMeta.register``): ``DataLoader`` then iterates a stream
    instead of indexing it, and etcetera never imports torch itself.
    """
    data = sys.modules.get("torch.utils.data")
    if data is not None and not issubclass(cls, data.IterableDataset):
        data.IterableDataset.register(cls)
