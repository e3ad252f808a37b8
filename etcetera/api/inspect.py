"""Look at datasets: ``info`` (local or remote) and ``verify`` (re-hash against the manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..engine import refs
from ..engine.progress import ProgressCallback
from ..engine.scan import HashCache, hash_files, scan_tree
from ..errors import DatasetNotFoundError
from ..format.manifest import FileEntry, Manifest
from ..format.record import VersionRecord
from ..home import Home, valid_name
from ..model import Dataset
from ..settings import Config
from . import schemas
from ._common import resolve_config
from .session import session


async def ainfo(name: str, *, config: Config | None = None, remote: bool = False) -> dict[str, Any]:
    """What is known of a dataset, as the ``etcetera.info/1`` document (local or remote).

    Local (default): the local copy: its folder (``location``, the version folder a
    pulled copy resolves to), its kind (``pulled``, ``registered``, ``created``),
    version, repository (of a pulled copy), shard (``[k, n]``, or ``None`` when the copy
    is not a shard), files and bytes per partition, meta. ``remote``: the repository's
    copy: every version's record (newest first) and the latest version's counts. Both
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
        numbers = await refs.versions(s.transport, name)
        if not numbers:
            raise DatasetNotFoundError(f"dataset {name} does not exist in {s.backend.describe()}")
        found: dict[int, VersionRecord] = {}

        async def read(n: int) -> None:
            found[n] = await refs.read_record(s.transport, name, n)

        await s.transport.each(numbers, read)
        records = [found[n] for n in numbers]
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
            versions=[schemas.version_entry(r) for r in reversed(records)],
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
        hashed = await hash_files(
            scan,
            HashCache(None),
            name=name,
            chunk_size=manifest.chunk_size,
            io=s.transport.io,
            progress=progress,
            verify=True,
        )
    wanted = manifest.files if pulled is None else pulled.selection.files(manifest)
    expected: dict[str, FileEntry] = {f.path: f for f in wanted}
    result = VerifyResult(name, number, checked=len(hashed))
    for f in hashed:
        want = expected.pop(f.path, None)
        if want is None:
            result.extra.append(f.path)
        elif want.digest != f.digest or want.mode != f.mode:
            result.changed.append(f.path)
    result.missing = sorted(expected)
    return result
