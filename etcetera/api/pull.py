"""Pull: the latest version (or NAME@K) into the local home, verified and atomic."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from ..engine import refs
from ..engine.progress import ProgressCallback, TransferStats
from ..errors import ConfigError, DatasetExistsError, PartitionNotFoundError
from ..format import layout
from ..format.manifest import FileEntry, Manifest
from ..format.record import VersionRecord
from ..format.selection import Selection
from ..home import Home, LocalVersion
from ..settings import Config
from ._common import parse_ref
from .bar import progress_for
from .session import Session, session

# A pull of what is already local is told from the version record alone; the modules
# that move files (the pull engine, content-defined chunking, staging, the scan of a
# tree, 0.0.x archives) are imported where a transfer starts, not by every `etc pull`.
if TYPE_CHECKING:
    from ..engine import pull as engine_pull
    from .staging import Staging


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
        bytes_to_download: bytes that had to be downloaded.
        seconds: wall time.
        stats: what the pull did, every request counted (version records and
            manifests included).
        dry_run: nothing was moved; the figures say what would have been.
        shard: ``(k, n)`` when shard ``k`` of ``n`` was pulled, else ``None``.
        through: the link given as ``to``, when it was one: ``location`` is the folder
            it points to, whose content the pull replaced (the link stays as it was).
    """

    name: str
    version: int
    location: Path
    noop: bool = False
    files: int = 0
    size: int = 0
    bytes_to_download: int = 0
    seconds: float = 0.0
    stats: TransferStats = field(default_factory=TransferStats)
    dry_run: bool = False
    shard: tuple[int, int] | None = None
    through: Path | None = None

    @property
    def downloaded(self) -> int:
        """Files written from downloaded bytes."""
        return self.stats.files_downloaded

    @property
    def reused(self) -> int:
        """Files taken from the previous local copy."""
        return self.stats.files_reused

    @property
    def present(self) -> int:
        """Files already staged by an interrupted pull."""
        return self.stats.files_present


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
    quiet: bool = False,
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
        quiet: no progress bar (without a ``progress`` callback, one is drawn in a
            notebook or on a terminal unless the ``progress_bar`` setting is false).

    Raises:
        DatasetNotFoundError: no such dataset or version in the repository.
        DatasetExistsError: ``NAME`` is a registered or created local dataset and
            ``force`` is not set.
        ConfigError: ``shard`` is not ``(k, n)`` with ``0 <= k < n``, or the dataset
            is an etcetera 0.0.x archive (which cannot be split).
    """
    started = time.monotonic()
    name, version = parse_ref(name, version)
    asked = Selection.of(partitions, include, exclude, shard)
    label = f"pull {name}"
    async with (
        session(config) as s,
        progress_for(progress, label=label, quiet=quiet, enabled=s.config.progress_bar) as progress,
    ):
        home = s.home
        await anyio.to_thread.run_sync(home.ensure_home)
        async with home.lock(name):
            # The latest version: one listing and one read, no more (a no-op pull of ten
            # million files is these two requests). The repository is checked only when
            # the listing finds nothing, to tell a missing bucket from a missing dataset.
            numbers = await refs.versions(s.transport, name) if version is None else []
            if not numbers:
                await s.backend.check()
            if version is None and not numbers:
                legacy_info = await s.transport.head(layout.legacy_key(name))
                if legacy_info is not None:
                    if asked.shard is not None:
                        raise ConfigError(
                            f"dataset {name} is an etcetera 0.0.x archive, which cannot be "
                            f"split into shards: etc pull {name} without --shard"
                        )
                    return await _pull_legacy(s, name, legacy_info.size, force, started)
            if numbers:
                record = await refs.read_record(s.transport, name, numbers[-1])
            else:
                record = await refs.resolve(s.transport, name, version)
            pull = _Pull(s, name, record, asked, progress, started)
            return await pull.run(to=to, dry_run=dry_run, force=force)


class _Pull:
    """One pull of a selection of a resolved version, in a session."""

    def __init__(
        self,
        s: Session,
        name: str,
        record: VersionRecord,
        selection: Selection,
        progress: ProgressCallback | None,
        started: float,
    ) -> None:
        self.s = s
        self.name = name
        self.record = record
        self.selection = selection
        self.progress = progress
        self.started = started

    def result(
        self,
        location: Path,
        files: Sequence[FileEntry] = (),
        *,
        noop: bool = False,
        dry_run: bool = False,
        bytes_to_download: int = 0,
    ) -> PullResult:
        return PullResult(
            self.name,
            self.record.number,
            location,
            noop=noop,
            files=len(files),
            size=sum(f.size for f in files),
            bytes_to_download=bytes_to_download,
            seconds=time.monotonic() - self.started,
            stats=self.s.stats,
            dry_run=dry_run,
            shard=self.selection.shard,
        )

    async def run(self, *, to: str | Path | None, dry_run: bool, force: bool) -> PullResult:
        home, name, digest = self.s.home, self.name, self.record.manifest
        current = await anyio.to_thread.run_sync(home.current, name)
        into_home = to is None and not dry_run
        if (
            into_home
            and not force
            and current is not None
            and current.holds(digest, self.selection)
        ):
            # Already local: decided from the version record alone, so a no-op pull of
            # ten million files does not read their manifest.
            return self.result(home.location(name), noop=True)
        from ..engine import pull as engine_pull
        from . import folder
        from .staging import Staging

        if into_home:
            _refuse_local(home, name, current, force)
            if current is not None and current.manifest == digest:
                self.selection = self.selection.grown(current.selection)
        manifest = await _manifest(self.s, name, self.record, self.selection)
        files = self.selection.files(manifest)
        reuse = await anyio.to_thread.run_sync(_reuse_index, home, name, current)
        named = None if to is None else Path(to).expanduser().absolute()
        # A --to link is resolved once: the folder it points to is the one replaced.
        target = None if named is None else await anyio.to_thread.run_sync(_resolved, named)
        through = named if named != target else None
        if dry_run:
            missing = [f for f in files if f.size and (reuse is None or reuse(f) is None)]
            where = target if target is not None else home.link(name)
            result = self.result(
                where, files, dry_run=True, bytes_to_download=sum(f.size for f in missing)
            )
            result.through = through
            return result
        if target is not None:
            if await anyio.to_thread.run_sync(_occupied, target) and not force:
                if await self._holds(target, manifest, files):
                    return self.result(target, files, noop=True)  # the same request again
                via = f" ({through} links to it)" if through else ""
                raise DatasetExistsError(
                    f"{target}{via} exists and holds other files than the {name}@"
                    f"{self.record.number} asked for: pull --to it with --force to replace them"
                )
            staging = Staging.beside(target, digest, self.selection)
        else:
            staging = Staging.in_home(home, name, digest, self.selection)
        from ..reading.pulling import cached_copies  # above the API: imported when used

        reuse = await cached_copies(
            self.s, files, manifest.chunk_size, staging.tmp, reuse, manifest.extents
        )
        moved = await engine_pull.fetch(
            self.s.transport,
            manifest,
            files,
            staging.folder,
            staging.tmp,
            name=name,
            reuse=reuse,
            progress=self.progress,
            previous=_previous(home, name, current),
        )
        parts = (
            manifest.partitions if self.selection.partitions is None else self.selection.partitions
        )
        if target is not None:
            location = await anyio.to_thread.run_sync(
                staging.publish_to, target, name, parts, manifest.dirs
            )
            await anyio.to_thread.run_sync(folder.remember, home, location, files)
        else:
            state = LocalVersion.pulled(
                name, self.record.number, digest, self.selection, self.s.backend.describe()
            )
            location = await anyio.to_thread.run_sync(
                staging.publish_home, home, state, parts, manifest.dirs, files
            )
        result = self.result(location, files, bytes_to_download=moved)
        result.through = through
        return result

    async def _holds(self, target: Path, manifest: Manifest, files: Sequence[FileEntry]) -> bool:
        from . import folder

        cuts = None
        if manifest.extents:  # (the chunker is imported only where a version needs it)
            from ..engine.chunked import cuts_like

            cuts = cuts_like(manifest)
        parts = (
            manifest.partitions if self.selection.partitions is None else self.selection.partitions
        )
        return await folder.holds(
            self.s.home,
            target,
            files,
            parts,
            name=self.name,
            chunk_size=manifest.chunk_size,
            ignore=tuple(self.s.config.ignore),
            io=self.s.transport.io,
            cut=cuts,
        )


async def _manifest(s: Session, name: str, record: VersionRecord, selection: Selection) -> Manifest:
    """The manifest of ``record``, only the selection's partitions read (checked to exist)."""
    # A partition of 10^7 files is decoded without the rest.
    manifest = await s.manifest(record.manifest, selection.partitions)
    unknown = [p for p in selection.partitions or () if p not in manifest.partitions]
    if unknown:
        raise PartitionNotFoundError(
            f"dataset {name}@{record.number} has no partition {unknown[0]!r} "
            f"(it has: {', '.join(manifest.partitions)})"
        )
    return manifest


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
    from ..engine import pull as engine_pull
    from .staging import Staging

    name, _ = parse_ref(name, None)
    worker = Selection.of(shard=shard).shard or (0, 1)
    async with session(config) as s:
        await anyio.to_thread.run_sync(s.home.ensure_home)
        record = await refs.resolve(s.transport, name, version)
        current = await anyio.to_thread.run_sync(s.home.current, name)
        # The selection the publishing apull will make (a local partial copy grows it).
        whole = Selection.of(partitions)
        if current is not None and current.manifest == record.manifest:
            whole = whole.grown(current.selection)
        manifest = await _manifest(s, name, record, whole)
        files = Selection.of(whole.partitions, shard=worker).files(manifest)
        staging = Staging.in_home(s.home, name, record.manifest, whole, worker)
        await engine_pull.fetch(
            s.transport, manifest, files, staging.folder, staging.tmp, name=name
        )
        await anyio.to_thread.run_sync(_remove_tree, staging.tmp)
        return s.stats.files_downloaded + s.stats.files_present


