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
import operator
from collections.abc import Iterable
from typing import NamedTuple

from . import _gc
from .manifest import FileTable, Manifest, ObjectEntry

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


_PATH = operator.itemgetter(0)


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
    with _gc.paused():
        return _build(files, partitions, pack_size, pack_threshold, chunk_size, dirs)


def _build(
    files: Iterable[LocalFile],
    partitions: Iterable[str],
    pack_size: int,
    pack_threshold: int,
    chunk_size: int,
    dirs: Iterable[str],
) -> Manifest:
    ordered = sorted(files, key=_PATH)
    objects: dict[str, ObjectEntry] = {}
    # The object and offset of each file in path order (a pack's members are placed when
    # it is cut); the other columns are the files' own: no entry object per file.
    oids = [""] * len(ordered)
    offsets = [0] * len(ordered)
    pending: list[int] = []
    pending_size = 0
    quarter, most = pack_size // 4, 2 * pack_size

    def flush() -> None:
        nonlocal pending, pending_size
        if not pending:
            return
        members = [ordered[i] for i in pending]
        pid = pack_id(members)
        objects[pid] = ObjectEntry(pid, "pack", pending_size)
        offset = 0
        for i, m in zip(pending, members, strict=True):
            oids[i] = pid
            offsets[i] = offset
            offset += m.size
        pending, pending_size = [], 0

    group: str | None = None
    prefix = "\x00"  # the current partition's "data/NAME/": no group check inside it
    for i, f in enumerate(ordered):
        path, size = f.path, f.size
        if not path.startswith(prefix):
            g = _group(path)
            if g != group:
                flush()
                group = g
            prefix = f"data/{g}/" if path.startswith("data/") else "\x00"
        if size == 0:
            pass  # no object, offset 0
        elif size >= pack_threshold:
            objects[f.digest] = ObjectEntry(f.digest, "blob", size)
            oids[i] = f.digest
        else:
            pending.append(i)
            pending_size += size
            if pending_size >= most or (
                pending_size >= quarter and _cuts_after(path, size, pack_size)
            ):
                flush()
    flush()
    paths, sizes, modes, digests, chunks = zip(*ordered, strict=True) if ordered else [()] * 5
    table = FileTable.of_columns(list(paths), sizes, modes, digests, oids, offsets, chunks)
    return Manifest(
        table,
        objects,
        tuple(sorted(set(partitions))),
        chunk_size,
        tuple(sorted(set(dirs))),
    )
