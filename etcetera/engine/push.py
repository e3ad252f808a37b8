"""Push: scan, hash, lay out, upload what is missing, write the manifest, publish last."""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from ..backends.base import PartRef, StagedObject
from ..errors import EtceteraError, LocalIOError, SourceChangedError
from ..format import layout
from ..format.chunkobjects import PushPlan
from ..format.hashing import crc32_combine, sha256_hex
from ..format.manifest import FORMAT_VERSION, FileEntry, Manifest, ObjectEntry
from ..format.packing import LocalFile, build_manifest
from ..format.record import VersionRecord
from ..format.selection import selected
from ..format.v2 import EncodedManifest, encode_manifest
from . import chunked, framed_upload, inflight, manifests, refs, storing
from .chunk_push import ChunkUploader
from .config import TransferConfig
from .fdpaths import is_short, open_file
from .progress import ProgressCallback, ProgressTracker, TransferStats
from .scan import HashCache, Scan, ScannedFile, hash_files, scan_tree
from .transport import Transport, TransportUpload
from .unfinished import Unfinished, same_part


@dataclass
class PushResult:
    """What a push did.

    Attributes:
        name: dataset name.
        version: the version now latest (the new one, or the existing one on a no-op).
        manifest: digest of the pushed manifest.
        noop: the repository already had this exact tree as its latest version.
        files: files in the dataset.
        size: bytes in the dataset.
        bytes_to_send: bytes of objects that were missing remotely.
        stats: request-level counters.
        warnings: files skipped and why.
    """

    name: str
    version: int
    manifest: str
    noop: bool
    files: int
    size: int
    bytes_to_send: int = 0
    stats: TransferStats = field(default_factory=TransferStats)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PushOptions:
    """Per-push choices (as opposed to the transfer budgets in TransferConfig)."""

    force: bool = False
    dry_run: bool = False
    ignore: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    pushed_by: str = ""
    tool: str = ""
    created: str = ""
    #: Whether the store enforces create-only writes (else versions are claimed).
    create_only: bool = True

    def record(self, name: str, number: int, digest: str, files: int, size: int) -> VersionRecord:
        """The version record a push with these options publishes."""
        return VersionRecord(
            name, number, digest, self.created, self.pushed_by, self.tool, files, size
        )


def _changed(src: ScannedFile) -> LocalIOError:
    return SourceChangedError(src.source)


