"""The rows of a manifest: a stored object, and a file as :class:`~.table.FileTable` gives it."""

from __future__ import annotations

from typing import Literal, NamedTuple

from .frames import stored_size

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
    """One regular file of the dataset tree, as :class:`FileTable` hands it out.

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
