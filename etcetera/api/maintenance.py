"""Repository upkeep: remove versions, collect garbage.

``rm`` deletes version records only (the objects become garbage). ``gc`` deletes
objects and manifests that no version references, unfinished multipart uploads and
temporary objects, all only when older than a grace period, and never what a push
in progress has uploaded but not yet published, at any grace (its marker lists it:
``engine/inflight.py``). Two gcs at once take turns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio

from ..engine import claims, inflight, refs
from ..engine.transport import TransportUpload
from ..errors import DatasetNotFoundError, EtceteraError, ManifestError
from ..format import layout
from ..format.chunkobjects import Extent, usage
from ..format.manifest import ObjectEntry
from ..home import valid_name
from ..settings import Config
from ._common import parse_ref, resolve_config
from .session import Session, session


async def arm_remote(name: str, *, config: Config | None = None) -> list[int]:
    """Delete ``NAME@K`` (or every version of ``NAME``) from the repository.

    Only the version records go; ``etc gc`` later deletes objects nothing references.
    Returns the version numbers removed.
    """
    cfg = resolve_config(config)
    name, version = parse_ref(name, None)
    async with session(cfg) as s:
        backend, t = s.backend, s.transport
        await backend.check()
        numbers = await refs.versions(t, name)
        if version is not None:
            if version not in numbers:
                raise DatasetNotFoundError(
                    f"dataset {name} has no version {version} in {backend.describe()}"
                )
            numbers = [version]
        if not numbers:
            raise DatasetNotFoundError(f"dataset {name} does not exist in {backend.describe()}")
        # Highest first: "latest" never points at a version about to disappear.
        for number in sorted(numbers, reverse=True):
            key = layout.ref_key(name, number)
            await t.call(key, functools.partial(backend.delete, key))
        return sorted(numbers)


@dataclass
class GcResult:
    """What ``gc`` deleted (or, with ``dry_run``, would delete).

    Attributes:
        dry_run: nothing was deleted.
        objects: ids of packs and blobs no version references.
        manifests: digests of manifests no version references.
        pieces: ids of manifest pieces no live manifest lists.
        uploads: keys of unfinished multipart uploads that were aborted.
        temporary: keys of temporary objects (composite parts) deleted.
        bytes: bytes of the deleted objects.
        kept_young: unreferenced objects kept because they are within the grace period.
        partly_used: chunk objects kept because a version references some of their
            chunks, not all (format v3: chunks are shared across files and versions).
        partly_used_bytes: stored bytes of those objects.
        unreferenced_bytes: stored bytes in them that no version references.
    """

    dry_run: bool
    objects: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_young: int = 0
    partly_used: int = 0
    partly_used_bytes: int = 0
    unreferenced_bytes: int = 0


async def agc(
    *, config: Config | None = None, dry_run: bool = False, grace: timedelta = timedelta(days=1)
) -> GcResult:
    """Delete what no version references, if older than ``grace``.

    Packs, blobs, manifests and manifest pieces that no version record names, unfinished
    multipart uploads (a cancelled or killed push keeps its upload so that it can be
    resumed) and temporary objects go, each only when older than ``grace``. What a push
    in progress has uploaded but not yet published is kept at any grace (the push's
    marker lists it, for :data:`~etcetera.engine.inflight.PUSH_LIFETIME`), and a gc
    running at the same time as another waits for it.

    Args:
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        dry_run: say what would be deleted, delete nothing.
        grace: keep anything younger than this.

    Raises:
        ManifestError: the manifest of a live version is unreadable (nothing is deleted).
    """
    cfg = resolve_config(config)
    result = GcResult(dry_run)
    async with session(cfg) as s:
        backend, t = s.backend, s.transport
        await backend.check()
        if dry_run:
            # No marker of its own: markers' ages are counted from this machine's clock.
            await _collect(s, grace, datetime.now(UTC), result, clean=False)
            return result
        marker, since = await inflight.begin_gc(t)
        try:
            doomed, stale = await _collect(s, grace, since, result, clean=True)
            async with anyio.create_task_group() as tg:
                for key in doomed:
                    tg.start_soon(t.call, key, functools.partial(backend.delete, key))
                for u in stale:
                    tg.start_soon(u.abort)
        finally:
            await inflight.end(t, marker)
    return result


async def _collect(
    s: Session, grace: timedelta, since: datetime | None, result: GcResult, *, clean: bool
) -> tuple[list[str], list[TransportUpload]]:
    """What gc deletes: keys of objects, and unfinished uploads; ``result`` filled in."""
    t = s.transport
    cutoff = datetime.now(UTC) - grace
    # What pushes in progress will name; read after this gc's marker was written.
    kept = await inflight.protected(t, since, clean=clean)
    versions: set[str] = set()
    for info in await t.list(layout.REFS):
        parsed = layout.parse_ref_key(info.key)
        if parsed is None:
            continue
        record = await refs.read_record(t, valid_name(parsed[0]), parsed[1])
        versions.add(record.manifest)
    live_manifests = versions | kept.manifests
    live_objects: set[str] = set(kept.objects)
    live_pieces: set[str] = set(kept.pieces)
    chunk_objects: dict[str, ObjectEntry] = {}
    extents: list[Extent] = []
    for digest in versions:
        try:
            manifest = await s.manifest(digest)
        except EtceteraError as exc:
            raise ManifestError(
                f"gc stopped: manifest {digest} of a live version is unreadable ({exc}); "
                "nothing was deleted"
            ) from None
        live_objects.update(manifest.objects)
        chunk_objects.update((o.id, o) for o in manifest.objects.values() if o.kind == "chunks")
        for listed in manifest.extents.values():
            extents.extend(listed)
        root = await s.manifest_root(digest)
        live_pieces.update(ref.id for ref in root.pieces)

    held = usage(chunk_objects, extents)
    result.partly_used, result.partly_used_bytes = held.objects, held.size
    result.unreferenced_bytes = held.unused

    def old(when: datetime | None) -> bool:
        return when is not None and when < cutoff

    doomed: list[str] = []
    for info in await t.list(layout.OBJECTS):
        oid = info.key.rsplit("/", 1)[-1]
        if oid in live_objects:
            continue
        if old(info.modified):
            doomed.append(info.key)
            result.objects.append(oid)
            result.bytes += info.size
        else:
            result.kept_young += 1
    for info in await t.list(layout.MANIFESTS):
        base = info.key.rsplit("/", 1)[-1]
        if base.endswith(".piece"):
            if base.removesuffix(".piece") not in live_pieces and old(info.modified):
                doomed.append(info.key)
                result.pieces.append(base.removesuffix(".piece"))
        elif base.removesuffix(".json") not in live_manifests and old(info.modified):
            doomed.append(info.key)
            result.manifests.append(base.removesuffix(".json"))
    for info in await t.list(layout.UPLOADS):
        if old(info.modified):
            doomed.append(info.key)
            result.temporary.append(info.key)
    # A claim matters only while its version is being published (minutes).
    claim_cutoff = min(cutoff, datetime.now(UTC) - 2 * claims.LIFETIME)
    for info in await t.list(claims.CLAIMS):
        if info.modified is not None and info.modified < claim_cutoff:
            doomed.append(info.key)
            result.temporary.append(info.key)
    uploads = await t.uploads(layout.ROOT)
    stale = [u for u in uploads if old(u.initiated)]
    result.uploads = [u.key for u in stale]
    return doomed, stale
