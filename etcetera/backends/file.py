"""``file://`` repositories: a local or network-mounted folder that behaves like a bucket.

Objects are files at ``ROOT/KEY``. Writes go to a temporary file in the same folder
and are renamed into place, so a reader never sees half an object; create-only
writes use ``link()``, which fails if the target exists, so they are atomic even on
most network file systems. Multipart uploads keep their parts under
``ROOT/.uploads/<id>/`` until completion concatenates them.

A create-only write is how etcetera publishes (a manifest, then the version record that
names it), so it is also the flush point: before its name appears, one ``syncfs`` of
the repository's file system makes durable everything written before it (objects,
manifests, by this process or another), and the new file and its folder are fsynced
before the write returns. Plain writes are not flushed one by one: one ``syncfs``
costs less than an ``fsync`` of every object and its folder (measured: less than half
the time for 20,000 small objects, about the same for 16 x 64 MiB), and it also covers
objects an earlier, interrupted push wrote that this one finds present and skips.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import zlib
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from ..durable import fsync_dir, syncfs
from ..errors import (
    AccessDeniedError,
    BackendError,
    LocalIOError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
)
from ..urls import RepoURL
from .base import BackendOptions, Buffer, Capabilities, ObjectInfo, PartRef, Requests, direct

_READ_BLOCK = 1024 * 1024
_BIG_STEP = 1 << 30  # bytes asked of one copy_file_range
_UPLOADS = ".uploads"
_KEY = "key"  # the file in an upload's folder that names its target


def _publish(fd: int, tmp: Path, path: Path) -> None:
    """Link the written ``tmp`` (open as ``fd``) at ``path``, create-only and durably.

    Everything written before is durable before the name appears (a crash never leaves a
    version record naming objects that are not on disk), and the name is durable
    before this returns (a push that reported success survives a crash).
    """
    syncfs(fd)
    os.link(tmp, path)
    tmp.unlink()
    os.fsync(fd)
    fsync_dir(path.parent)


def _translate(exc: OSError, key: str) -> BackendError:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDeniedError(f"permission denied on {key}: {exc.strerror}")
    if exc.errno == errno.ENOENT:
        return ObjectNotFoundError(f"object {key} does not exist")
    return BackendError(f"{key}: {exc.strerror or exc}")


def _open_object(path: Path, key: str, offset: int, length: int | None) -> tuple[int, int, bytes]:
    """Open an object and read its range's first block: ``(fd, bytes to read, block)``.

    Only a regular file is read, and no more than the size stat'ed here (an object is
    never appended to): ``O_NONBLOCK``, since opening a FIFO planted in a repository
    must not block for ever (a blocking ``open`` in a worker thread cannot be
    cancelled), and a FIFO, a device or a link to ``/dev/zero`` is refused by its
    ``fstat``. A range read whole by the first block is closed at once (``fd`` -1): a
    small object (a version record) costs one thread hop.
    """
    fd, size = _open_regular(path, key)
    try:
        if length is not None and offset + length > size:
            raise BackendError(
                f"object {key} holds {size} bytes, not the {offset + length} asked for"
            )
        want = max(0, size - offset) if length is None else length
        block = os.pread(fd, min(_READ_BLOCK, want), offset) if want else b""
        if len(block) >= want:
            os.close(fd)
            fd = -1
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd, want, block


def _open_regular(path: Path, what: str) -> tuple[int, int]:
    """Open a file of the repository to read it: ``(fd, size)``, a regular file or refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BackendError(f"object {what} is not a regular file: refusing it")
    return fd, st.st_size


def _crc32_file(path: Path) -> tuple[int, int]:
    """Size and CRC32 of a file, read in 1 MiB blocks (no more than its size)."""
    crc = done = 0
    fd, size = _open_regular(path, str(path))
    with open(fd, "rb", buffering=0) as fh:
        while done < size and (block := fh.read(min(_READ_BLOCK, size - done))):
            crc = zlib.crc32(block, crc)
            done += len(block)
    return done, crc


