"""Content digests of format v1.

A file is cut into fixed chunks of :data:`CHUNK_SIZE` bytes. Its digest is the
SHA-256 of its bytes when it has at most one chunk, else the SHA-256 of the
concatenated (binary) chunk digests. Parts and ranges are whole chunks, so each
one is verified as it arrives, in parallel, and the file digest follows from the
chunk digests without reading the file twice.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass

CHUNK_SIZE = 8 * 1024 * 1024
READ_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Digest:
    """The digest of one file and, for multi-chunk files, of each chunk (hex).

    ``crcs`` (CRC32 of each chunk, from :func:`digest_file`) is not part of the format:
    a push uses it to check, eight times cheaper than SHA-256, that the bytes it reads
    to send are still the bytes it hashed.
    """

    hex: str
    chunks: tuple[str, ...] = ()
    crcs: tuple[int, ...] = ()


def combine(chunk_digests: list[bytes] | tuple[bytes, ...]) -> str:
    """File digest from binary chunk digests (more than one chunk)."""
    return hashlib.sha256(b"".join(chunk_digests)).hexdigest()


def digest_bytes(data: bytes | memoryview, chunk_size: int = CHUNK_SIZE) -> Digest:
    """Digest of an in-memory body."""
    if len(data) <= chunk_size:
        return Digest(hashlib.sha256(data).hexdigest())
    view = memoryview(data)
    raw = [
        hashlib.sha256(view[i : i + chunk_size]).digest() for i in range(0, len(view), chunk_size)
    ]
    return Digest(combine(raw), tuple(d.hex() for d in raw))


def digest_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> tuple[Digest, int]:
    """Digest and size of a file, read in 1 MiB blocks (call it in a worker thread).

    Returns the size actually read, so that a caller can notice a file that
    changed between ``stat`` and hashing.
    """
    raw: list[bytes] = []
    crcs: list[int] = []
    size = 0
    block_size = min(READ_BLOCK, chunk_size)
    with open(path, "rb", buffering=0) as fh:
        h = hashlib.sha256()
        crc = 0
        in_chunk = 0
        while True:
            block = fh.read(min(block_size, chunk_size - in_chunk))
            if not block:
                break
            h.update(block)
            crc = zlib.crc32(block, crc)
            in_chunk += len(block)
            size += len(block)
            if in_chunk == chunk_size:
                raw.append(h.digest())
                crcs.append(crc)
                h = hashlib.sha256()
                crc = 0
                in_chunk = 0
        if in_chunk or not raw:
            raw.append(h.digest())
            crcs.append(crc)
    if len(raw) == 1:
        return Digest(raw[0].hex(), (), tuple(crcs)), size
    return Digest(combine(raw), tuple(d.hex() for d in raw), tuple(crcs)), size


def sha256_hex(data: bytes | memoryview) -> str:
    """Plain SHA-256 (hex) of a body."""
    return hashlib.sha256(data).hexdigest()
