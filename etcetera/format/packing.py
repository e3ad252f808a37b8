"""Deterministic packing of small files (see ``docs/format.md``).

Files are grouped per partition (files outside ``data/`` form two groups: those sorting
before ``data/`` and those after it) and walked in path order. A pack is cut after a
file when a hash of the file's *path* falls under a threshold proportional to the file's
size, so cut points depend on paths, not on contents or on what came before: a changed
file re-sends its own pack, an added or removed file changes at most the pack it lands
in and the next.
Packs are held between a quarter of and twice the target size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

from .manifest import FileEntry, Manifest, ObjectEntry

_PACK_TAG = b"etcetera-pack-v1\0"


class LocalFile(NamedTuple):
    """A hashed file of a local tree, before packing."""

    path: str
    size: int
    mode: int
    digest: str
    chunks: tuple[str, ...] = ()


def pack_id(members: Iterable[LocalFile]) -> str:
    """Id of a pack: a hash of its members' digests and sizes, in order.

    Computable without reading the bytes again, so an unchanged pack is recognised
    from the hash cache alone.
    """
    packed = bytes.fromhex("".join(f"{f.digest}{f.size:016x}" for f in members))
    return hashlib.sha256(_PACK_TAG + packed).hexdigest()


def _cuts_after(path: str, size: int, target: int) -> bool:
    weight = max(size, 512)
    if weight >= target:
        return True
    h = int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "big")
    return h < (weight << 64) // target


_entry = tuple.__new__  # NamedTuple's own __new__ is Python-level: 10^5 calls per push


def _group(path: str) -> str:
    """Packs never span groups: each partition; outside data/, what sorts before and after it.

    So a group laid out alone (by a worker of a distributed push) packs as in the whole tree.
    """
    if path.startswith("data/"):
        return path.split("/", 2)[1]
    return "" if path < "data/" else "/after"


def build_manifest(
    files: Iterable[LocalFile],
    partitions: Iterable[str],
    *,
    pack_size: int,
    pack_threshold: int,
    chunk_size: int,
    dirs: Iterable[str] = (),
) -> Manifest:
    """Lay files out into packs and blobs: the manifest of a tree (a pure function)."""
    ordered = sorted(files, key=lambda f: f.path)
    objects: dict[str, ObjectEntry] = {}
    entries: dict[str, FileEntry] = {}
    pending: list[LocalFile] = []
    pending_size = 0

    def flush() -> None:
        nonlocal pending, pending_size
        if not pending:
            return
        pid = pack_id(pending)
        objects[pid] = ObjectEntry(pid, "pack", pending_size)
        offset = 0
        for m in pending:
            entries[m.path] = _entry(
                FileEntry, (m.path, m.size, m.mode, m.digest, pid, offset, m.chunks)
            )
            offset += m.size
        pending, pending_size = [], 0

    group = None
    for f in ordered:
        g = _group(f.path)
        if g != group:
            flush()
            group = g
        if f.size == 0:
            entries[f.path] = FileEntry(f.path, 0, f.mode, f.digest)
        elif f.size >= pack_threshold:
            objects[f.digest] = ObjectEntry(f.digest, "blob", f.size)
            entries[f.path] = FileEntry(f.path, f.size, f.mode, f.digest, f.digest, 0, f.chunks)
        else:
            pending.append(f)
            pending_size += f.size
            if pending_size >= 2 * pack_size or (
                pending_size >= pack_size // 4 and _cuts_after(f.path, f.size, pack_size)
            ):
                flush()
    flush()
    return Manifest(
        tuple(entries[f.path] for f in ordered),
        objects,
        tuple(sorted(set(partitions))),
        chunk_size,
        tuple(sorted(set(dirs))),
    )
