"""Making a stream: check its parameters, pin the version, count the files it reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..api._common import parse_ref, resolve_config
from ..api.session import session
from ..errors import ConfigError, PartitionNotFoundError
from ..reading import open_version
from ..settings import Config
from . import order
from .io import select
from .reader import Sample
from .stream import Stream

MiB = 1024 * 1024


async def astream(
    name: str,
    partitions: str | Sequence[str] | None = None,
    *,
    config: Config | None = None,
    version: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    seed: int = 0,
    shuffle: bool = True,
    epoch: int = 0,
    rank: int = 0,
    world: int = 1,
    batch_size: int | None = None,
    partial: str = "pad",
    window: int = 8,
    window_bytes: int = 64 * MiB,
    transform: Callable[[Sample], Any] | None = None,
) -> Stream:
    """A stream of a version's files for training, read from the repository as it goes.

    Pins the version (``NAME@K``, or the latest) and counts the files; the stream is
    then read by iterating it, directly or through a data loader (see
    :class:`~etcetera.streaming.Stream`). Nothing is pulled: pieces of packs are read
    by ranged requests, verified, and kept in the home's cache.

    Args:
        name: dataset name (``NAME@K`` for version K).
        partitions: the partition (``"train"``) or partitions to read; ``None``: all.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        version: a version number instead of the latest.
        include: only paths matching one of these glob patterns (``*`` crosses ``/``).
        exclude: never paths matching one of these.
        seed: the shuffle's seed (every rank must use the same).
        shuffle: shuffle each epoch (packs, then files within windows of packs);
            ``False``: path order.
        epoch: the first epoch (:meth:`Stream.set_epoch` moves on).
        rank: this process's rank, ``0 .. world-1`` (as ``torch.distributed``).
        world: number of ranks; each reads a disjoint share of equal size.
        batch_size: the data loader's batch size, needed when it has worker
            processes (their shares are whole batches, so that it yields the rank's
            order); any value with no workers.
        partial: ``"pad"``: each rank gets ``ceil(N / world)`` samples, repeating a
            few; ``"drop"``: ``N // world``, leaving a few out of this epoch.
        window: pieces (a pack's files, or a blob) whose files are shuffled together.
        window_bytes: bytes of a window at most; it is held in memory while it is
            yielded, so it must fit the ``memory_budget`` setting.
        transform: applied to each :class:`Sample` in the reading process (decode an
            image, tokenize a text ...); its result is what the stream yields.

    Raises:
        DatasetNotFoundError: no such dataset or version (the versions are listed).
        PartitionNotFoundError: no such partition.
        ConfigError: an invalid parameter.
    """
    cfg = resolve_config(config)
    base, number = parse_ref(name, version)
    how = order.check_partial(partial)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"invalid rank {rank} of world {world}: need 0 <= rank < world")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"invalid batch_size {batch_size}: at least 1")
    if window < 1:
        raise ConfigError(f"invalid window {window}: at least 1 piece")
    if not 0 < window_bytes <= cfg.memory_budget:
        raise ConfigError(
            f"invalid window_bytes {window_bytes}: between 1 and the memory_budget setting "
            f"({cfg.memory_budget}), which holds a window while it is read"
        )
    wanted = (partitions,) if isinstance(partitions, str) else partitions
    async with session(cfg) as s:
        v = await open_version(s, base, number)
        known = v.partitions
        chosen = tuple(known) if wanted is None else tuple(dict.fromkeys(wanted))
        for p in chosen:
            if p not in known:
                raise PartitionNotFoundError(
                    f"{v.ref} has no partition {p!r} (it has: {', '.join(known)})"
                )
        files = await select(v, chosen, include, exclude)
        return Stream(
            config=cfg,
            name=base,
            version=v.number,
            manifest=v.record.manifest,
            partitions=chosen,
            include=tuple(include),
            exclude=tuple(exclude),
            count=len(files),
            seed=seed,
            shuffle=shuffle,
            rank=rank,
            world=world,
            batch_size=batch_size,
            partial=how,
            window=window,
            window_bytes=window_bytes,
            transform=transform,
            epoch=epoch,
        )
