"""The hash cache of a dataset folder: digests of files hashed before, and what a tree was.

``path -> (size, mtime_ns, inode, digest, chunks[, cut digest])`` in one JSON file,
read only when a file's digest is asked for. Beside it, a small file remembers the
last tree pushed from the folder: the digest of every file's stat, and the manifest
that tree was published as. A no-op push compares the walk's stamp with it and the
repository's latest version, and reads nothing else (no entry, no layout).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..format import _gc
from ..format.hashing import Digest
from ..format.manifest import FileEntry
from ..format.packing import LocalFile
from .fdpaths import stat_path
from .walk import ScannedFile

__all__ = ["HashCache"]

_local = tuple.__new__  # LocalFile without NamedTuple's Python-level __new__
_NOT_YET = LocalFile("", 0, 0, "")
#: The cache's entry of the last layout (``[key, manifest digest]``): no absolute path is "".
_LAYOUT = ""


class HashCache:
    """``path -> (size, mtime_ns, inode, digest, chunks[, cut digest])`` of files hashed before.

    A file whose size, mtime and inode are unchanged is not read again; ``verify``
    ignores the cache. Stored as one JSON file, written atomically. A large file cut by
    content (``content_chunks``) has another digest than the same file in fixed
    chunks: that one is kept apart, sixth (an empty ``digest`` then means "not known").
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._loaded: dict[str, list[object]] | None = None if path is not None else {}
        self.dirty = False
        #: The last tree pushed (``[stamp, manifest digest]``), once read or set.
        self._tree: list[str] | None = None
        self._tree_dirty = False

    @property
    def _entries(self) -> dict[str, list[object]]:
        """The entries, read from the file on first use (a no-op push never needs them)."""
        if self._loaded is None:
            self._loaded = {}
            assert self.path is not None
            try:
                with _gc.paused():  # a list per file: the collector would rescan them all
                    loaded = json.loads(self.path.read_bytes())
                if isinstance(loaded, dict):
                    self._loaded = loaded
            except (OSError, ValueError):
                pass
        return self._loaded

    def _tree_file(self) -> Path | None:
        return None if self.path is None else self.path.with_suffix(".tree")

    def tree(self, stamp: str) -> str | None:
        """The manifest digest the tree of this ``stamp`` was last pushed as, if it was.

        Only while the entries' file exists: deleting it makes every file hashed again,
        and the tree laid out again.
        """
        if self._tree is None:
            self._tree = []
            where = self._tree_file()
            try:
                if where is not None and self.path is not None and self.path.is_file():
                    memo = json.loads(where.read_bytes())
                    if isinstance(memo, list) and len(memo) == 2:
                        self._tree = [str(memo[0]), str(memo[1])]
            except (OSError, ValueError):
                pass
        return self._tree[1] if self._tree and self._tree[0] == stamp else None

    def remember_tree(self, stamp: str, digest: str) -> None:
        """Remember that the tree of this ``stamp`` is the manifest ``digest`` (pushed)."""
        if self._tree != [stamp, digest]:
            self._tree = [stamp, digest]
            self._tree_dirty = True

    def vouched(self, files: list[ScannedFile], cut_above: int | None = None) -> list[LocalFile]:
        """Each file as hashed before where the cache vouches for it, else ``_NOT_YET``.

        With ``cut_above``, a file of more bytes is vouched for by its cut digest only.
        One loop without a call per file: a no-op push of 10^5 files spends its time here.
        """
        with _gc.paused():
            return self._vouched(files, (1 << 63) if cut_above is None else cut_above)

    def vouches(self, files: list[ScannedFile], cut_above: int | None = None) -> bool:
        """Whether the cache vouches for every one of ``files`` (:meth:`vouched`)."""
        return _NOT_YET not in self.vouched(files, cut_above)

    def _vouched(self, files: list[ScannedFile], cut_above: int) -> list[LocalFile]:
        entries = self._entries
        out: list[LocalFile] = []
        append = out.append
        for f in files:
            hit = entries.get(f.source)
            if hit and hit[0] == f.size and hit[1] == f.mtime_ns and hit[2] == f.ino:
                if f.size > cut_above:
                    digest = hit[5] if len(hit) > 5 else ""
                    chunks = None
                else:
                    digest, chunks = hit[3], hit[4]
                if not digest:
                    append(_NOT_YET)
                    continue
                append(
                    _local(
                        LocalFile,
                        (f.path, f.size, f.mode, digest, tuple(chunks) if chunks else ()),  # type: ignore[arg-type]
                    )
                )
            else:
                append(_NOT_YET)
        return out

    def put(self, f: ScannedFile, d: Digest, *, cut: bool = False) -> None:
        """Remember a digest (``cut``: the file's digest as cut by content)."""
        self._put(f.source, f.size, f.mtime_ns, f.ino, d.hex, list(d.chunks), cut)

    def _put(
        self,
        source: str,
        size: int,
        mtime_ns: int,
        ino: int,
        digest: str,
        chunks: list[str],
        cut: bool,
    ) -> None:
        old = self._entries.get(source)
        same = old is not None and old[:3] == [size, mtime_ns, ino]
        entry: list[object] = [size, mtime_ns, ino, "", []]
        if same and old is not None:
            entry = list(old)
        if cut:
            entry[5:] = [digest]
        else:
            entry[3:5] = [digest, chunks]
        self._entries[source] = entry
        self.dirty = True

    def forget(self, source: str) -> None:
        """Drop the digest of a file found to differ from it (hashed again next time)."""
        if self._entries.pop(source, None) is not None:
            self.dirty = True
            self._tree, self._tree_dirty = [], True  # that tree is not what it was

    def items(self) -> list[tuple[str, list[object]]]:
        """``(absolute path, [size, mtime_ns, inode, digest, chunks])`` of every entry."""
        return [item for item in self._entries.items() if item[0] != _LAYOUT]

    def layout(self, key: str) -> str | None:
        """The manifest digest last laid out from the inputs ``key`` names, if it was."""
        memo = self._entries.get(_LAYOUT)
        return str(memo[1]) if memo and len(memo) == 2 and memo[0] == key else None

    def remember_layout(self, key: str, digest: str) -> None:
        """Remember the manifest digest the inputs ``key`` names lay out to."""
        if self._entries.get(_LAYOUT) != [key, digest]:
            self._entries[_LAYOUT] = [key, digest]
            self.dirty = True

    def record_tree(self, root: Path, files: Iterable[FileEntry]) -> None:
        """Remember digests of files just written and verified under ``root`` (blocking)."""
        base = str(root.resolve())
        for f in files:
            source = f"{base}/{f.path}"
            try:
                st = os.stat(source)
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    continue
                try:
                    st = stat_path(source)
                except OSError:
                    continue
            # A file without an object of its own was cut by content: its digest is that.
            cut = not f.object and f.size > 0
            chunks = [] if cut else list(f.chunks)
            self._put(source, st.st_size, st.st_mtime_ns, st.st_ino, f.digest, chunks, cut)

    def save(self) -> None:
        """Write the cache if it changed (blocking): the entries first, then the tree."""
        if self.path is None:
            return
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._entries, separators=(",", ":")))
            os.replace(tmp, self.path)
            self.dirty = False
        where = self._tree_file()
        if self._tree_dirty and where is not None:
            if self._tree:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = where.with_suffix(".treetmp")
                tmp.write_text(json.dumps(self._tree))
                os.replace(tmp, where)
            else:
                where.unlink(missing_ok=True)
            self._tree_dirty = False
