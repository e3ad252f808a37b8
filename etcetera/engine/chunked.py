"""Push and pull of large files as content-defined chunks, over one transport.

The steps a push and a pull of format v3 take for their large files: hash them into
chunks (:mod:`etcetera.format.cdc`), lay the chunks the repository lacks into chunk
objects and send those (:mod:`etcetera.engine.chunk_push`); on pull, copy what a local
copy of the previous version holds and fetch the rest (:mod:`etcetera.engine.chunk_pull`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import anyio

from ..errors import EtceteraError, ManifestError, SourceChangedError
from ..format import cdc
from ..format.chunkobjects import TARGET, Extent, PushPlan, known_chunks, plan_push
from ..format.chunkplan import local_offsets, plan
from ..format.manifest import FileEntry, FileTable, Manifest, ObjectEntry
from ..format.v2 import EncodedManifest, encode_manifest
from . import manifests
from .chunk_pull import in_place, write_chunked
from .chunk_push import ChunkUploader
from .transport import Transport


async def chunk_files(
    t: Transport, paths: Sequence[str], sizes: Sequence[int], params: cdc.Chunking = cdc.DEFAULT
) -> list[list[cdc.Chunk]]:
    """Chunks of each file, hashed in the transport's worker threads (one file a thread).

    Raises:
        SourceChangedError: a file whose size is not the one scanned.
    """
    out: list[list[cdc.Chunk]] = [[] for _ in paths]

    async def one(i: int) -> None:
        chunks, size = await anyio.to_thread.run_sync(
            cdc.chunk_file, paths[i], params, limiter=t.io
        )
        if size != sizes[i]:
            raise SourceChangedError(paths[i])
        out[i] = chunks

    order = sorted(range(len(paths)), key=lambda i: -sizes[i])
    await t.each(order, one)
    return out


async def push_chunked(
    t: Transport,
    files: Sequence[tuple[str, list[cdc.Chunk]]],
    known: Mapping[bytes, Extent],
    target: int = TARGET,
) -> PushPlan:
    """Send the chunks of ``(local path, chunks)`` that ``known`` lacks; the plan places all."""
    pushed = plan_push(((p, c) for p, c in files), known, target)
    await ChunkUploader(t).send_all(pushed.objects)
    return pushed


async def pull_chunked(
    t: Transport,
    path: str,
    extents: Sequence[Extent],
    fd: int,
    local: str | None = None,
    local_extents: Sequence[Extent] = (),
) -> int:
    """Write one chunked file into ``fd`` from a local copy and the repository.

    ``local_extents`` are the extents ``local`` was pulled with (its version's); every
    chunk taken from it is checked against its digest, so a local copy that changed
    since costs downloads, not correctness. Returns the bytes taken from ``local``.
    """
    have = local_offsets(local_extents) if local is not None else {}
    return await write_chunked(t, plan(extents, have), path, fd, local)


def _open_staged(path: Path, extents: Sequence[Extent]) -> tuple[int, frozenset[int]]:
    """Open (or create) a file being pulled; the chunks an interrupted pull left in place."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        return fd, in_place(fd, extents) if os.fstat(fd).st_size else frozenset()
    except BaseException:
        os.close(fd)
        raise


def _local_chunks(previous: str, params: cdc.Chunking) -> dict[bytes, int]:
    """Where each chunk of a local file starts in it, cut as a push would cut it."""
    try:
        chunks, _ = cdc.chunk_file(previous, params)
    except OSError:
        return {}  # gone or unreadable: everything is fetched
    out: dict[bytes, int] = {}
    for c in chunks:
        out.setdefault(c.digest, c.offset)
    return out


async def fetch_file(
    t: Transport,
    entry: FileEntry,
    extents: Sequence[Extent],
    objects: Mapping[str, ObjectEntry],
    tmp: Path,
    place: Callable[[str, str], None],
    mode: int,
    previous: str | None = None,
) -> int:
    """Pull one content-chunked file of a manifest into place; the bytes copied locally.

    Args:
        t: the pull's transport.
        entry: the file.
        extents: its chunks (``Manifest.extents``).
        objects: the manifest's objects (each chunk object must be stored as it is).
        tmp: the staging folder's temporary folder (the file is written there first;
            what an interrupted pull wrote there is hashed and kept).
        place: moves the finished file (its temporary path, then its dataset path)
            into place.
        mode: its permission bits.
        previous: a local file said to hold an earlier version of it (its chunks are
            found by cutting it as a push would, each checked before it is used).
    """
    for oid in {e.object for e in extents}:
        if objects[oid].encoding != "identity":
            raise ManifestError(
                f"chunk object {oid[:16]} of {entry.path} is {objects[oid].encoding}: "
                "this etcetera reads chunk objects stored as they are only"
            )
    path = tmp / f"{entry.digest}.chunked"
    fd, done = await anyio.to_thread.run_sync(_open_staged, path, extents, limiter=t.io)
    try:
        have: dict[bytes, int] = {}
        if previous is not None:
            have = await anyio.to_thread.run_sync(
                _local_chunks, previous, cdc.DEFAULT, limiter=t.io
            )
        t.stats.bytes_resumed += sum(extents[i].size for i in done)
        todo = plan(extents, have, done=done)
        copied = await write_chunked(t, todo, entry.path, fd, previous if have else None)
        await anyio.to_thread.run_sync(os.fchmod, fd, mode, limiter=t.io)
    finally:
        os.close(fd)
    await anyio.to_thread.run_sync(place, str(path), entry.path, limiter=t.io)
    t.stats.files_downloaded += 1
    return copied


async def lay_out(
    t: Transport,
    manifest: Manifest,
    sources: Mapping[str, str],
    previous: Manifest | None,
    params: cdc.Chunking = cdc.DEFAULT,
) -> tuple[Manifest, PushPlan]:
    """The manifest of a push with its large files cut by content, and what to upload.

    Every file larger than the manifest's ``chunk_size`` (the threshold format v3 sets
    for chunked files) is cut into content-defined chunks; the chunks ``previous`` (the
    latest version) stores are referenced where they are, the others go into new chunk
    objects (:attr:`PushPlan.objects`, for :class:`ChunkUploader`). Those files lose
    their blobs: their digest is the SHA-256 of their chunk digests, their bytes are
    where :attr:`Manifest.extents` says.

    Args:
        t: the push's transport (its worker threads hash).
        manifest: the tree laid out as today (packs and blobs).
        sources: the local file of each path.
        previous: the latest version's manifest, or ``None``.
        params: how to cut.
    """
    large = [f for f in manifest.files if f.size > manifest.chunk_size]
    if not large:
        return manifest, PushPlan()
    local = [sources[f.path] for f in large]
    cut = await chunk_files(t, local, [f.size for f in large], params)
    held = previous.extents.values() if previous is not None else ()
    pushed = plan_push(zip(local, cut, strict=True), known_chunks(held))
    changed: dict[str, FileEntry] = {}
    extents: dict[str, tuple[Extent, ...]] = {}
    for f, path, chunks in zip(large, local, cut, strict=True):
        digests = tuple(c.digest.hex() for c in chunks)
        changed[f.path] = f._replace(
            digest=cdc.file_digest(chunks), object="", offset=0, chunks=digests
        )
        extents[f.path] = tuple(pushed.extents[path])
    files = FileTable.of(changed.get(f.path, f) for f in manifest.files)
    used = {f.object for f in files if f.object}
    objects = {oid: o for oid, o in manifest.objects.items() if oid in used}
    stored = previous.objects if previous is not None else {}
    for obj in pushed.objects:
        objects[obj.id] = ObjectEntry(obj.id, "chunks", obj.size)
    for oid in pushed.reused:
        objects[oid] = stored[oid]
    out = replace(manifest, files=files, objects=objects, extents={**manifest.extents, **extents})
    return out, pushed


async def rechunk(
    t: Transport, manifest: Manifest, sources: Mapping[str, str], latest: str | None
) -> tuple[Manifest, EncodedManifest, PushPlan]:
    """:func:`lay_out` against the latest version's manifest (digest ``latest``), encoded.

    A latest version that cannot be read (or has no chunked files) only costs the dedup:
    everything is then sent.
    """
    previous = None
    if latest is not None:
        with contextlib.suppress(EtceteraError):
            previous = await manifests.read_manifest(t, latest)
    out, pushed = await lay_out(t, manifest, sources, previous)
    encoded = await anyio.to_thread.run_sync(encode_manifest, out, limiter=t.io)
    return out, encoded, pushed
