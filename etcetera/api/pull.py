"""Pull: the latest version (or NAME@K) into the local store, verified and atomic."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from .. import legacy
from ..engine import pull as engine_pull
from ..engine import repo
from ..engine.progress import ProgressCallback, TransferStats
from ..engine.scan import HashCache, selected
from ..engine.transport import Transport
from ..errors import DatasetExistsError, LocalIOError, PartitionNotFoundError
from ..format import layout
from ..format.hashing import sha256_hex
from ..format.manifest import FileEntry, Manifest
from ..model import check_dataset
from ..settings import Config
from ..store import LocalVersion, Store, flush_tree, fsync_dir
from ._common import load_manifest, parse_ref, repository, resolve_config, transfer_config


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
        dry_run: nothing was moved; the figures say what would have been.
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
    dry_run: bool = False


async def apull(
    name: str,
    *,
    config: Config | None = None,
    version: int | None = None,
    partitions: Sequence[str] | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    to: str | Path | None = None,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> PullResult:
    """Pull a dataset (latest version, or ``version``) into the local store.

    Only files that changed since the local copy are downloaded; an interrupted pull
    resumes; every byte is verified before the new copy replaces the old one in one
    rename. ``partitions`` pulls only those partitions (and every file outside
    ``data/``). ``name`` may be ``NAME@K``.

    Args:
        name: ``NAME`` or ``NAME@K``.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*``).
        version: version number instead of the latest.
        partitions: only these partitions.
        force: pull again, or replace a registered dataset's link (or a non-empty ``to``).
        progress: called with :class:`~etcetera.api.ProgressEvent` as bytes move.
        to: a folder of your choosing instead of the local store (CI staging).
        dry_run: say what would move, move nothing.
        include: only paths matching one of these glob patterns (``*`` crosses ``/``).
        exclude: never paths matching one of these.

    Raises:
        DatasetNotFoundError: no such dataset or version in the repository.
        DatasetExistsError: ``NAME`` is a registered or created local dataset and
            ``force`` is not set.
    """
    started = time.monotonic()
    cfg = resolve_config(config)
    name, version = parse_ref(name, version)
    store = Store(cfg.home)
    await anyio.to_thread.run_sync(store.ensure_home)
    tcfg = transfer_config(cfg)
    async with repository(cfg) as backend, store.lock(name):
        t = Transport(backend, tcfg, TransferStats())
        await backend.check()
        if version is None and not await repo.versions(t, name):
            legacy_info = await t.head(layout.legacy_key(name))
            if legacy_info is not None:
                return await _pull_legacy(t, store, name, legacy_info.size, force, started)
        record = await repo.resolve(t, name, version)
        manifest = await load_manifest(t, store, record.manifest)
        wanted = None if partitions is None else sorted(set(partitions))
        if wanted is not None:
            unknown = [p for p in wanted if p not in manifest.partitions]
            if unknown:
                raise PartitionNotFoundError(
                    f"dataset {name}@{record.number} has no partition {unknown[0]!r} "
                    f"(it has: {', '.join(manifest.partitions)})"
                )
        current = await anyio.to_thread.run_sync(store.current, name)
        filters = _filters(include, exclude)
        if to is not None or dry_run:
            files = [f for f in manifest.select(wanted) if selected(f.path, include, exclude)]
            reuse = await anyio.to_thread.run_sync(_reuse_index, store, name, current)
            if dry_run:
                missing = [f for f in files if f.size and (reuse is None or reuse(f) is None)]
                return PullResult(
                    name,
                    record.number,
                    Path(to) if to is not None else store.link(name),
                    files=len(files),
                    size=sum(f.size for f in files),
                    bytes_to_download=sum(f.size for f in missing),
                    dry_run=True,
                )
            assert to is not None
            return await _pull_to(
                t,
                manifest,
                record.number,
                record.manifest,
                files,
                wanted,
                Path(to),
                force,
                reuse,
                name,
                progress,
                started,
            )
        _refuse_local(store, name, current, force)
        if (
            current is not None
            and current.covers(record.manifest, wanted)
            and current.filters == filters
            and not force
        ):
            location = store.location(name)
            return PullResult(
                name, record.number, location, noop=True, seconds=time.monotonic() - started
            )
        # A partial copy of the same version grows: keep what it has.
        same = current is not None and current.manifest == record.manifest
        if current is not None and same and wanted is not None and not filters:
            if current.partitions is None:
                wanted = None
            else:
                wanted = sorted(set(wanted) | set(current.partitions))
        files = [f for f in manifest.select(wanted) if selected(f.path, include, exclude)]
        if wanted is None and not filters:
            selection = "all"
        else:
            selection = sha256_hex("\0".join([*(wanted or ["*"]), filters]).encode())[:8]
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
        state = LocalVersion(
            name, record.number, record.manifest, wanted, str(backend.describe()), filters
        )
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
        return _result(name, record.number, location, fetched, started)


def _result(
    name: str, number: int, location: Path, fetched: engine_pull.FetchResult, started: float
) -> PullResult:
    return PullResult(
        name,
        number,
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


def _refuse_local(store: Store, name: str, current: LocalVersion | None, force: bool) -> None:
    """A registered or created dataset is replaced only with ``force`` (its folder stays)."""
    link = store.link(name)
    if current is None and (link.is_symlink() or link.exists()) and not force:
        raise DatasetExistsError(
            f"dataset {name} is a local dataset in {store.home} (registered or created): "
            f"etc pull {name} --force replaces the link; the folder it points to stays"
        )


def _filters(include: Sequence[str], exclude: Sequence[str]) -> str:
    if not include and not exclude:
        return ""
    return "\0".join(["+", *include, "-", *exclude])


async def _pull_to(
    t: Transport,
    manifest: Manifest,
    number: int,
    digest: str,
    files: list[FileEntry],
    wanted: list[str] | None,
    target: Path,
    force: bool,
    reuse: engine_pull.ReuseLookup | None,
    name: str,
    progress: ProgressCallback | None,
    started: float,
) -> PullResult:
    """Pull into a folder of the user's choosing (not the store), replaced in one rename."""
    target = target.expanduser().absolute()

    def occupied() -> bool:
        return target.exists() and (not target.is_dir() or any(target.iterdir()))

    if await anyio.to_thread.run_sync(occupied) and not force:
        raise DatasetExistsError(f"{target} exists and is not empty: pull --to it with --force")
    staging = target.with_name(f".{target.name}.etc-{digest[:16]}")
    tmp = staging.with_name(staging.name + ".tmp")
    fetched = await engine_pull.fetch(
        t.backend,
        t.config,
        manifest,
        files,
        staging,
        tmp,
        name=name,
        reuse=reuse,
        progress=progress,
    )
    parts = manifest.partitions if wanted is None else tuple(wanted)

    def publish() -> None:
        for p in parts:
            (staging / "data" / p).mkdir(parents=True, exist_ok=True)
        for d in manifest.dirs:
            (staging / d).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        flush_tree(staging)
        old = None
        if target.is_dir() and any(target.iterdir()):
            old = target.with_name(f".{target.name}.etc-old-{digest[:8]}")
            os.replace(target, old)
        elif target.is_dir():
            target.rmdir()
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    try:
        await anyio.to_thread.run_sync(publish)
    except OSError as exc:
        raise LocalIOError(f"cannot publish {name} into {target}: {exc.strerror}") from None
    return _result(name, number, target, fetched, started)


async def _pull_legacy(
    t: Transport, store: Store, name: str, size: int, force: bool, started: float
) -> PullResult:
    """Pull a dataset of etcetera 0.0.x (one tgz) as version 0."""
    marker = f"legacy-tgz:{size}"
    current = await anyio.to_thread.run_sync(store.current, name)
    _refuse_local(store, name, current, force)
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
    """Files of the current local copy the hash cache knows, by digest (checked when used)."""
    if current is None:
        return None
    root = store.location(name)
    by_digest: dict[str, engine_pull.LocalCopy] = {}
    for path, entry in HashCache(store.cache_file(root)).items():
        mtime_ns, ino = entry[1], entry[2]
        if isinstance(mtime_ns, int) and isinstance(ino, int):
            by_digest.setdefault(str(entry[3]), engine_pull.LocalCopy(path, mtime_ns, ino))

    def lookup(f: FileEntry) -> engine_pull.LocalCopy | None:
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
        # The rename and the state file must be durable before the link points at them.
        fsync_dir(target.parent)
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
