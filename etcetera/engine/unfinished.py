"""Resuming uploads: the unfinished ones of objects (listed once a push) and their parts."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping

import anyio

from ..errors import EtceteraError
from ..format import layout
from .transport import Transport, TransportUpload


class Unfinished:
    """Unfinished uploads under ``objects/`` by key: one listing a push, on first need.

    A push of packs alone never asks; a push of large objects asks once, not once per
    object.
    """

    def __init__(self, t: Transport) -> None:
        self.t = t
        self._by_key: dict[str, list[TransportUpload]] | None = None
        self._listing = anyio.Lock()

    async def of(self, key: str) -> list[TransportUpload]:
        """The unfinished uploads of ``key`` (each handed out once)."""
        async with self._listing:
            if self._by_key is None:
                self._by_key = {}
                try:
                    found = await self.t.uploads(layout.OBJECTS)
                except EtceteraError:
                    # Resuming only saves bytes: a store that will not list uploads (a
                    # policy without s3:ListBucketMultipartUploads) still takes new ones.
                    found = []
                for upload in found:
                    self._by_key.setdefault(upload.key, []).append(upload)
        return self._by_key.pop(key, [])


def same_part(
    data: bytes | bytearray | memoryview, checksums: Mapping[str, str], crc: int | None = None
) -> bool:
    """Whether a stored part holds ``data``, by a checksum the store computed of its bytes.

    CRC32 where the store has it (the cheapest, and free when ``crc``, the CRC32 of
    ``data``, is known already), else MD5. A part with neither cannot be checked, so it
    is not kept.
    """
    if "crc32" in checksums:
        return f"{zlib.crc32(data) if crc is None else crc:08x}" == checksums["crc32"]
    if "md5" in checksums:
        return hashlib.md5(data, usedforsecurity=False).hexdigest() == checksums["md5"]
    return False
