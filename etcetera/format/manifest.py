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
from typing import Literal, NamedTuple

from ..errors import IntegrityError, ManifestError, PartitionNotFoundError
from . import _gc
from .chunkobjects import Extent
from .frames import stored_size
from .hashing import CHUNK_SIZE

FORMAT_VERSION = 3  # the format a push writes, and the newest one a pull reads
MANIFEST_KIND = "etcetera/manifest"

ObjectKind = Literal["pack", "blob", "chunks"]


class ObjectEntry(NamedTuple):
    """A stored object: a pack of small files, the blob of one large file, or chunks.

    Attributes:
        id: its id (the key's last part).
        kind: ``"pack"``, ``"blob"`` or ``"chunks"`` (chunks of large files, format v3).
        size: logical bytes (what it inflates to).
        encoding: ``"identity"`` (stored as it is) or ``"zstd"`` (in frames).
        frame_size: logical bytes of each frame but the last (``0``: identity).
        frames: stored bytes of each frame (``()``: identity).
    """

    id: str
    kind: ObjectKind
    size: int
    encoding: str = "identity"
    frame_size: int = 0
    frames: tuple[int, ...] = ()

    @property
    def stored_size(self) -> int:
        """Bytes the store holds: ``size``, or the frames and their seek table."""
        return stored_size(self.frames) if self.frames else self.size


class FileEntry(NamedTuple):
    """One regular file of the dataset tree (a named tuple: 10^5 of them are built per pull).

    Attributes:
        path: relative, ``/``-separated, NFC path.
        size: bytes.
        mode: permission bits (``0o644``, ``0o755`` ...).
        digest: format-v1 digest (see :mod:`etcetera.format.hashing`).
        object: id of the object holding the bytes; empty for an empty file.
        offset: where the bytes start in that object.
        chunks: chunk digests of a multi-chunk file, else empty.
    """

    path: str
    size: int
    mode: int
    digest: str
    object: str = ""
    offset: int = 0
    chunks: tuple[str, ...] = ()

    @property
    def partition(self) -> str | None:
        """Partition name for files under ``data/``, else ``None``."""
        if self.path.startswith("data/"):
            return self.path.split("/", 2)[1]
        return None


@dataclass(frozen=True, slots=True)
class Manifest:
    """The file table of one dataset version.

    Attributes:
        files: regular files, sorted by path.
        objects: objects referenced by ``files``, by id.
        partitions: names of all partition folders, including empty ones, sorted.
        chunk_size: the hash chunk size the digests were made with.
        dirs: empty folders outside ``data/`` (they travel too), sorted.
        loaded: ``None`` when ``files`` is the whole table; else the partitions whose
            files it holds (with the files outside ``data/``): a v2 manifest read for a
            partial pull decodes only their pieces.
        extents: where the chunks of each content-chunked file are (format v3), by
            path; such a file has no object of its own (``object`` is empty).
    """

    files: tuple[FileEntry, ...]
    objects: dict[str, ObjectEntry]
    partitions: tuple[str, ...]
    chunk_size: int = CHUNK_SIZE
    dirs: tuple[str, ...] = ()
    loaded: tuple[str, ...] | None = field(default=None, compare=False)
    extents: dict[str, tuple[Extent, ...]] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    def select(self, partitions: Iterable[str] | None) -> Iterator[FileEntry]:
        """Files of the given partitions plus every file outside ``data/``.

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
        if partitions is None:
            yield from self.files
            return
        wanted = set(partitions)
        for f in self.files:
            part = f.partition
            if part is None or part in wanted:
                yield f

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
