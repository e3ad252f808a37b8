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

from ..errors import EtceteraError, LocalIOError, SourceChangedError
from ..format import cdc
from ..format.chunkobjects import TARGET, Extent, PushPlan, known_chunks, plan_push
from ..format.chunkplan import local_offsets, plan
from ..format.hashing import Digest
from ..format.manifest import FileEntry, FileTable, Manifest, ObjectEntry
from ..format.v2 import EncodedManifest, encode_manifest
from . import manifests, refs
from .chunk_pull import in_place, write_chunked
from .chunk_push import ChunkUploader
from .fdpaths import open_file
from .progress import ProgressTracker
from .scan import HashCache
from .transport import Transport
from .walk import ScannedFile


def cut_path(
    path: str, params: cdc.Chunking, *, with_crc: bool = True
) -> tuple[list[cdc.Chunk], int]:
    """:func:`cdc.chunk_fd` of the file at ``path`` (of any length), with its running CRC32."""
    return cdc.chunk_fd(open_file(path), params, with_crc=with_crc)


class Cuts:
    """The large files a push's scan cut by content (``hash_files``'s ``cut``), by path.

    The scan's one pass over such a file is the cut: it names the file (the digest of
    its chunk digests) and gives its chunks, kept here for :func:`lay_out`. A file the
    push staged (copied into a ``file://`` repository) is cut in its copy, without CRCs:
    the copy's bytes are the bytes hashed.
    """

    def __init__(self, params: cdc.Chunking | None = None) -> None:
        self.params = params or cdc.DEFAULT
        #: dataset path -> (the file read, its chunks)
        self.files: dict[str, tuple[str, list[cdc.Chunk]]] = {}

    def __call__(self, f: ScannedFile, source: str, staged: bool) -> tuple[Digest, int]:
        """Cut ``source`` (``f`` or its staged copy; a worker thread): digest, bytes read."""
        try:
            chunks, size = cut_path(source, self.params, with_crc=not staged)
        except OSError as exc:
            raise LocalIOError(f"cannot read {f.source}: {exc.strerror}") from None
        self.files[f.path] = (source, chunks)
        return Digest(cdc.file_digest(chunks)), size


def adopted(previous: Manifest | None, chunk_size: int | None = None) -> cdc.Chunking:
    """How a push cuts: as the previous version's chunked files were cut, where this can.

    So that cut points line up with the stored chunks. The previous version's
    parameters (its root's ``chunking``) are taken when they are valid for this version
    and cut no chunk longer than ``chunk_size`` (the manifest's being written;
    ``previous``'s by default); otherwise (none recorded, another algorithm, out of
    bounds) :data:`cdc.DEFAULT`.
    """
    if previous is None or not previous.extents:
        return cdc.DEFAULT
    limit = previous.chunk_size if chunk_size is None else chunk_size
    return cdc.Chunking.recorded(previous.chunking, limit) or cdc.DEFAULT


async def scan_cuts(
    t: Transport, name: str, files: Sequence[ScannedFile], cache: HashCache
) -> Cuts:
    """The :class:`Cuts` a push of ``name`` hashes ``files`` (its scan's) with.

    With the parameters :func:`lay_out` will adopt, so that it uses the scan's pass
    rather than reading each large file again; they are told from the latest version's
    root, read only where the hash cache cannot vouch for a large file (a no-op push
    cuts nothing and asks nothing more).
    """
    chunk_size = t.config.chunk_size
    large = [f for f in files if f.size > chunk_size]
    if not large or cache.vouches(large, chunk_size):
        return Cuts()
    latest = await refs.latest(t, name)
    if latest is None:
        return Cuts()
    try:
        root = await manifests.read_root(t, latest.manifest)
    except EtceteraError:
        return Cuts()  # lay_out cannot adopt from it either
    return Cuts(cdc.Chunking.recorded(root.doc.get("chunking"), chunk_size))


def cuts_like(manifest: Manifest) -> Cuts | None:
    """How a local copy is hashed to compare it with ``manifest``, or ``None`` (as always).

    A version cut by content names its large files by their chunks: they are cut alike.
    """
    return Cuts(adopted(manifest)) if manifest.extents else None


