"""Manifests and version records of format v1 (see ``docs/format.md``).

A manifest is the file table of one dataset tree: a pure function of the tree, so
that the same tree always gives the same bytes and the same manifest digest. A
version record (``refs/NAME/K``) names the manifest and says who pushed it and when.

Everything parsed here comes from a shared repository and is treated as hostile:
:func:`Manifest.parse` refuses anything that could write outside a dataset folder
or describe an impossible tree.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..errors import ManifestError
from .hashing import CHUNK_SIZE, combine

FORMAT_VERSION = 1
MANIFEST_KIND = "etcetera/manifest"
VERSION_KIND = "etcetera/version"
MAX_SIZE = 1 << 50  # 1 PiB: anything larger in a manifest is a lie
MAX_PATH = 4096
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ObjectKind = Literal["pack", "blob"]


class ObjectEntry(NamedTuple):
    """A stored object: a pack of small files or the blob of one large file."""

    id: str
    kind: ObjectKind
    size: int
    encoding: str = "identity"


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


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"invalid dataset name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_path(path: object) -> str:
    """Return ``path`` if it is a safe relative dataset path, else raise ``ManifestError``."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"manifest path {path!r} is not a non-empty string")
    if len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise ManifestError(f"manifest path {path!r} has forbidden characters or length")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ManifestError(f"manifest path {path!r} is absolute")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"manifest path {path!r} climbs out or has empty segments")
    if unicodedata.normalize("NFC", path) != path:
        raise ManifestError(f"manifest path {path!r} is not NFC-normalised")
    return path


