"""Push: a local dataset as the next version of its name."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from .._version import __version__
from ..engine import push as engine_push
from ..engine.progress import ProgressCallback
from ..engine.scan import HashCache
from ..home import Home, valid_name
from ..model import check_dataset
from ..settings import Config
from . import stores
from ._common import resolve_config, whoami
from .session import session

PushResult = engine_push.PushResult


async def apush(
    name: str,
    *,
    config: Config | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> PushResult:
    """Push a local dataset to the repository as its next version.

    Pushing the tree that is already the latest version is a no-op. Pushing a
    different tree under an existing name needs ``force`` and makes version K+1.

    Raises:
        DatasetNotFoundError: no local dataset of that name.
        DatasetExistsError: the name exists remotely with other content and no ``force``.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    home = Home(cfg.home)
    root = await anyio.to_thread.run_sync(home.location, name)
    await anyio.to_thread.run_sync(check_dataset, root)
    cache = await anyio.to_thread.run_sync(HashCache, home.cache_file(root))
    options = push_options(cfg, force=force, dry_run=dry_run, include=include, exclude=exclude)
    async with session(cfg) as s:
        if not dry_run:
            options = dataclasses.replace(options, create_only=await stores.create_only(s))
        return await engine_push.push(
            s.transport, root, name, options, cache=cache, progress=progress
        )


def push_options(
    config: Config,
    *,
    force: bool = False,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> engine_push.PushOptions:
    """The choices of a push made now, by this user, with these settings."""
    return engine_push.PushOptions(
        force=force,
        dry_run=dry_run,
        ignore=tuple(config.ignore),
        include=tuple(include),
        exclude=tuple(exclude),
        pushed_by=whoami(),
        tool=f"etcetera {__version__}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