async def chunk_files(
    t: Transport, paths: Sequence[str], sizes: Sequence[int], params: cdc.Chunking = cdc.DEFAULT
) -> list[list[cdc.Chunk]]:
    """Chunks of each file, hashed in the transport's worker threads (one file a thread).

    Raises:
        SourceChangedError: a file whose size is not the one scanned.
    """
    out: list[list[cdc.Chunk]] = [[] for _ in paths]

    async def one(i: int) -> None:
        chunks, size = await anyio.to_thread.run_sync(cut_path, paths[i], params, limiter=t.io)
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
        chunks, _ = cut_path(previous, params, with_crc=False)
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
    params: cdc.Chunking = cdc.DEFAULT,
    progress: ProgressTracker | None = None,
) -> int:
    """Pull one content-chunked file of a manifest into place; the bytes copied locally.

    Args:
        t: the pull's transport.
        entry: the file.
        extents: its chunks (``Manifest.extents``).
        objects: the manifest's objects (how each chunk object is stored).
        tmp: the staging folder's temporary folder (the file is written there first;
            what an interrupted pull wrote there is hashed and kept).
        place: moves the finished file (its temporary path, then its dataset path)
            into place.
        mode: its permission bits.
        previous: a local file said to hold an earlier version of it (its chunks are
            found by cutting it as a push would, each checked before it is used).
        params: how the version pulled was cut (:func:`adopted`): ``previous`` is cut so.
        progress: told the file's bytes as they are written (those kept: resumed).
    """
    path = tmp / f"{entry.digest}.chunked"
    fd, done = await anyio.to_thread.run_sync(_open_staged, path, extents, limiter=t.io)
    try:
        have: dict[bytes, int] = {}
        if previous is not None:
            have = await anyio.to_thread.run_sync(_local_chunks, previous, params, limiter=t.io)
        kept = sum(extents[i].size for i in done)
        t.stats.bytes_resumed += kept
        if progress is not None:
            progress.resume(kept)
        todo = plan(extents, have, done=done)
        told = progress.advance if progress is not None else (lambda n: None)
        copied = await write_chunked(
            t, todo, entry.path, fd, previous if have else None, told, objects
        )
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
    cuts: Cuts | None = None,
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
        cuts: the files the scan cut already (used where cut as ``previous`` was;
            the others are cut now).
    """
    large = [f for f in manifest.files if f.size > manifest.chunk_size]
    if not large:
        return manifest, PushPlan()
    params = adopted(previous, manifest.chunk_size)
    done = cuts.files if cuts is not None and cuts.params == params else {}
    if previous is not None:  # unchanged since the latest version: its chunks, unread
        done = {**_unchanged(large, previous, sources), **done}
    todo = [f for f in large if f.path not in done]
    fresh = await chunk_files(t, [sources[f.path] for f in todo], [f.size for f in todo], params)
    done = {**done, **{f.path: (sources[f.path], c) for f, c in zip(todo, fresh, strict=True)}}
    # One content, one place to read it from: the staged copy of a second file with the
    # same content was discarded (its chunks are the first file's anyway).
    first: dict[str, tuple[str, list[cdc.Chunk]]] = {}
    for f in large:
        first.setdefault(f.digest, done[f.path])
    local = [first[f.digest][0] for f in large]
    cut = [first[f.digest][1] for f in large]
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
    for oid in pushed.reused:  # identity, as every object before it is sent (``identity``)
        objects[oid] = ObjectEntry(oid, "chunks", stored[oid].size)
    out = replace(
        manifest,
        files=files,
        objects=objects,
        extents={**manifest.extents, **extents},
        chunking=params.describe(),
    )
    return out, pushed


def _unchanged(
    large: Sequence[FileEntry], previous: Manifest, sources: Mapping[str, str]
) -> dict[str, tuple[str, list[cdc.Chunk]]]:
    """The files whose digest (the hash cache's) is the latest version's, with its chunks.

    They need not be read again: every chunk is stored, so none is sent from them.
    """
    out: dict[str, tuple[str, list[cdc.Chunk]]] = {}
    for f in large:
        extents = previous.extents.get(f.path)
        if not extents:
            continue
        chunks, at = [], 0
        for e in extents:
            chunks.append(cdc.Chunk(at, e.size, e.digest))
            at += e.size
        if at == f.size and cdc.file_digest(chunks) == f.digest:
            out[f.path] = (sources[f.path], chunks)
    return out


async def rechunk(
    t: Transport,
    manifest: Manifest,
    sources: Mapping[str, str],
    latest: str | None,
    cuts: Cuts | None = None,
) -> tuple[Manifest, EncodedManifest, PushPlan]:
    """:func:`lay_out` against the latest version's manifest (digest ``latest``), encoded.

    A latest version that cannot be read (or has no chunked files) only costs the dedup:
    everything is then sent.
    """
    previous = None
    if latest is not None:
        with contextlib.suppress(EtceteraError):
            previous = await manifests.read_manifest(t, latest)
    out, pushed = await lay_out(t, manifest, sources, previous, cuts)
    encoded = await anyio.to_thread.run_sync(encode_manifest, out, limiter=t.io)
    return out, encoded, pushed
