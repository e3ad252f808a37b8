"""A dataset's history: ``log`` (every version and what it changed) and ``diff`` (two trees).

Both work from version records, manifests and the local hash cache alone: no data
object is downloaded, and a local copy is hashed only where the cache cannot vouch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..engine import refs
from ..engine.scan import HashCache, hash_files, scan_tree
from ..errors import DatasetNotFoundError
from ..format.hashing import CHUNK_SIZE
from ..format.packing import LocalFile
from ..format.record import VersionRecord
from ..home import Home, valid_name
from ..settings import Config
from . import schemas
from ._common import parse_ref, resolve_config
from .changes import Changes, Table, compare, table
from .session import Session, session


@dataclass
class LogEntry:
    """One version in a dataset's log.

    Attributes:
        record: the version record (number, date, who pushed it, files, bytes).
        changes: what changed against the previous version (``None`` for the first).
    """

    record: VersionRecord
    changes: Changes | None

    def to_json(self) -> dict[str, Any]:
        """The version's entry of the ``log`` schema."""
        summary = None if self.changes is None else self.changes.summary()
        return {**schemas.version_entry(self.record), "changes": summary}


async def alog(
    name: str, *, config: Config | None = None, limit: int | None = None
) -> list[LogEntry]:
    """Every version of ``name`` in the repository, newest first, with what each changed.

    Version records are read concurrently (within the ``concurrency`` setting) and each
    version is compared with the one before it from their manifests (kept in the home's
    cache, so a second ``log`` reads only new ones).

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
        records = await _records(s, name, wanted)
        tables = await _tables(s, [r.manifest for r in records])
        out = []
        for i, record in enumerate(records):
            if record.number not in shown:
                continue
            before = tables[records[i - 1].manifest] if i else None
            changes = None if before is None else compare(before, tables[record.manifest])
            out.append(LogEntry(record, changes))
        return out[::-1]


async def _records(s: Session, name: str, numbers: list[int]) -> list[VersionRecord]:
    found: dict[int, VersionRecord] = {}

    async def read(n: int) -> None:
        found[n] = await refs.read_record(s.transport, name, n)

    await s.transport.each(numbers, read)
    return [found[n] for n in numbers]


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
        a_table, a_version = await side(s, old)
        b_table, b_version = await side(s, new)
    return Diff(old, new, a_version, b_version, compare(a_table, b_table))


async def side(s: Session, ref: str) -> tuple[Table, int | None]:
    """The file table of ``NAME@K`` (remote) or ``NAME`` (local), and its version number."""
    if "@" in ref:
        name, number = parse_ref(ref, None)
        record = await refs.resolve(s.transport, name, number)
        manifest = await s.manifest(record.manifest)
        return table(manifest.files), record.number
    files = await local_files(s.home, valid_name(ref), s.config.ignore, s.transport.io)
    return table(files), None


async def local_files(
    home: Home, name: str, ignore: tuple[str, ...], io: anyio.CapacityLimiter
) -> list[LocalFile]:
    """The hashed files of a local dataset, from the hash cache where it vouches."""
    root = await anyio.to_thread.run_sync(home.location, name)
    scan = await anyio.to_thread.run_sync(scan_tree, root, tuple(ignore))
    cache = await anyio.to_thread.run_sync(HashCache, home.cache_file(root))
    files = await hash_files(scan, cache, name=name, chunk_size=CHUNK_SIZE, io=io, progress=None)
    await anyio.to_thread.run_sync(cache.save)
    return files
