"""``file://`` repositories: a local or network-mounted folder that behaves like a bucket.

Objects are files at ``ROOT/KEY``. Writes go to a temporary file in the same folder
and are renamed into place, so a reader never sees half an object; create-only
writes use ``link()``, which fails if the target exists, so they are atomic even on
most network file systems. Multipart uploads keep their parts under
``ROOT/.uploads/<id>/`` until completion concatenates them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from ..errors import (
    AccessDeniedError,
    BackendError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
)
from ..urls import RepoURL
from .base import BackendOptions, Capabilities, ObjectInfo, PartRef, UploadInfo

_READ_BLOCK = 1024 * 1024
_UPLOADS = ".uploads"
_TMP_UPLOAD = "tmp:"


def _translate(exc: OSError, key: str) -> BackendError:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDeniedError(f"permission denied on {key}: {exc.strerror}")
    if exc.errno == errno.ENOENT:
        return ObjectNotFoundError(f"object {key} does not exist")
    return BackendError(f"{key}: {exc.strerror or exc}")


class FileBackend:
    """A repository in a folder (``file:///path``)."""

    def __init__(self, url: RepoURL, options: BackendOptions | None = None) -> None:
        self._root = url.path
        self._url = str(url)
        self._limiter = anyio.CapacityLimiter((options or BackendOptions()).concurrency)

    @property
    def capabilities(self) -> Capabilities:
        """Folders take parts of any size and cheap ranges."""
        return Capabilities(min_part_size=1, max_parts=100_000, conditional_create=True)

    def describe(self) -> str:
        """The repository URL."""
        return self._url

    async def _run(self, fn: object, *args: object) -> object:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)  # type: ignore[arg-type]

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
            fd = await anyio.to_thread.run_sync(os.open, path, os.O_RDONLY)
        except OSError as exc:
            raise _translate(exc, key) from exc
        try:
            remaining = length if length is not None else -1
            pos = offset
            while remaining != 0:
                n = _READ_BLOCK if remaining < 0 else min(_READ_BLOCK, remaining)
                block = await anyio.to_thread.run_sync(os.pread, fd, n, pos, limiter=self._limiter)
                if not block:
                    if remaining > 0:
                        raise BackendError(f"object {key} ended before the requested range")
                    break
                pos += len(block)
                if remaining > 0:
                    remaining -= len(block)
                yield block
        finally:
            os.close(fd)

    def _write(self, path: Path, data: bytes, if_absent: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            if if_absent:
                try:
                    os.link(tmp, path)
                finally:
                    tmp.unlink()
            else:
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Write via a temporary file and rename (or link, for create-only)."""
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

    async def create_multipart(self, key: str) -> str:
        """Make the folder that holds the parts."""
        upload_id = secrets.token_hex(12)
        d = self._upload_dir(upload_id)
        try:
            await anyio.to_thread.run_sync(lambda: d.mkdir(parents=True))
            await anyio.to_thread.run_sync((d / "key").write_text, key)
        except OSError as exc:
            raise _translate(exc, key) from exc
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> PartRef:
        """Store one part as its own file."""
        path = self._upload_dir(upload_id) / f"{number:06d}"
        if not path.parent.is_dir():
            raise ObjectNotFoundError(f"multipart upload {upload_id} of {key} does not exist")
        try:
            await anyio.to_thread.run_sync(self._write, path, data, False, limiter=self._limiter)
        except OSError as exc:
            raise _translate(exc, key) from exc
        return PartRef(number, str(len(data)))

    def _complete(self, key: str, upload_id: str, parts: list[PartRef]) -> None:
        d = self._upload_dir(upload_id)
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "wb") as out:
                for part in sorted(parts, key=lambda p: p.number):
                    with open(d / f"{part.number:06d}", "rb") as src:
                        shutil.copyfileobj(src, out, 4 * 1024 * 1024)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[PartRef]) -> None:
        """Concatenate the parts into the object."""
        try:
            await anyio.to_thread.run_sync(self._complete, key, upload_id, parts)
        except OSError as exc:
            raise _translate(exc, key) from exc

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the parts (or the temporary file of an interrupted single write)."""
        if upload_id.startswith(_TMP_UPLOAD):
            tmp = self._path(upload_id.removeprefix(_TMP_UPLOAD))
            if tmp.name.startswith(".") and tmp.name.endswith(".tmp"):
                await anyio.to_thread.run_sync(lambda: tmp.unlink(missing_ok=True))
            return
        d = self._upload_dir(upload_id)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(d, ignore_errors=True))

    async def list_multipart(self, prefix: str) -> AsyncGenerator[UploadInfo, None]:
        """Folders under ``.uploads`` whose key starts with ``prefix``."""

        def scan() -> list[UploadInfo]:
            out: list[UploadInfo] = []
            base = self._root / _UPLOADS
            if not base.is_dir():
                return out
            for d in sorted(base.iterdir()):
                with contextlib.suppress(OSError):
                    key = (d / "key").read_text()
                    if key.startswith(prefix):
                        mtime = datetime.fromtimestamp(d.stat().st_mtime, UTC)
                        out.append(UploadInfo(key, d.name, mtime))
            # A writer killed between writing its temporary file and renaming it leaves
            # ".NAME.TOKEN.tmp" beside the object: an unfinished upload too.
            for dirpath, dirnames, filenames in os.walk(self._root):
                dirnames[:] = [n for n in dirnames if n != _UPLOADS]
                for fn in filenames:
                    if fn.startswith(".") and fn.endswith(".tmp"):
                        full = os.path.join(dirpath, fn)
                        rel = os.path.relpath(full, self._root).replace(os.sep, "/")
                        target = f"{os.path.dirname(rel)}/{fn[1:].rsplit('.', 2)[0]}".lstrip("/")
                        if target.startswith(prefix):
                            with contextlib.suppress(OSError):
                                mtime = datetime.fromtimestamp(os.stat(full).st_mtime, UTC)
                                out.append(UploadInfo(target, _TMP_UPLOAD + rel, mtime))
            return out

        for item in await anyio.to_thread.run_sync(scan):
            yield item

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
