"""The manifest model: the file table of one dataset tree (see ``docs/format.md``).

A manifest is a pure function of the tree, so that the same tree always gives the same
bytes and the same manifest digest. This module holds what a manifest says; how it is
stored lives beside it: :mod:`etcetera.format.v2` (the root and pieces a push writes),
:mod:`etcetera.format.v1` (one JSON document, still read), and
:mod:`etcetera.format.validate` (the checks every manifest read from a repository
passes, since a shared repository is treated as hostile).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..errors import IntegrityError, ManifestError, PartitionNotFoundError
from . import _gc
from .chunkobjects import Extent
from .entries import FileEntry, ObjectEntry, ObjectKind
from .hashing import CHUNK_SIZE
from .table import FileTable

__all__ = ["FileEntry", "FileTable", "Manifest", "ObjectEntry", "ObjectKind"]

FORMAT_VERSION = 3  # the format a push writes, and the newest one a pull reads
MANIFEST_KIND = "etcetera/manifest"


@dataclass(frozen=True, slots=True, init=False)
class Manifest:
    """The file table of one dataset version.

    Attributes:
        files: regular files, sorted by path, as columns (a sequence of ``FileEntry``;
            any sequence of entries given is turned into a :class:`FileTable`).
        objects: objects referenced by ``files``, by id.
        partitions: names of all partition folders, including empty ones, sorted.
        chunk_size: the hash chunk size the digests were made with.
        dirs: empty folders outside ``data/`` (they travel too), sorted.
        loaded: ``None`` when ``files`` is the whole table; else the partitions whose
            files it holds (with the files outside ``data/``): a v2 manifest read for a
            partial pull decodes only their pieces.
        extents: where the chunks of each content-chunked file are (format v3), by
            path; such a file has no object of its own (``object`` is empty).
        chunking: how the content-chunked files were cut, as the root records it
            (``cdc.Chunking.describe``; as read, unchecked: ``cdc.Chunking.recorded``
            checks it), or ``None``. Readers need none of it; a later push cuts alike.
    """

    files: FileTable
    objects: dict[str, ObjectEntry]
    partitions: tuple[str, ...]
    chunk_size: int = CHUNK_SIZE
    dirs: tuple[str, ...] = ()
    loaded: tuple[str, ...] | None = field(default=None, compare=False)
    extents: dict[str, tuple[Extent, ...]] = field(default_factory=dict)
    chunking: dict[str, object] | None = field(default=None, compare=False)

    def __init__(
        self,
        files: FileTable | Iterable[FileEntry],
        objects: dict[str, ObjectEntry],
        partitions: tuple[str, ...],
        chunk_size: int = CHUNK_SIZE,
        dirs: tuple[str, ...] = (),
        loaded: tuple[str, ...] | None = None,
        extents: dict[str, tuple[Extent, ...]] | None = None,
        chunking: dict[str, object] | None = None,
    ) -> None:
        table = files if isinstance(files, FileTable) else FileTable.of(files)
        for name, value in (
            ("files", table),
            ("objects", objects),
            ("partitions", partitions),
            ("chunk_size", chunk_size),
            ("dirs", dirs),
            ("loaded", loaded),
            ("extents", {} if extents is None else extents),
            ("chunking", chunking),
        ):
            object.__setattr__(self, name, value)

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return self.files.total_size

    def spans(self, partitions: Iterable[str] | None) -> list[tuple[int, int]]:
        """Index ranges of ``files`` of the given partitions and of every file outside ``data/``.

        Raises:
            PartitionNotFoundError: a partition whose pieces were not read (see ``loaded``).
        """
        if self.loaded is not None:
            missing = set(self.partitions if partitions is None else partitions)
            missing -= set(self.loaded)
            if missing:
                raise PartitionNotFoundError(
                    f"manifest read without partition {sorted(missing)[0]!r}"
                )
        files = self.files
        if partitions is None:
            return [(0, len(files))]
        lo, hi = files.span("data/")
        spans = [(0, lo), (hi, len(files))]
        spans += (files.span(f"data/{p}/", lo, hi) for p in set(partitions))
        return sorted(s for s in spans if s[1] > s[0])

    def select(self, partitions: Iterable[str] | None) -> Iterator[FileEntry]:
        """Files of the given partitions plus every file outside ``data/``.

        Raises:
            PartitionNotFoundError: a partition whose pieces were not read (see ``loaded``).
        """
        for lo, hi in self.spans(partitions):
            yield from self.files.entries(lo, hi)

    def to_json(self) -> bytes:
        """Canonical format-v1 bytes (one JSON document); a push writes v2 instead."""
        from . import v1  # v1 builds Manifests, so it imports this module first

        return v1.encode(self)

    @classmethod
    def parse(
        cls,
        data: bytes,
        pieces: Mapping[str, bytes] | None = None,
        partitions: Iterable[str] | None = None,
    ) -> Manifest:
        """Parse and validate a manifest read from a repository (format v1 or v2).

        Args:
            data: the manifest's bytes (for v2, its root).
            pieces: for v2, the stored bytes of the pieces the root lists, by id.
            partitions: for v2, decode only these partitions' pieces (and those of the
                files outside ``data/``); ``None``: all. The result's ``loaded`` says so.

        Raises:
            ManifestError: the bytes are not a valid manifest, or describe paths that
                are unsafe, duplicated, or inconsistent with their objects.
        """
        from . import v1, v2  # the readers build Manifests, so they import this module first

        root = v2.ManifestRoot.parse(data)
        try:
            with _gc.paused():
                if root.version == 1:
                    return v1.build(root.doc)
                return v2.build(root, pieces or {}, partitions)
        except (ManifestError, IntegrityError):
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise ManifestError(f"manifest is malformed ({exc})") from None
