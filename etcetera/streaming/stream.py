"""The stream: a version's files as samples for training, in an order that resumes exactly.

A :class:`Stream` is made by :func:`etcetera.stream` (or :func:`etcetera.astream`),
which pins the version and counts its files. The object holds no session, no thread
and no connection: it can be pickled into the worker processes of a data loader, and
each process that iterates it opens its own session then (after a fork, never
inherited from the parent), reads its share of the samples, and closes it.

Iterating it yields :class:`Sample` ``(path, data)``, or what ``transform`` makes of
one. The order is :mod:`etcetera.streaming.order`'s: a function of the seed, the epoch
and the rank, the same whatever the number of worker processes.
"""

from __future__ import annotations

import copy
import functools
import queue
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import anyio
import anyio.to_thread

from ..api.session import first_error
from ..engine.progress import TransferStats
from ..errors import ConfigError
from ..portal import DaemonPortal
from ..settings import Config
from . import order
from .loaders import Handoff, register_torch, torch_worker
from .reader import Sample

#: What :meth:`Stream.state_dict` writes, and :meth:`Stream.load_state_dict` reads.
STATE_FORMAT = "etcetera-stream/1"

#: The fields of the state that must match the stream it is loaded into.
_IDENTITY: tuple[str, ...] = (
    "name",
    "version",
    "manifest",
    "selection",
    "seed",
    "shuffle",
    "world",
    "rank",
    "partial",
    "window",
    "window_bytes",
)


