"""Files and folders reached through folder descriptors: no path passes ``PATH_MAX``.

A manifest path may be 4,096 characters (``docs/format.md``); prefixed with the home's
own path it passes the kernel's limit on one path (4,096 bytes on Linux), and
``open``, ``stat``, ``mkdir`` and ``rename`` refuse it. The kernel has no limit on a
path walked one folder at a time, so:

* :class:`Tree` is the folder a pull writes into: each folder under it is opened (or
  made) relative to its parent's descriptor, one name at a time and with
  ``O_NOFOLLOW``, so that no link, planted or raced, leads a write out of it; the
  folders last used stay open, so that the many files of one folder cost one
  ``openat`` each, as a short path would;
* :func:`at` is any other path of the user's (a file to push, hash or copy from),
  links followed as the path would follow them: a short path goes to the kernel as it
  is, at no cost, a long one through the descriptor of its folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator

from ..format.hashing import CHUNK_SIZE, Digest, digest_chunks, join

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: Paths shorter than this (in bytes) go to the kernel whole; longer ones are walked
#: in steps of at most this many bytes.
_STEP = 3072
#: Folders a tree keeps open (the descriptors of a process are bounded, often 1,024).
_KEEP = 256


def is_short(path: str) -> bool:
    """Whether ``path`` is short enough to go to the kernel whole."""
    # A character is at most 4 bytes in UTF-8: most paths need no encoding to tell.
    return len(path) * 4 < _STEP or len(os.fsencode(path)) < _STEP


def _steps(path: str) -> list[str]:
    """``path`` cut at ``/`` into pieces shorter than :data:`_STEP` bytes each."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for part in path.split("/"):
        n = len(os.fsencode(part)) + 1
        if current and size + n >= _STEP:
            out.append("/".join(current))
            current, size = [], 0
        current.append(part)
        size += n
    out.append("/".join(current))
    return out


@contextlib.contextmanager
def at(path: str) -> Iterator[tuple[int | None, str]]:
    """``(dir_fd, name)`` naming ``path`` for the ``os`` calls that take ``dir_fd``.

    A short path is given back as it is (``dir_fd`` ``None``); a long one as its last
    name and the descriptor of its folder, open until the block ends.
    """
    if is_short(path):
        yield None, path
        return
    folder, _, name = path.rpartition("/")
    fd = open_folder(folder or "/")
    try:
        yield fd, name
    finally:
        os.close(fd)


def open_folder(path: str) -> int:
    """A descriptor of the folder ``path``, however long (links followed, as by the path)."""
    steps = _steps(path)
    fd = os.open(steps[0] or "/", _DIR)
    try:
        for step in steps[1:]:
            child = os.open(step, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str, flags: int = os.O_RDONLY) -> int:
    """``os.open(path, flags)`` for a path of any length."""
    with at(path) as (folder, name):
        return os.open(name, flags | os.O_CLOEXEC, dir_fd=folder)


def stat_path(path: str) -> os.stat_result:
    """``os.stat(path)`` for a path of any length."""
    with at(path) as (folder, name):
        return os.stat(name, dir_fd=folder)


def digest_range(
    path: str, first: int, count: int | None, chunk_size: int, *, with_crc: bool
) -> tuple[list[bytes], list[int], int]:
    """:func:`~etcetera.format.hashing.digest_chunks` of a path of any length."""
    if is_short(path):
        return digest_chunks(path, first, count, chunk_size, with_crc=with_crc)
    return _digest_chunks(open_file(path), first, count, chunk_size, with_crc=with_crc)


def digest_path(path: str, chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """:func:`~etcetera.format.hashing.digest_file` of a path of any length."""
    raw, crcs, size = digest_range(path, 0, None, chunk_size, with_crc=True)
    return join(raw, crcs), size


def digest_fd(fd: int, chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """:func:`~etcetera.format.hashing.digest_file` of an open file, which it closes."""
    raw, crcs, size = _digest_chunks(fd, 0, None, chunk_size, with_crc=True)
    return join(raw, crcs), size


# open(), which digest_chunks calls on its path, takes a descriptor as well (and closes it).
_digest_chunks: Callable[..., tuple[list[bytes], list[int], int]] = digest_chunks


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


class Tree:
    """The folders under ``root``, opened by descriptor, one name at a time, no link followed.

    Safe to share between threads. The root itself is opened as its path says (the
    caller has checked it: a staging folder of the home); :meth:`close` closes every
    descriptor the tree holds.
    """

    def __init__(self, root: str, keep: int = _KEEP) -> None:
        self.root = root
        self._keep = keep
        self._lock = threading.Lock()
        #: folder (relative, "" for the root) -> [descriptor, users]; oldest first.
        self._open: dict[str, list[int]] = {}

    def folder(self, rel: str, *, create: bool = True) -> int:
        """A descriptor of the folder ``rel`` (``a/b``), made if missing; :meth:`done` it.

        Raises:
            OSError: a folder on the way is missing (``create`` false), is not a folder,
                or is a link (``ELOOP``).
        """
        with self._lock:
            if not self._open:  # the root, kept open until close()
                self._open[""] = [os.open(self.root, _DIR), 0]
            held = self._open.get(rel)
            if held is not None:
                held[1] += 1
                # Last used last: what is evicted is what has not been used longest.
                self._open[rel] = self._open.pop(rel)
                return held[0]
            base = rel.rpartition("/")[0]
            while base not in self._open:
                base = base.rpartition("/")[0]
            start = self._open[base] = self._open.pop(base)
            start[1] += 1
        # Each folder on the way is kept too: the next file's folder is often a sibling.
        fd, at = start[0], base
        try:
            for name in (rel[len(base) + 1 :] if base else rel).split("/"):
                child = self._child(fd, name, create)
                above, at = at, f"{at}/{name}" if at else name
                fd = self._keep_open(at, child)
                self.done(above)
        except BaseException:
            self.done(at)
            raise
        return fd

    @staticmethod
    def _child(fd: int, name: str, create: bool) -> int:
        """Open (or make, then open) the folder ``name`` in the folder ``fd``."""
        try:
            try:
                return os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # (another thread made it)
                    os.mkdir(name, dir_fd=fd)
                return os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, fd):
                raise OSError(errno.ELOOP, f"{name} is a symbolic link, not followed") from None
            raise

    def _keep_open(self, rel: str, fd: int) -> int:
        with self._lock:
            held = self._open.get(rel)
            if held is not None:  # another thread opened it meanwhile: one is enough
                held[1] += 1
                os.close(fd)
                return held[0]
            self._open[rel] = [fd, 1]
            over = len(self._open) - self._keep
            if over > 0:  # the oldest folders no one is using, the root aside
                idle = []
                for key, (_, users) in self._open.items():
                    if not users and key:
                        idle.append(key)
                        if len(idle) == over:
                            break
                for key in idle:
                    os.close(self._open.pop(key)[0])
            return fd

    def done(self, rel: str) -> None:
        """Give back a descriptor :meth:`folder` gave."""
        with self._lock:
            self._open[rel][1] -= 1

    @contextlib.contextmanager
    def parent(self, path: str, *, create: bool = True) -> Iterator[tuple[int, str]]:
        """``(dir_fd, name)`` of the file ``path`` (``a/b/f``), its folder made if missing."""
        folder, _, name = path.rpartition("/")
        fd = self.folder(folder, create=create)
        try:
            yield fd, name
        finally:
            self.done(folder)

    def close(self) -> None:
        """Close every descriptor the tree holds (none may be in use)."""
        with self._lock:
            for fd, _ in self._open.values():
                os.close(fd)
            self._open.clear()