def _remove_tree(path: Path) -> None:
    from ..engine.localfs import remove_tree

    remove_tree(str(path))


def _resolved(path: Path) -> Path:
    """The folder a ``--to`` path names: a link's target (resolved once), else the path."""
    return path.resolve() if path.is_symlink() else path


def _occupied(target: Path) -> bool:
    return target.exists() and (not target.is_dir() or any(target.iterdir()))


def _refuse_local(home: Home, name: str, current: LocalVersion | None, force: bool) -> None:
    """A registered or created dataset is replaced only with ``force`` (its folder stays)."""
    link = home.link(name)
    if current is None and (link.is_symlink() or link.exists()) and not force:
        raise DatasetExistsError(
            f"dataset {name} is a local dataset in {home.path} (registered or created): "
            f"etc pull {name} --force replaces the link; the folder it points to stays"
        )


async def _pull_legacy(s: Session, name: str, size: int, force: bool, started: float) -> PullResult:
    """Pull a dataset of etcetera 0.0.x (one tgz) as version 0."""
    from .. import legacy
    from ..model import check_dataset
    from .staging import Staging

    home, t = s.home, s.transport
    marker = f"legacy-tgz:{size}"
    current = await anyio.to_thread.run_sync(home.current, name)
    _refuse_local(home, name, current, force)
    if current is not None and current.manifest == marker and not force:
        return PullResult(name, 0, home.location(name), noop=True, stats=s.stats)
    staging = Staging.labelled(home, name, f"legacy-{size}")

    def fresh() -> None:
        _remove_tree(staging.folder)
        staging.tmp.mkdir(parents=True, exist_ok=True)

    await anyio.to_thread.run_sync(fresh)
    archive = staging.tmp / "legacy.tgz"
    label = f"{name}.tgz in {s.backend.describe()}"
    try:
        await legacy.download(t, name, archive, size)
        files = await anyio.to_thread.run_sync(legacy.unpack, archive, staging.folder, label)
        parts = await anyio.to_thread.run_sync(check_dataset, staging.folder)
    except BaseException:
        # An archive is fetched whole each time: nothing of a failed one is worth keeping.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove_legacy_staging, staging)
        raise
    state = LocalVersion(name, 0, marker, None, s.backend.describe())
    location = await anyio.to_thread.run_sync(staging.publish_home, home, state, parts, (), [])
    s.stats.files_downloaded += files
    return PullResult(
        name,
        0,
        location,
        files=files,
        size=size,
        bytes_to_download=size,
        seconds=time.monotonic() - started,
        stats=s.stats,
    )


