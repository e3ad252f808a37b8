"""The order of a stream's samples: an epoch's shuffle, each rank's share, each reader's part.

Pure functions of the selected files and the stream's parameters, so that every rank
and every worker process computes the same plan without talking to the others:

1. **Units.** The files are grouped by the object that holds them: the members of one
   pack, in offset order, are one unit; a blob or an empty file is a unit of its own.
2. **The epoch's sequence.** With ``shuffle``, the units are permuted by ``(seed,
   epoch)``; their files laid end to end make the sequence ``C`` of the epoch. A unit's
   files stay together in offset order, so any run of ``C`` within one unit is one
   contiguous byte range of one object: one ranged read.
3. **Ranks.** Every rank gets ``L`` samples. ``partial="drop"``: ``L = N // world``,
   and the last ``N mod world`` samples of ``C`` sit this epoch out (other ones the
   next, since the order changes). ``partial="pad"``: ``L = ceil(N / world)``, and
   ``C`` is extended by repeating its start (as MosaicML streaming pads). Rank ``r``
   takes the run ``[r*L, (r+1)*L)``: ranks read disjoint ranges, and at most one unit
   is split between two neighbours.
4. **Windows.** A rank's run is cut into *pieces* (its part of one unit: one range)
   and the pieces into windows of ``window`` pieces; with ``shuffle`` the samples of
   each window are permuted (seeded by seed, epoch, rank and window). That is the
   rank's order ``R``.
5. **Readers.** ``R`` is read by one process, or by the ``W`` worker processes of a
   data loader: worker ``w`` takes the batches ``j`` of ``R`` (counted from where the
   epoch resumes) with ``j mod W == w``. A loader that takes one batch from each
   worker in turn (PyTorch's ``DataLoader`` does, skipping workers that are done)
   therefore yields ``R`` in order whatever ``W`` is: after ``n`` samples it has
   consumed exactly ``R[:n]``, and resuming at ``n`` with any number of workers
   yields exactly ``R[n:]``.

The permutations use :meth:`random.Random.random`, whose sequence for a seed Python
keeps stable across releases, through a Fisher-Yates shuffle written here (so the
order does not depend on how a Python release implements ``random.shuffle``).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from ..errors import ConfigError
from ..format.manifest import FileEntry

Partial = Literal["pad", "drop"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Piece:
    """A rank's part of one unit: files that one ranged read of one object returns.

    Attributes:
        object: the id of the object holding them (``""``: one file without an object of
            its own: an empty file, nothing to read, or a content-chunked one, read by its
            chunks).
        start: where the range starts in the object.
        end: where it ends (exclusive).
        members: indexes of the files (into the stream's file list), in offset order.
    """

    object: str
    start: int
    end: int
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        """Bytes of the range."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class RankOrder:
    """One rank's samples for one epoch.

    Attributes:
        samples: ``R``: indexes of files, in the order the rank yields them.
        piece_of: for each position of ``samples``, the index of its piece.
        pieces: the rank's pieces, in the order of the epoch's sequence.
    """

    samples: list[int]
    piece_of: list[int]
    pieces: list[Piece]

    def __len__(self) -> int:
        return len(self.samples)


def rng(*parts: object) -> random.Random:
    """A generator seeded by the parts (a stable digest of their text, not ``hash()``)."""
    text = "\0".join(["etcetera-stream", *map(str, parts)]).encode()
    return random.Random(int.from_bytes(hashlib.sha256(text).digest()[:16], "big"))


def shuffle(items: list[T], r: random.Random) -> None:
    """Permute ``items`` in place (Fisher-Yates over ``r.random()``)."""
    rand = r.random
    for i in range(len(items) - 1, 0, -1):
        j = int(rand() * (i + 1))
        items[i], items[j] = items[j], items[i]


def units(files: Sequence[FileEntry], packs: Container[str]) -> list[list[int]]:
    """The files grouped by the pack holding them (offset order); other files alone.

    Args:
        files: the selected files.
        packs: the ids of the objects that are packs (a blob holds one file).

    Units are listed in the order of their first file in ``files``.
    """
    out: list[list[int]] = []
    of_pack: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        if f.object not in packs:
            out.append([i])
            continue
        members = of_pack.get(f.object)
        if members is None:
            members = of_pack[f.object] = []
            out.append(members)
        members.append(i)
    for members in of_pack.values():
        members.sort(key=lambda i: files[i].offset)
    return out


def check_partial(partial: str) -> Partial:
    """``partial`` if it is ``"pad"`` or ``"drop"``, else a :class:`ConfigError`."""
    if partial == "pad":
        return "pad"
    if partial == "drop":
        return "drop"
    raise ConfigError(f"invalid partial {partial!r}: use 'pad' or 'drop'")


def rank_length(n: int, world: int, partial: Partial) -> int:
    """Samples each rank yields in an epoch of ``n`` samples."""
    if partial == "drop":
        return n // world
    return -(-n // world)


def epoch_sequence(groups: list[list[int]], *, seed: int, epoch: int, shuffled: bool) -> list[int]:
    """``C``: the files of the units, unit after unit, units permuted when ``shuffled``."""
    order = list(groups)
    if shuffled:
        shuffle(order, rng(seed, epoch))
    return [i for unit in order for i in unit]


def rank_order(
    files: Sequence[FileEntry],
    groups: list[list[int]],
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffled: bool = True,
    world: int = 1,
    rank: int = 0,
    partial: Partial = "pad",
    window: int = 8,
    window_bytes: int = 64 << 20,
) -> RankOrder:
    """Rank ``rank``'s samples of epoch ``epoch`` (see the module for the rules).

    Args:
        files: the selected files (the stream's list; indexes refer to it).
        groups: their :func:`units`.
        seed: the shuffle's seed.
        epoch: the epoch.
        shuffled: permute units and windows; ``False``: files in their listed order.
        world: number of ranks.
        rank: this rank, ``0 .. world-1``.
        partial: ``"pad"`` or ``"drop"``: how every rank gets the same number.
        window: pieces whose samples are shuffled together, at most.
        window_bytes: bytes of a window at most (a window has at least one piece):
            a reader holds a window in memory while it yields it.
    """
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"invalid rank {rank} of world {world}: need 0 <= rank < world")
    if window < 1 or window_bytes < 1:
        raise ConfigError(f"invalid window {window} ({window_bytes} bytes): at least 1 piece")
    seq = epoch_sequence(groups, seed=seed, epoch=epoch, shuffled=shuffled)
    n = len(seq)
    length = rank_length(n, world, partial)
    lo = rank * length
    mine = [seq[p % n] for p in range(lo, lo + length)] if n else []
    pieces, piece_of = _pieces(files, mine)
    samples = mine
    if shuffled and len(pieces) > 0:
        first = window_starts(pieces, window, window_bytes)
        samples, piece_of = _shuffle_windows(mine, piece_of, first, rng(seed, epoch, rank, "w"))
    return RankOrder(samples, piece_of, pieces)


def _pieces(files: Sequence[FileEntry], run: list[int]) -> tuple[list[Piece], list[int]]:
    """Cut a run of ``C`` into pieces: maximal runs of consecutive members of one object."""
    pieces: list[Piece] = []
    piece_of: list[int] = []
    current: list[int] = []

    def close() -> None:
        first, last = files[current[0]], files[current[-1]]
        pieces.append(Piece(first.object, first.offset, last.offset + last.size, tuple(current)))

    for i in run:
        f = files[i]
        if current:
            prev = files[current[-1]]
            if not f.object or f.object != prev.object or f.offset < prev.offset + prev.size:
                close()
                current = []
        current.append(i)
        piece_of.append(len(pieces))
    if current:
        close()
    return pieces, piece_of


def window_starts(pieces: Sequence[Piece], window: int, window_bytes: int) -> list[int]:
    """The first piece of each window, then ``len(pieces)``.

    A window takes pieces until it has ``window`` of them or the next one would take
    it over ``window_bytes``; it always takes at least one.
    """
    if not pieces:
        return [0]
    starts = [0]
    count = size = 0
    for p, piece in enumerate(pieces):
        if count and (count == window or size + piece.size > window_bytes):
            starts.append(p)
            count = size = 0
        count += 1
        size += piece.size
    starts.append(len(pieces))
    return starts


def _shuffle_windows(
    run: list[int], piece_of: list[int], starts: list[int], r: random.Random
) -> tuple[list[int], list[int]]:
    """Permute the samples of each window (its pieces run from ``starts[k]``)."""
    samples: list[int] = []
    pieces: list[int] = []
    lo = 0
    for end_piece in starts[1:]:
        hi = lo
        while hi < len(run) and piece_of[hi] < end_piece:
            hi += 1
        block = list(range(lo, hi))
        shuffle(block, r)
        samples.extend(run[p] for p in block)
        pieces.extend(piece_of[p] for p in block)
        lo = hi
    return samples, pieces


def reader_positions(length: int, start: int, worker: int, workers: int, batch: int) -> list[int]:
    """Positions of ``R`` that worker ``worker`` of ``workers`` yields, in order.

    Batches of ``batch`` samples are counted from ``start`` (where the epoch resumes);
    worker ``w`` takes the batches ``j`` with ``j mod workers == w``.
    """
    if workers < 1 or not 0 <= worker < workers:
        raise ConfigError(f"invalid worker {worker} of {workers}")
    if batch < 1:
        raise ConfigError(f"invalid batch size {batch}: at least 1")
    out: list[int] = []
    step = batch * workers
    for lo in range(start + worker * batch, length, step):
        out.extend(range(lo, min(lo + batch, length)))
    return out


def interleave(shares: Sequence[Sequence[T]], batch: int) -> list[T]:
    """What a loader yields from the workers' shares: one batch of each in turn.

    Workers that have no batch left are skipped (as PyTorch's ``DataLoader`` does).
    """
    out: list[T] = []
    j = 0
    while True:
        took = False
        for share in shares:
            got = share[j * batch : (j + 1) * batch]
            if got:
                out.extend(got)
                took = True
        if not took:
            return out
        j += 1
