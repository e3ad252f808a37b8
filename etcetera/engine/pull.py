"""Pull: fetch the files of a manifest into a staging folder, every byte verified.

The caller (the API layer) owns the staging folder and what happens after: this
module only guarantees that every file it leaves at its final path in ``dest``
has exactly the manifest's bytes and mode. Files already at their final path are
taken as done (so a re-run resumes), files with a local copy elsewhere are
linked or copied, the rest is downloaded:

* packs by ranges covering only the files wanted (coalesced; whole when the
  store's ranges are expensive and most of the pack is wanted), split into files
  in worker threads in batches;
* blobs into a temporary file by positioned writes, chunk by chunk verified as
  it arrives, in concurrent ranges where ranges are cheap, then renamed. An
  interrupted blob resumes from its first chunk that does not verify on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import secrets
import shutil
import stat
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import NamedTuple

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from ..errors import IntegrityError, LocalIOError, ObjectNotFoundError
from ..format import layout
from ..format.hashing import CHUNK_SIZE, digest_bytes, digest_chunks
from ..format.manifest import FileEntry, Manifest, ObjectEntry
from . import chunked, framed
from .fdpaths import Tree, at, digest_fd
from .localfs import current_umask, local_mode
from .progress import ProgressCallback, ProgressTracker
from .transport import Transport

_BATCH = 4 * 1024 * 1024
_STREAM_HOLD = 2 * 1024 * 1024
_STEP = 1024 * 1024  # bytes of a blob hashed and written per thread hop
#: Files of a pack with their bytes, written in one thread hop.
_Batch = list[tuple[FileEntry, memoryview]]
_PLACERS = 2  # threads creating the files of one pack range at once
_IOV_MAX = 1024  # iovecs per pwritev (the kernel's IOV_MAX)


class LocalCopy(NamedTuple):
    """A local file said to hold an entry's bytes, and the stat that vouched for it.

    The stat is checked once, when the copy is used (``None``: a file this fetch wrote).
    """

    path: str
    mtime_ns: int | None = None
    ino: int | None = None


#: Returns a local copy of the entry's bytes, or ``None``.
ReuseLookup = Callable[[FileEntry], LocalCopy | None]


class _Writer:
    """Blocking file operations of a fetch; every method runs in a worker thread.

    Files are written straight to their final path in the private staging folder: a
    file cut short by a crash is shorter than the manifest says, and a resumed pull
    re-hashes whatever it finds before trusting it (:meth:`present`).
    """

    def __init__(self, dest: Path, tmp: Path) -> None:
        self.dest = dest
        self.tmp = tmp
        # Through folder descriptors: a path may pass PATH_MAX once dest's is prefixed.
        self.tree = Tree(str(dest))
        # Unique across the threads of this writer, the writers of this process and the
        # processes sharing one staging folder (the workers of a distributed pull).
        self._seq = itertools.count(1)
        self._token = f"{os.getpid()}.{secrets.token_hex(4)}"
        self.umask = current_umask()

    def mode(self, entry: FileEntry) -> int:
        """The permission bits the entry's file gets here (:mod:`.modes`)."""
        return local_mode(entry.mode, self.umask)

    def move_in(self, source: str, path: str) -> None:
        """Rename the finished file ``source`` (in ``tmp``) to ``path``."""
        try:
            with self.tree.parent(path) as (folder, name):
                os.replace(source, name, dst_dir_fd=folder)
        except OSError as exc:
            raise _local_error(exc, path) from None

    def close(self) -> None:
        """Close the folders the writer holds open."""
        self.tree.close()

    def _tmpname(self) -> str:
        return f"{self.tmp}/f{next(self._seq)}.{self._token}"

    def place(self, entry: FileEntry, data: bytes | memoryview) -> None:
        """Verify bytes and write them at the entry's path."""
        if len(data) != entry.size:
            raise IntegrityError(f"{entry.path}: got {len(data)} bytes, expected {entry.size}")
        if digest_bytes(data).hex != entry.digest:
            raise IntegrityError(f"{entry.path}: downloaded bytes do not match the manifest digest")
        parent, _, name = entry.path.rpartition("/")
        try:
            folder = self.tree.folder(parent)
        except OSError as exc:
            raise _local_error(exc, entry.path) from None
        try:
            fd = os.open(name, _CREATE, 0o600, dir_fd=folder)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fchmod(fd, self.mode(entry))
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=folder)
            raise _local_error(exc, entry.path) from None
        finally:
            self.tree.done(parent)

    def place_many(self, items: list[tuple[FileEntry, memoryview]]) -> None:
        """Place a batch of small files (one thread hop for many files)."""
        for entry, data in items:
            self.place(entry, data)

    def present(self, entries: list[FileEntry]) -> list[bool]:
        """Which entries a previous, interrupted run left complete (re-hashed, not trusted)."""
        out = []
        for e in entries:
            try:
                with self.tree.parent(e.path, create=False) as (folder, name):
                    st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                    ok = (
                        stat.S_ISREG(st.st_mode)
                        and st.st_size == e.size
                        and (e.size == 0 or self._digest(folder, name) == e.digest)
                    )
            except OSError:
                ok = False
            out.append(ok)
        return out

    def _digest(self, folder: int, name: str) -> str:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        return digest_fd(fd, self.chunk_size)[0].hex

    chunk_size = CHUNK_SIZE

    def reuse(self, items: list[tuple[FileEntry, LocalCopy]]) -> list[FileEntry]:
        """Hard-link (or copy) local copies into place; return the entries that failed.

        One ``stat`` a file: a copy whose size, mtime or inode moved since it was hashed
        is not trusted (it is downloaded instead).
        """
        failed = []
        for entry, copy in items:
            try:
                with at(copy.path) as (src, source), self.tree.parent(entry.path) as (dst, target):
                    st = os.stat(source, dir_fd=src)
                    if st.st_size != entry.size or (
                        copy.mtime_ns is not None
                        and (st.st_mtime_ns != copy.mtime_ns or st.st_ino != copy.ino)
                    ):
                        failed.append(entry)
                        continue
                    if (st.st_mode & 0o777) == self.mode(entry):
                        try:
                            os.link(source, target, src_dir_fd=src, dst_dir_fd=dst)
                            continue
                        except OSError:
                            pass
                    tmp = self._tmpname()
                    _copy(src, source, tmp)
                    os.chmod(tmp, self.mode(entry))
                    os.replace(tmp, target, dst_dir_fd=dst)
            except OSError:
                failed.append(entry)
        return failed


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy(folder: int | None, name: str, target: str) -> None:
    if folder is None:
        shutil.copyfile(name, target)
        return
    with (
        open(os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder), "rb") as fh,
        open(target, "wb") as out,
    ):
        shutil.copyfileobj(fh, out)


