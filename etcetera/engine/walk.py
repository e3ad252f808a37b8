"""Walking a local tree with several threads: one ``os.scandir`` (and its stats) per task.

A tree of 10^6 files in 10^3 folders costs 10^6 ``stat`` calls; they release the GIL, so
folders listed in a few threads at once overlap their system calls (and, on a cold
cache or a network file system, their waits). The result does not depend on the
threads: files are sorted by the caller, folders and warnings come out in path order.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeAlias

from ..errors import LocalIOError, NotADatasetError
from .fdpaths import open_folder, stat_path

WALK_THREADS = 4  # folders listed at once (a walk is system calls, not Python)

Key = tuple[int, int]  # (st_dev, st_ino) of a folder


@dataclass(slots=True)
class ScannedFile:
    """A regular file found in the tree."""

    path: str  # NFC, '/'-separated, relative
    source: str  # absolute path to read
    size: int
    mode: int
    mtime_ns: int
    ino: int
    #: CRC32 of each chunk when the file was hashed in this run (see ``Digest.crcs``).
    crcs: tuple[int, ...] = ()


@dataclass(slots=True)
class Walked:
    """What a walk found: files (unsorted), empty folders and warnings (both sorted)."""

    files: list[ScannedFile] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Folder:
    """One folder's listing: its files, its subfolders to walk, its warnings."""

    rel: str
    files: list[ScannedFile]
    subfolders: list[tuple[str, str, frozenset[Key]]]  # (absolute, relative + "/", ancestors)
    warnings: list[tuple[str, str]]  # (relative path, message)


def walk(
    directory: str,
    rel: str,
    ancestors: frozenset[Key],
    ignored: Callable[[str], bool],
    skip: str = "",
    threads: int = WALK_THREADS,
) -> Walked:
    """Walk ``directory`` (its files get paths ``rel + ...``), folders listed in ``threads``.

    Symlinks are followed, a folder that is its own ancestor is refused; a folder with
    no file and no subfolder is an empty folder (the top one aside).

    Raises:
        LocalIOError: a folder cannot be listed or an entry cannot be examined.
        NotADatasetError: a symlink loop.
    """
    out = Walked()
    done: queue.SimpleQueue[_Folder | BaseException] = queue.SimpleQueue()
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="etc-walk")

    def task(folder: str, rel_: str, anc: frozenset[Key], skip_: str) -> None:
        try:
            done.put(_list(folder, rel_, anc, ignored, skip_))
        except BaseException as exc:  # handed to the walking thread, which raises it
            done.put(exc)

    try:
        pending = 1
        pool.submit(task, directory, rel, ancestors, skip)
        top = True
        empty: list[str] = []
        warnings: list[tuple[str, str]] = []
        while pending:
            got = done.get()
            pending -= 1
            if isinstance(got, BaseException):
                raise got
            out.files += got.files
            warnings += got.warnings
            if not top and not got.files and not got.subfolders:
                empty.append(got.rel[:-1])
            top = False
            for sub in got.subfolders:
                pending += 1
                pool.submit(task, *sub, "")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    out.empty_dirs = sorted(empty)
    out.warnings = [message for _, message in sorted(warnings)]
    return out


def _list(
    directory: str,
    rel: str,
    ancestors: frozenset[Key],
    ignored: Callable[[str], bool],
    skip: str,
) -> _Folder:
    listing = _Folder(rel, [], [], [])
    for entry in _entries(directory, skip):
        name = entry.name
        if ignored(name):
            continue
        rel_path = f"{rel}{name if name.isascii() else unicodedata.normalize('NFC', name)}"
        try:
            st = _stat(entry)
        except FileNotFoundError:
            listing.warnings.append((rel_path, f"skipped {rel_path}: broken symlink"))
            continue
        except OSError as exc:
            raise LocalIOError(f"cannot stat {entry.path}: {exc.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                raise NotADatasetError(f"symlink loop at {entry.path}: refusing to follow it")
            listing.subfolders.append((entry.path, rel_path + "/", ancestors | {key}))
        elif stat.S_ISREG(st.st_mode):
            listing.files.append(
                ScannedFile(
                    rel_path,
                    entry.path,
                    st.st_size,
                    stat.S_IMODE(st.st_mode) & 0o777,
                    st.st_mtime_ns,
                    st.st_ino,
                )
            )
        else:
            listing.warnings.append((rel_path, f"skipped {rel_path}: not a regular file"))
    return listing


_Entry: TypeAlias = "os.DirEntry[str] | _Far"


def _stat(entry: _Entry) -> os.stat_result:
    try:
        return entry.stat(follow_symlinks=True)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return stat_path(entry.path)  # its folder's path is short, its own is not


class _Far:
    """An entry of a folder whose path passes PATH_MAX, stat'ed while the folder was open."""

    __slots__ = ("_error", "_stat", "name", "path")

    def __init__(self, entry: os.DirEntry[str], folder: str) -> None:
        self.name = entry.name
        self.path = f"{folder}/{entry.name}"
        self._stat: os.stat_result | None = None
        self._error: OSError | None = None
        try:
            self._stat = entry.stat(follow_symlinks=True)
        except OSError as exc:
            self._error = exc

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        if self._stat is None:
            assert self._error is not None
            raise self._error
        return self._stat


def _entries(directory: str, skip: str = "") -> list[_Entry]:
    try:
        try:
            with os.scandir(directory) as it:
                return [e for e in it if e.name != skip]
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
        fd = open_folder(directory)  # a path past PATH_MAX, walked one folder at a time
        try:
            with os.scandir(fd) as it:
                return [_Far(e, directory) for e in it if e.name != skip]
        finally:
            os.close(fd)
    except OSError as exc:
        raise LocalIOError(f"cannot read folder {directory}: {exc.strerror}") from None
