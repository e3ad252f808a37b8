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
from ..errors import ConfigError, DatasetExistsError, LocalIOError, PartitionNotFoundError
from ..format import layout
from ..format.hashing import sha256_hex
from ..format.manifest import FileEntry, Manifest
from ..format.sharding import check_shard, select_shard
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
        shard: ``(k, n)`` when shard ``k`` of ``n`` was pulled, else ``None``.
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
    shard: tuple[int, int] | None = None


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
    shard: tuple[int, int] | None = None,
) -> PullResult:
    """Pull a dataset (latest version, or ``version``) into the local store.

    Only files that changed since the local copy are downloaded; an interrupted pull
    resumes; every byte is verified before the new copy replaces the old one in one
    rename. ``partitions`` pulls only those partitions (and every file outside
    ``data/``). ``name`` may be ``NAME@K``.

    ``shard=(k, n)`` pulls shard ``k`` of ``n`` (``k`` 0-based, like a rank:
    ``(0, 4)`` .. ``(3, 4)``): a deterministic share of the selection's files under
    ``data/``, byte-balanced by whole packs and blobs, plus every file outside
    ``data/`` and every partition folder (see :mod:`etcetera.format.sharding`). The
    ``n`` shards are disjoint and together are the whole selection; ``(0, 1)`` is the
    whole selection. The local copy records its shard (:attr:`Dataset.shard
    <etcetera.Dataset.shard>`), and is current only for that same shard: pulling a
    shard where the whole dataset (or another shard) is local makes a new local copy
    of just that shard, reusing the local files.

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
        shard: ``(k, n)``: only shard ``k`` of ``n``, ``0 <= k < n``.

    Raises:
        DatasetNotFoundError: no such dataset or version in the repository.
        DatasetExistsError: ``NAME`` is a registered or created local dataset and
            ``force`` is not set.
        ConfigError: ``shard`` is not ``(k, n)`` with ``0 <= k < n``, or the dataset
            is an etcetera 0.0.x archive (which cannot be split).
    """
    started = time.monotonic()
    cfg = resolve_config(config)
    name, version = parse_ref(name, version)
    shard = normal_shard(shard)
    store = Store(cfg.home)
    await anyio.to_thread.run_sync(store.ensure_home)
    tcfg = transfer_config(cfg)
    async with repository(cfg) as backend, store.lock(name):
        t = Transport(backend, tcfg, TransferStats())
        await backend.check()
        if version is None and not await repo.versions(t, name):
            legacy_info = await t.head(layout.legacy_key(name))
            if legacy_info is not None:
                if shard is not None:
                    raise ConfigError(
                        f"dataset {name} is an etcetera 0.0.x archive, which cannot be "
                        f"split into shards: etc pull {name} without --shard"
                    )
                return await _pull_legacy(t, store, name, legacy_info.size, force, started)
        record = await repo.resolve(t, name, version)
        wanted = None if partitions is None else sorted(set(partitions))
        filters = _filters(include, exclude)
        current = await anyio.to_thread.run_sync(store.current, name)
        if (
            to is None
            and not dry_run
            and not force
            and current is not None
            and current.covers(record.manifest, wanted, shard)
            and current.filters == filters
        ):
            # Already local: decided from the version record alone, so a no-op pull of
            # ten million files does not read their manifest.
            location = store.location(name)
            return PullResult(
                name,
                record.number,
                location,
                noop=True,
                seconds=time.monotonic() - started,
                shard=shard,
            )
        if to is None and not dry_run:
            _refuse_local(store, name, current, force)
            wanted = _grown(current, record.manifest, wanted, filters, shard)
        # Only the wanted partitions' manifest pieces are read (a partition of 10^7 files
        # is decoded without the rest).
        manifest = await load_manifest(t, store, record.manifest, wanted)
        if wanted is not None:
            unknown = [p for p in wanted if p not in manifest.partitions]
            if unknown:
                raise PartitionNotFoundError(
                    f"dataset {name}@{record.number} has no partition {unknown[0]!r} "
                    f"(it has: {', '.join(manifest.partitions)})"
                )
        if to is not None or dry_run:
            files = selection(manifest, wanted, include, exclude, shard)
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
                    shard=shard,
                )
            assert to is not None
            return await _pull_to(
                t,
                manifest,
                record.number,
                record.manifest,
                files,
                wanted,
                _selection_key(wanted, filters, shard),
                Path(to),
                force,
                reuse,
                name,
                progress,
                started,
                shard,
            )
        files = selection(manifest, wanted, include, exclude, shard)
        key = _selection_key(wanted, filters, shard)
        staging = store.staging(name, f"{record.manifest[:24]}-{key}")
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
            name, record.number, record.manifest, wanted, str(backend.describe()), filters, shard
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
        return _result(name, record.number, location, fetched, started, shard)


