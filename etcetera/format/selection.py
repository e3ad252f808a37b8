"""Which files of a version an operation wants: partitions, path patterns, a shard.

A :class:`Selection` is what ``etc pull NAME -p train --include '*.xml' --shard 0/4``
asks for, as one frozen value: the API builds it once from its arguments, a pull picks
its files with it, names its staging folder by it (so that only the same selection
resumes into it) and records it with the local copy (so that ``verify`` and the next
pull know what the copy holds).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .hashing import sha256_hex
from .manifest import FileEntry, Manifest
from .sharding import check_shard, select_shard


def selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a dataset path passes include/exclude glob patterns (``*`` crosses ``/``)."""
    if include and not any(fnmatch.fnmatchcase(path, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(path, p) for p in exclude)


@dataclass(frozen=True, slots=True)
class Selection:
    """The files of a version an operation wants.

    Attributes:
        partitions: these partitions (sorted, unique) and every file outside ``data/``;
            ``None``: every partition.
        include: only paths matching one of these glob patterns (``*`` crosses ``/``).
        exclude: never paths matching one of these.
        shard: ``(k, n)``: shard ``k`` of ``n`` of what the other fields select
            (see :mod:`etcetera.format.sharding`); ``None``: all of it.
    """

    partitions: tuple[str, ...] | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None

    @classmethod
    def of(
        cls,
        partitions: Iterable[str] | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        shard: object = None,
    ) -> Selection:
        """A selection from loose arguments, normalised: ``(0, 1)`` is no shard.

        Raises:
            ConfigError: ``shard`` is not ``(k, n)`` with ``0 <= k < n``.
        """
        parts = None if partitions is None else tuple(sorted(set(partitions)))
        k_n = None if shard is None else check_shard(shard)
        return cls(parts, tuple(include), tuple(exclude), None if k_n == (0, 1) else k_n)

    @property
    def filtered(self) -> bool:
        """Whether include or exclude patterns narrow it."""
        return bool(self.include or self.exclude)

    def files(self, manifest: Manifest) -> list[FileEntry]:
        """The files this selection holds: partitions, include/exclude, then the shard.

        The shard is a share of the files the other fields select, so ``verify`` (and a
        resumed pull) computes the same files from the same selection.
        """
        files = list(manifest.select(self.partitions))
        if self.filtered:
            files = [f for f in files if selected(f.path, self.include, self.exclude)]
        if self.shard is not None:
            files = select_shard(files, *self.shard)
        return files

    @property
    def key(self) -> str:
        """Names a staging folder: only the same selection resumes into it."""
        if self.partitions is None and not self.filtered:
            key = "all"
        else:
            key = sha256_hex("\0".join([*(self.partitions or ["*"]), self.filters]).encode())[:8]
        if self.shard is not None:
            key += f"-shard{self.shard[0]}of{self.shard[1]}"
        return key

    def covers(self, other: Selection) -> bool:
        """Whether a copy of this selection holds every file ``other`` selects.

        Patterns and shard must be the same (a shard covers only the same shard, and a
        whole copy covers no shard: a node that asked for its shard is not left holding,
        or reading, the whole dataset); the partitions must include ``other``'s.
        """
        if (self.include, self.exclude, self.shard) != (other.include, other.exclude, other.shard):
            return False
        if self.partitions is None:
            return True
        return other.partitions is not None and set(other.partitions) <= set(self.partitions)

    def grown(self, held: Selection) -> Selection:
        """The selection widened to the partitions a local copy ``held`` already has.

        Pulling ``test`` where ``train`` of the same version (unfiltered, same shard) is
        local makes a copy of both; anything else is left as asked.
        """
        if self.partitions is None or self.filtered or held.shard != self.shard:
            return self
        if held.partitions is None:
            return Selection(None, shard=self.shard)
        return Selection(
            tuple(sorted(set(self.partitions) | set(held.partitions))), shard=self.shard
        )

    # -- as recorded with a local copy (the fields of etcetera 1.0's state files) ---------
    @property
    def filters(self) -> str:
        """The include/exclude patterns as one string (``""``: none)."""
        if not self.filtered:
            return ""
        return "\0".join(["+", *self.include, "-", *self.exclude])

    @classmethod
    def from_record(
        cls, partitions: Sequence[str] | None, filters: str, shard: Sequence[int] | None
    ) -> Selection:
        """The selection a local copy's record describes (see :attr:`filters`)."""
        include: list[str] = []
        exclude: list[str] = []
        if filters:
            parts = filters.split("\0")
            # A pattern "-" reads as the cut; the first "-" after the "+" is the cut.
            cut = parts.index("-", 1)
            include, exclude = parts[1:cut], parts[cut + 1 :]
        return cls(
            None if partitions is None else tuple(partitions),
            tuple(include),
            tuple(exclude),
            None if shard is None else (int(shard[0]), int(shard[1])),
        )
