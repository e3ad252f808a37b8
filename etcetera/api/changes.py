"""What differs between two trees of files: added, removed and changed, with sizes.

Trees are compared by their file tables alone (path, size, permission bits and content
digest), as a manifest or the hash cache gives them: no byte of data is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Entry(Protocol):
    """What a compared file must have (a manifest's ``FileEntry``, a hashed ``LocalFile``)."""

    @property
    def path(self) -> str:
        """Relative ``/``-separated path."""

    @property
    def size(self) -> int:
        """Bytes."""

    @property
    def mode(self) -> int:
        """Permission bits."""

    @property
    def digest(self) -> str:
        """Content digest."""


Table = Mapping[str, tuple[str, int, int]]  # path -> (digest, size, mode)


def table(files: Iterable[Entry]) -> dict[str, tuple[str, int, int]]:
    """The comparable table of some files."""
    return {f.path: (f.digest, f.size, f.mode) for f in files}


@dataclass
class Changes:
    """The files that differ from an old tree to a new one, sorted by path.

    Attributes:
        added: ``(path, size)`` of files only the new tree has.
        removed: ``(path, size)`` of files only the old tree has.
        changed: ``(path, old_size, new_size)`` of files whose bytes or mode differ.
    """

    added: list[tuple[str, int]] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)
    changed: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """Whether the two trees hold the same files."""
        return not (self.added or self.removed or self.changed)

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts and bytes: ``{"added": {"files", "bytes"}, "removed": ..., "changed": ...}``.

        The bytes of a changed file are its new size (what a transfer of it moves).
        """
        return {
            "added": {"files": len(self.added), "bytes": sum(s for _, s in self.added)},
            "removed": {"files": len(self.removed), "bytes": sum(s for _, s in self.removed)},
            "changed": {"files": len(self.changed), "bytes": sum(s for _, _, s in self.changed)},
        }

    def files_json(self) -> list[dict[str, Any]]:
        """One object per differing file, sorted by path (the ``files`` of the diff schema)."""
        rows: list[dict[str, Any]] = [
            {"path": p, "change": "added", "old_size": None, "new_size": s} for p, s in self.added
        ]
        rows += [
            {"path": p, "change": "removed", "old_size": s, "new_size": None}
            for p, s in self.removed
        ]
        rows += [
            {"path": p, "change": "changed", "old_size": a, "new_size": b}
            for p, a, b in self.changed
        ]
        return sorted(rows, key=lambda r: str(r["path"]))


def compare(old: Table, new: Table) -> Changes:
    """What changed from ``old`` to ``new``."""
    out = Changes()
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before is None and after is not None:
            out.added.append((path, after[1]))
        elif after is None and before is not None:
            out.removed.append((path, before[1]))
        elif before is not None and after is not None and before != after:
            out.changed.append((path, before[1], after[1]))
    return out