async def astage(
    name: str,
    *,
    config: Config | None = None,
    version: int,
    partitions: Sequence[str] | None = None,
    shard: tuple[int, int],
) -> int:
    """Download shard ``shard`` of a version into the staging folder of the whole selection.

    The step one worker of a distributed pull takes (:mod:`etcetera.distributed`): the
    workers of a shared home each stage a disjoint shard, concurrently and without the
    name's lock (they write different files; each file is verified, then renamed into
    place), and one :func:`apull` of the same selection then finds them staged and
    publishes the whole. Nothing becomes visible here. Returns the files written.
    """
    cfg = resolve_config(config)
    name, _ = parse_ref(name, None)
    k, n = check_shard(shard)
    store = Store(cfg.home)
    await anyio.to_thread.run_sync(store.ensure_home)
    async with repository(cfg) as backend:
        t = Transport(backend, transfer_config(cfg), TransferStats())
        record = await repo.resolve(t, name, version)
        current = await anyio.to_thread.run_sync(store.current, name)
        # The selection the publishing apull will make (a local partial copy grows it).
        wanted = None if partitions is None else sorted(set(partitions))
        wanted = _grown(current, record.manifest, wanted, "", None)
        manifest = await load_manifest(t, store, record.manifest, wanted)
        unknown = [p for p in wanted or () if p not in manifest.partitions]
        if unknown:
            raise PartitionNotFoundError(
                f"dataset {name}@{record.number} has no partition {unknown[0]!r}"
            )
        files = selection(manifest, wanted, (), (), (k, n))
        staging = store.staging(name, f"{record.manifest[:24]}-{_selection_key(wanted, '', None)}")
        # Its own temporary folder: a blob in two partitions may be on two shards.
        tmp = staging.with_name(f"{staging.name}.tmp-{k}of{n}")
        fetched = await engine_pull.fetch(
            backend, transfer_config(cfg), manifest, files, staging, tmp, name=name
        )
        await anyio.to_thread.run_sync(shutil.rmtree, tmp, True)
    return fetched.downloaded + fetched.present


def _grown(
    current: LocalVersion | None,
    manifest: str,
    wanted: list[str] | None,
    filters: str,
    shard: tuple[int, int] | None,
) -> list[str] | None:
    """The partitions to pull: a partial copy of the same version (and shard) grows."""
    if (
        current is None
        or current.manifest != manifest
        or current.shard != shard
        or wanted is None
        or filters
    ):
        return wanted
    if current.partitions is None:
        return None
    return sorted(set(wanted) | set(current.partitions))


def normal_shard(shard: object) -> tuple[int, int] | None:
    """``shard`` checked (:class:`ConfigError` unless ``0 <= k < n``); ``(0, 1)`` is ``None``."""
    if shard is None:
        return None
    k, n = check_shard(shard)
    return None if n == 1 else (k, n)


def selection(
    manifest: Manifest,
    partitions: Iterable[str] | None,
    include: Sequence[str],
    exclude: Sequence[str],
    shard: tuple[int, int] | None,
) -> list[FileEntry]:
    """The files a pull of this selection holds: partitions, include/exclude, then the shard.

    The shard is a share of the files the other options select, so ``verify`` (and a
    resumed pull) computes the same files from the same options.
    """
    files = list(manifest.select(partitions))
    if include or exclude:
        files = [f for f in files if selected(f.path, include, exclude)]
    if shard is not None:
        files = select_shard(files, *shard)
    return files


def local_files(manifest: Manifest, state: LocalVersion) -> list[FileEntry]:
    """The files a pulled local copy must hold, from what its record says was pulled."""
    include, exclude = _unfilters(state.filters)
    return selection(manifest, state.partitions, include, exclude, state.shard)


def _selection_key(
    wanted: Sequence[str] | None, filters: str, shard: tuple[int, int] | None
) -> str:
    """Names a pull's staging folder: only the same selection resumes into it."""
    if wanted is None and not filters:
        key = "all"
    else:
        key = sha256_hex("\0".join([*(wanted or ["*"]), filters]).encode())[:8]
    if shard is not None:
        key += f"-shard{shard[0]}of{shard[1]}"
    return key


def _result(
    name: str,
    number: int,
    location: Path,
    fetched: engine_pull.FetchResult,
    started: float,
    shard: tuple[int, int] | None = None,
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
        shard=shard,
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


def _unfilters(filters: str) -> tuple[list[str], list[str]]:
    """``(include, exclude)`` back from :func:`_filters` (a ``-`` pattern reads as the cut)."""
    if not filters:
        return [], []
    parts = filters.split("\0")
    cut = parts.index("-", 1)
    return parts[1:cut], parts[cut + 1 :]


async def _pull_to(
    t: Transport,
    manifest: Manifest,
    number: int,
    digest: str,
    files: list[FileEntry],
    wanted: list[str] | None,
    key: str,
    target: Path,
    force: bool,
    reuse: engine_pull.ReuseLookup | None,
    name: str,
    progress: ProgressCallback | None,
    started: float,
    shard: tuple[int, int] | None,
) -> PullResult:
    """Pull into a folder of the user's choosing (not the store), replaced in one rename."""
    target = target.expanduser().absolute()

    def occupied() -> bool:
        return target.exists() and (not target.is_dir() or any(target.iterdir()))

    if await anyio.to_thread.run_sync(occupied) and not force:
        raise DatasetExistsError(f"{target} exists and is not empty: pull --to it with --force")
    # Keyed by the selection too: a --to pull of other partitions or another shard must
    # not resume into (and publish) this one's files.
    suffix = "" if key == "all" else f"-{key}"
    staging = target.with_name(f".{target.name}.etc-{digest[:16]}{suffix}")
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
    return _result(name, number, target, fetched, started, shard)


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