def _cleanup(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _local_error(exc: OSError, what: str) -> LocalIOError:
    return LocalIOError(f"cannot write {what}: {exc.strerror or exc}")


class _BlobFile:
    """A blob being assembled in a temporary file, verified chunk by chunk."""

    def __init__(self, entry: FileEntry, path: Path, chunk_size: int) -> None:
        self.entry = entry
        self.path = path
        self.chunk_size = chunk_size
        self.expected = entry.chunks or (entry.digest,)
        self.fd = -1

    def open(self) -> list[int]:
        """Open (or create) the file; return the indexes of chunks still to fetch."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(self.fd).st_size
        if size != self.entry.size:
            os.ftruncate(self.fd, self.entry.size)
        # Every chunk an earlier run wrote a byte of is re-hashed, as verify() hashes.
        have = -(-min(size, self.entry.size) // self.chunk_size)
        raw = digest_chunks(self.path, 0, have, self.chunk_size, with_crc=False)[0] if have else []
        return [i for i, want in enumerate(self.expected) if i >= len(raw) or raw[i].hex() != want]

    def verify(self, first: int, length: int) -> None:
        """Check the ``length`` bytes written from chunk ``first`` against the chunk digests."""
        count = -(-length // self.chunk_size)
        try:
            raw, _, size = digest_chunks(self.path, first, count, self.chunk_size, with_crc=False)
        except OSError as exc:
            raise _local_error(exc, self.entry.path) from None
        for i, got in enumerate(raw):
            if got.hex() != self.expected[first + i]:
                raise IntegrityError(
                    f"{self.entry.path}: chunk {first + i} does not match the manifest"
                )
        if size != length:
            raise IntegrityError(f"{self.entry.path}: a range ended inside a chunk")

    def write_all(self, offset: int, blocks: list[bytes]) -> int:
        """Write ``blocks`` one after the other at ``offset`` (``pwritev``); the bytes written."""
        views = [memoryview(b) for b in blocks]
        total = sum(len(v) for v in views)
        done = 0
        try:
            while views:
                n = os.pwritev(self.fd, views[:_IOV_MAX], offset + done)
                done += n
                while views and n >= len(views[0]):
                    n -= len(views[0])
                    views.pop(0)
                if n:
                    views[0] = views[0][n:]
        except OSError as exc:
            raise _local_error(exc, self.entry.path) from None
        return total

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Fetcher:
    def __init__(
        self,
        t: Transport,
        writer: _Writer,
        tracker: ProgressTracker,
        chunk_size: int,
        objects: Mapping[str, ObjectEntry],
    ) -> None:
        self.chunk_size = chunk_size
        self.objects = objects
        self.t = t
        self.w = writer
        self.tracker = tracker
        self.io = t.io
        self.cheap = t.backend.capabilities.cheap_ranges
        self.local = t.local

    async def pack(self, oid: str, size: int, members: list[FileEntry]) -> None:
        # A member larger than a batch goes to disk as it arrives, like a blob's range:
        # held whole until complete it would take its size in memory (2 GiB, say).
        for m in [m for m in members if m.size > _BATCH]:
            await self._member(oid, m)
        members = sorted((m for m in members if m.size <= _BATCH), key=lambda f: f.offset)
        if not members:
            return
        wanted = sum(m.size for m in members)
        gap = max(256 * 1024 if self.cheap else 1024 * 1024, self.objects[oid].frame_size)
        if not self.cheap and wanted * 2 >= size:
            gap = size
        groups: list[list[FileEntry]] = [[members[0]]]
        for m in members[1:]:
            last = groups[-1][-1]
            if m.offset - (last.offset + last.size) <= gap:
                groups[-1].append(m)
            else:
                groups.append([m])
        for group in groups:
            await self._pack_range(oid, group)

    async def _pack_range(self, oid: str, group: list[FileEntry]) -> None:
        start = group[0].offset
        end = group[-1].offset + group[-1].size
        biggest = max(m.size for m in group)
        # Files are created by _PLACERS threads while the range goes on arriving: the
        # kernel's work of creating many small files is what bounds a small-file pull,
        # and it runs faster on more than one core (cp -r uses one).
        send, receive = anyio.create_memory_object_stream[list[tuple[FileEntry, memoryview]]](1)

        async def place(
            batches: MemoryObjectReceiveStream[list[tuple[FileEntry, memoryview]]],
        ) -> None:
            async with batches:
                async for ready in batches:
                    await anyio.to_thread.run_sync(self.w.place_many, ready, limiter=self.io)
                    self.t.stats.files_downloaded += len(ready)
                    self.tracker.advance(sum(m.size for m, _ in ready), len(ready))

        in_flight = (_PLACERS + 2) * (_BATCH + biggest)  # placing, queued, arriving
        async with self.t.budget.hold(min(end - start, in_flight)), anyio.create_task_group() as tg:
            for _ in range(_PLACERS):
                tg.start_soon(place, receive.clone())
            receive.close()
            async with send:
                buf = bytearray()
                base = start  # object offset of buf[0]
                idx = 0
                body = framed.stream(self.t, self.objects[oid], start, end - start)
                async with aclosing(body):
                    async for block in body:
                        buf += block
                        if len(buf) >= _BATCH:
                            idx, base, buf, ready = _cut(group, idx, base, buf)
                            if ready:
                                await send.send(ready)
                idx, base, buf, ready = _cut(group, idx, base, buf)
                if ready:
                    await send.send(ready)
        if idx != len(group):
            raise IntegrityError(f"pack {oid} ended before its last file")

    async def blob(self, entry: FileEntry, part_size: int) -> None:
        chunk = self.chunk_size
        # The size the manifest claims is checked against the store's before a byte of
        # disk (the file is extended to it) or a task per range is committed to it.
        await self._check_size(entry.digest, self.objects[entry.digest].stored_size, entry.path)
        blob = _BlobFile(entry, self.w.tmp / f"{entry.digest}.blob", chunk)
        todo = await anyio.to_thread.run_sync(blob.open, limiter=self.io)
        try:
            done_bytes = entry.size - sum(min(chunk, entry.size - i * chunk) for i in todo)
            self.t.stats.bytes_resumed += done_bytes
            self.tracker.resume(done_bytes)
            ranges = _runs(todo, chunk, entry.size, part_size if self.cheap else entry.size)
            # From a local repository, a copy in the kernel then a read-back hash costs
            # half the CPU of reading, hashing and writing the blocks here (measured
            # alternated: 3.4 s against 7.5 s for 16 x 64 MiB); both pay the same
            # system time to fill fresh page-cache pages, which varies with the machine.
            # A framed (compressed) blob is inflated here, so it takes the ranged path.
            copy = self.local is not None and not self.objects[entry.digest].frames
            fill = self._blob_copy if copy else self._blob_range
            await self.t.each(ranges, lambda r: fill(blob, *r))
            mode = self.w.mode(entry)
            await anyio.to_thread.run_sync(os.fchmod, blob.fd, mode, limiter=self.io)
        finally:
            await anyio.to_thread.run_sync(blob.close)
        await anyio.to_thread.run_sync(self.w.move_in, str(blob.path), entry.path)
        self.t.stats.files_downloaded += 1
        self.tracker.advance(0, 1)

    async def _member(self, oid: str, m: FileEntry) -> None:
        member = _BlobFile(m, Path(self.w._tmpname()), self.chunk_size)

        def create() -> None:
            member.fd = os.open(member.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

        try:
            await anyio.to_thread.run_sync(create, limiter=self.io)
            try:
                await self._blob_range(member, 0, 0, m.size, source=(oid, m.offset))
                mode = self.w.mode(m)
                await anyio.to_thread.run_sync(os.fchmod, member.fd, mode, limiter=self.io)
            finally:
                await anyio.to_thread.run_sync(member.close)
            await anyio.to_thread.run_sync(self.w.move_in, str(member.path), m.path)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_cleanup, str(member.path))
            raise
        self.t.stats.files_downloaded += 1
        self.tracker.advance(0, 1)

    async def _check_size(self, oid: str, size: int, path: str) -> None:
        info = await self.t.head(layout.object_key(oid))
        if info is None:
            raise ObjectNotFoundError(f"{path}: its object {oid} is missing from the repository")
        if info.size != size:
            raise IntegrityError(
                f"{path}: its object {oid} holds {info.size} bytes, the manifest says {size}"
            )

    async def _blob_copy(self, blob: _BlobFile, first: int, offset: int, length: int) -> None:
        """Copy a range from a local repository in the kernel, then verify the copy.

        What is hashed is what was written: the destination, read back from the page cache.
        """
        assert self.local is not None
        key = layout.object_key(blob.entry.digest)
        await self.t.copy_out(self.local, key, blob.fd, offset, length)
        await anyio.to_thread.run_sync(blob.verify, first, length, limiter=self.io)
        self.tracker.advance(length)

    async def _blob_range(
        self,
        blob: _BlobFile,
        first: int,
        offset: int,
        length: int,
        source: tuple[str, int] | None = None,
    ) -> None:
        """Fetch ``length`` bytes at ``offset`` of the blob (or of ``source``: a pack, where)."""
        verifier = _ChunkVerifier(blob, first, offset)
        oid, start = source or (blob.entry.digest, offset)
        # The network and the disk overlap: while one step of >= 1 MiB is hashed and
        # written in a worker thread, the next is read from the socket. The blocks are
        # those the SDK gave, hashed and written where they are (never joined), and at
        # most three steps per range are in memory (one written, one queued, one read).
        send, receive = anyio.create_memory_object_stream[list[bytes]](1)

        async def write() -> None:
            async with receive:
                async for blocks in receive:
                    await anyio.to_thread.run_sync(verifier.feed, blocks, limiter=self.io)
                    self.tracker.advance(sum(len(b) for b in blocks))

        async with self.t.budget.hold(min(length, 3 * _STEP)), anyio.create_task_group() as tg:
            tg.start_soon(write)
            async with send:
                pending: list[bytes] = []
                size = 0
                body = framed.stream(self.t, self.objects[oid], start, length)
                async with aclosing(body):
                    async for block in body:
                        pending.append(block)
                        size += len(block)
                        if size >= _STEP:
                            await send.send(pending)
                            pending, size = [], 0
                if pending:
                    await send.send(pending)
        verifier.finish()


class _ChunkVerifier:
    """Hashes a range of a blob chunk by chunk as it arrives, then writes it in place."""

    def __init__(self, blob: _BlobFile, first: int, offset: int) -> None:
        self.blob = blob
        self.index = first
        self.pos = offset
        self.hash = hashlib.sha256()
        self.in_chunk = 0

    def _chunk_len(self) -> int:
        size = self.blob.entry.size
        return min(self.blob.chunk_size, size - self.index * self.blob.chunk_size)

    def feed(self, blocks: list[bytes]) -> None:
        """Verify every chunk the blocks complete, then write them (worker thread)."""
        for block in blocks:
            view = memoryview(block)
            while view:
                take = min(len(view), self._chunk_len() - self.in_chunk)
                self.hash.update(view[:take])
                self.in_chunk += take
                view = view[take:]
                if self.in_chunk == self._chunk_len():
                    if self.hash.hexdigest() != self.blob.expected[self.index]:
                        path = self.blob.entry.path
                        raise IntegrityError(
                            f"{path}: chunk {self.index} does not match the manifest"
                        )
                    self.index += 1
                    self.hash = hashlib.sha256()
                    self.in_chunk = 0
        self.pos += self.blob.write_all(self.pos, blocks)

    def finish(self) -> None:
        """Refuse a range that ended inside a chunk."""
        if self.in_chunk:
            raise IntegrityError(f"{self.blob.entry.path}: a range ended inside a chunk")


def _cut(
    group: list[FileEntry], idx: int, base: int, buf: bytearray
) -> tuple[int, int, bytearray, _Batch]:
    """The files of ``group`` from ``idx`` that ``buf`` (object offset ``base``) holds whole.

    Returns the next file's index, the new base, the rest of the buffer (a new one: the
    views handed out keep the old one alive until their files are written) and the files.
    """
    ready: _Batch = []
    view = memoryview(buf)
    end_of_buf = base + len(buf)
    consumed = 0
    while idx < len(group):
        m = group[idx]
        if m.offset + m.size > end_of_buf:
            break
        lo = m.offset - base
        ready.append((m, view[lo : lo + m.size]))
        consumed = lo + m.size
        idx += 1
    if not ready:  # nothing whole yet: the same buffer, not a copy of it per block
        view.release()
        return idx, base, buf, ready
    return idx, base + consumed, buf[consumed:], ready


def _runs(todo: list[int], chunk: int, size: int, max_len: int) -> list[tuple[int, int, int]]:
    """Contiguous runs of missing chunks as ``(first chunk, offset, length)`` ranges."""
    out: list[tuple[int, int, int]] = []
    per = max(1, max_len // chunk)
    i = 0
    while i < len(todo):
        first = todo[i]
        j = i
        while j + 1 < len(todo) and todo[j + 1] == todo[j] + 1 and j + 1 - i < per:
            j += 1
        offset = first * chunk
        end = min(size, (todo[j] + 1) * chunk)
        out.append((first, offset, end - offset))
        i = j + 1
    return out


_PRESENT_BATCH = 256


async def fetch(
    t: Transport,
    manifest: Manifest,
    files: list[FileEntry],
    dest: Path,
    tmp: Path,
    *,
    name: str,
    reuse: ReuseLookup | None = None,
    progress: ProgressCallback | None = None,
    previous: Callable[[str], str | None] | None = None,
) -> int:
    """Make ``dest`` hold exactly ``files`` (plus what it already held), verified.

    Counts what it did in ``t.stats`` (files present, reused, downloaded) and returns
    the bytes it had to download. ``previous`` names, by path, a local file that may
    hold an earlier version of a content-chunked file: its chunks are copied, not fetched.
    """
    writer = _Writer(dest, tmp)
    try:
        return await _fetch(
            t, writer, manifest, files, name=name, reuse=reuse, progress=progress, previous=previous
        )
    finally:
        writer.close()


async def _fetch(
    t: Transport,
    writer: _Writer,
    manifest: Manifest,
    files: list[FileEntry],
    *,
    name: str,
    reuse: ReuseLookup | None,
    progress: ProgressCallback | None,
    previous: Callable[[str], str | None] | None,
) -> int:
    stats, io, config = t.stats, t.io, t.config
    dest, tmp = writer.dest, writer.tmp
    writer.chunk_size = manifest.chunk_size

    def prepare() -> bool:
        resuming = dest.is_dir()
        dest.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)
        return resuming

    present = [False] * len(files)
    try:
        if await anyio.to_thread.run_sync(prepare, limiter=io):
            # What an interrupted run (or the workers of a distributed pull) left is
            # re-hashed before it is trusted: in batches, on every I/O thread.
            async def check(lo: int) -> None:
                batch = files[lo : lo + _PRESENT_BATCH]
                found = await anyio.to_thread.run_sync(writer.present, batch, limiter=io)
                present[lo : lo + len(found)] = found

            async with anyio.create_task_group() as tg:
                for lo in range(0, len(files), _PRESENT_BATCH):
                    tg.start_soon(check, lo)
    except OSError as exc:
        raise _local_error(exc, str(dest)) from None
    todo = [f for f, ok in zip(files, present, strict=True) if not ok]
    stats.files_present += len(files) - len(todo)
    stats.bytes_resumed += sum(f.size for f, ok in zip(files, present, strict=True) if ok)
    empty = [f for f in todo if f.size == 0]
    if empty:
        await anyio.to_thread.run_sync(writer.place_many, [(f, memoryview(b"")) for f in empty])
    todo = [f for f in todo if f.size]
    if reuse is not None and todo:
        candidates = [(f, src) for f in todo if (src := reuse(f)) is not None]
        failed = await anyio.to_thread.run_sync(writer.reuse, candidates, limiter=io)
        failed_paths = {f.path for f in failed}
        linked = {f.path for f, _ in candidates} - failed_paths
        stats.files_reused += len(linked)
        stats.bytes_reused += sum(f.size for f in todo if f.path in linked)
        todo = [f for f in todo if f.path not in linked]
    bytes_to_download = sum(f.size for f in todo)
    tracker = ProgressTracker("download", name, bytes_to_download, len(todo), progress)
    fetcher = _Fetcher(t, writer, tracker, manifest.chunk_size, manifest.objects)
    caps = t.backend.capabilities
    part = config.part_size_for(max(bytes_to_download, 1), caps.min_part_size, caps.max_parts)
    packs: dict[str, list[FileEntry]] = {}
    blobs: list[FileEntry] = []
    seen_blob: set[str] = set()
    duplicates: list[FileEntry] = []
    jobs: list[tuple[int, Callable[[], Awaitable[None]]]] = []
    for f in todo:
        if f.path in manifest.extents:  # content-chunked (format v3): engine/chunked.py
            jobs.append((f.size, _bind_chunked(t, writer, tracker, manifest, f, previous)))
            continue
        obj = manifest.objects[f.object]
        if obj.kind == "pack":
            packs.setdefault(obj.id, []).append(f)
        elif f.digest in seen_blob:
            duplicates.append(f)  # same content twice: download once, copy after
        else:
            seen_blob.add(f.digest)
            blobs.append(f)
    for oid, members in packs.items():
        jobs.append((manifest.objects[oid].size, _bind_pack(fetcher, oid, manifest, members)))
    for entry in blobs:
        jobs.append((entry.size, _bind_blob(fetcher, entry, part)))
    jobs.sort(key=lambda j: -j[0])
    await t.each([job for _, job in jobs], _run)
    if duplicates:
        by_digest = {b.digest: str(dest / b.path) for b in blobs}
        failed = await anyio.to_thread.run_sync(
            writer.reuse, [(d, LocalCopy(by_digest[d.digest])) for d in duplicates], limiter=io
        )
        if failed:
            raise LocalIOError(f"cannot copy {failed[0].path} from its duplicate")
        stats.files_downloaded += len(duplicates)
        tracker.advance(sum(d.size for d in duplicates), len(duplicates))
    tracker.finish()
    return bytes_to_download


async def _run(job: Callable[[], Awaitable[None]]) -> None:
    await job()


def _bind_pack(
    f: _Fetcher, oid: str, manifest: Manifest, members: list[FileEntry]
) -> Callable[[], Awaitable[None]]:
    size = manifest.objects[oid].size
    return lambda: f.pack(oid, size, members)


def _bind_blob(f: _Fetcher, entry: FileEntry, part: int) -> Callable[[], Awaitable[None]]:
    return lambda: f.blob(entry, part)


def _bind_chunked(
    t: Transport,
    w: _Writer,
    tracker: ProgressTracker,
    manifest: Manifest,
    entry: FileEntry,
    previous: Callable[[str], str | None] | None,
) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        local = previous(entry.path) if previous is not None else None
        extents = manifest.extents[entry.path]
        mode = w.mode(entry)
        await chunked.fetch_file(
            t, entry, extents, manifest.objects, w.tmp, w.move_in, mode, local,
            chunked.adopted(manifest), tracker,
        )  # fmt: skip
        tracker.advance(0, 1)

    return job