def _changed_sources(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [s for e in exc.exceptions for s in _changed_sources(e)]
    return [exc.source] if isinstance(exc, SourceChangedError) else []


def _open_unchanged(src: ScannedFile) -> int:
    """Open a scanned file, refusing one whose size or mtime moved since the scan."""
    try:
        # os.open for a short path: tests/test_hostile_local.py makes it refuse, as root reads all.
        fd = os.open(src.source, os.O_RDONLY) if is_short(src.source) else open_file(src.source)
    except OSError as exc:
        raise LocalIOError(f"cannot read {src.source}: {exc.strerror}") from None
    st = os.fstat(fd)
    if st.st_size != src.size or st.st_mtime_ns != src.mtime_ns:
        os.close(fd)
        raise _changed(src)
    return fd


def _verify(
    view: memoryview, src: ScannedFile, entry: FileEntry, first: int, chunk: int
) -> int | None:
    """Check bytes read to send are the bytes hashed: chunk by chunk, from ``first``.

    Size and mtime miss a rewrite within one tick of the clock, so the bytes tell: by
    their CRC32 when this run hashed the file (two to eight times cheaper than SHA-256, and
    it guards against accidents, not adversaries), else by the manifest's SHA-256.
    Returns the CRC32 of ``view`` when it was checked by CRC (the chunks' CRCs combined,
    so that the store's checksum costs no other pass), else ``None``.
    """
    expected = entry.chunks or (entry.digest,)
    crc: int | None = 0 if src.crcs else None
    for i, start in enumerate(range(0, len(view), chunk)):
        piece = view[start : start + chunk]
        index = first + i
        if crc is not None:
            piece_crc = zlib.crc32(piece)
            ok = piece_crc == src.crcs[index]
            crc = crc32_combine(crc, piece_crc, len(piece)) if start else piece_crc
        else:
            ok = sha256_hex(piece) == expected[index]
        if not ok:
            raise _changed(src)
    return crc


def _read_members(
    members: Sequence[tuple[FileEntry, ScannedFile]], total: int, chunk_size: int
) -> bytearray:
    buf = bytearray(total)
    view = memoryview(buf)
    pos = 0
    for entry, src in members:
        if entry.size:
            fd = _open_unchanged(src)
            try:
                if os.readv(fd, [view[pos : pos + entry.size]]) != entry.size:
                    raise _changed(src)
            finally:
                os.close(fd)
            _verify(view[pos : pos + entry.size], src, entry, 0, chunk_size)
        pos += entry.size
    return buf


def _read_part(
    src: ScannedFile, entry: FileEntry, offset: int, buf: memoryview, chunk_size: int
) -> int | None:
    """Read a part into ``buf`` (a reused buffer: no fresh memory per part) and check it.

    Returns its CRC32 when the check computed it (see :func:`_verify`).
    """
    fd = _open_unchanged(src)
    try:
        got = os.preadv(fd, [buf], offset)
    finally:
        os.close(fd)
    if got != len(buf):
        raise _changed(src)
    # Parts are whole chunks.
    return _verify(buf, src, entry, offset // chunk_size, chunk_size)


def _read_or_keep(
    src: ScannedFile,
    entry: FileEntry,
    offset: int,
    buf: memoryview,
    chunk_size: int,
    stored: PartRef | None,
) -> tuple[bool, int | None]:
    """Read a part into ``buf`` and check it; whether ``stored`` already holds it, its CRC32.

    Either way the part is read and checked against the chunk digests first: a stored
    part is kept only if it is the bytes that were hashed.
    """
    crc = _read_part(src, entry, offset, buf, chunk_size)
    return stored is not None and same_part(buf, stored.checksums, crc), crc


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class _Uploader:
    def __init__(
        self,
        t: Transport,
        manifest: Manifest,
        sources: dict[str, ScannedFile],
        tracker: ProgressTracker,
        staged: dict[str, StagedObject],
        level: int = 0,
    ) -> None:
        self.t = t
        self.level = level  # zstd level of objects that compress well (0: none)
        self.stored: dict[str, ObjectEntry] = {}  # objects as sent, by id
        self.sources = sources
        self.tracker = tracker
        self.staged = staged
        self.io = t.io
        # What a body being sent costs in memory: our bytes and the copies the back-end's
        # SDK and the socket transport make (``Capabilities.send_copies``).
        self.copies = t.backend.capabilities.send_copies
        # Identical packs (same members' contents in two partitions) are one object:
        # read its bytes once, from the first file at each offset.
        self.members: dict[str, list[FileEntry]] = {}
        offsets: set[tuple[str, int]] = set()
        for f in manifest.files:
            if f.object and (f.object, f.offset) not in offsets:
                offsets.add((f.object, f.offset))
                self.members.setdefault(f.object, []).append(f)
        for members in self.members.values():
            members.sort(key=lambda m: m.offset)
        self._unfinished = Unfinished(t)

    async def upload(self, obj: ObjectEntry) -> None:
        members = self.members[obj.id]
        key = layout.object_key(obj.id)
        caps = self.t.backend.capabilities
        part = self.t.config.part_size_for(obj.size, caps.min_part_size, caps.max_parts)
        copy = self.staged.get(obj.id) if obj.kind == "blob" else None
        if copy is not None:  # already in the repository, as it was hashed
            await self.t.call(key, lambda: copy.publish(key))
            del self.staged[obj.id]  # only now: one cancelled before is discarded
            self.t.stats.bytes_sent += obj.size
            self.tracker.advance(obj.size, len(members))
        elif obj.kind == "blob" and obj.size > part:
            if not await self._framed(obj, key, members[0], part):
                await self._multipart(key, members[0], obj.size, part)
                self.tracker.advance(0, len(members))
            else:
                self.tracker.advance(obj.size, len(members))
        else:
            pairs = [(m, self.sources[m.path]) for m in members]
            # Compressing holds the bytes read and the frames at once, then the frames.
            copies = max(self.copies, 2) if self.level else self.copies
            async with self.t.budget.hold(obj.size * copies):
                data = await anyio.to_thread.run_sync(
                    _read_members, pairs, obj.size, self.t.config.chunk_size, limiter=self.io
                )
                self.stored[obj.id], body = await anyio.to_thread.run_sync(
                    storing.encode, obj, data, self.level, limiter=self.io
                )
                del data
                await self.t.put(key, body)
            self.tracker.advance(obj.size, len(members))
        self.t.stats.objects_sent += 1

    async def _framed(self, obj: ObjectEntry, key: str, entry: FileEntry, part: int) -> bool:
        """Send a large blob compressed if it pays (:mod:`.framed_upload`); whether sent."""
        src, chunk = self.sources[entry.path], self.t.config.chunk_size

        def read(offset: int, buf: memoryview) -> None:
            _read_part(src, entry, offset, buf, chunk)

        sent = await framed_upload.send_blob(self.t, obj, key, src.source, read, part, self.level)
        if sent is not None:
            self.stored[obj.id] = sent
        return sent is not None

    async def _resumable(
        self, key: str, sizes: dict[int, int]
    ) -> tuple[TransportUpload, dict[int, PartRef]] | None:
        """An unfinished upload of ``key`` to continue, and its stored parts by number.

        The newest upload with parts is taken if each of its parts has the number and
        size of a part of this plan (``sizes``); one with a part of another size was
        made with another part size, and is aborted. An upload without parts is left
        alone (nothing to gain, and on ``file://`` it may be a stray write, which takes
        no parts): ``gc`` removes it, as it removes the uploads not taken.
        """
        candidates = await self._unfinished.of(key)
        candidates.sort(key=lambda u: u.initiated or _LONG_AGO, reverse=True)
        for upload in candidates:
            try:
                stored = await upload.parts()
            except EtceteraError:
                continue  # not ours to judge: a fresh upload goes beside it
            if not stored:
                continue
            if all(sizes.get(p.number) == p.size for p in stored):
                return upload, {p.number: p for p in stored}
            with contextlib.suppress(EtceteraError):  # a fresh upload works all the same
                await upload.abort()
        return None

    async def _multipart(self, key: str, entry: FileEntry, size: int, part: int) -> None:
        """Upload a large blob in parts, continuing an unfinished upload of it if one is found.

        A stored part is kept when its size and the checksum the store reports match the
        local part (itself checked against the chunk digests); any other is put again.
        """
        src = self.sources[entry.path]
        chunk = self.t.config.chunk_size
        plan = [
            (i + 1, offset, min(part, size - offset))
            for i, offset in enumerate(range(0, size, part))
        ]
        found = await self._resumable(key, {number: length for number, _, length in plan})
        upload, stored = found if found is not None else (await self.t.upload(key), {})
        refs: dict[int, PartRef] = {}

        async def send(number: int, offset: int, length: int) -> None:
            async with self.t.budget.hold(length * self.copies):
                kept = stored.get(number)
                with self.t.buffer(length) as buf:
                    keep, crc = await anyio.to_thread.run_sync(
                        _read_or_keep,
                        src,
                        entry,
                        offset,
                        memoryview(buf),
                        chunk,
                        kept,
                        limiter=self.io,
                    )
                    if not keep:
                        refs[number] = await upload.put_part(number, buf, crc32=crc)
                if keep:  # the stored part holds these bytes
                    assert kept is not None
                    refs[number] = kept
                    self.t.stats.bytes_resumed += length
            # Kept parts count as done but not as moved: the rate is this run's.
            (self.tracker.resume if keep else self.tracker.advance)(length)

        try:
            async with anyio.create_task_group() as tg:
                for number, offset, length in plan:
                    tg.start_soon(send, number, offset, length)
            await upload.complete([refs[n] for n in sorted(refs)])
        except BaseException as exc:
            await upload.abort_after(exc)
            raise


@dataclass
class Prepared:
    """A tree scanned, hashed and laid out: what a push would publish.

    Attributes:
        scan: what the walk found.
        files: the hashed files.
        laid_out: the file table and the manifest as stored, or ``None`` until
            :meth:`ensure_laid_out`.
        staged: copies of blobs already in the repository (see :func:`prepare`), by id.
    """

    scan: Scan
    files: list[LocalFile]
    laid_out: tuple[Manifest, EncodedManifest] | None
    staged: dict[str, StagedObject] = field(default_factory=dict)
    #: Not laid out yet (see ``lazy`` in :func:`prepare`): the digest the inputs laid out
    #: to last time, and how to lay them out.
    hint: str | None = None
    lay_out: Callable[[], tuple[Manifest, EncodedManifest]] | None = None
    #: The cache's key of these inputs (``lazy``), else ``""``.
    layout_key: str = ""
    #: The chunk objects of files cut by content (``content_chunks``), once laid out so.
    chunks: PushPlan | None = None
    #: The large files the scan cut by content (``cut`` in :func:`prepare`).
    cuts: chunked.Cuts | None = None

    @property
    def manifest(self) -> Manifest:
        """The file table."""
        assert self.laid_out is not None, "laid out first"
        return self.laid_out[0]

    @property
    def encoded(self) -> EncodedManifest:
        """The manifest as stored (its root's digest names the version's tree)."""
        assert self.laid_out is not None, "laid out first"
        return self.laid_out[1]

    async def ensure_laid_out(self) -> None:
        """Lay the tree out now if :func:`prepare` left it for later."""
        if self.laid_out is None:
            assert self.lay_out is not None
            self.laid_out = await anyio.to_thread.run_sync(self.lay_out)

    async def discard_cut(self) -> None:
        """Delete the staged copies of files cut by content, once their chunks are stored.

        Before the manifest's durable write: its flush would write them to disk first.
        """
        cut = [d for d in self.staged if d not in self.manifest.objects]
        await _discard([self.staged.pop(d) for d in cut])

    async def discard(self) -> None:
        """Delete the staged copies not published (even while the caller is cancelled)."""
        await _discard(list(self.staged.values()))
        self.staged.clear()


async def _discard(copies: list[StagedObject]) -> None:
    # Shielded: a cancelled push removes its copies too (gc removes those a kill leaves).
    with anyio.CancelScope(shield=True):
        for copy in copies:
            with contextlib.suppress(EtceteraError, OSError):
                await copy.discard()


def scan_selected(root: Path, options: PushOptions, group: str | None = None) -> Scan:
    """Walk the tree at ``root`` (or one ``group``), keeping the files the options select.

    Blocking: run it in a thread.
    """
    scan = scan_tree(root, options.ignore, group)
    if options.include or options.exclude:
        scan.files = [f for f in scan.files if selected(f.path, options.include, options.exclude)]
    return scan


async def prepare(
    t: Transport,
    root: Path,
    name: str,
    options: PushOptions,
    *,
    cache: HashCache,
    progress: ProgressCallback | None = None,
    group: str | None = None,
    stage: bool = False,
    lazy: bool = False,
    cut: bool = False,
    scan: Scan | None = None,
) -> Prepared:
    """Scan, hash (cached) and lay out the tree at ``root``, or one ``group`` of it.

    ``group`` is a partition name, or ``""`` for the files outside ``data/``: the pieces
    of a group are the same whether the group is laid out alone or with the whole tree.
    With ``stage``, on a back-end whose objects are local files, each file to hash that
    will be a blob is first copied into the repository (in the kernel) and the copy is
    hashed: the bytes published are then the bytes hashed, read once (not with a
    ``bandwidth_limit``, which only a push of parts can keep). The caller
    publishes or discards the copies (:attr:`Prepared.staged`, :meth:`Prepared.discard`).
    With ``lazy``, inputs laid out before (by the cache's memo) are not laid out again:
    :attr:`Prepared.hint` is their digest, and a no-op needs no more. With ``cut``,
    files of more than one chunk are cut by content as they are hashed (one pass:
    :func:`chunked.scan_cuts`, :attr:`Prepared.cuts`), staged whether they compress or not.
    ``scan`` is the tree's :func:`scan_selected`, when the caller walked it already.
    """
    config = t.config
    if scan is None:
        scan = await anyio.to_thread.run_sync(scan_selected, root, options, group)
    local = t.local if stage else None
    copies: dict[str, StagedObject] = {}
    cuts = await chunked.scan_cuts(t, name, scan.files, cache) if cut else None

    async def stage_one(f: ScannedFile) -> str:
        assert local is not None
        # A blob is compressed if it pays: read when it is sent, not copied now.
        compressing = config.compression > 0 and not (cut and f.size > config.chunk_size)
        if compressing and await anyio.to_thread.run_sync(
            storing.compressible, f.source, limiter=t.io
        ):
            return f.source
        fd = await anyio.to_thread.run_sync(_open_unchanged, f, limiter=t.io)
        try:
            copies[f.path] = copy = await t.stage(local, layout.OBJECTS, fd)
            st = await anyio.to_thread.run_sync(os.fstat, fd)
        finally:
            os.close(fd)
        if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
            raise _changed(f)  # written to while it was copied
        return copy.path

    staged: dict[str, StagedObject] = {}  # by content: identical files are one blob
    try:
        files = await hash_files(
            scan,
            cache,
            name=name,
            chunk_size=config.chunk_size,
            io=t.io,
            progress=progress,
            stage=stage_one if local is not None else None,
            stage_from=config.pack_threshold,
            cut=cuts,
        )
        for f in files:
            copy = copies.pop(f.path, None)
            if copy is not None and staged.setdefault(f.digest, copy) is not copy:
                copies[f.path] = copy  # a second copy of one content: discarded below

        def lay_out() -> tuple[Manifest, EncodedManifest]:
            manifest = build_manifest(
                files,
                scan.partitions if group is None else [group] if group else [],
                pack_size=config.pack_size,
                pack_threshold=config.pack_threshold,
                chunk_size=config.chunk_size,
                dirs=scan.dirs,
            )
            return manifest, encode_manifest(manifest)

        def remembered() -> tuple[str, str | None]:
            sizes = (config.pack_size, config.pack_threshold, config.chunk_size)
            key = _layout_key(files, scan, group, *sizes)
            return key, cache.layout(key)

        try:
            key, hint = (await anyio.to_thread.run_sync(remembered)) if lazy else ("", None)
            laid_out = None if hint else await anyio.to_thread.run_sync(lay_out)
            if lazy and laid_out is not None:
                cache.remember_layout(key, laid_out[1].digest)
        finally:
            await anyio.to_thread.run_sync(cache.save)  # the hashes, even if laying out failed
    except BaseException:
        await _discard([*copies.values(), *staged.values()])
        raise
    await _discard(list(copies.values()))
    return Prepared(scan, files, laid_out, staged, hint, lay_out, key, cuts=cuts)


def _noop(
    name: str,
    latest: VersionRecord,
    files: Sequence[ScannedFile],
    stats: TransferStats,
    warnings: list[str],
) -> PushResult:
    size = sum(f.size for f in files)
    return PushResult(name, latest.number, latest.manifest, True, len(files), size,
                      stats=stats, warnings=warnings)  # fmt: skip


async def _remember_tree(cache: HashCache, stamp: str, digest: str, options: PushOptions) -> None:
    """After a push (or a no-op), what its tree is; not after a dry run, which published nothing."""
    if not options.dry_run:
        cache.remember_tree(stamp, digest)
    await anyio.to_thread.run_sync(cache.save)


def _tree_key(scan: Scan, options: PushOptions, config: TransferConfig) -> str:
    """A digest of the walk's stamp and of every choice that decides the tree pushed."""
    sizes = (config.pack_size, config.pack_threshold, config.chunk_size, config.content_chunks)
    selection = (options.ignore, options.include, options.exclude)
    inputs = (FORMAT_VERSION, str(scan.root), scan.stamp, sizes, selection, scan.partitions)
    return sha256_hex(repr((inputs, scan.dirs)).encode())


def _layout_key(files: list[LocalFile], scan: Scan, group: str | None, *sizes: int) -> str:
    """A digest of everything a layout depends on: equal keys, equal manifests."""
    # repr: one C-level pass over plain strings, ints and tuples, deterministic.
    inputs = (FORMAT_VERSION, sizes, scan.partitions, scan.dirs, group)
    return sha256_hex(repr((inputs, files)).encode())


async def missing_objects(
    t: Transport,
    manifest: Manifest,
    known: set[str] = frozenset(),  # type: ignore[assignment]
    present: dict[str, ObjectEntry] | None = None,
) -> list[ObjectEntry]:
    """Objects of ``manifest`` the repository lacks (``known`` ones are not asked about).

    ``present`` receives the others asked about, as stored (see :func:`storing.probe`).
    """
    candidates = [o for o in manifest.objects.values() if o.id not in known]
    found = await storing.probe(t, candidates)
    if present is not None:
        present.update(found)
    missing = [o for o in candidates if o.id not in found]
    t.stats.objects_skipped += len(manifest.objects) - len(missing)
    return missing


async def send(
    t: Transport,
    prepared: Prepared,
    missing: list[ObjectEntry],
    *,
    name: str,
    cache: HashCache,
    progress: ProgressCallback | None = None,
    stored: dict[str, ObjectEntry] | None = None,
) -> None:
    """Upload ``missing`` objects of a prepared tree through a pool of workers.

    With ``stored``, objects that compress well are sent compressed (at the
    transfer's ``compression`` level), and ``stored`` receives how each was sent.
    """
    manifest = prepared.manifest
    sources = {f.path: f for f in prepared.scan.files}
    wanted = {o.id for o in missing}
    tracker = ProgressTracker(
        "upload",
        name,
        sum(o.size for o in missing),
        sum(len(v) for k, v in _members(manifest).items() if k in wanted),
        progress,
    )
    level = t.config.compression if stored is not None else 0
    up = _Uploader(t, manifest, sources, tracker, prepared.staged, level)
    # Large blobs first so that their parts overlap with the many small packs.
    missing = sorted(missing, key=lambda o: -o.size)
    chunky = {o.id for o in missing if o.kind == "chunks"}  # engine/chunk_push.py sends them
    missing = [o for o in missing if o.id not in chunky]
    try:
        if chunky:
            assert prepared.chunks is not None
            new = [o for o in prepared.chunks.objects if o.id in chunky]
            large = (f for f in prepared.scan.files if f.size > manifest.chunk_size)
            scanned = {f.source: (f.size, f.mtime_ns) for f in large}
            chunk_up = ChunkUploader(t, scanned, level)
            await chunk_up.send_all(new)
            up.stored.update(chunk_up.stored)
            tracker.advance(sum(o.size for o in new))
        await prepared.discard_cut()
        await t.each(missing, up.upload)
    except BaseException as exc:
        # The cache vouched for bytes that are gone: "push again" must hash them again.
        changed = _changed_sources(exc)
        for source in changed:
            cache.forget(source)
        if changed:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(cache.save)
        raise
    finally:
        if stored is not None:
            stored.update(up.stored)
    tracker.finish()


async def push(
    t: Transport,
    root: Path,
    name: str,
    options: PushOptions,
    *,
    cache: HashCache,
    progress: ProgressCallback | None = None,
) -> PushResult:
    """Push the tree at ``root`` as the next version of ``name``.

    Objects go up first, then the manifest, then, last and create-only, the version
    record: a push that fails or is interrupted never shows a partial dataset.
    """
    await t.backend.check()
    scan = await anyio.to_thread.run_sync(scan_selected, root, options)
    stamp = _tree_key(scan, options, t.config)
    pushed = await anyio.to_thread.run_sync(cache.tree, stamp)
    if pushed is not None:
        latest = await refs.latest(t, name)
        if latest is not None and latest.manifest == pushed:
            # Every file's stat is what it was when this tree was pushed: no file is
            # looked up in the cache, the tree is not laid out.
            return _noop(name, latest, scan.files, t.stats, scan.warnings)
    prepared = await prepare(
        t, root, name, options, cache=cache, progress=progress, stage=not options.dry_run,
        lazy=True, cut=t.config.content_chunks, scan=scan,
    )  # fmt: skip
    try:
        latest = await refs.latest(t, name)
        if prepared.hint is not None and latest is not None and latest.manifest == prepared.hint:
            # The latest version is this tree: a no-op, told without laying it out again.
            await _remember_tree(cache, stamp, latest.manifest, options)
            return _noop(name, latest, scan.files, t.stats, scan.warnings)
        await prepared.ensure_laid_out()
        if t.config.content_chunks:  # large files cut by content, against the latest version
            sources = {f.path: f.source for f in prepared.scan.files}
            cut, encoded, prepared.chunks = await chunked.rechunk(
                t, prepared.manifest, sources, latest.manifest if latest else None, prepared.cuts
            )
            prepared.laid_out = cut, encoded
        result = await _push(t, prepared, name, latest, options, cache=cache, progress=progress)
        changed = result.manifest != prepared.encoded.digest or prepared.chunks is not None
        if prepared.layout_key and not result.noop and changed:
            # Published compressed or cut by content: the digest a no-op push compares with.
            cache.remember_layout(prepared.layout_key, result.manifest)
        await _remember_tree(cache, stamp, result.manifest, options)
        return result
    finally:
        await prepared.discard()  # copies of objects the repository had already


async def _push(
    t: Transport,
    prepared: Prepared,
    name: str,
    latest: VersionRecord | None,
    options: PushOptions,
    *,
    cache: HashCache,
    progress: ProgressCallback | None,
) -> PushResult:
    manifest, encoded = prepared.manifest, prepared.encoded
    digest = encoded.digest
    result = PushResult(
        name,
        0,
        digest,
        False,
        len(prepared.files),
        manifest.total_size,
        stats=t.stats,
        warnings=prepared.scan.warnings,
    )
    previous, same = await _previous(t, latest, digest, options.force)
    number = refs.next_number(
        t, name, latest, digest, force=options.force, same_tree=same or previous == manifest
    )
    if number is None:
        assert latest is not None
        result.version, result.noop = latest.number, True
        return result
    known = set(previous.objects) if previous is not None else set()
    result.version = number
    if options.dry_run:
        result.bytes_to_send = sum(o.size for o in await missing_objects(t, manifest, known))
        return result
    # Before asking what the repository holds: from here on, gc keeps what it lists.
    marker = await inflight.begin_push(t, manifest.objects, digest, encoded.pieces)
    try:
        stored = dict(previous.objects) if previous is not None else {}
        missing = await missing_objects(t, manifest, known, stored)
        result.bytes_to_send = sum(o.size for o in missing)
        await send(t, prepared, missing, name=name, cache=cache, progress=progress, stored=stored)
        _, encoded = await anyio.to_thread.run_sync(
            storing.stored_manifest, manifest, encoded, stored
        )
        result.manifest = encoded.digest
        await manifests.write_manifest(t, encoded)
        await refs.commit(
            t,
            options.record(name, number, encoded.digest, len(prepared.files), manifest.total_size),
            create_only=options.create_only,
        )
    finally:
        await inflight.end(t, marker)
    return result


async def _previous(
    t: Transport, latest: VersionRecord | None, digest: str, force: bool
) -> tuple[Manifest | None, bool]:
    """The latest version's manifest, where a push needs it, and whether it is this tree.

    Read with ``force`` (its objects are known present, not asked about), and when the
    latest is in an older format (equal content may have another digest there). The
    same tree stored compressed is told by its root (which names ``digest``).
    """
    if latest is None or latest.manifest == digest:
        return None, False
    if await storing.is_tree(t, latest, digest):
        return None, True
    with contextlib.suppress(EtceteraError):
        root = await manifests.read_root(t, latest.manifest)
        if force or root.version < FORMAT_VERSION:
            return await manifests.read_manifest(t, latest.manifest), False
    return None, False


def _members(manifest: Manifest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in manifest.files:
        if f.object:
            out.setdefault(f.object, []).append(f.path)
    return out
