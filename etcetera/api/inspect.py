"""Look at datasets: ``info`` (local or remote) and ``verify`` (re-hash against the manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..backends.base import ObjectInfo
from ..engine import refs
from ..engine.localfs import current_umask, local_mode
from ..engine.progress import ProgressCallback
from ..engine.scan import HashCache, hash_files, scan_tree
from ..errors import DatasetNotFoundError
from ..format.manifest import FileEntry, Manifest
from ..home import Home, valid_name
from ..model import Dataset
from ..settings import Config
from ._common import resolve_config
from .session import session


def _partition_counts(files: list[tuple[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for path, size in files:
        part = path.split("/", 2)[1] if path.startswith("data/") else "(outside data/)"
        entry = out.setdefault(part, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += size
    return out


_DETAILED = 1000  # versions whose record `info --remote` reads


def _unread(number: int, listed: ObjectInfo) -> dict[str, Any]:
    created = listed.modified.isoformat(timespec="seconds") if listed.modified else ""
    return {
        "version": number,
        "created": created,
        "pushed_by": None,
        "files": None,
        "bytes": None,
        "manifest": None,
    }


async def ainfo(name: str, *, config: Config | None = None, remote: bool = False) -> dict[str, Any]:
    """What is known of a dataset: versions, who pushed them and when, sizes, partitions, meta.

    Local (default): the folder, its kind (pulled, registered, created), version, shard
    (``[k, n]``, or ``None`` when the copy is not a shard), per-partition file counts and
    sizes, meta. ``remote``: every version (the records of the latest 1,000: who, when,
    files, bytes; for older ones, only when the store last wrote their record, the rest
    ``None``) and the latest manifest's per-partition counts.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    if not remote:
        home = Home(cfg.home)
        location = await anyio.to_thread.run_sync(home.location, name)
        current = await anyio.to_thread.run_sync(home.current, name)
        scan = await anyio.to_thread.run_sync(scan_tree, location, tuple(cfg.ignore))
        ds = await anyio.to_thread.run_sync(lambda: Dataset(location, name))
        counts = _partition_counts([(f.path, f.size) for f in scan.files])
        for p in scan.partitions:
            counts.setdefault(p, {"files": 0, "bytes": 0})
        kind = (
            "registered" if current is None else ("created" if not current.manifest else "pulled")
        )
        return {
            "name": name,
            "location": str(location),
            "kind": kind,
            "version": current.version if current else None,
            "manifest": current.manifest if current else None,
            "shard": list(current.shard) if current and current.shard else None,
            "files": len(scan.files),
            "bytes": sum(f.size for f in scan.files),
            "partitions": counts,
            "meta": ds.meta,
        }
    async with session(cfg) as s:
        await s.backend.check()
        listed = await refs.listed_versions(s.transport, name)
        if not listed:
            raise DatasetNotFoundError(f"dataset {name} does not exist in {s.backend.describe()}")
        numbers = sorted(listed)
        # A summary past the latest records: 20,000 versions would be 20,000 reads.
        older, recent = numbers[:-_DETAILED], numbers[-_DETAILED:]
        records = await refs.read_records(s.transport, name, recent)
        latest = records[-1]
        manifest = await s.manifest(latest.manifest)
        return {
            "name": name,
            "repository": s.backend.describe(),
            "versions": [
                *(_unread(n, listed[n]) for n in older),
                *(
                    {
                        "version": r.number,
                        "created": r.created,
                        "pushed_by": r.pushed_by,
                        "files": r.files,
                        "bytes": r.size,
                        "manifest": r.manifest,
                    }
                    for r in records
                ),
            ],
            "latest": latest.number,
            "partitions": _partition_counts([(f.path, f.size) for f in manifest.files]),
        }


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
    umask = current_umask()
    for f in hashed:
        want = expected.pop(f.path, None)
        if want is None:
            result.extra.append(f.path)
        elif want.digest != f.digest or f.mode not in (want.mode, local_mode(want.mode, umask)):
            result.changed.append(f.path)
    result.missing = sorted(expected)
    return result
