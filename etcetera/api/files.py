"""A version's files without pulling it: ``acat`` (bytes) and ``alist_files`` (a listing)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from ..errors import PathNotFoundError
from ..home import Home
from ..settings import Config
from ._common import parse_ref, resolve_config


@dataclass(frozen=True, slots=True)
class FileRow:
    """One entry of a version's listing.

    Attributes:
        path: relative to the dataset folder.
        size: bytes of a file; ``None`` for a folder.
    """

    path: str
    size: int | None


@dataclass(frozen=True, slots=True)
class FileListing:
    """What :func:`alist_files` found.

    Attributes:
        name: the dataset.
        version: the version listed (``None``: a dataset registered or created here).
        source: ``"local"`` (the local copy) or ``"remote"`` (the repository).
        path: the folder listed (``""``: the top of the dataset).
        entries: files and folders, by path.
    """

    name: str
    version: int | None
    source: str
    path: str
    entries: list[FileRow]


async def acat(
    name: str, path: str, *, config: Config | None = None, start: int = 0, end: int | None = None
) -> bytes:
    """Bytes ``start .. end`` of one file of ``NAME[@K]``, read without pulling, verified.

    Raises:
        PathNotFoundError: the version has no such file (the message names the nearest).
        DatasetNotFoundError: no such dataset or version.
    """
    from ..reading import aopen_version  # the reading layer sits above this one

    async with aopen_version(name, config=resolve_config(config)) as v:
        return await v.read(await v.entry(path), start, end)


async def alist_files(
    name: str,
    path: str = "",
    *,
    config: Config | None = None,
    remote: bool = False,
    recursive: bool = False,
) -> FileListing:
    """The files (and folders) of ``NAME[@K]`` below ``path``, without pulling it.

    From the local copy when it holds that whole version (or the dataset was registered
    here), else from the repository (``remote`` forces the repository).

    Args:
        name: ``NAME`` or ``NAME@K``.
        path: the folder (or file) to list.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        remote: list the repository's version even where a local copy is.
        recursive: every file below ``path``, not one level.
    """
    cfg = resolve_config(config)
    base, number = parse_ref(name, None)
    folder = "/".join(p for p in path.split("/") if p)
    local = None if remote else await anyio.to_thread.run_sync(_local, Home(cfg.home), base, number)
    if local is not None:
        rows = await anyio.to_thread.run_sync(_walk, local[0], folder, recursive)
        return FileListing(base, local[1], "local", folder, rows)
    from ..reading import aopen_version

    async with aopen_version(name, config=cfg) as v:
        entry = await v.find(folder) if folder else None
        if entry is not None:
            return FileListing(base, v.number, "remote", folder, [FileRow(entry.path, entry.size)])
        if not await v.is_dir(folder):
            await v.entry(folder)  # raises, naming the nearest paths
        if recursive:
            rows = [FileRow(f.path, f.size) for f in await v.files(folder)]
        else:
            rows = [FileRow(p, e.size if e else None) for p, e in await v.children(folder)]
        return FileListing(base, v.number, "remote", folder, rows)


def _local(home: Home, name: str, number: int | None) -> tuple[Path, int | None] | None:
    """The local folder of ``name`` when it is the version asked for, whole; else ``None``."""
    if not home.link(name).is_dir():
        return None
    state = home.current(name)
    if state is None:  # registered or created here: the folder is the dataset
        return (home.location(name), None) if number is None else None
    whole = state.partitions is None and not state.filters and state.shard is None
    if whole and (number is None or number == state.version):
        return home.location(name), state.version
    return None


def _walk(root: Path, folder: str, recursive: bool) -> list[FileRow]:
    base = root / folder if folder else root
    if base.is_file():
        return [FileRow(folder, base.stat().st_size)]
    if not base.is_dir():
        raise PathNotFoundError(f"{root} has no file or folder {folder!r}")
    rows = []
    for dirpath, dirs, files in os.walk(base, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        if not recursive:
            rows += [FileRow(f"{prefix}{d}", None) for d in dirs]
        for f in files:
            full = Path(dirpath) / f
            if full.is_file():
                rows.append(FileRow(f"{prefix}{f}", full.stat().st_size))
        if not recursive:
            break
    return sorted(rows, key=lambda r: r.path)
