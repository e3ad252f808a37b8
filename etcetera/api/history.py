"""A dataset's history: ``log`` (every version and what it changed) and ``diff`` (two trees).

Both work from version records, manifests and the local hash cache alone: no data
object is downloaded, and a local copy is hashed only where the cache cannot vouch.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..engine import refs
from ..engine.scan import HashCache, hash_files, scan_tree
from ..errors import DatasetNotFoundError
from ..format.hashing import CHUNK_SIZE
from ..format.manifest import Manifest
from ..format.packing import LocalFile
from ..format.record import VersionRecord
from ..home import Home, valid_name
from ..settings import Config
from . import schemas
from ._common import parse_ref, resolve_config
from .changes import Changes, Table, compare, table
from .session import Session, session

Summary = dict[str, dict[str, int]]


@dataclass
class LogEntry:
    """One version in a dataset's log.

    Attributes:
        record: the version record (number, date, who pushed it, files, bytes).
        changes: what changed against the previous version, as counts and bytes
            (:meth:`Changes.summary`); ``None`` for the first version.
    """

    record: VersionRecord
    changes: Summary | None

    def to_json(self) -> dict[str, Any]:
        """The version's entry of the ``log`` schema."""
        return {**schemas.version_entry(self.record), "changes": self.changes}


async def alog(
    name: str, *, config: Config | None = None, limit: int | None = None
) -> list[LogEntry]:
    """Every version of ``name`` in the repository, newest first, with what each changed.

    Version records are read concurrently (within the ``concurrency`` setting). What a
    version changed is a pure function of two manifest digests, so it is computed once,
    from the two manifests, and kept in the home's cache: a second ``log`` reads the
    records alone. Manifests are read a batch at a time, so memory stays bounded
    whatever the number of versions.

    Args:
        name: dataset name.
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        limit: only the newest ``limit`` versions.

    Raises:
        DatasetNotFoundError: the repository has no version of ``name``.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    async with session(cfg) as s:
        numbers = await refs.versions(s.transport, name)
        if not numbers:
            await s.backend.check()
            raise DatasetNotFoundError(f"dataset {name} does not exist in {s.backend.describe()}")
        shown = numbers if limit is None else numbers[-max(limit, 1) :]
        # The version before the first shown one too: what the first shown one changed.
        wanted = numbers[max(0, numbers.index(shown[0]) - 1) :]
        records = await refs.read_records(s.transport, name, wanted)
        pairs = [(a.manifest, b.manifest) for a, b in itertools.pairwise(records)]
        summaries = await _summaries(s, name, pairs)
        out = [
            LogEntry(r, summaries[(records[i - 1].manifest, r.manifest)] if i else None)
            for i, r in enumerate(records)
            if r.number in shown
        ]
        return out[::-1]


_BATCH = 32  # pairs of manifests compared at a time (their tables held in memory)


async def _summaries(
    s: Session, name: str, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], Summary]:
    """What changed from each manifest to the next, from the cache or the manifests."""
    path = s.home.path / ".cache" / "changes" / f"{name}.json"
    kept = await anyio.to_thread.run_sync(_load_summaries, path)
    out: dict[tuple[str, str], Summary] = {}
    todo = []
    for pair in dict.fromkeys(pairs):
        if pair[0] == pair[1]:
            out[pair] = Changes().summary()
        elif f"{pair[0]}:{pair[1]}" in kept:
            out[pair] = kept[f"{pair[0]}:{pair[1]}"]
        else:
            todo.append(pair)
    for start in range(0, len(todo), _BATCH):
        batch = todo[start : start + _BATCH]
        tables = await _tables(s, [d for pair in batch for d in pair])
        for a, b in batch:
            out[(a, b)] = kept[f"{a}:{b}"] = compare(tables[a], tables[b]).summary()
    if todo:
        await anyio.to_thread.run_sync(_save_summaries, path, kept)
    return out


def _load_summaries(path: Path) -> dict[str, Summary]:
    try:
        loaded = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save_summaries(path: Path, summaries: dict[str, Summary]) -> None:
    # A cache: a failed write costs only a recomputation next time.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(summaries, separators=(",", ":")))
        os.replace(tmp, path)


async def _tables(s: Session, digests: list[str]) -> dict[str, Table]:
    """The file table of each manifest (each distinct one read once, concurrently)."""
    out: dict[str, Table] = {}

    async def read(digest: str) -> None:
        out[digest] = table((await s.manifest(digest)).files)

    await s.transport.each(list(dict.fromkeys(digests)), read)
    return out


@dataclass
class Diff:
    """What ``diff`` found between two sides.

    Attributes:
        old: the first side as given (``NAME@K`` or ``NAME``).
        new: the second side.
        old_version: the version of the first side (``None``: a local copy).
        new_version: the version of the second side.
        changes: files added, removed and changed from ``old`` to ``new``.
    """

    old: str
    new: str
    old_version: int | None
    new_version: int | None
    changes: Changes = field(default_factory=Changes)

    @property
    def equal(self) -> bool:
        """Whether both sides hold the same files."""
        return self.changes.equal

    def to_json(self) -> dict[str, Any]:
        """The ``diff`` schema."""
        return schemas.document(
            "diff",
            old={"ref": self.old, "version": self.old_version},
            new={"ref": self.new, "version": self.new_version},
            equal=self.equal,
            summary=self.changes.summary(),
            files=self.changes.files_json(),
        )


async def adiff(old: str, new: str, *, config: Config | None = None) -> Diff:
    """Compare two trees, each ``NAME@K`` (in the repository) or ``NAME`` (the local copy).

    A local copy is hashed where the hash cache cannot vouch. ``NAME@latest`` is the
    repository's latest version. No data is downloaded, and two local sides need no
    repository.

    Raises:
        DatasetNotFoundError: a side does not exist.
    """
    cfg = resolve_config(config)
    home = Home(cfg.home)
    if "@" not in old and "@" not in new:
        io = anyio.CapacityLimiter(cfg.io_threads)
        a = table(await local_files(home, valid_name(old), cfg.ignore, io))
        b = table(await local_files(home, valid_name(new), cfg.ignore, io))
        return Diff(old, new, None, None, compare(a, b))
    async with session(cfg) as s:
        # The remote side first: a local side is named as it names its large files.
        remote = [ref for ref in (old, new) if "@" in ref]
        sides = {ref: await side(s, ref) for ref in remote}
        other = sides[remote[0]][2]
        for ref in (old, new):
            if ref not in sides:
                sides[ref] = await side(s, ref, other)
    (a_table, a_version, _), (b_table, b_version, _) = sides[old], sides[new]
    return Diff(old, new, a_version, b_version, compare(a_table, b_table))


async def side(
    s: Session, ref: str, other: Manifest | None = None
) -> tuple[Table, int | None, Manifest | None]:
    """The file table of ``NAME@K`` (remote) or ``NAME`` (local), its version, its manifest.

    A local side is hashed as ``other`` (the manifest it is compared with) names its
    files: those ``other`` cut by content are cut alike.
    """
    if "@" in ref:
        name, number = parse_ref(ref, None)
        record = await refs.resolve(s.transport, name, number)
        manifest = await s.manifest(record.manifest)
        return table(manifest.files), record.number, manifest
    files = await local_files(s.home, valid_name(ref), s.config.ignore, s.transport.io, other)
    return table(files), None, None


async def local_files(
    home: Home,
    name: str,
    ignore: tuple[str, ...],
    io: anyio.CapacityLimiter,
    like: Manifest | None = None,
) -> list[LocalFile]:
    """The hashed files of a local dataset, from the hash cache where it vouches.

    Its large files are cut by content as ``like`` cut them where it has chunked files
    (so that their digests compare with its), else hashed in fixed chunks.
    """
    root = await anyio.to_thread.run_sync(home.location, name)
    scan = await anyio.to_thread.run_sync(scan_tree, root, tuple(ignore))
    cache = await anyio.to_thread.run_sync(HashCache, home.cache_file(root))
    chunk_size, cuts = CHUNK_SIZE, None
    if like is not None and like.extents:
        from ..engine.chunked import cuts_like

        chunk_size, cuts = like.chunk_size, cuts_like(like)
    files = await hash_files(
        scan, cache, name=name, chunk_size=chunk_size, io=io, progress=None, cut=cuts
    )
    await anyio.to_thread.run_sync(cache.save)
    return files
