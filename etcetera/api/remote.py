"""Remote datasets: a version in the repository, read in place with the local API's shape.

``etc.remote('sample@2')`` gives what ``etc.dataset('sample')`` gives (``partitions()``,
``meta``, ``len()``, iteration, ``ds['train']``), except that paths are
:class:`~etcetera.api.remote_path.RemotePath` objects whose reads go to the repository
(verified, coalesced, cached in the home) instead of the local disk.

The object pins its version when it is made, and keeps one session for its reads in
a thread of its own (an event loop there holds the back-end's connections), so that
its sync methods work anywhere, and its async methods (``aread_bytes`` ...) from any
event loop. ``close()`` (or a ``with`` block) ends it; so does the end of the process.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from ..engine import refs
from ..errors import EtceteraError, NotADatasetError, PartitionNotFoundError
from ..portal import DaemonPortal
from ..settings import Config
from ._common import parse_ref, resolve_config
from .remote_path import RemotePath
from .session import session

if TYPE_CHECKING:  # the reading core imports api modules: import it once it is used
    from ..reading import Version

T = TypeVar("T")


class _Runner:
    """One event loop in a thread, holding one session and the pinned version."""

    def __init__(self, config: Config, name: str, number: int | None) -> None:
        self._cm = DaemonPortal()
        self.portal = self._cm.portal
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._future, self.version = self.portal.start_task(self._hold, config, name, number)
        except BaseException:
            self._cm.close()
            raise

    async def _hold(
        self,
        config: Config,
        name: str,
        number: int | None,
        *,
        task_status: anyio.abc.TaskStatus[Version] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        from ..reading import open_version

        self._done = anyio.Event()
        async with session(config) as s:
            task_status.started(await open_version(s, name, number))
            await self._done.wait()

    def call(self, fn: Callable[[Version], Awaitable[T]]) -> T:
        """Run ``fn(version)`` on the runner's loop, from sync code."""
        if self._closed:
            raise ValueError("the remote dataset is closed")
        return self.portal.call(fn, self.version)

    async def acall(self, fn: Callable[[Version], Awaitable[T]]) -> T:
        """Run ``fn(version)`` on the runner's loop, from any event loop."""
        return await anyio.to_thread.run_sync(self.call, fn)

    def close(self) -> None:
        """End the session and the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.portal.call(self._done.set)
            self._future.result()
        finally:
            self._cm.close()


class RemoteVersion:
    """A version of a dataset in the repository, with the local :class:`Dataset`'s API.

    Made by :func:`etcetera.remote` / :func:`etcetera.aremote`. ``ds['train']`` is the
    :class:`RemotePath` of a partition; iterating or ``keys()`` gives partition names.

    Attributes:
        name: the dataset name.
        version: the pinned version number.
        manifest: its manifest's digest.
    """

    def __init__(self, runner: _Runner, meta: Any) -> None:
        self._runner = runner
        self._meta = meta
        v = runner.version
        self.name: str = v.name
        self.version: int = v.number
        self.manifest: str = v.record.manifest
        self._partitions = sorted(v.partitions)
        self._finalizer = weakref.finalize(self, runner.close)

    @property
    def root(self) -> RemotePath:
        """The top of the version (``etc://NAME@K/``)."""
        return RemotePath(self._runner, "")

    @property
    def data(self) -> RemotePath:
        """The ``data/`` folder."""
        return RemotePath(self._runner, "data")

    def file(self, *parts: str) -> RemotePath:
        """Path of a file of the version, e.g. ``ds.file('assets', 'notes.txt')``."""
        return self.root.joinpath(*parts)

    def partitions(self) -> list[str]:
        """Names of the partitions, sorted."""
        return list(self._partitions)

    def keys(self) -> list[str]:
        """Same as :meth:`partitions`."""
        return self.partitions()

    def values(self) -> list[RemotePath]:
        """Paths of the partitions, in name order."""
        return [self.data / p for p in self._partitions]

    def items(self) -> list[tuple[str, RemotePath]]:
        """``(name, path)`` of each partition."""
        return [(p, self.data / p) for p in self._partitions]

    def __getitem__(self, partition: str) -> RemotePath:
        if partition not in self._partitions:
            known = ", ".join(self._partitions)
            raise PartitionNotFoundError(
                f"{self.name}@{self.version} has no partition {partition!r} (it has: {known})"
            )
        return self.data / partition

    def __contains__(self, partition: object) -> bool:
        return isinstance(partition, str) and partition in self._partitions

    def __iter__(self) -> Iterator[str]:
        return iter(self.partitions())

    def __len__(self) -> int:
        return len(self._partitions)

    @property
    def meta(self) -> Any:
        """Contents of ``meta.json`` (``{}`` when there is none), read when pinned."""
        return self._meta

    def close(self) -> None:
        """End the session (reads through its paths fail afterwards)."""
        self._finalizer()

    def __enter__(self) -> RemoteVersion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteVersion({self.name!r}, version={self.version})"


async def _meta(v: Version) -> Any:
    entry = await v.find("meta.json")
    if entry is None:
        return {}
    data = await v.read(entry)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotADatasetError(f"{v.ref}: meta.json is not valid JSON: {exc}") from None


_ASK_SECONDS = 5.0  # the longest the "is it remote?" question may take


async def not_local(cfg: Config, name: str, version: int | None, where: str, flag: str) -> str:
    """What to say of a dataset that is not local: read it in place, or pull it.

    Asks the repository (one listing) whether it has the dataset, when one is set.
    """
    ref = name if version is None else f"{name}@{version}"
    pull = f"etc pull {ref}{flag}, or etc.dataset(name, auto_pull=True)"
    if cfg.url is None:
        return f"dataset {ref} is not in {where}: {pull}"
    found: list[int] | None = None
    try:
        # Only advice for an error message: a repository that does not answer at once
        # (retries, timeouts) gets no more than a few seconds of the user's wait.
        with anyio.move_on_after(_ASK_SECONDS):
            async with session(cfg) as s:
                found = await refs.versions(s.transport, name)
                repo = s.backend.describe()
    except EtceteraError:
        found = None
    if found is None:  # unreachable now: say both ways
        return f"dataset {ref} is not in {where}: etc.remote({ref!r}) reads it in place; {pull}"
    if not found or (version is not None and version not in found):
        return (
            f"dataset {ref} is not in {where} nor in {repo} "
            "(etc list --remote shows what the repository has)"
        )
    return (
        f"dataset {ref} is not in {where}, but {repo} has it: etc.remote({ref!r}) reads it "
        f"in place, without pulling; or {pull}"
    )


async def aremote(
    name: str, *, config: Config | None = None, version: int | None = None
) -> RemoteVersion:
    """A version of a dataset in the repository, read in place without pulling it.

    Costs the version record (and a listing for the latest), the manifest root and
    ``meta.json``; paths then read only what they are asked for.

    Args:
        name: dataset name (``NAME@K`` for version K, else the latest).
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        version: a version number instead of the latest.

    Raises:
        DatasetNotFoundError: no such dataset or version (the versions are listed).
    """
    cfg = resolve_config(config)
    base, number = parse_ref(name, version)
    runner = await anyio.to_thread.run_sync(_Runner, cfg, base, number)
    try:
        meta = await runner.acall(_meta)
    except BaseException:
        await anyio.to_thread.run_sync(runner.close)
        raise
    return RemoteVersion(runner, meta)
