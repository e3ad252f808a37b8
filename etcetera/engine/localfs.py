"""How pulled files are laid out on the local disk: their folders and their modes.

Folders are made (and removed) without recursion: a valid path may be 2,000 folders deep, past
``os.makedirs``'s recursion. A manifest's mode comes from the repository, so it is
not applied as given: 0o777 would make a file writable by everyone on a shared
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
    """``shutil.rmtree(path, ignore_errors=True)``, iteratively (it recurses per folder)."""
    stack = [(path, False)]
    while stack:
        folder, emptied = stack.pop()
        if emptied:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
            continue
        stack.append((folder, True))
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, False))
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
