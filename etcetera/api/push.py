"""Push: a local dataset as the next version of its name."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

import anyio
import anyio.to_thread

from .._version import __version__
from ..engine import push as engine_push
from ..engine import refs
from ..engine.progress import ProgressCallback
from ..engine.scan import HashCache
from ..errors import DatasetNotFoundError
from ..home import Home, valid_name
from ..model import check_dataset
from ..settings import Config
from . import stores
from ._common import resolve_config, whoami
from .bar import progress_for
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
    quiet: bool = False,
) -> PushResult:
    """Push a local dataset to the repository as its next version.

    Pushing the tree that is already the latest version is a no-op. Pushing a
    different tree under an existing name needs ``force`` and makes version K+1.
    Without a ``progress`` callback, a bar is drawn in a notebook or on a terminal
    unless ``quiet`` or the ``progress_bar`` setting is false.

    Raises:
        DatasetNotFoundError: no local dataset of that name.
        DatasetExistsError: the name exists remotely with other content and no ``force``.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    home = Home(cfg.home)
    if not await anyio.to_thread.run_sync(lambda: home.link(name).is_dir()):
        await _not_local(cfg, home, name)
    root = await anyio.to_thread.run_sync(home.location, name)
    await anyio.to_thread.run_sync(check_dataset, root)
    options = push_options(cfg, force=force, dry_run=dry_run, include=include, exclude=exclude)
    cache = HashCache(home.cache_file(root))  # its files are read when needed
    async with (
        session(cfg) as s,
        progress_for(
            progress, label=f"push {name}", quiet=quiet, enabled=cfg.progress_bar
        ) as progress,
    ):
        if not dry_run:
            options = dataclasses.replace(options, create_only=await stores.create_only(s))
        return await engine_push.push(
            s.transport, root, name, options, cache=cache, progress=progress
        )


async def _not_local(cfg: Config, home: Home, name: str) -> NoReturn:
    """Say why a dataset cannot be pushed: what to pull, or what to register."""
    async with session(cfg) as s:
        numbers = await refs.versions(s.transport, name)
    if numbers:
        raise DatasetNotFoundError(
            f"dataset {name} is not in {home.path}; {s.backend.describe()} has it "
            f"(version {numbers[-1]}): etc pull {name} first"
        )
    raise DatasetNotFoundError(
        f"dataset {name} is not in {home.path}: etc register DIR {name} first, or etc push DIR"
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
