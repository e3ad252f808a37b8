"""One version of a dataset, pinned, read in place: its files, their verified bytes."""

from __future__ import annotations

import bisect
import difflib
import operator
import unicodedata
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..api._common import parse_ref
from ..api.session import HomeManifests, Session, first_error, session
from ..engine import refs
from ..errors import (
    DatasetNotFoundError,
    EtceteraError,
    ManifestError,
    ObjectNotFoundError,
    PathNotFoundError,
)
from ..format.manifest import FileEntry
from ..format.record import VersionRecord
from ..settings import Config
from . import fetch, plan
from .cache import ObjectCache
from .index import Index

_path = operator.attrgetter("path")


def object_cache(session: Session) -> ObjectCache:
    """The home's cache of verified ranges (``cache_size`` bytes at most)."""
    return ObjectCache(session.home.path / ".cache" / "objects", session.config.cache_size)


@dataclass(eq=False)
class Version:
    """A version of a dataset, pinned: every read sees this version's files only.

    Build it with :func:`open_version`. Its lookups read only the manifest pieces they
    need; its reads fetch only the verified units they touch (see :mod:`.plan`),
    through the session's transport and the home's cache.

    Attributes:
        name: the dataset.
        number: the version.
        record: its version record.
        index: its file table (pieces read on demand).
    """

    session: Session
    name: str
    number: int
    record: VersionRecord
    index: Index
    cache: ObjectCache | None

    @property
    def ref(self) -> str:
        """``NAME@K``."""
        return f"{self.name}@{self.number}"

    @property
    def partitions(self) -> list[str]:
        """Every partition, empty ones too."""
        return list(self.index.partitions)

    # -- the file table -------------------------------------------------------------------
    async def entry(self, path: str) -> FileEntry:
        """The entry of one file.

        Raises:
            PathNotFoundError: the version has no such file (the message names the nearest).
        """
        key = clean(path)
        files, at = await self.index.locate(key)
        if at < len(files) and files[at].path == key:
            return files[at]
        around = await self.index.near(key)
        hint = nearest(key, around, bisect.bisect_left(around, key, key=_path))
        raise PathNotFoundError(f"{self.ref} has no file {key!r}{hint}")

    async def find(self, path: str) -> FileEntry | None:
        """The entry of one file, or ``None``."""
        return await self.index.find(clean(path))

    async def files(self, folder: str = "") -> list[FileEntry]:
        """Every file below ``folder`` (``""``: the whole version), in path order."""
        return await self.index.under(clean(folder))

    async def children(self, folder: str = "") -> list[tuple[str, FileEntry | None]]:
        """The direct children of a folder, by path.

        ``(path, entry)`` for a file, ``(path, None)`` for a folder (empty folders and
        partitions included).
        """
        key = f"{clean(folder)}/" if clean(folder) else ""
        found: dict[str, FileEntry | None] = {}
        for f in await self.files(folder):
            head, sep, _ = f.path[len(key) :].partition("/")
            if sep:
                found.setdefault(f"{key}{head}", None)
            else:
                found[f.path] = f
        for d in [*self.index.dirs, *(f"data/{p}" for p in self.index.partitions)]:
            if d.startswith(key) and d != key[:-1]:
                found.setdefault(f"{key}{d[len(key) :].partition('/')[0]}", None)
        return sorted(found.items())

    async def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder of the version (``""`` is its top)."""
        key = clean(path)
        if not key or key == "data" or key in self.index.dirs:
            return True
        if key.startswith("data/") and key.count("/") == 1:
            return key[5:] in self.index.partitions
        if any(d.startswith(f"{key}/") for d in self.index.dirs):
            return True
        files, at = await self.index.locate(f"{key}/")
        return at < len(files) and files[at].path.startswith(f"{key}/")

    # -- bytes ----------------------------------------------------------------------------
    async def read(self, entry: FileEntry, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start .. end`` of a file (``end``: to its end), every byte verified.

        Raises:
            IntegrityError: bytes from the repository do not match the manifest.
            DatasetNotFoundError: the version was removed while it was read.
        """
        return (await self.read_ranges([(entry, start, end)]))[0]

    async def read_many(self, entries: Sequence[FileEntry], *, split: bool = True) -> list[bytes]:
        """The whole bytes of many files, fetched in coalesced reads per object.

        ``split=False``: each coalesced read is one request, never cut in part-size reads.
        """
        return await self.read_ranges([(e, 0, None) for e in entries], split=split)

    async def read_ranges(
        self, wanted: Sequence[tuple[FileEntry, int, int | None]], *, split: bool = True
    ) -> list[bytes]:
        """Bytes ``start .. end`` of each file (``end`` ``None``: to its end), in order.

        The units of all the ranges are fetched at once: the cache's first, then the
        missing ones of each object in few ranged reads (``split``: long ones cut in
        part-size reads fetched concurrently).
        """
        bounds = [
            (e, max(0, s), e.size if x is None else max(0, min(x, e.size))) for e, s, x in wanted
        ]
        units = [u for e, s, x in bounds for u in self._units(e, s, x)]
        try:
            got = await fetch.read_units(
                self.session.transport, units, self.index.objects, self.cache, split=split
            )
        except ObjectNotFoundError as exc:
            raise await self._gone(exc) from None
        except BaseExceptionGroup as group:
            error = first_error(group)
            if error is None:
                raise
            if isinstance(error, ObjectNotFoundError):
                raise await self._gone(error) from None
            raise error from None
        return [self._assemble(e, s, x, got) for e, s, x in bounds]

    def chunk_bounds(self, entry: FileEntry, start: int, end: int) -> tuple[int, int] | None:
        """The file range of the whole chunks holding bytes ``start .. end``.

        For a content-chunked file: what reading those bytes costs anyway (a reader that
        reads ahead reads that far). ``None`` for a file with a place of its own.
        """
        found = self.index.chunk_map(entry)
        return None if found is None else found.bounds(start, end)

    def _units(self, entry: FileEntry, start: int, end: int) -> list[plan.Unit]:
        found = self.index.chunk_map(entry)
        if found is None:
            return plan.units(entry, self.index.chunk_size, start, end)
        return found.touched(start, end)

    def _assemble(self, entry: FileEntry, start: int, end: int, got: fetch.Got) -> bytes:
        found = self.index.chunk_map(entry)
        if found is None:
            return fetch.assemble(entry, self.index.chunk_size, start, end, got)
        return found.assemble(start, end, got)

    async def _gone(self, exc: ObjectNotFoundError) -> EtceteraError:
        t = self.session.transport
        if self.number not in await refs.versions(t, self.name):
            return DatasetNotFoundError(
                f"{self.ref} was removed from {t.backend.describe()} while it was read"
            )
        return ManifestError(f"{self.ref} names an object the repository does not hold ({exc})")


