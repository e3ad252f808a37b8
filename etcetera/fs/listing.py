"""What ``ls``, ``info`` and ``find`` say of a version's files (pure: file entries to dicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..format.manifest import FileEntry

Info = dict[str, Any]


def file_info(base: str, entry: FileEntry, number: int) -> Info:
    """The fsspec description of one file (``base``: the ``NAME`` or ``NAME@K`` it was asked by)."""
    return {
        "name": f"{base}/{entry.path}",
        "size": entry.size,
        "type": "file",
        "mode": entry.mode,
        "digest": entry.digest,
        "version": number,
    }


def dir_info(name: str, number: int | None = None) -> Info:
    """The fsspec description of a folder."""
    info: Info = {"name": name, "size": 0, "type": "directory"}
    if number is not None:
        info["version"] = number
    return info


def children(base: str, found: list[tuple[str, FileEntry | None]], number: int) -> list[Info]:
    """The fsspec descriptions of a folder's children (``Version.children``)."""
    return [file_info(base, e, number) if e else dir_info(f"{base}/{p}", number) for p, e in found]


def below(
    base: str,
    folder: str,
    files: Iterable[FileEntry],
    number: int,
    *,
    maxdepth: int | None = None,
    withdirs: bool = False,
) -> dict[str, Info]:
    """Every file (and with ``withdirs`` every folder) below ``folder``, by name."""
    key = f"{folder}/" if folder else ""
    out: dict[str, Info] = {}
    for entry in files:
        parts = entry.path[len(key) :].split("/")
        if maxdepth is not None and len(parts) > maxdepth:
            if withdirs:
                _dirs(out, base, key, parts[:maxdepth], number)
            continue
        info = file_info(base, entry, number)
        out[info["name"]] = info
        if withdirs:
            _dirs(out, base, key, parts[:-1], number)
    return {n: out[n] for n in sorted(out)}


def _dirs(out: dict[str, Info], base: str, key: str, parts: list[str], number: int) -> None:
    for i in range(1, len(parts) + 1):
        name = f"{base}/{key}{'/'.join(parts[:i])}"
        out.setdefault(name, dir_info(name, number))
