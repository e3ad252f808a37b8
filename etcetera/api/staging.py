"""A pull's staging folder: named by what it holds, resumed, then published in one rename.

A pull writes into a private folder named by the version's manifest and the
:class:`~etcetera.format.selection.Selection` (so an interrupted pull resumes into it,
and only the same selection does), then publishes it: partition folders made, flushed
with one ``syncfs``, renamed into the home's ``.versions`` with the link swapped to it,
or renamed over a folder of the user's choosing (``--to``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..durable import flush_tree, fsync_dir
from ..engine.localfs import remove_tree
from ..engine.scan import HashCache
from ..errors import LocalIOError
from ..format.manifest import FileEntry
from ..format.selection import Selection
from ..home import Home, LocalVersion


@dataclass(frozen=True, slots=True)
class Staging:
    """One pull's staging folder and its temporary folder (blobs being assembled).

    Attributes:
        folder: where files are placed at their final relative paths.
        tmp: where partial blobs and copies are written before their rename.
    """

    folder: Path
    tmp: Path

    @classmethod
    def in_home(
        cls,
        home: Home,
        name: str,
        digest: str,
        selection: Selection,
        worker: tuple[int, int] | None = None,
    ) -> Staging:
        """The staging folder of a pull of ``selection`` of manifest ``digest`` into ``home``.

        ``worker=(k, n)``: a worker of a distributed pull staging shard ``k`` of ``n`` of
        the whole ``selection`` into the same folder, with its own temporary folder (a
        blob in two partitions may be on two shards).
        """
        key = f"{digest[:24]}-{selection.key}"
        suffix = ".tmp" if worker is None else f".tmp-{worker[0]}of{worker[1]}"
        return cls(home.staging(name, key), home.staging(name, key + suffix))

    @classmethod
    def labelled(cls, home: Home, name: str, label: str) -> Staging:
        """A staging folder in ``home`` under a label of the caller's (a legacy archive)."""
        return cls(home.staging(name, label), home.staging(name, label + ".tmp"))

    @classmethod
    def beside(cls, target: Path, digest: str, selection: Selection) -> Staging:
        """The staging folder of a pull into the folder ``target`` (``--to``), next to it."""
        # Keyed by the selection too: a --to pull of other partitions or another shard must
        # not resume into (and publish) this one's files.
        key = selection.key
        suffix = "" if key == "all" else f"-{key}"
        folder = target.with_name(f".{target.name}.etc-{digest[:16]}{suffix}")
        return cls(folder, folder.with_name(folder.name + ".tmp"))

    def _complete(self, partitions: Iterable[str], dirs: Iterable[str]) -> None:
        for p in partitions:
            (self.folder / "data" / p).mkdir(parents=True, exist_ok=True)
        for d in dirs:
            (self.folder / d).mkdir(parents=True, exist_ok=True)
        remove_tree(str(self.tmp))
        flush_tree(self.folder)

    def publish_home(
        self,
        home: Home,
        state: LocalVersion,
        partitions: Iterable[str],
        dirs: Iterable[str],
        files: list[FileEntry],
    ) -> Path:
        """Make the staged tree ``home/NAME``: flush, rename into ``.versions``, swap the link.

        Blocking (run it in a worker thread). A reader holding the old path keeps the
        old copy; the new files' digests go into the hash cache, so the next push or
        pull does not hash them again. Returns the new version folder.
        """
        name = state.name
        try:
            self._complete(partitions, dirs)
            target = home.new_version_dir(name, state.version)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.folder, target)
            with contextlib.suppress(OSError):
                self.folder.parent.rmdir()
            home.write_state(target, state)
            # The rename and the state file must be durable before the link points at them.
            fsync_dir(target.parent)
            home.swap(name, target)
        except LocalIOError:
            raise
        except OSError as exc:
            raise LocalIOError(f"cannot publish {name} in {home.path}: {exc.strerror}") from None
        target = target.resolve()
        cache = HashCache(home.cache_file(target))
        cache.record_tree(target, files)
        cache.save()
        with contextlib.suppress(OSError):
            home.prune(name, target)
        return target

    def publish_to(
        self, target: Path, name: str, partitions: Iterable[str], dirs: Iterable[str]
    ) -> Path:
        """Make the staged tree the folder ``target``, replacing what it held in one rename.

        Blocking (run it in a worker thread).
        """
        try:
            self._complete(partitions, dirs)
            old = None
            if target.is_dir() and any(target.iterdir()):
                old = target.with_name(f".{target.name}.etc-old-{secrets.token_hex(4)}")
                os.replace(target, old)
            elif target.is_dir():
                target.rmdir()
            os.replace(self.folder, target)
            if old is not None:
                remove_tree(str(old))
        except OSError as exc:
            raise LocalIOError(f"cannot publish {name} into {target}: {exc.strerror}") from None
        return target
