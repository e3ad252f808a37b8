"""The local home: open, register, create, purge and list datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from ..engine import refs
from ..errors import ConfigError, DatasetExistsError, DatasetNotFoundError
from ..format.selection import Selection
from ..home import Home, LocalVersion, valid_name
from ..model import Dataset, check_dataset
from ..settings import Config
from ._common import parse_ref, resolve_config
from .pull import apull
from .session import session

RemoteDataset = refs.RemoteDataset


async def adataset(
    name: str,
    auto_pull: bool = False,
    config: Config | None = None,
    *,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    quiet: bool = False,
) -> Dataset:
    """Open a local dataset; with ``auto_pull``, pull it first if it is not local.

    Args:
        name: dataset name (``NAME@K`` for version K).
        auto_pull: pull from the repository when the dataset is not local.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        version: a version number instead of the latest (``NAME@K`` and a different
            ``version`` is a :class:`ConfigError`).
        partitions: with ``auto_pull``, pull only these partitions.
        shard: ``(k, n)``: shard ``k`` of ``n`` (``k`` 0-based, e.g. the rank and world
            size of a training job). The local copy must be that shard; with
            ``auto_pull`` it is pulled when it is not (see :func:`etcetera.apull`).
            ``None``: whatever copy is local (the whole dataset when it pulls).
        quiet: pull without a progress bar (one is drawn in a notebook or on a terminal
            unless the ``progress_bar`` setting is false).

    Raises:
        DatasetNotFoundError: not local (or not the version or shard asked for) and
            no ``auto_pull``.
    """
    cfg = resolve_config(config)
    name, version = parse_ref(name, version)
    shard = Selection.of(shard=shard).shard
    home = Home(cfg.home)
    if version is not None:
        kept = await anyio.to_thread.run_sync(home.find_version, name, version, shard)
        if kept is not None:
            state = await anyio.to_thread.run_sync(home.read_state, kept)
            kept_shard = state.shard if state is not None else None
            return await anyio.to_thread.run_sync(lambda: Dataset(kept, name, version, kept_shard))
    local = home.link(name).is_dir()
    current = await anyio.to_thread.run_sync(home.current, name)
    other_shard = shard is not None and (current is None or current.shard != shard)
    if not local or version is not None or other_shard:
        if not auto_pull:
            flag = "" if shard is None else f" --shard {shard[0]}/{shard[1]}"
            if local and other_shard:
                held = current.shard if current is not None else None
                have = "the whole dataset" if held is None else f"shard {held[0]}/{held[1]}"
                raise DatasetNotFoundError(
                    f"dataset {name} in {home.path} is {have}, not the shard asked for: "
                    f"etc pull {name}{flag}, or auto_pull=True"
                )
            from .remote import not_local  # reads the reading core only when it must

            raise DatasetNotFoundError(await not_local(cfg, name, version, str(home.path), flag))
        await apull(
            name, config=cfg, version=version, partitions=partitions, shard=shard, quiet=quiet
        )
        current = await anyio.to_thread.run_sync(home.current, name)
    location = await anyio.to_thread.run_sync(home.location, name)
    return await anyio.to_thread.run_sync(
        lambda: Dataset(
            location,
            name,
            current.version if current else None,
            current.shard if current else None,
        )
    )


async def aregister(
    path: str | Path,
    name: str | None = None,
    *,
    force: bool = False,
    config: Config | None = None,
) -> Dataset:
    """Register a folder as a local dataset (a link, not a copy).

    Args:
        path: the dataset folder.
        name: name to register it under (default: the folder's name).
        force: replace an existing dataset of that name (only its link).
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).

    Registering a folder again under the name it has is a no-op; another folder under
    a taken name needs ``force``.
    """
    cfg = resolve_config(config)
    folder = Path(path).expanduser().resolve()
    name = valid_name(folder.name if name is None else name)
    home = Home(cfg.home)

    def run() -> Dataset:
        check_dataset(folder)
        home.ensure_home()
        link = home.link(name)
        if home.is_registered(name) and link.resolve() == folder:
            return Dataset(folder, name)  # registered there already: a no-op
        if (link.is_symlink() or link.exists()) and not force:
            raise DatasetExistsError(
                f"dataset {name} already exists in {home.path}: etc register {path} {name} --force"
            )
        home.swap(name, folder)
        return Dataset(folder, name)

    return await anyio.to_thread.run_sync(run)


async def acreate(
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
    cfg = resolve_config(config)
    name = valid_name(name)
    if not partitions:
        raise ConfigError("a dataset needs at least one partition")
    for p in partitions:
        valid_name(p)
    home = Home(cfg.home)

    def run() -> Dataset:
        home.ensure_home()
        link = home.link(name)
        if (link.is_symlink() or link.exists()) and not force:
            raise DatasetExistsError(f"dataset {name} already exists in {home.path}")
        target = home.new_version_dir(name, None)
        for p in partitions:
            (target / "data" / p).mkdir(parents=True, exist_ok=True)
        home.write_state(target, LocalVersion(name, None, "", None))
        home.swap(name, target)
        return Dataset(target, name)

    return await anyio.to_thread.run_sync(run)


async def apurge(name: str, *, config: Config | None = None) -> Path | None:
    """Remove a local dataset (never a registered user's folder).

    Args:
        name: dataset name.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).

    Returns:
        The folder of a registered dataset, which stays where it is; None for others.
    """
    cfg = resolve_config(config)
    home = Home(cfg.home)
    name = valid_name(name)
    async with home.lock(name):
        return await anyio.to_thread.run_sync(home.purge, name)


async def als(*, config: Config | None = None, remote: bool = False) -> list[str]:
    """Names of local datasets, or of the repository's with ``remote``.

    Args:
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        remote: list the repository instead of the local store.
    """
    cfg = resolve_config(config)
    if not remote:
        return await anyio.to_thread.run_sync(Home(cfg.home).names)
    return [d.name for d in await alist_remote(config=cfg)]


async def alist_remote(*, config: Config | None = None) -> list[RemoteDataset]:
    """The repository's datasets with their versions."""
    cfg = resolve_config(config)
    async with session(cfg) as s:
        await s.backend.check()
        return await refs.list_datasets(s.transport)
