"""Publishing a version on a store that ignores create-only writes: claim, wait, list.

Some S3-compatible stores (s3rver, older MinIO and Ceph releases) accept
``If-None-Match: *`` and overwrite all the same, so two pushes of version K would both
"succeed" and one version would be lost. On such a store (found out by a probe, see
``api/stores.py``) a push publishes version K by this protocol instead, which needs only
plain writes, the store's own timestamps and a listing that shows every finished write:

1. write a claim ``etc-v1/claims/NAME/K/<token>`` (a key no other writer uses);
2. wait :data:`WAIT` seconds, longer than the store's timestamp resolution (S3 lists
   times to the second), so that any claim not yet listed carries a later time;
3. list the claims of K; claims older than ours by more than :data:`LIFETIME` are
   those of pushes that died and are ignored; the winner is the earliest
   ``(last modified, key)``, the same rule for every writer;
4. the winner checks that ``refs/NAME/K`` does not exist, then writes it; every other
   writer fails with :class:`~etcetera.errors.ConcurrentPushError`.

It holds as long as a push takes less than :data:`WAIT` between the store timing its
claim and listing it, and finishes steps 3-4 within :data:`LIFETIME`. Readers are
unchanged: they read ``refs/NAME/K``, which only the winner writes.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import anyio

from ..errors import ConcurrentPushError
from ..format import layout
from .transport import Transport

#: Seconds between writing a claim and listing the claims (S3 times are to the second).
WAIT = 2.0
#: A claim this much older than ours belongs to a push that died before publishing.
LIFETIME = timedelta(minutes=5)
CLAIMS = f"{layout.ROOT}/claims/"


def claims_prefix(name: str, number: int) -> str:
    """Where the claims of ``name@number`` are written."""
    return f"{CLAIMS}{name}/{number}/"


async def publish_claimed(t: Transport, key: str, data: bytes, name: str, number: int) -> None:
    """Write the version record ``key`` if this writer wins the claim of ``name@number``.

    Raises:
        ConcurrentPushError: another push claimed or published this version first.
    """
    prefix = claims_prefix(name, number)
    ours = f"{prefix}{secrets.token_hex(8)}"
    await t.put(ours, data)
    await anyio.sleep(WAIT)
    listed = {info.key: info for info in await t.list(prefix)}
    mine = listed.get(ours)
    if mine is None or mine.modified is None:
        raise ConcurrentPushError(
            f"cannot publish {name}@{number} safely: the store does not list its own "
            "writes with their times",
            name=name,
            number=number,
        )
    since = mine.modified - LIFETIME
    live = [(i.modified, i.key) for i in listed.values() if i.modified and i.modified >= since]
    if min(live)[1] == ours:
        found = await t.head(key)
        if found is None:
            await t.put(key, data)
            return
        if await t.read(key, found.size) == data:
            return  # a retry of our own publish
    raise ConcurrentPushError(
        f"another push published {name}@{number} first", name=name, number=number
    )
