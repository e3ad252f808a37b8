"""The ``etc://`` fsspec file system: the versions of a repository, read in place.

``etc://NAME/PATH`` is a file of the latest version of ``NAME``, pinned the first
time this file system resolves it (so one reader never mixes versions;
``invalidate_cache()`` lets the next lookup see a newer one); ``etc://NAME@K/PATH``
is a file of version ``K``. ``etc://`` alone lists the datasets. Read-only: a write
raises ``ReadOnlyError``, which names ``etc push``.

One instance is one session (one back-end client, one Transport: the request limit,
the byte budget and the counters of every read), opened on fsspec's loop at the
first request and closed with the instance.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import anyio
from fsspec.asyn import AsyncFileSystem, sync

from ..api._common import parse_ref
from ..api.session import Session, session
from ..engine import refs
from ..errors import ConfigError, ReadOnlyError
from ..format.manifest import FileEntry
from ..reading import Version, open_version
from ..settings import Config, load_config
from . import listing
from .files import EtcFile
from .listing import Info

_READ_ONLY = "etc:// is read-only: publish a new version with etc push"


class EtcFileSystem(AsyncFileSystem):  # type: ignore[misc]
    """Datasets of an etcetera repository as an fsspec file system (protocol ``etc``).

    Args:
        url: the repository (default: the ``url`` setting).
        config: settings to use as they are (then no other argument may be given).
        **settings: any setting by its key (``home``, ``concurrency``, ``cache_size``,
            ``endpoint_url`` ...), above ``ETC_*`` variables and ``~/.etc.toml``.
    """

    protocol: ClassVar[tuple[str, ...]] = ("etc",)
    root_marker = ""
    blocksize = 8 * 1024 * 1024  # the format's chunk: the smallest verified unit of a blob

    def __init__(
        self,
        url: str | None = None,
        *,
        config: Config | None = None,
        asynchronous: bool = False,
        loop: Any = None,
        **settings: Any,
    ) -> None:
        fsspec_options = {k: settings.pop(k) for k in ("skip_instance_cache",) if k in settings}
        super().__init__(asynchronous=asynchronous, loop=loop, **fsspec_options)
        if config is not None and (url is not None or settings):
            raise ConfigError("give etc:// either config= or settings, not both")
        self.config = config or load_config(overrides={"url": url, **settings})
        self._session: Session | None = None
        self._exit = contextlib.AsyncExitStack()
        self._lock: anyio.Lock | None = None
        self._pins: dict[tuple[str, int | None], Version] = {}
        weakref.finalize(self, _close, self._exit, self._loop)

    # -- the session and the pinned versions ------------------------------------------
    async def _open_session(self) -> Session:
        if self._session is None:
            self._lock = self._lock or anyio.Lock()
            async with self._lock:
                if self._session is None:
                    self._session = await self._exit.enter_async_context(session(self.config))
        return self._session

    @property
    def stats(self) -> Any:
        """What this file system's requests did so far (requests, bytes received ...)."""
        return self._session.stats if self._session is not None else None

    async def _version(self, ref: str) -> Version:
        name, number = parse_ref(ref, None)
        pin = self._pins.get((name, number))
        if pin is None:
            s = await self._open_session()
            pin = await open_version(s, name, number)
            self._pins[(name, number)] = pin
            self._pins.setdefault((name, pin.number), pin)
        return pin

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget which version ``NAME`` means (all names, or the one of ``path``)."""
        if path is None:
            self._pins = {k: v for k, v in self._pins.items() if k[1] is not None}
            return
        ref = self._strip_protocol(path).partition("/")[0]
        name = ref.partition("@")[0]
        self._pins.pop((name, None), None)

    async def _split(self, path: str) -> tuple[str, Version, str]:
        """``(NAME or NAME@K as given, its version, the path inside it)``."""
        ref, _, inner = self._strip_protocol(path).partition("/")
        return ref, await self._version(ref), inner

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        if text.startswith("etc://"):
            text = text[len("etc://") :]
        return text.strip("/")

    # -- listing ----------------------------------------------------------------------
    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        stripped = self._strip_protocol(path)
        if not stripped:
            s = await self._open_session()
            found = await refs.list_datasets(s.transport)
            out = [listing.dir_info(d.name, d.latest) for d in found if d.versions]
        else:
            base, v, inner = await self._split(stripped)
            entry = await v.find(inner) if inner else None
            if entry is None and not await v.is_dir(inner):
                entry = await v.entry(inner)  # raises, naming the nearest paths
            if entry is not None:
                out = [listing.file_info(base, entry, v.number)]
            else:
                out = listing.children(base, await v.children(inner), v.number)
        return out if detail else [i["name"] for i in out]

    async def _info(self, path: str, **kwargs: Any) -> Info:
        stripped = self._strip_protocol(path)
        if not stripped:
            return listing.dir_info("")
        base, v, inner = await self._split(stripped)
        if not inner:
            return listing.dir_info(base, v.number)
        entry = await v.find(inner)
        if entry is not None:
            return listing.file_info(base, entry, v.number)
        if await v.is_dir(inner):
            return listing.dir_info(f"{base}/{inner}", v.number)
        # Not there: entry() raises, naming the nearest paths.
        return listing.file_info(base, await v.entry(inner), v.number)

    async def _find(
        self, path: str, maxdepth: int | None = None, withdirs: bool = False, **kwargs: Any
    ) -> Any:
        stripped = self._strip_protocol(path)
        detail = kwargs.pop("detail", False)
        if not stripped:
            out: dict[str, Info] = {}
            for d in await self._ls("", detail=False):
                if maxdepth is None or maxdepth > 1:
                    deeper = None if maxdepth is None else maxdepth - 1
                    out.update(await self._find(d, deeper, withdirs, detail=True))
                if withdirs:
                    out[d] = listing.dir_info(d)
        else:
            base, v, inner = await self._split(stripped)
            entry = await v.find(inner) if inner else None
            if entry is not None:
                out = {f"{base}/{inner}": listing.file_info(base, entry, v.number)}
            else:
                files = await v.files(inner)
                out = listing.below(
                    base, inner, files, v.number, maxdepth=maxdepth, withdirs=withdirs
                )
                if withdirs and files:
                    name = f"{base}/{inner}" if inner else base
                    out[name] = listing.dir_info(name, v.number)
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    # -- bytes ------------------------------------------------------------------------
    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        _, v, inner = await self._split(path)
        entry = await v.entry(inner)
        lo, hi = _limits(entry, start, end)
        return await v.read(entry, lo, hi)

    async def _cat_ranges(
        self,
        paths: list[str],
        starts: int | Sequence[int | None] | None,
        ends: int | Sequence[int | None] | None,
        max_gap: int | None = None,
        batch_size: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[Any]:
        if not isinstance(paths, list):
            raise TypeError("cat_ranges takes a list of paths")
        n = len(paths)
        los = list(starts) if isinstance(starts, Sequence) else [starts] * n
        his = list(ends) if isinstance(ends, Sequence) else [ends] * n
        if len(los) != n or len(his) != n:
            raise ValueError("cat_ranges needs as many starts and ends as paths")
        return await self._read_batch(list(zip(paths, los, his, strict=True)), on_error)

    async def _cat(
        self, path: Any, recursive: bool = False, on_error: str = "raise", **kwargs: Any
    ) -> Any:
        paths = await self._expand_path(path, recursive=recursive)
        files = [p for p in paths if not await self._isdir(p)]
        out = await self._read_batch([(p, None, None) for p in files], on_error)
        if on_error == "omit":
            pairs = [(p, d) for p, d in zip(files, out, strict=True) if isinstance(d, bytes)]
        else:
            pairs = list(zip(files, out, strict=True))
        if len(paths) > 1 or isinstance(path, list) or paths[0] != self._strip_protocol(path):
            return dict(pairs)
        return out[0]

    async def _read_batch(
        self, wanted: list[tuple[str, int | None, int | None]], on_error: str
    ) -> list[Any]:
        """Ranges of many files, one coalesced read per version (errors per path)."""
        out: list[Any] = [None] * len(wanted)
        batches: dict[int, tuple[Version, list[int], list[tuple[FileEntry, int, int]]]] = {}
        for i, (path, start, end) in enumerate(wanted):
            try:
                _, v, inner = await self._split(path)
                entry = await v.entry(inner)
            except FileNotFoundError as exc:
                if on_error == "raise":
                    raise
                out[i] = exc
                continue
            lo, hi = _limits(entry, start, end)
            batch = batches.setdefault(id(v), (v, [], []))
            batch[1].append(i)
            batch[2].append((entry, lo, hi))
        for v, where, asks in batches.values():
            for i, data in zip(where, await v.read_ranges(asks), strict=True):
                out[i] = data
        return out

    def _open(
        self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any
    ) -> EtcFile:
        if mode != "rb":
            raise ReadOnlyError(_READ_ONLY)
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(f"{path} is a folder")
        return EtcFile(self, path, block_size or self.blocksize, info, **kwargs)

    def ukey(self, path: str) -> str:
        """The file's digest: equal bytes, equal key."""
        return str(self.info(path)["digest"])

    # -- writes are refused -----------------------------------------------------------
    async def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyError(_READ_ONLY)

    _pipe_file = _put_file = _rm_file = _rm = _cp_file = _mv_file = _refuse
    _mkdir = _makedirs = _refuse

    def mkdir(self, *args: Any, **kwargs: Any) -> None:
        """Refused: the file system is read-only."""
        raise ReadOnlyError(_READ_ONLY)

    makedirs = rmdir = touch = mkdir

    async def _close(self) -> None:
        await self._exit.aclose()
        self._session = None

    def close(self) -> None:
        """Close the session (its back-end client); the next request opens a new one."""
        if self._session is not None and self._loop is not None:
            sync(self._loop, self._close)


def _limits(entry: FileEntry, start: int | None, end: int | None) -> tuple[int, int]:
    """The offsets of fsspec's ``start``/``end`` (``None``: the ends; negative: from the end)."""
    lo = 0 if start is None else (max(0, entry.size + start) if start < 0 else start)
    hi = entry.size if end is None else (max(0, entry.size + end) if end < 0 else end)
    return lo, min(hi, entry.size)


def _close(stack: contextlib.AsyncExitStack[Any], loop: Any) -> None:
    """At garbage collection: close the session on fsspec's loop, if it still runs."""
    if loop is not None and loop.is_running() and not loop.is_closed():
        with contextlib.suppress(Exception):
            sync(loop, stack.aclose, timeout=5)