def _remove_legacy_staging(staging: Staging) -> None:
    _remove_tree(staging.folder)
    _remove_tree(staging.tmp)


def _previous(
    home: Home, name: str, current: LocalVersion | None
) -> Callable[[str], str | None] | None:
    """The current local copy's file at a path: an earlier version of a chunked file."""
    if current is None:
        return None
    root = home.location(name)

    from ..engine.fdpaths import stat_path

    def lookup(path: str) -> str | None:
        where = str(root / path)
        try:  # (a path of any length: Path.is_file raises past PATH_MAX)
            return where if stat.S_ISREG(stat_path(where).st_mode) else None
        except OSError:
            return None

    return lookup


def _reuse_index(
    home: Home, name: str, current: LocalVersion | None
) -> engine_pull.ReuseLookup | None:
    """Files of the current local copy the hash cache knows, by digest (checked when used)."""
    from ..engine import pull as engine_pull
    from ..engine.scan import HashCache

    if current is None:
        return None
    root = home.location(name)
    by_digest: dict[str, engine_pull.LocalCopy] = {}
    for path, entry in HashCache(home.cache_file(root)).items():
        mtime_ns, ino = entry[1], entry[2]
        if not (isinstance(mtime_ns, int) and isinstance(ino, int)):
            continue
        copy = engine_pull.LocalCopy(path, mtime_ns, ino)
        for digest in entry[3:4] + entry[5:6]:  # fixed-chunk and cut digests, where known
            if isinstance(digest, str) and digest:
                by_digest.setdefault(digest, copy)

    def lookup(f: FileEntry) -> engine_pull.LocalCopy | None:
        return by_digest.get(f.digest)

    return lookup
