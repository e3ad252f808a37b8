"""Datasets pushed by etcetera 0.0.x: one ``NAME.tgz`` at the repository root.

They are listed (marked as the old format) and pulled, read-only: the archive is
streamed to a temporary file, then unpacked member by member into the staging
folder. Members that are absolute, climb out with ``..``, or are links, devices or
FIFOs are refused, so nothing is written outside the dataset folder.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from contextlib import aclosing
from pathlib import Path

import anyio
import anyio.to_thread

from .engine.localfs import current_umask, local_mode, makedirs
from .engine.transport import Transport
from .errors import ManifestError, NotADatasetError
from .format import layout
from .format.paths import check_path
from .model import check_dataset

_COPY_BLOCK = 1024 * 1024


async def download(t: Transport, name: str, target: Path, size: int) -> int:
    """Stream ``NAME.tgz`` (``size`` bytes, as the store reported) into ``target``."""
    key = layout.legacy_key(name)
    size, expected = 0, size
    with await anyio.to_thread.run_sync(target.open, "wb") as out:
        body = t.stream(key, 0, expected)
        async with aclosing(body):
            async for block in body:
                await anyio.to_thread.run_sync(out.write, block)
                size += len(block)
    return size


def _member_path(member: tarfile.TarInfo, archive: str) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    try:
        return check_path(name)
    except ManifestError:
        raise ManifestError(
            f"{archive}: member {member.name!r} is absolute or climbs out: refusing the archive"
        ) from None


def space_for(folder: Path) -> int:
    """Bytes an archive may unpack to in ``folder``: its file system's free space, less 5 %."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize * 19 // 20


def unpack(archive: Path, dest: Path, label: str, limit: int | None = None) -> int:
    """Unpack a legacy archive into ``dest`` (blocking); return the number of files.

    The members' sizes are added up before each is written: an archive that would
    unpack to more than ``limit`` bytes (default: :func:`space_for` the folder; a
    1 MiB gzip may hold 1 GiB) is refused before it fills the disk, and so is a sparse
    member (172 bytes may claim 100 GiB).
    """
    count = 0
    total = 0
    umask = current_umask()
    dest.mkdir(parents=True, exist_ok=True)
    if limit is None:
        limit = space_for(dest)
    base = str(dest) + "/"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in (".", "./"):
                    continue
                path = _member_path(member, label)
                if member.isdir():
                    makedirs(base + path)
                    continue
                if not member.isreg():
                    raise ManifestError(
                        f"{label}: member {member.name!r} is a link, device or FIFO: "
                        "refusing the archive"
                    )
                if member.issparse():
                    raise ManifestError(
                        f"{label}: member {member.name!r} is a sparse file: refusing the archive"
                    )
                total += member.size
                if total > limit:
                    raise ManifestError(
                        f"{label} unpacks to more than {limit} bytes (the space free for it): "
                        "refusing the archive"
                    )
                parent = path.rpartition("/")[0]
                if parent:
                    makedirs(base + parent)
                source = tar.extractfile(member)
                if source is None:
                    raise ManifestError(f"{label}: member {member.name!r} cannot be read")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                fd = os.open(base + path, flags, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, _COPY_BLOCK)
                os.chmod(base + path, local_mode(member.mode, umask))
                count += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise ManifestError(f"{label}: a member appears twice: refusing the archive") from None
        raise ManifestError(f"{label} is not a readable tgz archive ({exc})") from None
    try:
        check_dataset(dest)
    except NotADatasetError as exc:
        raise ManifestError(f"{label} does not hold a dataset: {exc}") from None
    return count
