"""The local cache of verified object ranges, under ``home/.cache/objects/``.

Each kept range is one file, ``<id[:2]>/<id>/<start>-<end>``, holding bytes
``start .. end`` of object ``id`` as they were fetched. Nothing read from it is
trusted: every unit served from it is hashed again against the manifest, and a file
that does not verify (a corrupted or truncated entry) is deleted and fetched again.

Several processes may share one cache: a range is written to a temporary name and
renamed into place, a reader keeps reading a file another process deletes, and one
process at a time evicts (under ``flock``), least recently used first (a hit touches
the file's mtime). A cache folder that cannot be written is given up with one
warning: reads go on, uncached. Every method blocks: call them in worker threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .plan import Span, Unit

#: Once over its limit, the cache is trimmed to this share of it (not one file a write).
_TRIM_TO = 0.8


class ObjectCache:
    """Verified ranges of objects kept on disk, at most ``limit`` bytes of them.

    Args:
        root: the cache folder (``home/.cache/objects``).
        limit: bytes kept at most (the ``cache_size`` setting); 0 turns the cache off.
    """

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._total: int | None = None  # bytes kept, known once scanned
        self._broken = False

    @property
    def enabled(self) -> bool:
        """Whether ranges are kept (a positive limit, a writable folder)."""
        return self.limit > 0 and not self._broken

    def _dir(self, oid: str) -> Path:
        return self.root / oid[:2] / oid

    def _ranges(self, oid: str) -> list[tuple[int, int, Path]]:
        try:
            names = os.listdir(self._dir(oid))
        except OSError:
            return []
        out = []
        for name in names:
            lo, sep, hi = name.partition("-")
            if sep and lo.isdigit() and hi.isdigit():
                out.append((int(lo), int(hi), self._dir(oid) / name))
        return out

    def lookup(self, wanted: Iterable[Unit]) -> dict[Unit, bytes]:
        """The wanted units the cache holds, each verified against its digest."""
        found: dict[Unit, bytes] = {}
        if self.limit <= 0:
            return found
        by_object: dict[str, list[Unit]] = {}
        for u in wanted:
            by_object.setdefault(u.object, []).append(u)
        for oid, units in by_object.items():
            ranges = self._ranges(oid)
            if ranges:
                found.update(self._read(units, ranges))
        return found

    def _read(
        self, units: list[Unit], ranges: list[tuple[int, int, Path]]
    ) -> Iterator[tuple[Unit, bytes]]:
        bad: set[Path] = set()
        fds: dict[Path, int] = {}
        try:
            for u in units:
                for lo, hi, path in ranges:
                    if path in bad or not (lo <= u.offset and u.offset + u.length <= hi):
                        continue
                    try:
                        if path not in fds:
                            fds[path] = os.open(path, os.O_RDONLY)
                        data = os.pread(fds[path], u.length, u.offset - lo)
                    except OSError:
                        continue  # evicted meanwhile by another process
                    if len(data) == u.length and hashlib.sha256(data).hexdigest() == u.digest:
                        yield u, data
                        break
                    bad.add(path)
        finally:
            for fd in fds.values():
                os.close(fd)
        for path in bad:
            with contextlib.suppress(OSError):
                path.unlink()
        for path in fds.keys() - bad:
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used goes first

    def store(self, span: Span, data: bytes | memoryview) -> None:
        """Keep a fetched range whose units verified (best effort)."""
        if not self.enabled or len(data) > self.limit // 4:
            return
        folder = self._dir(span.object)
        path = folder / f"{span.offset}-{span.offset + len(data)}"
        tmp = folder / f".{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._give_up(exc)
            return
        if self._total is None:
            self._total = sum(size for _, size, _ in self._scan())
        else:
            self._total += len(data)
        if self._total > self.limit:
            self.evict()

    def _give_up(self, exc: OSError) -> None:
        self._broken = True
        warnings.warn(
            f"cache folder {self.root} cannot be written ({exc.strerror or exc}): "
            "reading on without a cache",
            stacklevel=2,
        )

    def _scan(self) -> list[tuple[float, int, Path]]:
        """``(mtime, size, path)`` of every kept range."""
        out = []
        for top in _entries(self.root):
            for obj in _entries(top):
                for rng in _entries(obj):
                    try:
                        st = rng.stat()
                    except OSError:
                        continue
                    out.append((st.st_mtime, st.st_size, rng))
        return out

    def evict(self) -> None:
        """Delete least recently used ranges until the cache is within its limit.

        One process at a time: a process that finds another evicting leaves it to it.
        """
        try:
            lock = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return
            kept = sorted(self._scan())
            total = sum(size for _, size, _ in kept)
            goal = int(self.limit * _TRIM_TO)
            for _, size, path in kept:
                if total <= goal:
                    break
                with contextlib.suppress(OSError):
                    path.unlink()
                    total -= size
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only when it was the object's last range
            self._total = total
        finally:
            os.close(lock)

    def size(self) -> int:
        """Bytes kept now (a scan of the folder)."""
        return sum(size for _, size, _ in self._scan())


def _entries(folder: Path) -> Sequence[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError:
        return []