class FileBackend:
    """A repository in a folder (``file:///path``)."""

    def __init__(self, url: RepoURL, options: BackendOptions | None = None) -> None:
        self._root = url.path
        self._url = str(url)
        self._limiter = anyio.CapacityLimiter((options or BackendOptions()).concurrency)

    @property
    def capabilities(self) -> Capabilities:
        """Folders take parts of any size and cheap ranges."""
        # A body is written from our buffer: one copy.
        return Capabilities(
            min_part_size=1, max_parts=100_000, conditional_create=True, send_copies=1
        )

    def describe(self) -> str:
        """The repository URL."""
        return self._url

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise BackendError(f"refusing unsafe key {key!r}")
        return self._root / key

    async def check(self) -> None:
        """The folder must exist; etcetera does not create repositories."""
        if not await anyio.to_thread.run_sync(self._root.is_dir):
            raise RepositoryNotFoundError(
                f"repository folder {self._root} does not exist: create it or fix url"
            )

    async def stream(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Read a range in 1 MiB blocks, each read in a worker thread."""
        path = self._path(key)
        try:
            fd, remaining, block = await anyio.to_thread.run_sync(
                _open_object, path, key, offset, length, limiter=self._limiter
            )
        except BackendError:
            raise
        except OSError as exc:
            raise _translate(exc, key) from exc
        try:
            pos = offset
            while True:
                pos += len(block)
                remaining -= len(block)
                if block:
                    yield block
                if remaining <= 0:
                    break
                n = min(_READ_BLOCK, remaining)
                block = await anyio.to_thread.run_sync(os.pread, fd, n, pos, limiter=self._limiter)
                if not block:
                    raise BackendError(f"object {key} ended before the requested range")
        finally:
            if fd >= 0:
                os.close(fd)

    def _write(self, path: Path, data: Buffer, if_absent: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if if_absent:
                    fh.flush()  # out of Python's buffer, for syncfs to find
                    _publish(fh.fileno(), tmp, path)
            if not if_absent:
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
        """Write via a temporary file and rename (or link, flushed, for create-only)."""
        path = self._path(key)
        try:
            await anyio.to_thread.run_sync(
                self._write, path, data, if_absent, limiter=self._limiter
            )
        except FileExistsError as exc:
            raise PreconditionFailedError(f"object {key} already exists") from exc
        except OSError as exc:
            raise _translate(exc, key) from exc

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and mtime, or ``None``."""
        try:
            st = await anyio.to_thread.run_sync(os.stat, self._path(key), limiter=self._limiter)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _translate(exc, key) from exc
        if not stat.S_ISREG(st.st_mode):
            raise BackendError(f"object {key} is not a regular file: refusing it")
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def _walk(self, prefix: str) -> list[ObjectInfo]:
        base = self._root
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        out: list[ObjectInfo] = []
        if not start.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, base)
            dirnames[:] = [d for d in dirnames if d != _UPLOADS]
            for fn in filenames:
                if fn.startswith(".") and fn.endswith(".tmp"):
                    continue
                key = fn if rel_dir == "." else f"{rel_dir}/{fn}".replace(os.sep, "/")
                if key.startswith(prefix):
                    st = os.stat(os.path.join(dirpath, fn))
                    out.append(
                        ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                    )
        out.sort(key=lambda o: o.key)
        return out

    async def delete(self, key: str) -> None:
        """Remove a file; missing is fine."""
        try:
            await anyio.to_thread.run_sync(self._path(key).unlink, True)
        except OSError as exc:
            raise _translate(exc, key) from exc

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise BackendError(f"invalid upload id {upload_id!r}")
        return self._root / _UPLOADS / upload_id

    async def upload(self, key: str) -> FileUpload:
        """Make the folder that holds the parts, with a file naming the key."""
        self._path(key)  # refuse an unsafe key now, not at completion
        upload_id = secrets.token_hex(12)
        d = self._upload_dir(upload_id)

        def make() -> None:
            d.mkdir(parents=True)
            (d / _KEY).write_text(key, encoding="utf-8")

        try:
            await anyio.to_thread.run_sync(make, limiter=self._limiter)
        except OSError as exc:
            raise _translate(exc, key) from exc
        return FileUpload(self, key, upload_id, datetime.now(UTC))

    def _scan_uploads(self, prefix: str) -> list[FileUpload | StrayWrite]:
        out: list[FileUpload | StrayWrite] = []
        base = self._root / _UPLOADS
        for d in sorted(base.iterdir()) if base.is_dir() else []:
            with contextlib.suppress(OSError):
                fd, size = _open_regular(d / _KEY, str(d / _KEY))
                with open(fd, "rb") as fh:
                    key = fh.read(min(size, 4096)).decode("utf-8")
                if key.startswith(prefix):
                    mtime = datetime.fromtimestamp(d.stat().st_mtime, UTC)
                    out.append(FileUpload(self, key, d.name, mtime))
        # A writer killed between writing its temporary file and renaming it leaves
        # ".NAME.TOKEN.tmp" beside the object: an unfinished upload too. Only the folder
        # of the prefix is walked (a push asks about the objects' folder alone).
        start = self._root / prefix.rsplit("/", 1)[0] if "/" in prefix else self._root
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [n for n in dirnames if n != _UPLOADS]
            for fn in filenames:
                if fn.startswith(".") and fn.endswith(".tmp"):
                    full = os.path.join(dirpath, fn)
                    rel = os.path.relpath(full, self._root).replace(os.sep, "/")
                    target = f"{os.path.dirname(rel)}/{fn[1:].rsplit('.', 2)[0]}".lstrip("/")
                    if target.startswith(prefix):
                        with contextlib.suppress(OSError):
                            mtime = datetime.fromtimestamp(os.stat(full).st_mtime, UTC)
                            out.append(StrayWrite(self, target, rel, mtime))
        return out

    async def uploads(self, prefix: str) -> AsyncGenerator[FileUpload | StrayWrite, None]:
        """Folders under ``.uploads`` whose key starts with ``prefix``, and stray temporaries."""
        found = await anyio.to_thread.run_sync(self._scan_uploads, prefix, limiter=self._limiter)
        for item in found:
            yield item

    def _stage(self, folder: str, ranges: Sequence[tuple[int, int, int | None]]) -> FileStaged:
        """Copy ``(fd, offset, length)`` ranges (``None``: to the end) into a temporary file."""
        tmp = self._path(folder) / f".staged.{secrets.token_hex(6)}.tmp"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            at = 0
            for fd, offset, length in ranges:
                done = _copy(fd, out, offset, at, length)
                if length is not None and done != length:
                    raise LocalIOError("a local file ended before the range to copy")
                at += done
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(out)
        return FileStaged(self, tmp)

    async def stage_ranges(self, folder: str, ranges: Sequence[tuple[int, int, int]]) -> FileStaged:
        """Copy ``(fd, offset, length)`` ranges into one temporary file, in the kernel."""
        try:
            return await anyio.to_thread.run_sync(
                self._stage, folder, ranges, limiter=self._limiter
            )
        except OSError as exc:
            raise _translate(exc, folder) from exc

    async def stage(self, folder: str, fd: int) -> FileStaged:
        """Copy a local file into a temporary file of the repository, in the kernel."""
        try:
            return await anyio.to_thread.run_sync(
                self._stage, folder, [(fd, 0, None)], limiter=self._limiter
            )
        except OSError as exc:
            raise _translate(exc, folder) from exc

    def _copy_out(self, key: str, fd: int, ranges: Sequence[tuple[int, int, int]]) -> None:
        src, size = _open_regular(self._path(key), key)  # never a FIFO or /dev/zero
        try:
            for offset, at, length in ranges:
                if offset + length > size:
                    raise BackendError(
                        f"object {key} holds {size} bytes, not the {offset + length} asked for"
                    )
                if _copy(src, fd, offset, at, length) != length:
                    raise BackendError(f"object {key} ended before the requested range")
        finally:
            os.close(src)

    async def copy_out(self, key: str, fd: int, offset: int, length: int) -> None:
        """Copy a range of an object into a local file, in the kernel."""
        await self.copy_ranges(key, fd, [(offset, offset, length)])

    async def copy_ranges(self, key: str, fd: int, ranges: Sequence[tuple[int, int, int]]) -> None:
        """Copy ranges ``(offset in key, offset in fd, length)`` of an object, in the kernel."""
        try:
            await anyio.to_thread.run_sync(self._copy_out, key, fd, ranges, limiter=self._limiter)
        except OSError as exc:
            if exc.errno in _LOCAL_FULL:  # the copy's side: the repository is only read
                raise LocalIOError(f"cannot write a copy of {key}: {exc.strerror}") from None
            raise _translate(exc, key) from exc

    async def aclose(self) -> None:
        """Nothing to release."""

    async def list(self, prefix: str) -> AsyncGenerator[ObjectInfo, None]:
        """Walk the folder under ``prefix``."""
        try:
            items = await anyio.to_thread.run_sync(self._walk, prefix, limiter=self._limiter)
        except OSError as exc:
            raise _translate(exc, prefix) from exc
        for item in items:
            yield item


