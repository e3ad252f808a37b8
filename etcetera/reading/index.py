"""From a path to its manifest entry, reading only the pieces a lookup needs.

A v2 root lists its pieces in path order and, since ``firsts`` was added, the first
path of each: a lookup is then a binary search of the root and one piece. A root
without ``firsts`` is searched piece by piece (a binary search over the pieces of the
path's group, each piece read once). A v1 manifest is one document, read whole.
Every piece is checked as a pull checks it (its digest, its root entry, the hostile
input checks of :class:`~etcetera.format.validate.Tables`).
"""

from __future__ import annotations

import bisect
import operator

import anyio
import anyio.to_thread
import zstandard

from ..api.session import first_error
from ..engine import manifests
from ..engine.manifests import ManifestCache
from ..engine.transport import Transport
from ..errors import IntegrityError, ManifestError, ObjectNotFoundError
from ..format import layout, pieces
from ..format.chunkobjects import Extent
from ..format.manifest import FileEntry, Manifest, ObjectEntry
from ..format.v2 import ManifestRoot, PieceRef, check_piece, stored_limit, unpack_piece
from ..format.validate import Tables, check_header
from .chunks import ChunkMap

_path = operator.attrgetter("path")


def group_of(path: str) -> str | None:
    """The group (partition, or ``""``) a file path belongs to; ``None``: ``data/x`` itself."""
    if not path.startswith("data/"):
        return ""
    parts = path.split("/", 2)
    return parts[1] if len(parts) == 3 else None


