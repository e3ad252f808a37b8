"""How a push stores its objects: compressed in frames when that pays, else as they are.

The file table of a push is laid out with every object ``identity``; this module
decides each object's encoding as its bytes are sent (:func:`encode`), learns how the
objects the repository holds already are stored (:func:`probe`), and gives the
manifest the push publishes (:func:`stored_manifest`): the same file table, each
object as stored. Its root names the all-``identity`` manifest's digest, so that the
same tree pushed again is recognised from the root alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import replace

import anyio

from ..errors import EtceteraError
from ..format import layout
from ..format.compression import FRAME_SIZE, SAMPLE, SAMPLES, compress, pays
from ..format.manifest import Manifest, ObjectEntry
from ..format.record import VersionRecord
from ..format.v2 import EncodedManifest, encode_manifest
from . import framed, manifests
from .fdpaths import open_file
from .transport import Transport


def encode(obj: ObjectEntry, data: bytearray, level: int) -> tuple[ObjectEntry, bytes | bytearray]:
    """``obj`` as it will be stored and the bytes to store (a worker thread).

    Compressed (zstd level ``level``) when a trial on samples says it pays and the
    whole saves it too; ``level`` 0 stores everything as it is.
    """
    if level <= 0 or not pays(data):
        return obj, data
    done = compress(data, level, FRAME_SIZE)
    if done is None:
        return obj, data
    stored, frames = done
    return obj._replace(encoding="zstd", frame_size=FRAME_SIZE, frames=frames), stored


def compressible(path: str) -> bool:
    """Whether the file at ``path`` (of any length) compresses well, from a trial on samples."""
    fd = open_file(path)
    try:
        size = os.fstat(fd).st_size
        step = max(0, size - SAMPLE) // (SAMPLES - 1)
        data = b"".join(os.pread(fd, SAMPLE, i * step) for i in range(SAMPLES))
    finally:
        os.close(fd)
    return pays(data)


async def probe(t: Transport, objects: list[ObjectEntry]) -> dict[str, ObjectEntry]:
    """The objects of ``objects`` the repository holds, as it holds them, by id.

    One HEAD each; an object whose stored size is not its logical size is framed, and
    its seek table is read (an object stored another way is missing: it is sent again).
    """
    found: dict[str, ObjectEntry] = {}

    async def one(obj: ObjectEntry) -> None:
        info = await t.head(layout.object_key(obj.id))
        if info is None:
            return
        known = await framed.framing_of(t, obj, info.size)
        if known is not None:
            found[obj.id] = known

    async with anyio.create_task_group() as tg:
        for obj in objects:
            tg.start_soon(one, obj)
    return found


async def is_tree(t: Transport, latest: VersionRecord | None, digest: str) -> bool:
    """Whether the latest version holds the tree whose all-identity manifest is ``digest``.

    Its own digest, or the ``identity`` its root names (its objects stored compressed).
    """
    if latest is None or latest.manifest == digest:
        return latest is not None
    with contextlib.suppress(EtceteraError):
        root = await manifests.read_root(t, latest.manifest)
        return bool(root.doc.get("identity") == digest)
    return False


def stored_manifest(
    manifest: Manifest, encoded: EncodedManifest, stored: Mapping[str, ObjectEntry]
) -> tuple[Manifest, EncodedManifest]:
    """``manifest`` with its objects as ``stored`` says (the others identity), encoded."""
    objects = {oid: stored.get(oid, obj) for oid, obj in manifest.objects.items()}
    if all(not o.frames for o in objects.values()):
        return manifest, encoded
    final = replace(manifest, objects=objects)
    return final, encode_manifest(final, identity=encoded.digest)
