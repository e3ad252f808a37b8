"""Making writes durable: one ``syncfs`` for everything written, ``fsync`` for a folder.

Shared by the local home (a pulled tree is flushed before it becomes visible) and the
``file://`` back-end (objects and manifests are flushed before the version record that
names them). Imports nothing inside etcetera.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

# The process's own symbols, libc's among them (find_library would run `ldconfig -p`).
_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(fd: int) -> None:
    """Flush the whole file system holding ``fd`` (``sync`` where there is no ``syncfs``).

    Raises:
        OSError: the file system reports a failed write-back.
    """
    call = getattr(_libc, "syncfs", None)
    if call is None:
        os.sync()
    elif call(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def flush_tree(path: Path) -> None:
    """Make everything written under ``path`` durable with one ``syncfs`` (not one fsync a file).

    A file system that refuses ``syncfs`` is flushed with ``sync``.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs(fd)
    except OSError:
        os.sync()
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or link in the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
