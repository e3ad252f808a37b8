"""The async API: the one implementation behind the CLI and the sync facade."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from . import legacy
from ._version import __version__
from .backends.base import Backend
from .connect import open_repository
from .dataset import Dataset, check_dataset
from .engine import pull as engine_pull
from .engine import push as engine_push
from .engine import repo
from .engine.config import TransferConfig
from .engine.progress import ProgressCallback, ProgressEvent, TransferStats
from .engine.scan import HashCache
from .engine.transport import Transport
from .errors import (
    ConfigError,
    DatasetExistsError,
    DatasetNotFoundError,
    EtceteraError,
    LocalIOError,
    PartitionNotFoundError,
)
from .format import layout
from .format.hashing import sha256_hex
from .format.manifest import FileEntry, Manifest
from .settings import Config, SettingsError, load_config
from .store import LocalVersion, Store, flush_tree, valid_name

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "RemoteDataset",
    "acreate",
    "adataset",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
]

PushResult = engine_push.PushResult
RemoteDataset = repo.RemoteDataset


def resolve_config(config: Config | None) -> Config:
    """The given config, or the one from ``~/.etc.toml`` and ``ETC_*`` variables."""
    if config is not None:
        return config
    try:
        return load_config()
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def transfer_config(config: Config) -> TransferConfig:
    """The engine's budgets from the settings."""
    return TransferConfig(
        concurrency=config.concurrency,
        io_threads=config.io_threads,
        part_size=config.part_size,
        pack_size=config.pack_size,
        pack_threshold=config.pack_threshold,
        memory_budget=config.memory_budget,
        retries=config.retries,
        retry_delay=config.retry_delay,
        retry_max_delay=config.retry_max_delay,
        bandwidth_limit=config.bandwidth_limit,
    )


@contextlib.asynccontextmanager
async def _repository(config: Config) -> AsyncIterator[Backend]:
    backend = open_repository(config)
    try:
        yield backend
    finally:
        with anyio.CancelScope(shield=True):
            await backend.aclose()


@dataclass
class PullResult:
    """What a pull did.

    Attributes:
        name: dataset name.
        version: version now local.
        location: the dataset folder.
        noop: the local copy was already this version.
        files: files in the pulled selection.
        size: bytes in the pulled selection.
        downloaded: files written from downloaded bytes.
        reused: files taken from the previous local copy.
        present: files already staged by an interrupted pull.
        bytes_to_download: bytes that had to be downloaded.
        seconds: wall time.
        stats: request-level counters.
    """

    name: str
    version: int
    location: Path
    noop: bool = False
    files: int = 0
    size: int = 0
    downloaded: int = 0
    reused: int = 0
    present: int = 0
    bytes_to_download: int = 0
    seconds: float = 0.0
    stats: TransferStats = field(default_factory=TransferStats)


def _parse_ref(name: str, version: int | None) -> tuple[str, int | None]:
    if "@" in name:
        base, _, ver = name.partition("@")
        if ver != "latest":
            if not ver.isdigit():
                raise DatasetNotFoundError(f"invalid version {ver!r} in {name!r}: use NAME@K")
            version = int(ver)
        name = base
    return valid_name(name), version


async def _load_manifest(t: Transport, store: Store, digest: str) -> Manifest:
    cached = store.manifest_cache(digest)
    if cached.is_file():
        data = await anyio.to_thread.run_sync(cached.read_bytes)
        if sha256_hex(data) == digest:
            return Manifest.parse(data)
    manifest, data = await repo.read_manifest(t, digest)

    def keep() -> None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)

    await anyio.to_thread.run_sync(keep)
    return manifest


