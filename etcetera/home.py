"""The local store: datasets under ``home``, each one a symlink swapped atomically.

Layout::

    home/NAME                         symlink: to the user's folder (registered) or to
                                      .versions/NAME/<K>.<token> (pulled or created)
    home/.versions/NAME/<K>.<token>/  a pulled version, never modified after it appears
    home/.versions/NAME/<K>.<token>.json   what it is: version, manifest, partitions, shard, url
    home/.staging/NAME/<id>/          a pull in progress (resumed by the next pull)
    home/.cache/                      hash cache and manifests
    home/.locks/NAME.lock             one pull or push of NAME at a time

A new version is published by renaming a new symlink over ``home/NAME``: a reader
that resolved the old link keeps its whole old copy (the previous version is kept).

The home's own folders and files (everything under ``.versions``, ``.staging``,
``.cache`` and ``.locks``) are real folders and files that etcetera made: a symlink
among them (planted, or left by a tool) is refused, never followed, so that nothing
is written, renamed or deleted through it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

from .durable import fsync_dir
from .engine.localfs import remove_tree
from .errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    InvalidNameError,
    LocalIOError,
)
from .format.paths import check_name
from .format.selection import Selection

KEEP_VERSIONS = 2
#: The name of a version folder etcetera made: ``<K>.<token>`` (``local.<token>``: created).
_VERSION_FOLDER = re.compile(r"(?:local|[1-9][0-9]*)\.[0-9a-f]{8}")


def valid_name(name: str) -> str:
    """``name`` if it is a valid dataset name, else :class:`InvalidNameError`."""
    return check_name(name)


@dataclass(frozen=True)
class LocalVersion:
    """What a pulled (or created) version folder holds.

    Attributes:
        name: dataset name.
        version: version number (``None``: created locally).
        manifest: digest of the version's manifest (``""``: created locally).
        partitions: the partitions pulled, ``None`` for all of them.
        url: the repository it came from.
        filters: include/exclude patterns the copy was pulled with.
        shard: ``(k, n)`` when the copy is shard ``k`` of ``n`` (0-based), else ``None``.
    """

    name: str
    version: int | None
    manifest: str
    partitions: list[str] | None  # None: all of them
    url: str = ""
    filters: str = ""  # include/exclude patterns the copy was pulled with
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # JSON gives the shard back as a list.
        if self.shard is not None:
            object.__setattr__(self, "shard", (int(self.shard[0]), int(self.shard[1])))

    @property
    def selection(self) -> Selection:
        """What this copy was pulled with (all of it, for a created dataset)."""
        return Selection.from_record(self.partitions, self.filters, self.shard)

    @classmethod
    def pulled(
        cls, name: str, version: int, manifest: str, selection: Selection, url: str
    ) -> LocalVersion:
        """The record of a copy of ``selection`` of ``name@version``."""
        parts = None if selection.partitions is None else list(selection.partitions)
        return cls(name, version, manifest, parts, url, selection.filters, selection.shard)

    def holds(self, manifest: str, selection: Selection) -> bool:
        """Whether this copy already holds ``selection`` of ``manifest``."""
        return manifest == self.manifest and self.selection.covers(selection)


class Home:
    """The datasets of one ``home`` folder."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home).expanduser()

    # -- layout ---------------------------------------------------------------------------
    def link(self, name: str) -> Path:
        """``home/NAME``."""
        return self.path / valid_name(name)

    def own(self, *parts: str) -> Path:
        """``home/PARTS...``, one of the home's own paths: none of its parts may be a symlink.

        Raises:
            LocalIOError: a part exists and is a symlink (etcetera makes none there).
        """
        path = self.path
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise LocalIOError(
                    f"{path} is a symlink etcetera did not make: remove it (the home's own "
                    f"folders in {self.path} are never followed through links)"
                )
        return path

    def versions_dir(self, name: str) -> Path:
        """Where pulled versions of ``name`` live."""
        return self.own(".versions", valid_name(name))

    def staging(self, name: str, key: str) -> Path:
        """The staging folder of one pull."""
        return self.own(".staging", valid_name(name), key)

    def cache_file(self, root: Path) -> Path:
        """The hash cache of a dataset folder."""
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:32]
        return self.own(".cache", "hashes", f"{digest}.json")

    def manifest_cache(self, digest: str) -> Path:
        """Where a fetched manifest is kept."""
        return self.own(".cache", "manifests", f"{digest}.json")

    def ensure_home(self) -> None:
        """Create ``home`` (and fail clearly when it cannot be)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".probe-{secrets.token_hex(4)}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise LocalIOError(
                f"etcetera home {self.path} is not writable ({exc.strerror}): "
                "set home in ~/.etc.toml or ETC_HOME"
            ) from None

    # -- queries --------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of local datasets (links that resolve to a folder)."""
        if not self.path.is_dir():
            return []
        out = []
        for entry in self.path.iterdir():
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(ValueError, InvalidNameError):
                valid_name(entry.name)
                if entry.is_dir():
                    out.append(entry.name)
        return sorted(out)

    def location(self, name: str) -> Path:
        """Resolved folder of a local dataset, or :class:`DatasetNotFoundError`."""
        link = self.link(name)
        if not link.is_dir():
            raise DatasetNotFoundError(
                f"dataset {name} is not in {self.path}: etc pull {name}, or etc register DIR {name}"
            )
        return link.resolve()

    def current(self, name: str) -> LocalVersion | None:
        """What ``home/NAME`` points at, when it is a pulled or created version."""
        link = self.link(name)
        if not link.is_symlink():
            return None
        target = link.resolve()
        if target.parent != self.versions_dir(name).resolve():
            return None
        return self.read_state(target)

    def read_state(self, folder: Path) -> LocalVersion | None:
        """What a version folder holds (its ``.json`` record), ``None`` when unreadable."""
        state = folder.with_name(folder.name + ".json")
        try:
            doc = json.loads(state.read_text())
            return LocalVersion(**doc)
        except (OSError, ValueError, TypeError, IndexError):
            return None

    def find_version(
        self, name: str, version: int, shard: tuple[int, int] | None = None
    ) -> Path | None:
        """A complete local folder of ``name@version`` (current or kept), if any.

        Args:
            name: dataset name.
            version: version number.
            shard: only a copy of this shard ``(k, n)``; ``None``: any copy.
        """
        base = self.versions_dir(name)
        if not base.is_dir():
            return None
        found = [p for p in base.glob(f"{version}.*") if _ours(p)]
        if shard is not None:
            found = [p for p in found if (s := self.read_state(p)) and s.shard == shard]
        return max(found, key=lambda p: p.lstat().st_mtime) if found else None

    def is_registered(self, name: str) -> bool:
        """Whether ``home/NAME`` links to a folder the user owns (not one of ours)."""
        link = self.link(name)
        return link.is_symlink() and self.current(name) is None

    # -- changes --------------------------------------------------------------------------
    def swap(self, name: str, target: Path) -> None:
        """Point ``home/NAME`` at ``target`` atomically (rename of a new link over it)."""
        link = self.link(name)
        if link.exists() and not link.is_symlink():
            raise DatasetExistsError(
                f"{link} is a real folder, not a link etcetera made: move it away first"
            )
        tmp = self.path / f".{name}.{secrets.token_hex(4)}.link"
        os.symlink(target, tmp, target_is_directory=True)
        try:
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.path)

    def new_version_dir(self, name: str, version: int | None) -> Path:
        """A fresh, unique folder name for a version (not created)."""
        label = "local" if version is None else str(version)
        return self.versions_dir(name) / f"{label}.{secrets.token_hex(4)}"

    def write_state(self, folder: Path, state: LocalVersion) -> None:
        """Record what a version folder holds (written and flushed before it is used)."""
        path = folder.with_name(folder.name + ".json")
        with open(path, "w") as fh:
            fh.write(json.dumps(asdict(state)))
            fh.flush()
            os.fsync(fh.fileno())

    def prune(self, name: str, keep: Path) -> None:
        """Remove version folders but the current one and the one before it.

        Only folders etcetera made: named ``<K>.<token>``, real folders (not links),
        each with its record beside it; anything else there is left alone.
        """
        base = self.versions_dir(name)
        if not base.is_dir():
            return
        folders = sorted((p for p in base.iterdir() if _ours(p)), key=lambda p: p.lstat().st_mtime)
        for old in [p for p in folders if p != keep][: max(0, len(folders) - KEEP_VERSIONS)]:
            self.cache_file(old.resolve()).unlink(missing_ok=True)
            _rmtree(old)
            old.with_name(old.name + ".json").unlink(missing_ok=True)

    def purge(self, name: str) -> Path | None:
        """Remove a dataset: the link always, version folders we made, never a user's folder.

        Returns the user's folder a registered dataset linked to (kept), else None.
        """
        link = self.link(name)
        if not link.is_symlink() and not link.exists():
            raise DatasetNotFoundError(f"dataset {name} is not in {self.path}")
        kept = None
        if link.is_symlink():
            target = Path(os.path.realpath(link))
            if not target.is_relative_to(os.path.realpath(self.versions_dir(name))):
                kept = target
            link.unlink()
        else:
            raise DatasetExistsError(f"{link} is a real folder, not a link: remove it yourself")
        for extra in (self.versions_dir(name), self.own(".staging", name)):
            if extra.exists():
                _rmtree(extra)
        return kept

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """Hold the lock of ``name`` (other processes wait for it)."""
        # The name's folders are checked here, before a pull or push starts.
        for parts in ((".versions", name), (".staging", name), (".cache", "hashes")):
            self.own(*parts)
        self.own(".cache", "manifests")
        path = self.own(".locks", f"{valid_name(name)}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    await anyio.sleep(0.05)
            yield
        finally:
            os.close(fd)


def _ours(folder: Path) -> bool:
    """Whether ``folder`` is a version folder etcetera made (a real one, with its record)."""
    record = folder.with_name(folder.name + ".json")
    return (
        _VERSION_FOLDER.fullmatch(folder.name) is not None
        and folder.is_dir()
        and not folder.is_symlink()
        and record.is_file()
        and not record.is_symlink()
    )


def _rmtree(path: Path) -> None:
    def onerror(func: object, p: str, exc: BaseException) -> None:
        # Read-only folders of a pulled dataset: make them writable, then retry.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=onerror)
        else:
            shutil.rmtree(path, onerror=lambda f, p, info: onerror(f, p, info[1]))
    except RecursionError:  # a tree deeper than rmtree's recursion: valid by the format
        remove_tree(str(path))
