"""The unfinished multipart uploads of objects, listed once per push, when first needed."""

from __future__ import annotations

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
