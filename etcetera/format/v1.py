"""Format v1 of a manifest: one canonical JSON document (see ``docs/format.md``).

Pushes write format v2 (:mod:`etcetera.format.v2`); v1 manifests are still read, from
repositories pushed before it, and written by tests and benchmarks. A v1 document lists
every object, then every file as a row pointing into that object list: the same shape
as one v2 piece, so it is checked by the same :class:`~etcetera.format.validate.Tables`.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ManifestError
from . import pieces
from .manifest import MANIFEST_KIND, Manifest
from .validate import Tables, check_header


def encode(manifest: Manifest) -> bytes:
    """Canonical format-v1 bytes (one JSON document); a push writes v2 instead."""
    ids = sorted(manifest.objects)
    index = {oid: i for i, oid in enumerate(ids)}
    doc: dict[str, Any] = {
        "format": MANIFEST_KIND,
        "version": 1,
        "chunk_size": manifest.chunk_size,
        "partitions": list(manifest.partitions),
        "dirs": list(manifest.dirs),
        "objects": [[o.id, o.kind, o.size, o.encoding] for o in (manifest.objects[i] for i in ids)],
        "files": [
            [f.path, f.size, f.mode, f.digest, index[f.object] if f.object else -1, f.offset]
            + ([list(f.chunks)] if f.chunks else [])
            for f in manifest.files
        ],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def build(doc: dict[str, Any]) -> Manifest:
    """The checked manifest of a v1 document (parsed by ``ManifestRoot.parse``).

    Called by :meth:`Manifest.parse`, which also turns the errors of a malformed
    document (``KeyError``, ``TypeError`` ...) into ``ManifestError``.
    """
    chunk_size, partitions, dirs = check_header(doc)
    raw_objects = doc["objects"]
    raw_files = doc["files"]
    if not isinstance(raw_objects, list) or not isinstance(raw_files, list):
        raise ManifestError("manifest files are malformed")
    for raw in raw_objects:
        if type(raw) is not list or len(raw) != 4:
            raise ManifestError(f"manifest object entry {raw!r} is malformed")
        if raw[1] not in ("pack", "blob"):
            raise ManifestError(f"manifest object kind {raw[1]!r} is unknown")
        if raw[3] != "identity":
            raise ManifestError(f"manifest object encoding {raw[3]!r} is unknown: upgrade etcetera")
    for raw in raw_files:
        if type(raw) is not list or len(raw) not in (6, 7):
            raise ManifestError(f"manifest file entry {raw!r} is malformed")
        if len(raw) == 7 and not isinstance(raw[6], list):
            raise ManifestError(f"manifest chunks of {raw[0]!r} are malformed")
    # v1 lists objects in id order with one global index: the same shape as one piece.
    cols = pieces.Columns(
        "",
        [o[0] for o in raw_objects],
        [o[1] for o in raw_objects],
        [o[2] for o in raw_objects],
        [f[0] for f in raw_files],
        [f[1] for f in raw_files],
        [f[2] for f in raw_files],
        [f[4] for f in raw_files],
        [f[5] for f in raw_files],
        [f[3] for f in raw_files],
        [tuple(f[6]) if len(f) == 7 else () for f in raw_files],
    )
    tables = Tables(chunk_size, partitions)
    tables.add(cols, trusted_types=False)
    return tables.finish(partitions, dirs)
