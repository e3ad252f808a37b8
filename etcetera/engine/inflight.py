"""Pushes and gcs in progress: markers that keep ``gc`` from what a push has not published.

A push uploads objects before its version record names them, so until then they look
like garbage. Each push writes a marker ``etc-v1/inflight/push-<token>`` listing the
objects, manifest and pieces its version will name, before it looks at what the
repository holds, and deletes it once its version is published (or it failed). A gc
writes ``etc-v1/inflight/gc-<token>`` first, and reads the push markers last, just
before it deletes: so either the gc sees a push's marker and keeps what it lists, or
the push, listing the markers after writing its own, sees the gc's and waits until the
gc is done before it asks which objects exist.

Two gcs at once: after writing its marker each waits :data:`claims.WAIT` seconds and
lists the gc markers; the earliest ``(time, key)`` goes first, the others wait for it
and then find nothing more to delete. Markers expire: a push's after
:data:`PUSH_LIFETIME`, a gc's after :data:`GC_LIFETIME` (counted by the store's clock,
from the marker's time to the reader's own marker), so a killed process blocks nobody
for longer; ``gc`` deletes expired markers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from ..errors import EtceteraError, ManifestError, ObjectNotFoundError
from ..format import layout
from .claims import WAIT
from .transport import Transport

_END_SECONDS = 10.0  # the longest removing markers may hold up the end of an operation

PREFIX = f"{layout.ROOT}/inflight/"
#: How long a push's marker protects what it lists.
PUSH_LIFETIME = timedelta(hours=24)
#: How long a gc's marker holds pushes (and other gcs) back.
GC_LIFETIME = timedelta(hours=1)
#: Largest push marker a gc reads (about 70 bytes an object: millions of objects).
MAX_MARKER = 256 << 20
_POLL = 0.5


@dataclass(frozen=True, slots=True)
class Protected:
    """What the pushes in progress will name: kept by ``gc`` at any grace."""

    objects: frozenset[str] = frozenset()
    manifests: frozenset[str] = frozenset()
    pieces: frozenset[str] = frozenset()


async def _delete(t: Transport, key: str) -> None:
    await t.call(key, functools.partial(t.backend.delete, key))


async def _listed(t: Transport, ours: str) -> tuple[datetime | None, dict[str, datetime]]:
    """Our marker's time and every other marker's (those without a time are skipped)."""
    found = {i.key: i.modified for i in await t.list(PREFIX)}
    return found.get(ours), {k: v for k, v in found.items() if v is not None and k != ours}


def _live(others: dict[str, datetime], now: datetime | None, kind: str) -> dict[str, datetime]:
    life = GC_LIFETIME if kind == "gc" else PUSH_LIFETIME
    prefix = f"{PREFIX}{kind}-"
    return {
        k: v for k, v in others.items() if k.startswith(prefix) and (now is None or v >= now - life)
    }


async def begin_push(
    t: Transport, objects: Iterable[str], manifest: str, pieces: Iterable[str]
) -> str:
    """Write a push's marker, then wait while a gc is running; returns the marker's key."""
    key = f"{PREFIX}push-{secrets.token_hex(8)}"
    doc = {"objects": sorted(objects), "manifest": manifest, "pieces": sorted(pieces)}
    await t.put(key, json.dumps(doc, separators=(",", ":")).encode())
    while True:
        now, others = await _listed(t, key)
        if not _live(others, now, "gc"):
            return key
        await anyio.sleep(_POLL)


async def end(t: Transport, *keys: str) -> None:
    """Remove markers (a push published or failed, a gc finished), best effort.

    Shielded and bounded: it runs while its caller is being cancelled, and a marker it
    cannot remove (a dead store, a kill) only expires later, so no error is raised.
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(_END_SECONDS):
        for key in keys:
            with contextlib.suppress(EtceteraError):
                await _delete(t, key)


async def begin_gc(t: Transport) -> tuple[str, datetime | None]:
    """Write a gc's marker and wait for the gcs that came first; returns key and time."""
    key = f"{PREFIX}gc-{secrets.token_hex(8)}"
    await t.put(key, b"gc")
    await anyio.sleep(WAIT)  # so that a gc not yet listed has a later time than ours
    while True:
        now, others = await _listed(t, key)
        first = [
            k
            for k, v in _live(others, now, "gc").items()
            if now is not None and (v, k) < (now, key)
        ]
        if not first:
            return key, now
        await anyio.sleep(_POLL)


async def protected(t: Transport, since: datetime | None, *, clean: bool) -> Protected:
    """What the live push markers list; with ``clean``, expired markers are deleted.

    Raises:
        ManifestError: a marker is unreadable (so nothing must be deleted).
    """
    objects: set[str] = set()
    manifests: set[str] = set()
    pieces: set[str] = set()
    _, found = await _listed(t, "")
    live = _live(found, since, "push")
    for key in live:
        try:
            raw = await t.read(key, MAX_MARKER)
        except ObjectNotFoundError:
            continue  # that push just finished
        try:
            doc = json.loads(raw)
            objects.update(str(o) for o in doc["objects"])
            manifests.add(str(doc["manifest"]))
            pieces.update(str(p) for p in doc["pieces"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(
                f"gc stopped: the marker of a push in progress {key} is unreadable ({exc}); "
                "nothing was deleted"
            ) from None
    if clean:
        expired = set(found) - set(live) - set(_live(found, since, "gc"))
        for key in sorted(expired):
            await _delete(t, key)
    return Protected(frozenset(objects), frozenset(manifests), frozenset(pieces))