class Stream:
    """A pinned version's files (a selection of them) as a resumable stream of samples.

    Use it as an iterable (``for sample in stream``), an async one (``async for``), or
    a ``torch.utils.data.IterableDataset`` (it registers as one when PyTorch is
    imported; PyTorch is not a dependency of etcetera). See :func:`etcetera.astream`
    for the parameters.

    Attributes:
        name: the dataset.
        version: the pinned version number.
        manifest: the digest of its manifest.
        epoch: the epoch the next iteration reads (:meth:`set_epoch`).
        stats: what the latest iteration in this process did (requests, bytes
            received), ``None`` before one.
    """

    def __init__(
        self,
        *,
        config: Config,
        name: str,
        version: int,
        manifest: str,
        partitions: tuple[str, ...],
        include: tuple[str, ...],
        exclude: tuple[str, ...],
        count: int,
        seed: int,
        shuffle: bool,
        rank: int,
        world: int,
        batch_size: int | None,
        partial: order.Partial,
        window: int,
        window_bytes: int,
        transform: Callable[[Sample], Any] | None,
        epoch: int,
    ) -> None:
        self.config = config
        self.name = name
        self.version = version
        self.manifest = manifest
        self.partitions = partitions
        self.include = include
        self.exclude = exclude
        self.count = count
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world = world
        self.batch_size = batch_size
        self.partial = partial
        self.window = window
        self.window_bytes = window_bytes
        self.transform = transform
        self.epoch = epoch
        self._start = 0  # where iterations of this epoch begin (a resume)
        self._yielded = 0  # samples this process's current iteration has yielded
        self._worker: tuple[int, int] | None = None
        self.stats: TransferStats | None = None
        register_torch(Stream)

    # -- what it is -----------------------------------------------------------------------
    def __len__(self) -> int:
        """Samples this rank yields in an epoch (the same for every rank)."""
        return order.rank_length(self.count, self.world, self.partial)

    @property
    def selection(self) -> str:
        """The selection as text (partitions, then patterns), for the state's check."""
        return "\0".join([*self.partitions, "+", *self.include, "-", *self.exclude])

    def __repr__(self) -> str:
        return (
            f"Stream({self.name}@{self.version}, partitions={list(self.partitions)!r}, "
            f"rank={self.rank}/{self.world}, epoch={self.epoch}, samples={len(self)})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "stats": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        register_torch(Stream)  # a worker process that imported torch sees a Dataset too

    # -- epochs and resuming --------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next (call it before each epoch, as ``DistributedSampler``).

        A resume point loaded by :meth:`load_state_dict` belongs to its epoch: moving to
        another epoch starts that one from its beginning.
        """
        if epoch != self.epoch:
            self.epoch = epoch
            self._start = 0
            self._yielded = 0

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this rank is in its epoch, to resume from with :meth:`load_state_dict`.

        Args:
            consumed: samples the training loop has taken since the current iteration
                began (a data loader's batches times their size). ``None``: the samples
                this process has yielded itself (iterating the stream directly).

        The samples after a resume from this state are exactly those of the epoch that
        were not consumed, with any number of data loader workers.
        """
        taken = self._yielded if consumed is None else consumed
        if taken < 0:
            raise ConfigError(f"invalid consumed {consumed}: not negative")
        return {
            "format": STATE_FORMAT,
            **{key: getattr(self, key) for key in _IDENTITY},
            "epoch": self.epoch,
            "consumed": min(len(self), self._start + taken),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a :meth:`state_dict`: the next iteration of its epoch starts there.

        Raises:
            ConfigError: the state is not a stream state, or it belongs to another
                stream (another version, selection, seed, rank or world ...).
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"not a stream state (no format {STATE_FORMAT!r})")
        for key in _IDENTITY:
            if state.get(key) != getattr(self, key):
                raise ConfigError(
                    f"the state belongs to another stream: its {key} is {state.get(key)!r}, "
                    f"this stream's is {getattr(self, key)!r}"
                )
        epoch, consumed = state.get("epoch"), state.get("consumed")
        if not isinstance(epoch, int) or not isinstance(consumed, int):
            raise ConfigError("not a stream state (epoch and consumed must be integers)")
        if not 0 <= consumed <= len(self):
            raise ConfigError(f"invalid consumed {consumed}: this rank has {len(self)} samples")
        self.epoch = epoch
        self._start = consumed
        self._yielded = 0

    # -- readers --------------------------------------------------------------------------
    def for_worker(self, worker: int, workers: int) -> Stream:
        """A copy that reads worker ``worker``'s share of ``workers`` (a data loader's part).

        PyTorch's ``DataLoader`` needs no call: each worker finds its share itself.
        A loader that takes one batch of ``batch_size`` from each worker in turn gets
        the rank's samples in order.
        """
        order.reader_positions(0, 0, worker, workers, 1)  # checks the pair
        out = copy.copy(self)
        out._worker = (worker, workers)
        return out

    def _reader(self) -> tuple[int, int, int]:
        """``(worker, workers, batch)`` of the process about to iterate."""
        worker, workers = self._worker or torch_worker() or (0, 1)
        if workers > 1 and self.batch_size is None:
            raise ConfigError(
                f"the stream is read by {workers} workers: give etcetera.stream(..., "
                "batch_size=) the loader's batch size, so that its order and resume hold"
            )
        return worker, workers, self.batch_size or 1

    def __iter__(self) -> Iterator[Any]:
        # Not a generator itself: the count restarts when iteration is asked for, so
        # state_dict() right after iter() says nothing was taken.
        worker, workers, batch = self._reader()
        self._yielded = 0
        return self._samples(worker, workers, batch, self._start)

    def _samples(self, worker: int, workers: int, batch: int, start: int) -> Iterator[Any]:
        transform = self.transform
        handoff = Handoff(4)
        with DaemonPortal() as portal:
            future = portal.start_task_soon(
                self._producer(), handoff, worker, workers, batch, start
            )
            try:
                while True:
                    try:
                        samples = handoff.queue.get(timeout=1.0)
                    except queue.Empty:
                        if future.done():
                            break  # ended without its last word: its error follows
                        continue
                    if samples is None:
                        break
                    for sample in samples:
                        self._yielded += 1  # counted once handed over: state_dict() sees it
                        yield sample if transform is None else transform(sample)
                future.result()
            finally:
                future.cancel()
                handoff.drain()
        self._finished(workers)

    def _finished(self, workers: int) -> None:
        """After a whole iteration in this process: the epoch is done, the next starts over."""
        if self._worker is None and workers == 1:
            self._start = 0
            self._yielded = len(self)

    async def __aiter__(self) -> AsyncIterator[Any]:
        worker, workers, batch = self._reader()
        start = self._start
        self._yielded = 0
        send, receive = anyio.create_memory_object_stream[list[Sample]](2)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._producer(), send, worker, workers, batch, start)
                async with receive:
                    async for samples in receive:
                        for sample in samples:
                            self._yielded += 1
                            yield sample if self.transform is None else self.transform(sample)
        except BaseExceptionGroup as group:
            error = first_error(group)
            if error is None:
                raise
            raise error from error.__cause__
        self._finished(workers)

    def _producer(self) -> Callable[..., Coroutine[Any, Any, None]]:
        """The coroutine that feeds an iteration (imports the I/O side once a process reads)."""
        from .io import produce

        return functools.partial(produce, self)
