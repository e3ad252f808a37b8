"""Look at datasets: ``info`` (local or remote) and ``verify`` (re-hash against the manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..backends.base import ObjectInfo
from ..engine import refs
from ..engine.chunked import cuts_like
from ..engine.localfs import current_umask, local_mode
from ..engine.progress import ProgressCallback
from ..engine.scan import HashCache, hash_files, scan_tree
from ..errors import DatasetNotFoundError
from ..format.manifest import FileEntry, Manifest
from ..home import Home, valid_name
from ..model import Dataset
from ..settings import Config
from . import schemas
from ._common import resolve_config
from .session import session


def _unread(number: int, listed: ObjectInfo) -> dict[str, Any]:
    """A version past the latest records: only when the store last wrote its record."""
    created = listed.modified.isoformat(timespec="seconds") if listed.modified else None
    return schemas.unread_entry(number, created)


async def ainfo(name: str, *, config: Config | None = None, remote: bool = False) -> dict[str, Any]:
    """What is known of a dataset, as the ``etcetera.info/1`` document (local or remote).

    Local (default): the local copy: its folder (``location``, the version folder a
    pulled copy resolves to), its kind (``pulled``, ``registered``, ``created``),
    version, repository (of a pulled copy), shard (``[k, n]``, or ``None`` when the copy
    is not a shard), files and bytes per partition, meta. ``remote``: the repository's
    copy: every version, newest first (the records of the latest 1,000: who, when,
    files, bytes; for older ones only when the store last wrote their record, the rest
    ``None``) and the latest version's counts. Both
    have the same keys; what one side cannot know is ``None``.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    if not remote:
        home = Home(cfg.home)
        location = await anyio.to_thread.run_sync(home.location, name)
        current = await anyio.to_thread.run_sync(home.current, name)
        scan = await anyio.to_thread.run_sync(scan_tree, location, tuple(cfg.ignore))
        ds = await anyio.to_thread.run_sync(lambda: Dataset(location, name))
        parts, outside = schemas.partition_counts((f.path, f.size) for f in scan.files)
        for p in scan.partitions:
            parts.setdefault(p, {"files": 0, "bytes": 0})
        kind = (
            "registered" if current is None else ("created" if not current.manifest else "pulled")
        )
        return schemas.document(
            "info",
            name=name,
            where="local",
            kind=kind,
            repository=(current.url or None) if current is not None else None,
            path=str(home.link(name)),
            location=str(location),
            version=current.version if current else None,
            latest=None,
            manifest=(current.manifest or None) if current else None,
            shard=list(current.shard) if current and current.shard else None,
            files=len(scan.files),
            bytes=sum(f.size for f in scan.files),
            partitions=dict(sorted(parts.items())),
            outside=outside,
            meta=ds.meta,
            versions=[],
        )
    async with session(cfg) as s:
        await s.backend.check()
        listed = await refs.listed_versions(s.transport, name)
        if not listed:
            raise DatasetNotFoundError(f"dataset {name} does not exist in {s.backend.describe()}")
        numbers = sorted(listed)
        # A summary past the latest records: 20,000 versions would be 20,000 reads.
        older, recent = numbers[: -schemas.RECORDS_READ], numbers[-schemas.RECORDS_READ :]
        records = await refs.read_records(s.transport, name, recent)
        latest = records[-1]
        manifest = await s.manifest(latest.manifest)
        parts, outside = schemas.partition_counts((f.path, f.size) for f in manifest.files)
        for p in manifest.partitions:
            parts.setdefault(p, {"files": 0, "bytes": 0})
        return schemas.document(
            "info",
            name=name,
            where="remote",
            kind="remote",
            repository=s.backend.describe(),
            path=None,
            location=None,
            version=latest.number,
            latest=latest.number,
            manifest=latest.manifest,
            shard=None,
            files=latest.files,
            bytes=latest.size,
            partitions=dict(sorted(parts.items())),
            outside=outside,
            meta=None,
            versions=[
                *(schemas.version_entry(r) for r in reversed(records)),
                *(_unread(n, listed[n]) for n in reversed(older)),
            ],
        )


@dataclass
class VerifyResult:
    """What ``verify`` found.

    Attributes:
        name: dataset name.
        version: the version checked against.
        checked: files re-hashed.
        missing: files the manifest has and the folder lacks.
        changed: files whose bytes or mode differ from the manifest.
        extra: files the folder has and the manifest does not.
    """

    name: str
    version: int | None
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the local copy matches its manifest exactly."""
        return not (self.missing or self.changed or self.extra)


async def averify(
    name: str, *, config: Config | None = None, progress: ProgressCallback | None = None
) -> VerifyResult:
    """Re-hash every file of the local copy (no cache) and compare with its manifest.

    A pulled dataset is checked against the manifest of its version, and only against
    the files it was pulled with (its partitions, include/exclude patterns and shard); a
    registered one against the repository's latest version, whole.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    home = Home(cfg.home)
    location = await anyio.to_thread.run_sync(home.location, name)
    current = await anyio.to_thread.run_sync(home.current, name)
    async with session(cfg) as s:
        pulled = current if current and current.manifest and current.version is not None else None
        if pulled is not None:
            digest, number = pulled.manifest, pulled.version
        else:
            record = await refs.resolve(s.transport, name, None)
            digest, number = record.manifest, record.number
        if digest.startswith("legacy-"):
            raise DatasetNotFoundError(
                f"dataset {name} came from an etcetera 0.0.x archive, which has no manifest"
            )
        manifest: Manifest = await s.manifest(digest)
        scan = await anyio.to_thread.run_sync(scan_tree, location, tuple(cfg.ignore))
        cuts = cuts_like(manifest)
        hashed = await hash_files(
            scan,
            HashCache(None),
            name=name,
            chunk_size=manifest.chunk_size,
            io=s.transport.io,
            progress=progress,
            verify=True,
            cut=cuts,
        )
    wanted = manifest.files if pulled is None else pulled.selection.files(manifest)
    expected: dict[str, FileEntry] = {f.path: f for f in wanted}
    result = VerifyResult(name, number, checked=len(hashed))
    umask = current_umask()
    for f in hashed:
        want = expected.pop(f.path, None)
        if want is None:
            result.extra.append(f.path)
        elif want.digest != f.digest or f.mode not in (want.mode, local_mode(want.mode, umask)):
            result.changed.append(f.path)
    result.missing = sorted(expected)
    return result