async def apull(
    name: str,
    *,
    config: Config | None = None,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> PullResult:
    """Pull a dataset (latest version, or ``version``) into the local store.

    Only files that changed since the local copy are downloaded; an interrupted pull
    resumes; every byte is verified before the new copy replaces the old one in one
    rename. ``partitions`` pulls only those partitions (and every file outside
    ``data/``). ``name`` may be ``NAME@K``.

    Raises:
        DatasetNotFoundError: no such dataset or version in the repository.
        DatasetExistsError: ``NAME`` is a registered or created local dataset and
            ``force`` is not set.
    """
    started = time.monotonic()
    cfg = resolve_config(config)
    name, version = _parse_ref(name, version)
    store = Store(cfg.home)
    await anyio.to_thread.run_sync(store.ensure_home)
    tcfg = transfer_config(cfg)
    async with _repository(cfg) as backend, store.lock(name):
        t = Transport(backend, tcfg, TransferStats())
        await backend.check()
        if version is None and not await repo.versions(t, name):
            legacy_info = await t.head(layout.legacy_key(name))
            if legacy_info is not None:
                return await _pull_legacy(t, store, name, legacy_info.size, force, started)
        record = await repo.resolve(t, name, version)
        manifest = await _load_manifest(t, store, record.manifest)
        wanted = None if partitions is None else sorted(set(partitions))
        if wanted is not None:
            unknown = [p for p in wanted if p not in manifest.partitions]
            if unknown:
                raise PartitionNotFoundError(
                    f"dataset {name}@{record.number} has no partition {unknown[0]!r} "
                    f"(it has: {', '.join(manifest.partitions)})"
                )
        current = await anyio.to_thread.run_sync(store.current, name)
        link = store.link(name)
        if current is None and (link.is_symlink() or link.exists()) and not force:
            raise DatasetExistsError(
                f"dataset {name} is a local dataset in {store.home} (registered or created): "
                f"etc pull {name} --force replaces the link; the folder it points to stays"
            )
        if current is not None and current.covers(record.manifest, wanted) and not force:
            location = store.location(name)
            return PullResult(
                name, record.number, location, noop=True, seconds=time.monotonic() - started
            )
        # A partial copy of the same version grows: keep what it has.
        if current is not None and current.manifest == record.manifest and wanted is not None:
            if current.partitions is None:
                wanted = None
            else:
                wanted = sorted(set(wanted) | set(current.partitions))
        files = list(manifest.select(wanted))
        selection = "all" if wanted is None else sha256_hex("\0".join(wanted).encode())[:8]
        staging = store.staging(name, f"{record.manifest[:24]}-{selection}")
        tmp = staging.with_name(staging.name + ".tmp")
        reuse = await anyio.to_thread.run_sync(_reuse_index, store, name, current)
        fetched = await engine_pull.fetch(
            backend,
            tcfg,
            manifest,
            files,
            staging,
            tmp,
            name=name,
            reuse=reuse,
            progress=progress,
        )
        parts = manifest.partitions if wanted is None else tuple(wanted)
        state = LocalVersion(name, record.number, record.manifest, wanted, str(backend.describe()))
        location = await anyio.to_thread.run_sync(
            _publish_local,
            store,
            name,
            record.number,
            staging,
            tmp,
            parts,
            files,
            manifest.dirs,
            state,
        )
        return PullResult(
            name,
            record.number,
            location,
            files=fetched.files,
            size=fetched.size,
            downloaded=fetched.downloaded,
            reused=fetched.reused,
            present=fetched.present,
            bytes_to_download=fetched.bytes_to_download,
            seconds=time.monotonic() - started,
            stats=fetched.stats,
        )


async def _pull_legacy(
    t: Transport, store: Store, name: str, size: int, force: bool, started: float
) -> PullResult:
    """Pull a dataset of etcetera 0.0.x (one tgz) as version 0."""
    marker = f"legacy-tgz:{size}"
    current = await anyio.to_thread.run_sync(store.current, name)
    link = store.link(name)
    if current is None and (link.is_symlink() or link.exists()) and not force:
        raise DatasetExistsError(
            f"dataset {name} is a local dataset in {store.home}: etc pull {name} --force "
            "replaces the link; the folder it points to stays"
        )
    if current is not None and current.manifest == marker and not force:
        return PullResult(name, 0, store.location(name), noop=True)
    staging = store.staging(name, f"legacy-{size}")
    tmp = staging.with_name(staging.name + ".tmp")

    def fresh() -> None:
        shutil.rmtree(staging, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)

    await anyio.to_thread.run_sync(fresh)
    archive = tmp / "legacy.tgz"
    await legacy.download(t, name, archive)
    label = f"{name}.tgz in {t.backend.describe()}"
    files = await anyio.to_thread.run_sync(legacy.unpack, archive, staging, label)
    parts = await anyio.to_thread.run_sync(check_dataset, staging)
    state = LocalVersion(name, 0, marker, None, t.backend.describe())
    location = await anyio.to_thread.run_sync(
        _publish_local, store, name, 0, staging, tmp, parts, [], (), state
    )
    return PullResult(
        name,
        0,
        location,
        files=files,
        size=size,
        downloaded=files,
        bytes_to_download=size,
        seconds=time.monotonic() - started,
        stats=t.stats,
    )


def _reuse_index(
    store: Store, name: str, current: LocalVersion | None
) -> engine_pull.ReuseLookup | None:
    """Files of the current local copy that the hash cache vouches for, by digest."""
    if current is None:
        return None
    root = store.location(name)
    cache = HashCache(store.cache_file(root))
    by_digest: dict[str, str] = {}
    for path, entry in cache.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if entry[0] == st.st_size and entry[1] == st.st_mtime_ns and entry[2] == st.st_ino:
            by_digest.setdefault(str(entry[3]), path)

    def lookup(f: FileEntry) -> str | None:
        return by_digest.get(f.digest)

    return lookup


def _publish_local(
    store: Store,
    name: str,
    number: int,
    staging: Path,
    tmp: Path,
    partitions: Iterable[str],
    files: list[FileEntry],
    dirs: Iterable[str],
    state: LocalVersion,
) -> Path:
    """Flush the staged tree, rename it into ``.versions``, swap the link (blocking)."""
    try:
        for p in partitions:
            (staging / "data" / p).mkdir(parents=True, exist_ok=True)
        for d in dirs:
            (staging / d).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        flush_tree(staging)
        target = store.new_version_dir(name, number)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()
        store.write_state(target, state)
        store.swap(name, target)
    except OSError as exc:
        raise LocalIOError(f"cannot publish {name} in {store.home}: {exc.strerror}") from None
    # Remember what was verified, so that the next push or pull need not re-hash it.
    target = target.resolve()
    cache = HashCache(store.cache_file(target))
    cache.record_tree(target, files)
    cache.save()
    with contextlib.suppress(OSError):
        store.prune(name, target)
    return target


def _whoami() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def apush(
    name: str,
    *,
    config: Config | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
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
    store = Store(cfg.home)
    root = await anyio.to_thread.run_sync(store.location, name)
    await anyio.to_thread.run_sync(check_dataset, root)
    cache = await anyio.to_thread.run_sync(HashCache, store.cache_file(root))
    options = engine_push.PushOptions(
        force=force,
        dry_run=dry_run,
        ignore=tuple(cfg.ignore),
        pushed_by=_whoami(),
        tool=f"etcetera {__version__}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    async with _repository(cfg) as backend:
        return await engine_push.push(
            backend, transfer_config(cfg), root, name, options, cache=cache, progress=progress
        )


async def adataset(
    name: str,
    auto_pull: bool = False,
    config: Config | None = None,
    *,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
) -> Dataset:
    """Open a local dataset; with ``auto_pull``, pull it first if it is not local."""
    cfg = resolve_config(config)
    name, version = _parse_ref(name, version)
    store = Store(cfg.home)
    if version is not None:
        kept = await anyio.to_thread.run_sync(store.find_version, name, version)
        if kept is not None:
            return await anyio.to_thread.run_sync(lambda: Dataset(kept, name, version))
    local = store.link(name).is_dir()
    if not local or version is not None:
        if not auto_pull:
            raise DatasetNotFoundError(
                f"dataset {name} is not in {store.home}: etc pull {name}, "
                "or etc.dataset(name, auto_pull=True)"
            )
        await apull(name, config=cfg, version=version, partitions=partitions)
    location = await anyio.to_thread.run_sync(store.location, name)
    current = await anyio.to_thread.run_sync(store.current, name)
    return await anyio.to_thread.run_sync(
        lambda: Dataset(location, name, current.version if current else None)
    )


async def aregister(
    path: str | Path,
    name: str | None = None,
    *,
    force: bool = False,
    config: Config | None = None,
) -> Dataset:
    """Register a folder as a local dataset (a link to it, not a copy)."""
    cfg = resolve_config(config)
    folder = Path(path).expanduser().resolve()
    name = valid_name(folder.name if name is None else name)
    store = Store(cfg.home)

    def run() -> Dataset:
        check_dataset(folder)
        store.ensure_home()
        link = store.link(name)
        if (link.is_symlink() or link.exists()) and not force:
            raise DatasetExistsError(
                f"dataset {name} already exists in {store.home}: etc register {path} {name} --force"
            )
        store.swap(name, folder)
        return Dataset(folder, name)

    return await anyio.to_thread.run_sync(run)


async def acreate(
    name: str,
    partitions: Sequence[str] = ("train", "test"),
    *,
    force: bool = False,
    config: Config | None = None,
) -> Dataset:
    """Create an empty dataset in the store, with the given partition folders."""
    cfg = resolve_config(config)
    name = valid_name(name)
    if not partitions:
        raise ConfigError("a dataset needs at least one partition")
    for p in partitions:
        valid_name(p)
    store = Store(cfg.home)

    def run() -> Dataset:
        store.ensure_home()
        link = store.link(name)
        if (link.is_symlink() or link.exists()) and not force:
            raise DatasetExistsError(f"dataset {name} already exists in {store.home}")
        target = store.new_version_dir(name, None)
        for p in partitions:
            (target / "data" / p).mkdir(parents=True, exist_ok=True)
        store.write_state(target, LocalVersion(name, None, "", None))
        store.swap(name, target)
        return Dataset(target, name)

    return await anyio.to_thread.run_sync(run)


async def apurge(name: str, *, config: Config | None = None) -> None:
    """Remove a local dataset: its link, and the copies etcetera made (never a user's folder)."""
    cfg = resolve_config(config)
    store = Store(cfg.home)
    name = valid_name(name)
    async with store.lock(name):
        await anyio.to_thread.run_sync(store.purge, name)


async def als(*, config: Config | None = None, remote: bool = False) -> list[str]:
    """Names of the local datasets, or of the repository's with ``remote``."""
    cfg = resolve_config(config)
    if not remote:
        return await anyio.to_thread.run_sync(Store(cfg.home).names)
    return [d.name for d in await alist_remote(config=cfg)]


async def alist_remote(*, config: Config | None = None) -> list[RemoteDataset]:
    """The repository's datasets with their versions."""
    cfg = resolve_config(config)
    async with _repository(cfg) as backend:
        await backend.check()
        t = Transport(backend, transfer_config(cfg), TransferStats())
        return await repo.list_datasets(t)


def describe_error(exc: BaseException) -> str:
    """One line for a person."""
    if isinstance(exc, EtceteraError | OSError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def dumps(obj: object) -> str:
    """JSON for ``--json`` output."""
    return json.dumps(obj, indent=1, default=str)