def find_clashes(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of paths equal once case-folded and NFC-normalised, or a file under a file."""
    originals = list(paths)
    if not originals:
        return []
    joined = "\x00".join(originals)
    if not joined.isascii():
        joined = unicodedata.normalize("NFC", joined)
    folded = joined.casefold().split("\x00")
    seen: dict[str, str] = dict(zip(folded, originals, strict=True))
    clashes: list[tuple[str, str]] = []
    if len(seen) != len(originals):
        first: dict[str, str] = {}
        for key, p in zip(folded, originals, strict=True):
            if key in first:
                clashes.append((first[key], p))
            else:
                first[key] = p
    # A file where another path needs a folder: look up each distinct parent folder.
    for parent in {key.rpartition("/")[0] for key in seen}:
        i = len(parent)
        while i > 0:
            hit = seen.get(parent[:i])
            if hit is not None:
                clashes.append((hit, parent))
            i = parent.rfind("/", 0, i)
    return clashes


_DRIVE = re.compile(r"\x00[A-Za-z]:")
_HEX_LIST = re.compile(r"(?:[0-9a-f]{64}\x00)*[0-9a-f]{64}")


def _paths_look_safe(joined: str) -> bool:
    wrapped = f"\x00{joined}\x00"
    if any(bad in wrapped for bad in ("\x00/", "\x00\x00", "/\x00", "//", "\\")):
        return False
    if ":" in wrapped and _DRIVE.search(wrapped):
        return False
    slashed = wrapped.replace("\x00", "/")
    return "/./" not in slashed and "/../" not in slashed


def check_paths(paths: list[str]) -> None:
    """Check many paths at once (a few C-speed scans); raise ``ManifestError`` on a bad one."""
    if not paths:
        return
    if not all(type(p) is str for p in paths):
        raise ManifestError("manifest has a path that is not a string")
    joined = "\x00".join(paths)
    if (
        joined.count("\x00") != len(paths) - 1
        or not _paths_look_safe(joined)
        or max(map(len, paths)) > MAX_PATH
        or not (joined.isascii() or unicodedata.is_normalized("NFC", joined))
    ):
        for p in paths:
            check_path(p)
        raise ManifestError("manifest has an invalid path")


@dataclass(frozen=True, slots=True)
class Manifest:
    """The file table of one dataset version.

    Attributes:
        files: regular files, sorted by path.
        objects: objects referenced by ``files``, by id.
        partitions: names of all partition folders, including empty ones, sorted.
        chunk_size: the hash chunk size the digests were made with.
        dirs: empty folders outside ``data/`` (they travel too), sorted.
    """

    files: tuple[FileEntry, ...]
    objects: dict[str, ObjectEntry]
    partitions: tuple[str, ...]
    chunk_size: int = CHUNK_SIZE
    dirs: tuple[str, ...] = ()

    @property
    def total_size(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files)

    def select(self, partitions: Iterable[str] | None) -> Iterator[FileEntry]:
        """Files of the given partitions plus every file outside ``data/``."""
        if partitions is None:
            yield from self.files
            return
        wanted = set(partitions)
        for f in self.files:
            part = f.partition
            if part is None or part in wanted:
                yield f

    def to_json(self) -> bytes:
        """Canonical bytes: the same manifest always serialises identically."""
        ids = sorted(self.objects)
        index = {oid: i for i, oid in enumerate(ids)}
        doc: dict[str, Any] = {
            "format": MANIFEST_KIND,
            "version": FORMAT_VERSION,
            "chunk_size": self.chunk_size,
            "partitions": list(self.partitions),
            "dirs": list(self.dirs),
            "objects": [[o.id, o.kind, o.size, o.encoding] for o in (self.objects[i] for i in ids)],
            "files": [
                [f.path, f.size, f.mode, f.digest, index[f.object] if f.object else -1, f.offset]
                + ([list(f.chunks)] if f.chunks else [])
                for f in self.files
            ],
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse and validate manifest bytes from a repository.

        Raises:
            ManifestError: the bytes are not a valid format-v1 manifest, or describe
                paths that are unsafe, duplicated, or inconsistent with their objects.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_KIND:
            raise ManifestError("not an etcetera manifest")
        version = doc.get("version")
        if not isinstance(version, int) or version < 1:
            raise ManifestError(f"manifest has an invalid format version {version!r}")
        if version > FORMAT_VERSION:
            raise ManifestError(
                f"manifest is format version {version}, newer than this etcetera "
                f"understands ({FORMAT_VERSION}): upgrade etcetera"
            )
        try:
            return _build(doc)
        except ManifestError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ManifestError(f"manifest is malformed ({exc})") from None


_new_entry = tuple.__new__  # skips NamedTuple's Python-level __new__ (10^5 calls per manifest)


def _int(value: object, what: str, lo: int = 0, hi: int = MAX_SIZE) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ManifestError(f"manifest {what} {value!r} is out of range")
    return value


def _hex(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(f"manifest {what} {value!r} is not a SHA-256 hex digest")
    return value


def _build(doc: dict[str, Any]) -> Manifest:
    chunk_size = _int(doc["chunk_size"], "chunk_size", 1, 1 << 34)
    partitions = doc["partitions"]
    if not isinstance(partitions, list) or not partitions:
        raise ManifestError("manifest has no partitions")
    for p in partitions:
        if not isinstance(p, str):
            raise ManifestError(f"manifest partition {p!r} is not a name")
        check_path(p)
        if "/" in p:
            raise ManifestError(f"manifest partition {p!r} is not a single folder name")
    if sorted(set(partitions)) != partitions:
        raise ManifestError("manifest partitions are not sorted and unique")
    objects: list[ObjectEntry] = []
    for raw in doc["objects"]:
        oid, kind, size, encoding = raw
        if kind not in ("pack", "blob"):
            raise ManifestError(f"manifest object kind {kind!r} is unknown")
        if encoding != "identity":
            raise ManifestError(
                f"manifest object encoding {encoding!r} is unknown: upgrade etcetera"
            )
        objects.append(
            ObjectEntry(_hex(oid, "object id"), kind, _int(size, "object size"), encoding)
        )
    by_id = {o.id: o for o in objects}
    if len(by_id) != len(objects):
        raise ManifestError("manifest lists an object twice")
    raw_files = doc["files"]
    if not isinstance(raw_files, list):
        raise ManifestError("manifest files are malformed")
    for raw in raw_files:
        if type(raw) is not list or len(raw) not in (6, 7):
            raise ManifestError(f"manifest file entry {raw!r} is malformed")
    paths = [raw[0] for raw in raw_files]
    check_paths(paths)
    # C-speed: timsort of a sorted list is one linear pass.
    if paths != sorted(paths) or len(set(paths)) != len(paths):
        bad = next(b for a, b in itertools.pairwise(paths) if a >= b)
        raise ManifestError(f"manifest paths are not sorted and unique at {bad!r}")
    digests = [raw[3] for raw in raw_files]
    if digests and (
        not all(type(d) is str for d in digests) or not _HEX_LIST.fullmatch("\x00".join(digests))
    ):
        for raw in raw_files:
            _hex(raw[3], f"digest of {raw[0]!r}")
    files: list[FileEntry] = []
    part_set = set(partitions)
    n_objects = len(objects)
    for raw in raw_files:
        path, size, mode, digest, idx, offset = raw[:6]
        if not (
            type(size) is int
            and type(mode) is int
            and type(idx) is int
            and type(offset) is int
            and 0 <= size <= MAX_SIZE
            and 0 <= mode <= 0o777
            and -1 <= idx < n_objects
            and 0 <= offset <= MAX_SIZE
        ):
            _int(size, f"size of {path!r}")
            _int(mode, f"mode of {path!r}", 0, 0o777)
            _int(idx, f"object of {path!r}", -1, n_objects - 1)
            _int(offset, f"offset of {path!r}")
        chunks: tuple[str, ...] = ()
        if len(raw) == 7:
            if not isinstance(raw[6], list):
                raise ManifestError(f"manifest chunks of {path!r} are malformed")
            chunks = tuple(_hex(c, f"chunk of {path!r}") for c in raw[6])
        if path.startswith("data/"):
            parts = path.split("/", 2)
            if len(parts) < 3:
                raise ManifestError(f"manifest file {path!r} sits in data/ outside a partition")
            if parts[1] not in part_set:
                raise ManifestError(f"manifest file {path!r} is in an unlisted partition")
        oid = ""
        if idx >= 0:
            obj = objects[idx]
            oid = obj.id
            if offset + size > obj.size:
                raise ManifestError(f"manifest file {path!r} runs past the end of its object")
            if obj.kind == "blob" and (obj.id != digest or obj.size != size or offset):
                raise ManifestError(f"manifest blob of {path!r} does not match the file")
        elif size:
            raise ManifestError(f"manifest file {path!r} has bytes but no object")
        if size > chunk_size:
            expected = -(-size // chunk_size)
            if len(chunks) != expected or combine([bytes.fromhex(c) for c in chunks]) != digest:
                raise ManifestError(f"manifest chunks of {path!r} do not match its digest")
        elif chunks:
            raise ManifestError(f"manifest file {path!r} is one chunk but lists chunks")
        files.append(_new_entry(FileEntry, (path, size, mode, digest, oid, offset, chunks)))
    clashes = find_clashes(paths)
    if clashes:
        a, b = clashes[0]
        raise ManifestError(f"manifest paths {a!r} and {b!r} clash")
    dirs = doc.get("dirs", [])
    if not isinstance(dirs, list):
        raise ManifestError("manifest dirs are malformed")
    for d in dirs:
        check_path(d)
        if d == "data" or d.startswith("data/"):
            raise ManifestError(f"manifest folder {d!r} sits inside data/")
    if find_clashes([*(f.path for f in files), *dirs]):
        raise ManifestError("manifest folders clash with files")
    return Manifest(tuple(files), by_id, tuple(partitions), chunk_size, tuple(sorted(set(dirs))))


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """``refs/NAME/K``: version K of NAME is the manifest with this digest."""

    name: str
    number: int
    manifest: str
    created: str = ""
    pushed_by: str = ""
    tool: str = ""
    files: int = 0
    size: int = 0

    def to_json(self) -> bytes:
        """Bytes of the record."""
        doc = {
            "format": VERSION_KIND,
            "version": FORMAT_VERSION,
            "name": self.name,
            "number": self.number,
            "manifest": self.manifest,
            "created": self.created,
            "pushed_by": self.pushed_by,
            "tool": self.tool,
            "files": self.files,
            "size": self.size,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def parse(cls, data: bytes, name: str, number: int) -> VersionRecord:
        """Parse a record read from ``refs/NAME/NUMBER`` and check it names itself."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ManifestError(f"version record {name}@{number} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != VERSION_KIND:
            raise ManifestError(f"version record {name}@{number} is not an etcetera record")
        if isinstance(doc.get("version"), int) and doc["version"] > FORMAT_VERSION:
            raise ManifestError(
                f"version record {name}@{number} is a newer format: upgrade etcetera"
            )
        if doc.get("name") != name or doc.get("number") != number:
            raise ManifestError(f"version record {name}@{number} names another version")
        manifest = _hex(doc.get("manifest"), "version record manifest")

        def text(key: str) -> str:
            value = doc.get(key, "")
            return value if isinstance(value, str) else ""

        def count(key: str) -> int:
            value = doc.get(key, 0)
            return value if isinstance(value, int) and value >= 0 else 0

        return cls(
            name,
            number,
            manifest,
            text("created"),
            text("pushed_by"),
            text("tool"),
            count("files"),
            count("size"),
        )
