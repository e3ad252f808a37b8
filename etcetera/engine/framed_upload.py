"""A large blob sent compressed: frames made in worker threads, sent in multipart parts.

The blob is read (and checked against its chunk digests by the caller's ``read``) in
logical steps of whole frames; several steps are compressed at once, in order of their
offsets; their frames are joined and cut into parts of at least ``part`` stored bytes
(the last, which ends with the seek table, may be shorter). An upload that would not
come out smaller than the blob is aborted, and the caller sends the blob as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import anyio
import anyio.abc
import anyio.to_thread

from ..backends.base import PartRef
from ..errors import EtceteraError
from ..format.compression import FRAME_SIZE, compress_frames
from ..format.frames import seek_table
from ..format.manifest import ObjectEntry
from .storing import compressible
from .transport import Transport, TransportUpload
from .unfinished import same_part

_AHEAD = 2  # steps read and compressed while earlier ones are sent
_SENDS = 2  # parts of one upload in flight at once


async def send_blob(
    t: Transport,
    obj: ObjectEntry,
    key: str,
    source: str,
    read: Callable[[int, memoryview], None],
    part: int,
    level: int,
) -> ObjectEntry | None:
    """Send the blob ``obj`` (its file at ``source``) compressed, if a trial says it pays.

    Returns ``obj`` as stored, or ``None`` if it was not sent (the caller sends it as it is).
    """
    if level <= 0 or not await anyio.to_thread.run_sync(compressible, source, limiter=t.io):
        return None

    def take(offset: int, length: int) -> bytearray:
        buf = bytearray(length)
        read(offset, memoryview(buf))
        return buf

    frames = await upload(t, key, take, obj.size, part, level)
    if frames is None:
        return None
    return obj._replace(encoding="zstd", frame_size=FRAME_SIZE, frames=frames)


async def upload(
    t: Transport,
    key: str,
    read: Callable[[int, int], bytes | bytearray | memoryview],
    size: int,
    part: int,
    level: int,
    resume: tuple[TransportUpload, Mapping[int, PartRef]] | None = None,
) -> tuple[int, ...] | None:
    """Send ``size`` logical bytes (``read(offset, length)`` gives them) as a framed object.

    ``resume``: an unfinished upload of ``key`` and its stored parts by number; a part
    whose size and store checksum match the one made now is kept (frames are the same
    bytes for the same input and level), the others are put again.

    Returns each frame's stored length, or ``None`` when compressing did not pay (nothing
    is left stored then).
    """
    step = max(FRAME_SIZE, part // FRAME_SIZE * FRAME_SIZE)
    offsets = list(range(0, size, step))
    results: dict[int, list[bytes]] = {}
    ready = {o: anyio.Event() for o in offsets}
    taken = [anyio.Event() for _ in offsets]  # step i's frames left ``results`` for a part
    lengths: list[int] = []
    refs: list[PartRef] = []
    up, stored = resume if resume is not None else (await t.upload(key), {})

    def make(offset: int) -> list[bytes]:
        return compress_frames(read(offset, min(step, size - offset)), level, FRAME_SIZE)

    async def produce(i: int) -> None:
        # Step i is made only once step i - _AHEAD - 1 is taken: at most _AHEAD + 1 steps
        # made and not yet taken, however far the sends lag behind (the budget's hold).
        if i > _AHEAD:
            await taken[i - _AHEAD - 1].wait()
        offset = offsets[i]
        results[offset] = await anyio.to_thread.run_sync(make, offset, limiter=t.io)
        ready[offset].set()

    sending = anyio.Semaphore(_SENDS)

    async def send(number: int, body: bytes) -> None:
        try:
            kept = stored.get(number)
            if kept is not None and kept.size == len(body) and same_part(body, kept.checksums):
                refs.append(kept)
                t.stats.bytes_resumed += len(body)
            else:
                refs.append(await up.put_part(number, body))
        finally:
            sending.release()

    async def start(senders: anyio.abc.TaskGroup, number: int, body: bytes) -> None:
        await sending.acquire()
        senders.start_soon(send, number, body)

    # One hold for the steps being made and the parts being sent (a part: its frames of
    # ``part`` stored bytes and one step's more at most), never a second one while it is
    # held: uploads that each waited for more of the budget would wait for ever.
    copies = t.backend.capabilities.send_copies
    worth = True
    try:
        async with (
            t.budget.hold(min(size, (_AHEAD + 1) * step * 2) + _SENDS * 2 * part * copies),
            anyio.create_task_group() as tg,
        ):
            for i in range(len(offsets)):
                tg.start_soon(produce, i)
            pending: list[bytes] = []
            held = number = 0
            async with anyio.create_task_group() as senders:
                for i, offset in enumerate(offsets):
                    await ready[offset].wait()
                    for frame in results.pop(offset):
                        lengths.append(len(frame))
                        pending.append(frame)
                        held += len(frame)
                    taken[i].set()
                    if held >= part and offset != offsets[-1]:
                        number += 1
                        await start(senders, number, b"".join(pending))
                        pending, held = [], 0
                pending.append(seek_table(lengths, size, FRAME_SIZE))
                if sum(lengths) + len(pending[-1]) >= size:
                    worth = False
                    tg.cancel_scope.cancel()  # stops the producers and senders still running
                else:
                    number += 1
                    await start(senders, number, b"".join(pending))
        if worth:
            await up.complete(sorted(refs, key=lambda r: r.number))
    except BaseException as exc:
        if not _only(exc, anyio.get_cancelled_exc_class()):  # a cancelled one: gc removes it
            with contextlib.suppress(EtceteraError):
                await up.abort()
        raise
    if not worth:  # the frames came out no smaller than the blob
        with contextlib.suppress(EtceteraError):
            await up.abort()
        return None
    return tuple(lengths)


def _only(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind``, or a group of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only(e, kind) for e in exc.exceptions)
    return isinstance(exc, kind)
