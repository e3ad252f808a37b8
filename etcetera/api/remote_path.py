"""Paths of a remote version: ``pathlib``'s reading side, over the repository.

A :class:`RemotePath` names a file or folder of one pinned version (``str()`` is its
``etc://NAME@K/PATH`` URL). Its methods read the version's manifest and bytes through
the session of the :class:`~etcetera.api.remote.RemoteVersion` it came from: every
byte verified, files of one pack read in coalesced ranges, ranges kept in the cache.
Sync methods block; ``a``-prefixed twins (``aread_bytes``, ``aiterdir`` ...) await.
"""

from __future__ import annotations

import fnmatch
import io
import stat as statmod
from collections.abc import Awaitable, Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from ..errors import PathNotFoundError
from ..format.manifest import FileEntry

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from ..reading import Version

T = TypeVar("T")


class Runner(Protocol):
    """Runs a coroutine function of the pinned version (see ``api/remote._Runner``)."""

    version: Version

    def call(self, fn: Callable[[Version], Awaitable[T]]) -> T:
        """From sync code."""
        ...

    async def acall(self, fn: Callable[[Version], Awaitable[T]]) -> T:
        """From an event loop."""
        ...


class RemoteStat(NamedTuple):
    """What :meth:`RemotePath.stat` says (the fields of ``os.stat_result`` it knows)."""

    st_mode: int
    st_size: int


