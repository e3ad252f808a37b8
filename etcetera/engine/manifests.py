"""Manifests in a repository: read (every byte verified, kept in a local cache) and written."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.to_thread

from ..errors import (
    IntegrityError,
    ManifestError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from ..format import layout
from ..format.hashing import sha256_hex
from ..format.manifest import Manifest
from ..format.v2 import EncodedManifest, ManifestRoot, PieceRef, wanted_pieces
from .transport import Transport

MAX_MANIFEST = 4 << 30  # a v1 manifest of 10^7 files is ~1.3 GB of JSON


class ManifestCache(Protocol):
    """Where fetched manifest roots and pieces are kept (the local home), by key name."""

    def get(self, name: str) -> bytes | None:
        """Bytes kept under ``name``, if any (unverified)."""

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` under ``name``."""

    def drop(self, name: str) -> None:
        """Forget ``name`` (its bytes did not verify)."""


async def read_manifest(
    t: Transport,
    digest: str,
    cache: ManifestCache | None = None,
    partitions: Sequence[str] | None = None,
) -> Manifest:
    """Fetch a manifest (root and pieces), check every byte against its name, parse it.

    Parsing (10^7 entries take seconds) runs in a worker thread. With a ``cache``,
    roots and pieces are read from it first and what was fetched is kept in it. With
    ``partitions``, only their pieces (and those of the files outside ``data/``) are
    fetched and decoded (``Manifest.loaded``).
    """
    root, from_cache = await _read_root(t, digest, cache)
    head = await anyio.to_thread.run_sync(ManifestRoot.parse, root)
    stored: dict[str, bytes] = {}
    fetched: list[str] = []

    async def piece(ref: PieceRef) -> None:
        key = layout.piece_key(ref.id)
        kept = await anyio.to_thread.run_sync(cache.get, ref.id) if cache else None
        if kept is not None:
            stored[ref.id] = kept
            return
        try:
            stored[ref.id] = await t.read(key, MAX_MANIFEST)
        except ObjectNotFoundError:
            raise ManifestError(
                f"manifest {digest} is missing its piece {ref.id} in {t.backend.describe()}"
            ) from None
        fetched.append(ref.id)

    needed = wanted_pieces(head, partitions)
    async with anyio.create_task_group() as tg:
        for ref in needed:
            tg.start_soon(piece, ref)
    try:
        manifest = await anyio.to_thread.run_sync(Manifest.parse, root, stored, partitions)
    except IntegrityError:
        if cache is None or (len(fetched) == len(needed) and not from_cache):
            raise
        # A kept copy went bad on disk: forget every kept copy and fetch once more.
        for name in (digest, *(r.id for r in needed)):
            cache.drop(name)
        return await read_manifest(t, digest, None, partitions)
    if cache is not None:

        def keep() -> None:
            if not from_cache:
                cache.put(digest, root)
            for pid in fetched:
                cache.put(pid, stored[pid])

        await anyio.to_thread.run_sync(keep)
    return manifest


async def read_root(t: Transport, digest: str, cache: ManifestCache | None = None) -> ManifestRoot:
    """The root of a manifest (its header and piece list), verified against its name."""
    data, from_cache = await _read_root(t, digest, cache)
    root = await anyio.to_thread.run_sync(ManifestRoot.parse, data)
    if cache is not None and not from_cache:
        await anyio.to_thread.run_sync(cache.put, digest, data)
    return root


async def _read_root(t: Transport, digest: str, cache: ManifestCache | None) -> tuple[bytes, bool]:
    if cache is not None:
        kept = await anyio.to_thread.run_sync(cache.get, digest)
        if kept is not None and sha256_hex(kept) == digest:
            return kept, True
    try:
        data = await t.read(layout.manifest_key(digest), MAX_MANIFEST)
    except ObjectNotFoundError:
        raise ManifestError(f"manifest {digest} is missing from {t.backend.describe()}") from None
    if sha256_hex(data) != digest:
        raise IntegrityError(f"manifest {digest} does not match its digest")
    return data, False


async def write_pieces(t: Transport, encoded: EncodedManifest) -> None:
    """Upload a manifest's pieces (content-addressed: existing ones stay)."""
    async with anyio.create_task_group() as tg:
        for pid, data in encoded.pieces.items():
            tg.start_soon(_put_once, t, layout.piece_key(pid), data)


async def write_root(t: Transport, digest: str, root: bytes) -> None:
    """Upload a manifest's root, after its pieces."""
    await _put_once(t, layout.manifest_key(digest), root)


async def write_manifest(t: Transport, encoded: EncodedManifest) -> None:
    """Upload a manifest's pieces, then its root."""
    await write_pieces(t, encoded)
    await write_root(t, encoded.digest, encoded.root)


async def _put_once(t: Transport, key: str, data: bytes) -> None:
    # Content-addressed: when it is already there, it holds the same bytes.
    with contextlib.suppress(PreconditionFailedError):
        await t.put(key, data, if_absent=True)
