"""Verified units of objects: from the cache, else by coalesced ranged reads.

Every range goes through the operation's one transport (its request limit, byte
budget, retries and counters); every unit is hashed against the manifest before any
byte of it is handed on, and a unit that does not verify raises ``IntegrityError``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from contextlib import aclosing

import anyio.to_thread

from ..engine import framed
from ..engine.transport import Transport
from ..errors import IntegrityError
from ..format.manifest import FileEntry, ObjectEntry
from . import plan
from .cache import ObjectCache
from .plan import Span, Unit

#: Verified bytes of units.
Got = dict[Unit, bytes | memoryview]


async def read_units(
    t: Transport,
    wanted: Sequence[Unit],
    objects: Mapping[str, ObjectEntry],
    cache: ObjectCache | None = None,
    *,
    split: bool = True,
) -> Got:
    """The bytes of every wanted unit, verified: kept ones from ``cache``, the rest fetched.

    The missing units of one object are fetched in few ranges (:func:`plan.coalesce`),
    all objects concurrently within the transport's request limit; fetched ranges are
    kept in ``cache``. ``split=False``: a range is never cut into part-size reads (a
    caller that reads many at once, as a pull reads a pack, needs no more requests).
    """
    got: Got = {}
    if cache is not None and cache.limit > 0 and wanted:
        got.update(await anyio.to_thread.run_sync(cache.lookup, wanted, limiter=t.io))
    missing = [u for u in dict.fromkeys(wanted) if u not in got]
    cheap = t.backend.capabilities.cheap_ranges
    longest = t.config.part_size if split else sys.maxsize
    spans = plan.coalesce(missing, objects, cheap_ranges=cheap, longest=longest)

    async def one(span: Span) -> None:
        async with t.budget.hold(span.length):
            data = await fetch_span(t, span, objects[span.object])
            got.update(await anyio.to_thread.run_sync(verify, span, data, limiter=t.io))
        if cache is not None and cache.enabled:
            await anyio.to_thread.run_sync(cache.store, span, data, limiter=t.io)

    await t.each(spans, one)
    return got


async def fetch_span(t: Transport, span: Span, obj: ObjectEntry) -> bytes:
    """The logical bytes of one range of ``obj`` (unverified: see :func:`verify`)."""
    blocks: list[bytes] = []
    body = framed.stream(t, obj, span.offset, span.length)
    async with aclosing(body):
        async for block in body:
            blocks.append(block)
    data = b"".join(blocks)
    if len(data) != span.length:
        raise IntegrityError(
            f"{span.units[0].path}: object {span.object} holds fewer bytes than the manifest says"
        )
    return data


def verify(span: Span, data: bytes) -> list[tuple[Unit, memoryview]]:
    """Each unit of a fetched range, checked against its digest (a worker thread)."""
    view = memoryview(data)
    out = []
    for u in span.units:
        part = view[u.offset - span.offset : u.offset - span.offset + u.length]
        if hashlib.sha256(part).hexdigest() != u.digest:
            raise IntegrityError(f"{u.path}: bytes from the repository do not match the manifest")
        out.append((u, part))
    return out


def assemble(entry: FileEntry, chunk_size: int, start: int, end: int, got: Got) -> bytes:
    """Bytes ``start .. end`` of a file from its verified units in ``got``."""
    stop = min(end, entry.size)
    if start >= stop:
        return b""
    parts = plan.units(entry, chunk_size, start, stop)
    first = parts[0].offset - entry.offset  # file offset of the first unit
    if len(parts) == 1:
        return bytes(got[parts[0]][start - first : stop - first])
    return b"".join(got[u] for u in parts)[start - first : stop - first]
