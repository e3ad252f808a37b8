"""How pulled files are laid out on the local disk: their folders and their modes.

Folders are made (and removed) without recursion: a valid path may be 2,000 folders
deep, past ``os.makedirs``'s recursion, and 4,096 characters long, past PATH_MAX once
the home's path is prefixed (trees are removed through folder descriptors; a pull
writes through them, :mod:`.fdpaths`). A manifest's mode comes from the repository,
so it is not applied as given: 0o777 would make a file writable by everyone on a shared
machine, 0o000 one that its owner cannot read. The bits pass through the process's
umask, as those of any file a program creates do, and the owner always keeps read
and write.
"""

from __future__ import annotations

import contextlib
import os


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back (a moment other threads may see)
    os.umask(mask)
    return mask


def local_mode(mode: int, umask: int) -> int:
    """The bits a file of manifest ``mode`` is given under ``umask``."""
    return (mode & ~umask & 0o777) | 0o600


def makedirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)``, iteratively."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise


def remove_tree(path: str) -> None:
    """``shutil.rmtree(path, ignore_errors=True)``, without recursion or long paths.

    A tree may be 2,000 folders deep, past Python's recursion and the descriptors a
    process may hold, and its paths past PATH_MAX: one folder is open at a time, each
    entered by name from its parent and left by ``..`` (checked to be the parent it
    came from: a tree moved meanwhile is left as it is), no link is followed.
    """
    try:
        fd = os.open(path, _DIR | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        _empty(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _empty(fd: int) -> None:
    """Remove what the folder ``fd`` holds (closing ``fd`` is the caller's)."""
    top = fd
    # A frame: a folder's (dev, ino), its sub-folders left to empty, its name in its parent.
    stack = [(_ident(fd), _clear(fd), "")]
    try:
        while stack:
            _, left, name = stack[-1]
            if left:
                sub = left.pop()
                try:
                    child = os.open(sub, _DIR | os.O_NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue
                if fd != top:
                    os.close(fd)
                fd = child
                stack.append((_ident(fd), _clear(fd), sub))
                continue
            stack.pop()
            if not stack:
                return
            if len(stack) == 1:
                parent = top
            else:
                parent = os.open("..", _DIR, dir_fd=fd)
                if _ident(parent) != stack[-1][0]:
                    os.close(parent)
                    return
            os.close(fd)
            fd = parent
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=fd)
    finally:
        if fd != top:
            os.close(fd)


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _clear(fd: int) -> list[str]:
    """Unlink what the folder ``fd`` holds but folders; return the folders' names."""
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    except OSError:
        return []
    folders = []
    for name, is_dir in entries:
        if is_dir:
            folders.append(name)
        else:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    return folders