class Index:
    """The file table of one manifest, its pieces read on demand and kept.

    Attributes:
        digest: the manifest's digest.
        root: its root.
        chunk_size: the hash chunk size of its digests.
        partitions: every partition, empty ones too.
        dirs: empty folders outside ``data/``.
        objects: the objects of the pieces read so far, by id.
        extents: the chunk places of the content-chunked files of those pieces, by path.
    """

    def __init__(
        self, t: Transport, digest: str, root: ManifestRoot, cache: ManifestCache | None
    ) -> None:
        self.t = t
        self.digest = digest
        self.root = root
        self.cache = cache
        try:
            self.chunk_size, self.partitions, self.dirs = check_header(root.doc)
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"manifest is malformed ({exc})") from None
        self.objects: dict[str, ObjectEntry] = {}
        self.extents: dict[str, tuple[Extent, ...]] = {}
        self._maps: dict[str, ChunkMap] = {}
        self._pieces: dict[int, list[FileEntry]] = {}
        self._locks: dict[int, anyio.Lock] = {}
        self._count = len(root.pieces) if root.version >= 2 else 1

    # -- pieces ---------------------------------------------------------------------------
    async def piece(self, i: int) -> list[FileEntry]:
        """The files of piece ``i`` (read, checked and kept on first use)."""
        done = self._pieces.get(i)
        if done is not None:
            return done
        lock = self._locks.setdefault(i, anyio.Lock())
        async with lock:
            if i not in self._pieces:
                self._pieces[i] = await self._load(i)
        return self._pieces[i]

    async def _load(self, i: int) -> list[FileEntry]:
        if self.root.version < 2:
            whole: Manifest = await manifests.read_manifest(self.t, self.digest, self.cache)
            self._merge(whole.objects, whole.extents)
            return list(whole.files)
        ref = self.root.pieces[i]
        raw = None
        if self.cache is not None:
            kept = await anyio.to_thread.run_sync(self.cache.get, ref.id)
            if kept is not None:
                try:
                    raw = await anyio.to_thread.run_sync(_unpack, ref, kept)
                except IntegrityError:
                    await anyio.to_thread.run_sync(self.cache.drop, ref.id)
        if raw is None:
            try:
                stored = await self.t.read(layout.piece_key(ref.id), stored_limit(ref))
            except ObjectNotFoundError:
                raise ManifestError(
                    f"manifest {self.digest} is missing its piece {ref.id} "
                    f"in {self.t.backend.describe()}"
                ) from None
            raw = await anyio.to_thread.run_sync(_unpack, ref, stored)
            if self.cache is not None:
                await anyio.to_thread.run_sync(self.cache.put, ref.id, stored)
        first = self.root.firsts[i] if self.root.firsts else None
        files, objects, extents = await anyio.to_thread.run_sync(self._check, i, raw, first)
        self._merge(objects, extents)
        return files

    def _check(
        self, i: int, raw: bytes, first: str | None
    ) -> tuple[list[FileEntry], dict[str, ObjectEntry], dict[str, tuple[Extent, ...]]]:
        ref = self.root.pieces[i]
        cols = pieces.decode(raw)
        check_piece(ref, cols, first)
        tables = Tables(self.chunk_size, self.partitions)
        tables.add(cols, trusted_types=True)
        if sum(cols.sizes) != ref.size:
            raise ManifestError(f"manifest piece {ref.id} does not match its root entry")
        return tables.files, tables.objects, tables.extents

    def _merge(
        self, objects: dict[str, ObjectEntry], extents: dict[str, tuple[Extent, ...]]
    ) -> None:
        for oid, obj in objects.items():
            known = self.objects.setdefault(oid, obj)
            if known != obj:  # one object, two framings: which stored bytes to believe?
                raise ManifestError(f"manifest object {oid} is listed twice, differently")
        self.extents.update(extents)

    def chunk_map(self, entry: FileEntry) -> ChunkMap | None:
        """Where a content-chunked file's bytes are; ``None`` for a file with a place of its own.

        Raises:
            ManifestError: a file with neither a place nor chunk places.
        """
        if entry.object or not entry.size:
            return None
        found = self._maps.get(entry.path)
        if found is None:
            extents = self.extents.get(entry.path)
            if extents is None:
                raise ManifestError(f"manifest file {entry.path!r} has no place of its bytes")
            found = self._maps[entry.path] = ChunkMap(entry, extents)
        return found

    async def pieces_of(self, indexes: list[int]) -> list[list[FileEntry]]:
        """The files of several pieces, read concurrently, in the order asked.

        Through the transport's worker pool: a root may list 10^5 pieces.
        """

        async def one(i: int) -> None:
            await self.piece(i)

        try:
            await self.t.each(indexes, one)
        except BaseExceptionGroup as group:
            error = first_error(group)
            if error is None:
                raise
            raise error from None
        return [self._pieces[i] for i in indexes]

    # -- lookups --------------------------------------------------------------------------
    def _group_pieces(self, group: str) -> list[int]:
        return [i for i, r in enumerate(self.root.pieces) if r.group == group]

    async def locate(self, path: str) -> tuple[list[FileEntry], int]:
        """The files of the piece where ``path`` is or would be, and its place there."""
        if self.root.version < 2:
            whole = await self.piece(0)
            return whole, bisect.bisect_left(whole, path, key=_path)
        if self.root.firsts is not None:
            at = max(0, bisect.bisect_right(self.root.firsts, path) - 1)
            if not self.root.pieces:
                return [], 0
            found = await self.piece(at)
            return found, bisect.bisect_left(found, path, key=_path)
        group = group_of(path)
        candidates = self._group_pieces(group) if group is not None else []
        lo, hi = 0, len(candidates)
        files: list[FileEntry] = []
        while lo < hi:
            mid = (lo + hi) // 2
            files = await self.piece(candidates[mid])
            if path < files[0].path:
                hi = mid
            elif path > files[-1].path:
                lo = mid + 1
            else:
                break
        return files, bisect.bisect_left(files, path, key=_path)

    async def near(self, path: str) -> list[FileEntry]:
        """Files around where ``path`` would be: its piece, and the next (for messages)."""
        files, at = await self.locate(path)
        firsts = self.root.firsts if self.root.version >= 2 else None
        if firsts and at == len(files):
            following = bisect.bisect_right(firsts, path)
            if following < len(firsts):
                return [*files, *await self.piece(following)]
        return files

    async def find(self, path: str) -> FileEntry | None:
        """The entry of a file path, or ``None``."""
        files, at = await self.locate(path)
        if at < len(files) and files[at].path == path:
            return files[at]
        return None

    async def under(self, folder: str) -> list[FileEntry]:
        """Every file below ``folder`` (``""``: all files), in path order."""
        key = f"{folder}/" if folder else ""
        if self.root.version < 2:
            chosen = [0]
        elif not folder:
            chosen = list(range(self._count))
        elif self.root.firsts is not None:
            firsts = self.root.firsts
            lo = max(0, bisect.bisect_right(firsts, key) - 1)
            hi = bisect.bisect_left(firsts, f"{folder}0")  # "0" sorts right after "/"
            chosen = list(range(lo, max(hi, lo + 1))) if firsts else []
        else:
            group = group_of(key)
            if folder == "data":
                chosen = [i for i, r in enumerate(self.root.pieces) if r.group]
            else:
                chosen = self._group_pieces(group or "")
        out: list[FileEntry] = []
        for files in await self.pieces_of(chosen):
            lo = bisect.bisect_left(files, key, key=_path)
            hi = bisect.bisect_left(files, f"{folder}0", key=_path) if folder else len(files)
            out += files[lo:hi]
        return out


def _unpack(ref: PieceRef, data: bytes) -> bytes:
    return unpack_piece(zstandard.ZstdDecompressor(), ref, data)