class RemotePath:
    """A file or folder of a remote version (made by a :class:`RemoteVersion`).

    Args:
        runner: the version's session.
        path: ``/``-separated path inside the version (``""``: its top).
    """

    def __init__(self, runner: Runner, path: str) -> None:
        self._runner = runner
        self.path = "/".join(p for p in path.split("/") if p)

    # -- pure path ------------------------------------------------------------------------
    @property
    def _version(self) -> Version:
        return self._runner.version

    @property
    def name(self) -> str:
        """The last part of the path."""
        return self.path.rpartition("/")[2]

    @property
    def suffix(self) -> str:
        """The name's extension (``.txt``), or ``""``."""
        name = self.name
        dot = name.rfind(".")
        return name[dot:] if 0 < dot < len(name) - 1 else ""

    @property
    def stem(self) -> str:
        """The name without its suffix."""
        return self.name[: len(self.name) - len(self.suffix)]

    @property
    def parent(self) -> RemotePath:
        """The folder holding it (the top is its own parent)."""
        return RemotePath(self._runner, self.path.rpartition("/")[0])

    @property
    def parts(self) -> tuple[str, ...]:
        """The path's parts."""
        return tuple(self.path.split("/")) if self.path else ()

    def joinpath(self, *parts: str) -> RemotePath:
        """The path with ``parts`` appended."""
        return RemotePath(self._runner, "/".join([self.path, *parts]))

    def __truediv__(self, part: str) -> RemotePath:
        return self.joinpath(part)

    def as_uri(self) -> str:
        """``etc://NAME@K/PATH``: the URL fsspec, pandas and pyarrow open."""
        return f"etc://{self._version.ref}/{self.path}"

    def __str__(self) -> str:
        return self.as_uri()

    def __repr__(self) -> str:
        return f"RemotePath({self.as_uri()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and (self._runner, self.path) == (
            other._runner,
            other.path,
        )

    def __hash__(self) -> int:
        return hash((id(self._runner), self.path))

    def __lt__(self, other: RemotePath) -> bool:
        return self.path < other.path

    # -- reading --------------------------------------------------------------------------
    def _sync(self, fn: Callable[[Version], Awaitable[T]]) -> T:
        return self._runner.call(fn)

    async def _entry(self, v: Version) -> FileEntry:
        return await v.entry(self.path)

    async def _read(self, v: Version) -> bytes:
        return await v.read(await v.entry(self.path))

    async def _stat(self, v: Version) -> RemoteStat:
        entry = await v.find(self.path)
        if entry is not None:
            return RemoteStat(statmod.S_IFREG | entry.mode, entry.size)
        if await v.is_dir(self.path):
            return RemoteStat(statmod.S_IFDIR | 0o755, 0)
        raise PathNotFoundError(f"{v.ref} has no file or folder {self.path!r}")

    async def _children(self, v: Version) -> list[str]:
        if not await v.is_dir(self.path):
            raise PathNotFoundError(f"{v.ref} has no folder {self.path!r}")
        return [path.rpartition("/")[2] for path, _ in await v.children(self.path)]

    async def _below(self, v: Version) -> list[str]:
        """Every file and folder below this folder, as paths relative to it."""
        prefix = f"{self.path}/" if self.path else ""
        out: set[str] = set()
        for f in await v.files(self.path):
            rel = f.path[len(prefix) :]
            out.add(rel)
            parts = rel.split("/")
            out.update("/".join(parts[:i]) for i in range(1, len(parts)))
        for d in [*v.index.dirs, "data", *(f"data/{p}" for p in v.partitions)]:
            if d.startswith(prefix) and d != self.path:
                rel = d[len(prefix) :]
                parts = rel.split("/")
                out.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        return sorted(out)

    def read_bytes(self) -> bytes:
        """The file's bytes, verified.

        Raises:
            PathNotFoundError: no such file (the message names the nearest).
        """
        return self._sync(self._read)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The file's text."""
        return self.read_bytes().decode(encoding, errors)

    def stat(self) -> RemoteStat:
        """Size and mode (a folder: ``S_IFDIR``)."""
        return self._sync(self._stat)

    def exists(self) -> bool:
        """Whether the version has this file or folder."""
        try:
            self.stat()
        except PathNotFoundError:
            return False
        return True

    def is_dir(self) -> bool:
        """Whether it is a folder of the version."""
        path = self.path
        return self._sync(lambda v: v.is_dir(path))

    def is_file(self) -> bool:
        """Whether it is a file of the version."""
        path = self.path

        async def found(v: Version) -> bool:
            return await v.find(path) is not None

        return self._sync(found)

    def iterdir(self) -> Iterator[RemotePath]:
        """The files and folders in this folder, in name order."""
        for name in self._sync(self._children):
            yield self / name

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Paths below this folder matching ``pattern`` (``*``, ``?``, ``[...]``, ``**``)."""
        for rel in self._sync(self._below):
            if _match(rel.split("/"), pattern.split("/")):
                yield self.joinpath(rel)

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        """:meth:`glob` of ``**/pattern``."""
        return self.glob(f"**/{pattern}")

    def open(
        self, mode: str = "rb", buffering: int = 1 << 20, encoding: str | None = None
    ) -> IO[Any]:
        """A read-only file with random access: reads fetch only the chunks they touch.

        Args:
            mode: ``"rb"`` or ``"r"`` (text).
            buffering: bytes read ahead at a time.
            encoding: for text (default UTF-8).
        """
        if mode not in ("r", "rb", "rt"):
            raise ValueError(f"invalid mode {mode!r}: remote files are read-only ('r' or 'rb')")
        entry = self._sync(self._entry)
        raw = _RemoteFile(self._runner, entry, self.as_uri())
        buffered = io.BufferedReader(raw, buffer_size=max(buffering, 1))
        if mode == "rb":
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8")

    # -- async twins ----------------------------------------------------------------------
    async def aread_bytes(self) -> bytes:
        """:meth:`read_bytes`, awaited."""
        return await self._runner.acall(self._read)

    async def aread_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """:meth:`read_text`, awaited."""
        return (await self.aread_bytes()).decode(encoding, errors)

    async def astat(self) -> RemoteStat:
        """:meth:`stat`, awaited."""
        return await self._runner.acall(self._stat)

    async def aiterdir(self) -> list[RemotePath]:
        """:meth:`iterdir`, awaited (a list)."""
        return [self / n for n in await self._runner.acall(self._children)]

    async def aglob(self, pattern: str) -> list[RemotePath]:
        """:meth:`glob`, awaited (a list)."""
        below = await self._runner.acall(self._below)
        return [self.joinpath(r) for r in below if _match(r.split("/"), pattern.split("/"))]


def _match(parts: list[str], pattern: list[str]) -> bool:
    """Whether path parts match pattern parts; ``**`` matches any number of parts."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(parts[1:], rest)


class _RemoteFile(io.RawIOBase):
    """The raw side of :meth:`RemotePath.open`: positioned, verified, ranged reads."""

    def __init__(self, runner: Runner, entry: FileEntry, name: str) -> None:
        super().__init__()
        self._runner = runner
        self._entry = entry
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._entry.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: ReadableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        start = self._pos
        end = min(self._entry.size, start + len(view))
        if start >= end:
            return 0
        entry = self._entry

        async def read(v: Version) -> bytes:
            return await v.read(entry, start, end)

        data = self._runner.call(read)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def __getstate__(self) -> Any:
        raise TypeError("a remote file cannot be pickled: open it again in the other process")
