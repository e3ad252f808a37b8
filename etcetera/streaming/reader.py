"""A reader's samples: its pieces fetched ahead within the byte budget, samples in order.

One reader (a process, or one worker process of a data loader) yields the positions of
the rank's order that are its own (:func:`etcetera.streaming.order.reader_positions`).
Their pieces are fetched in the order they are first needed, as far ahead as the
session's byte budget allows, by at most ``concurrency`` fetches at once; a piece's
bytes are held until the reader has yielded the last of its samples, then given back
to the budget. So a consumer that keeps up never waits on a request, and memory stays
within ``memory_budget`` (a window's pieces, which the shuffle needs together, plus
the next ones).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import anyio
from anyio.abc import ObjectSendStream

from ..engine.budget import ByteBudget
from ..format.manifest import FileEntry
from .order import Piece, RankOrder

#: Samples sent to the consumer in one step (one thread hop for a sync consumer).
_STEP = 256

#: Fetches a piece: one verified bytes-like per member, in the piece's member order.
FetchPiece = Callable[[Piece], Awaitable[Sequence[bytes | memoryview]]]


class Sample(NamedTuple):
    """One file of the stream.

    Attributes:
        path: its path in the version (``data/train/cat/0001.jpg``).
        data: its bytes, verified against the manifest.
    """

    path: str
    data: bytes


class _Held:
    """A piece being fetched or held: its bytes by file index, its uses left."""

    def __init__(self, uses: int) -> None:
        self.uses = uses
        self.ready = anyio.Event()
        self.data: dict[int, bytes | memoryview] = {}
        self.charged = 0


async def read(
    budget: ByteBudget,
    concurrency: int,
    files: Sequence[FileEntry],
    plan: RankOrder,
    positions: Sequence[int],
    fetch: FetchPiece,
    send: ObjectSendStream[list[Sample]],
) -> None:
    """Send the samples at ``positions`` of ``plan`` to ``send``, in order, then close it.

    Args:
        budget: bytes of pieces held at once (fetched ahead, or being yielded).
        concurrency: pieces fetched at once, at most.
        files: the stream's files (``plan`` holds indexes into them).
        plan: the rank's order.
        positions: this reader's positions of it.
        fetch: reads one piece, verified.
        send: where the samples go, a list at a time.
    """
    uses: dict[int, int] = {}
    for pos in positions:
        p = plan.piece_of[pos]
        uses[p] = uses.get(p, 0) + 1
    held = {p: _Held(n) for p, n in uses.items()}  # in first-use order (dicts keep it)
    slots = anyio.Semaphore(max(1, concurrency))

    async def get(p: int, h: _Held) -> None:
        try:
            piece = plan.pieces[p]
            blobs = await fetch(piece)
            h.data = dict(zip(piece.members, blobs, strict=True))
        finally:
            slots.release()
        h.ready.set()

    async def ahead() -> None:
        async with anyio.create_task_group() as tg:
            for p, h in list(held.items()):
                # Budget first, then a fetch slot: pieces start in first-use order.
                h.charged = await budget.acquire(plan.pieces[p].size)
                await slots.acquire()
                tg.start_soon(get, p, h)

    async with send, anyio.create_task_group() as tg:
        tg.start_soon(ahead)
        out: list[Sample] = []
        for pos in positions:
            p = plan.piece_of[pos]
            h = held[p]
            if not h.ready.is_set():
                if out:  # what is ready goes out before waiting on the network
                    await send.send(out)
                    out = []
                await h.ready.wait()
            i = plan.samples[pos]
            out.append(Sample(files[i].path, bytes(h.data[i])))
            h.uses -= 1
            if not h.uses:
                h.data = {}
                await budget.release(h.charged)
                del held[p]
            if len(out) >= _STEP:
                await send.send(out)
                out = []
        if out:
            await send.send(out)
        tg.cancel_scope.cancel()