class FileUpload:
    """A multipart upload into a folder: parts are files under ``.uploads/<id>/``."""

    def __init__(
        self, backend: FileBackend, key: str, upload_id: str, initiated: datetime | None
    ) -> None:
        self._backend = backend
        self._dir = backend._upload_dir(upload_id)
        self.key = key
        self.upload_id = upload_id
        self.initiated = initiated

    def _part(self, number: int) -> Path:
        return self._dir / f"{number:06d}"

    def _missing(self) -> ObjectNotFoundError:
        return ObjectNotFoundError(
            f"multipart upload {self.upload_id} of {self.key} does not exist"
        )

    def _put(self, number: int, data: Buffer) -> None:
        # Checked first: writing would make the folder of an aborted upload again.
        if not self._dir.is_dir():
            raise self._missing()
        self._backend._write(self._part(number), data, False)

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """Store one part as its own file (written aside and renamed into place).

        A local file needs no transport checksum: ``crc32`` is not used.
        """
        try:
            await anyio.to_thread.run_sync(self._put, number, data, limiter=self._backend._limiter)
        except OSError as exc:
            raise _translate(exc, self.key) from exc
        return PartRef(number, str(len(data)), size=len(data))

    def _scan_parts(self) -> list[PartRef]:
        if not self._dir.is_dir():
            raise self._missing()
        names = [p.name for p in self._dir.iterdir()]
        numbers = sorted(int(n) for n in names if n.isascii() and n.isdigit())
        out: list[PartRef] = []
        for n in numbers:
            size, crc = _crc32_file(self._part(n))
            out.append(PartRef(n, str(size), size=size, checksums={"crc32": f"{crc:08x}"}))
        return out

    async def parts(self) -> AsyncGenerator[PartRef, None]:
        """The part files, in number order, each with the CRC32 of the bytes it holds.

        The folder keeps no checksums: they are read from the part files themselves
        (bytes a crash left unflushed show as they are), one read of a part each.
        """
        try:
            found = await anyio.to_thread.run_sync(self._scan_parts, limiter=self._backend._limiter)
        except OSError as exc:
            raise _translate(exc, self.key) from exc
        for part in found:
            yield part

    def _complete(self, parts: Sequence[PartRef]) -> None:
        if not self._dir.is_dir():
            raise self._missing()
        target = self._backend._path(self.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "wb") as out:
                at = 0
                for part in sorted(parts, key=lambda p: p.number):
                    with open(_open_regular(self._part(part.number), self.key)[0], "rb") as src:
                        at += _copy(src.fileno(), out.fileno(), 0, at, None)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        """Concatenate the parts into the object (one file-system operation)."""

        async def go() -> None:
            try:
                await anyio.to_thread.run_sync(self._complete, parts)
            except OSError as exc:
                raise _translate(exc, self.key) from exc

        await run(self.key, go)

    async def abort(self, run: Requests = direct) -> None:
        """Drop the parts' folder."""

        async def go() -> None:
            await anyio.to_thread.run_sync(shutil.rmtree, self._dir, True)

        await run(self.key, go)


