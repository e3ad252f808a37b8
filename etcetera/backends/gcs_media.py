"""The body of a GCS multipart (metadata + media) upload, sent from the caller's buffer.

gcloud-aio-storage builds the body by joining the metadata and the data into one new
``bytes`` (after the caller's own copy to ``bytes``) and hands aiohttp a ``BytesIO``
of it, read in 64 KiB copies: three copies of every byte before the socket's. Here the
data goes out as slices of the caller's buffer, between a head and a tail of a few
hundred bytes, so the only copy left is asyncio's of what the socket did not take.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from .base import Buffer

_SLICE = 1024 * 1024  # bytes handed to the connection at once (it drains between them)


class MediaBody:
    """A ``multipart/related`` upload body: the object's metadata (JSON), then its bytes.

    Args:
        name: the object's full name in the bucket.
        metadata: the object's metadata fields (``crc32c``, ``metadata``...), as the API
            names them.
        data: the object's bytes; only read, and not copied, while the body is sent.
        media_type: the content type of the object.
    """

    def __init__(self, name: str, metadata: dict[str, Any], data: Buffer, media_type: str) -> None:
        boundary = secrets.token_hex(16)
        fields = json.dumps({**metadata, "name": name}).encode()
        self._head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
            + fields
            + f"\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode()
        )
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._data = memoryview(data).cast("B")
        self.content_type = f"multipart/related; boundary={boundary}"
        self.length = len(self._head) + len(self._data) + len(self._tail)

    def headers(self) -> dict[str, str]:
        """The headers that describe the body (its length is known: no chunked encoding)."""
        return {"Content-Type": self.content_type, "Content-Length": str(self.length)}

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        """The body, piece by piece (a fresh iterator for every attempt)."""
        yield self._head
        for at in range(0, len(self._data), _SLICE):
            yield self._data[at : at + _SLICE]
        yield self._tail