def clean(path: str) -> str:
    """A path as the manifest spells it: NFC, no leading, trailing or doubled ``/``."""
    return "/".join(p for p in unicodedata.normalize("NFC", path).split("/") if p)


def nearest(path: str, files: list[FileEntry], at: int) -> str:
    """`` (nearest: ...)`` for a message: close names in ``path``'s folder, else neighbours."""
    folder = path.rpartition("/")[0]
    prefix = f"{folder}/" if folder else ""
    lo = bisect.bisect_left(files, prefix, key=_path)
    near = [f.path for f in files[lo : lo + 5000] if f.path.startswith(prefix)]
    close = difflib.get_close_matches(path, near, n=3, cutoff=0.6)
    if not close:
        close = [f.path for f in files[max(0, at - 1) : at + 1]]
    return f" (nearest: {', '.join(close)})" if close else ""


async def open_version(session: Session, name: str, number: int | None = None) -> Version:
    """Pin a version (``number``, else the latest) and read its manifest root.

    Costs the version record (with a listing, for the latest) and the root, unless the
    home's manifest cache holds it.

    Raises:
        DatasetNotFoundError: no such dataset, or no such version (the message lists
            the versions there are).
    """
    t = session.transport
    try:
        record = await refs.resolve(t, name, number)
    except DatasetNotFoundError:
        if number is None:
            raise
        there = await refs.versions(t, name)
        if not there:
            raise DatasetNotFoundError(
                f"dataset {name} does not exist in {t.backend.describe()} "
                "(etc list --remote shows what does)"
            ) from None
        listed = ", ".join(str(v) for v in there)
        raise DatasetNotFoundError(
            f"dataset {name} has no version {number} in {t.backend.describe()} (versions: {listed})"
        ) from None
    cache = HomeManifests(session.home)
    root = await session.manifest_root(record.manifest)
    index = Index(t, record.manifest, root, cache)
    return Version(session, name, record.number, record, index, object_cache(session))


@asynccontextmanager
async def aopen_version(ref: str, *, config: Config | None = None) -> AsyncIterator[Version]:
    """One session and one pinned version of a reference ``NAME@K``, for a ``with`` block.

    ``NAME`` alone (or ``NAME@latest``) pins the latest version.
    """
    name, number = parse_ref(ref, None)
    async with session(config) as s:
        yield await open_version(s, name, number)
