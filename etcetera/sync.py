"""The sync API: thin facades over :mod:`etcetera.api`, through one anyio blocking portal.

Each call runs its coroutine on an event loop in a worker thread that lives only for
that call, so the functions also work where an event loop is already running
(Jupyter, an async app). Ctrl-C in the caller cancels the coroutine, which cleans up
as on any cancellation (an interrupted pull resumes next time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

from anyio.from_thread import start_blocking_portal

from . import api
from .api import ProgressCallback
from .model import Dataset
from .settings import Config

P = ParamSpec("P")
T = TypeVar("T")


def run(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run an async API function to completion from sync code."""
    with start_blocking_portal(backend="asyncio") as portal:
        return portal.call(lambda: fn(*args, **kwargs))


def dataset(
    name: str,
    auto_pull: bool = False,
    config: Config | None = None,
    *,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
) -> Dataset:
    """Open a local dataset; with ``auto_pull``, pull it first if it is not local.

    Args:
        name: dataset name (``NAME@K`` for version K).
        auto_pull: pull from the repository when the dataset is not local.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        version: a version number instead of the latest.
        partitions: with ``auto_pull``, pull only these partitions.
        shard: ``(k, n)``: shard ``k`` of ``n`` (``k`` 0-based, e.g. the rank and world
            size of a training job). The local copy must be that shard; with
            ``auto_pull`` it is pulled when it is not (see :func:`etcetera.apull`).
            ``None``: whatever copy is local (the whole dataset when it pulls).
    """
    return run(
        api.adataset,
        name,
        auto_pull,
        config,
        version=version,
        partitions=partitions,
        shard=shard,
    )


def pull(
    name: str,
    *,
    config: Config | None = None,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    shard: tuple[int, int] | None = None,
) -> api.PullResult:
    """Pull a dataset into the local store (see :func:`etcetera.api.apull`).

    ``shard=(k, n)`` pulls only shard ``k`` of ``n`` (``k`` 0-based).
    """
    return run(
        api.apull,
        name,
        config=config,
        version=version,
        partitions=partitions,
        force=force,
        progress=progress,
        shard=shard,
    )


def push(
    name: str,
    *,
    config: Config | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> api.PushResult:
    """Push a local dataset as its next version (see :func:`etcetera.api.apush`)."""
    return run(api.apush, name, config=config, force=force, dry_run=dry_run, progress=progress)


def register(
    path: str | Path, name: str | None = None, *, force: bool = False, config: Config | None = None
) -> Dataset:
    """Register a folder as a local dataset (a link, not a copy).

    Args:
        path: the dataset folder.
        name: name to register it under (default: the folder's name).
        force: replace an existing dataset of that name (only its link).
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
    """
    return run(api.aregister, path, name, force=force, config=config)


def create(
    name: str,
    partitions: Sequence[str] = ("train", "test"),
    *,
    force: bool = False,
    config: Config | None = None,
) -> Dataset:
    """Create an empty dataset in the local store.

    Args:
        name: dataset name.
        partitions: partition folders to create.
        force: replace an existing dataset of that name.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
    """
    return run(api.acreate, name, partitions, force=force, config=config)


def purge(name: str, *, config: Config | None = None) -> None:
    """Remove a local dataset (never a registered user's folder).

    Args:
        name: dataset name.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
    """
    run(api.apurge, name, config=config)


def ls(*, config: Config | None = None, remote: bool = False) -> list[str]:
    """Names of local datasets, or of the repository's with ``remote``.

    Args:
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        remote: list the repository instead of the local store.
    """
    return run(api.als, config=config, remote=remote)