_LOCAL_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def _copy(src: int, dst: int, src_at: int, dst_at: int, length: int | None) -> int:
    """Copy ``length`` bytes (``None``: to the end) of ``src`` to ``dst``; the bytes copied.

    ``copy_file_range`` moves no bytes through this process (and is a reflink where the
    file system shares extents); positioned reads and writes are the fallback (another
    file system, another OS). Fewer bytes than ``length`` means ``src`` ended first.
    """
    done = 0
    kernel = hasattr(os, "copy_file_range")
    while length is None or done < length:
        n = _BIG_STEP if length is None else min(_BIG_STEP, length - done)
        if kernel:
            try:
                got = os.copy_file_range(src, dst, n, src_at + done, dst_at + done)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False
                continue
        else:
            block = os.pread(src, min(n, _READ_BLOCK), src_at + done)
            written = 0
            while written < len(block):
                written += os.pwrite(dst, memoryview(block)[written:], dst_at + done + written)
            got = len(block)
        if not got:
            break
        done += got
    return done


class FileStaged:
    """A local file copied into the repository as ``.staged.TOKEN.tmp``, not yet named.

    A process killed before :meth:`publish` leaves it as a stray write, which ``gc``
    removes.
    """

    def __init__(self, backend: FileBackend, tmp: Path) -> None:
        self._backend = backend
        self._tmp = tmp
        self.path = str(tmp)

    def _publish(self, key: str) -> None:
        target = self._backend._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, target)

    async def publish(self, key: str) -> None:
        """Rename the copy to ``key`` (flushed with the next create-only write, as a put is)."""
        try:
            await anyio.to_thread.run_sync(self._publish, key, limiter=self._backend._limiter)
        except OSError as exc:
            raise _translate(exc, key) from exc

    async def discard(self) -> None:
        """Delete the copy, if it is still there."""
        await anyio.to_thread.run_sync(self._tmp.unlink, True)


class StrayWrite:
    """The temporary file of a single write whose writer died before renaming it.

    It is an unfinished upload of ``key`` without parts: it can only be aborted.
    """

    def __init__(self, backend: FileBackend, key: str, path: str, initiated: datetime) -> None:
        self._path = backend._path(path)
        self.key = key
        self.upload_id = f"tmp:{path}"
        self.initiated: datetime | None = initiated

    def _refuse(self) -> BackendError:
        return BackendError(f"{self._path} is an interrupted write, not an upload with parts")

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """Refuse: only a multipart upload takes parts."""
        raise self._refuse()

    async def parts(self) -> AsyncGenerator[PartRef, None]:
        """None: a single write has no parts."""
        return
        yield

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        """Refuse: the write's bytes may be incomplete."""
        raise self._refuse()

    async def abort(self, run: Requests = direct) -> None:
        """Delete the temporary file."""
        await run(self.key, lambda: anyio.to_thread.run_sync(self._unlink))

    def _unlink(self) -> None:
        if self._path.name.startswith(".") and self._path.name.endswith(".tmp"):
            self._path.unlink(missing_ok=True)
