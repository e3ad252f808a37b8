"""Shards: a deterministic, byte-balanced split of a selection of files into N parts.

``etc pull NAME --shard K/N`` (``shard=(k, n)`` in the API) fetches part ``k`` of ``n``.
``K`` is the 0-based rank, as in PyTorch's ``DistributedSampler`` (``rank``,
``num_replicas``): the shards of ``N = 4`` are ``0/4``, ``1/4``, ``2/4`` and ``3/4``.

The rules (a pure function of the selected files, so every node computes the same split
without talking to the others):

- Only files under ``data/`` are split. Every shard carries every file outside ``data/``
  (and the caller creates every selected partition folder in every shard, even empty).
- Whole objects go to one shard: the selected files of one pack (or one blob) in one
  partition form a *unit*, so each node downloads each pack or blob it needs whole, and
  no two nodes download the same one (but for an object shared by two partitions).
- Units are placed greedily (LPT): partition by partition in name order, largest unit
  first (ties by object id), each on the shard with the fewest bytes so far (ties by the
  lowest shard index). Loads carry over from one partition to the next, so the shards'
  totals differ by at most the largest unit, and within each partition by at most
  twice the largest unit.
- An empty file (no object) goes to shard ``crc32(path) mod N``.
- The shards are disjoint and together are the whole selection. The split depends on
  the selection (``--partition``, include/exclude): shard ``k`` of ``--partition train``
  is ``k``'s share of ``train``, balanced on its own.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
import zlib
from collections.abc import Sequence

from ..errors import ConfigError
from .manifest import FileEntry

#: Shard index that :func:`assign_shards` gives files every shard carries (outside ``data/``).
EVERY_SHARD = -1

_HINT = "K is the 0-based rank and N the number of shards: 0/4, 1/4, 2/4, 3/4"


def check_shard(shard: object) -> tuple[int, int]:
    """Return ``shard`` as ``(k, n)`` if ``0 <= k < n``, else raise :class:`ConfigError`.

    Args:
        shard: a pair of integers ``(k, n)`` (a list of two, or integer types such as
            NumPy's, are accepted too; ``bool`` is not).

    Raises:
        ConfigError: not a pair of integers, ``n < 1``, or ``k`` outside ``0 .. n-1``.
    """
    try:
        if not isinstance(shard, tuple | list) or len(shard) != 2:
            raise TypeError
        if any(isinstance(x, bool) for x in shard):
            raise TypeError
        k, n = operator.index(shard[0]), operator.index(shard[1])
    except TypeError:
        raise ConfigError(
            f"invalid shard {shard!r}: expected (K, N), two integers; {_HINT}"
        ) from None
    if n < 1:
        raise ConfigError(f"invalid shard {k}/{n}: N must be at least 1; {_HINT}")
    if not 0 <= k < n:
        raise ConfigError(f"invalid shard {k}/{n}: K must be 0 to {n - 1}; {_HINT}")
    return k, n


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"K/N"`` (as ``etc pull --shard`` takes it) into ``(k, n)``.

    Raises:
        ConfigError: not two decimal integers around a ``/``, or not ``0 <= K < N``.
    """
    k, sep, n = text.strip().partition("/")
    k, n = k.strip(), n.strip()
    if not sep or not k.isdecimal() or not n.isdecimal() or not k.isascii() or not n.isascii():
        raise ConfigError(f"invalid shard {text!r}: expected K/N, two integers; {_HINT}")
    return check_shard((int(k), int(n)))


def assign_shards(files: Sequence[FileEntry], n: int) -> list[int]:
    """The shard of each file: an index in ``0 .. n-1``, or :data:`EVERY_SHARD`.

    Fit for 10^6 files and more: the work per file is C-level (column lists, bisection
    of the sorted paths into partitions, runs of a pack's consecutive members, ``map``
    over a dict); the one Python loop runs per unit (pack or blob), not per file.

    Args:
        files: the selected files (any order; the result does not depend on it, but
            files sorted by path, as a manifest lists them, take the fast path).
        n: number of shards, at least 1.
    """
    if n < 1:
        raise ConfigError(f"invalid shard count {n}: N must be at least 1")
    paths = list(map(_PATH, files))
    if paths != sorted(paths):
        order = sorted(range(len(files)), key=paths.__getitem__)
        shards = assign_shards([files[i] for i in order], n)
        out = [EVERY_SHARD] * len(files)
        for i, s in zip(order, shards, strict=True):
            out[i] = s
        return out
    out = [EVERY_SHARD] * len(files)
    objects = list(map(_OBJECT, files))
    sizes = list(map(_SIZE, files))
    # Files under data/ are one run of the sorted paths, each partition a run within it.
    runs: dict[str, tuple[int, int]] = {}
    lo, end = bisect.bisect_left(paths, "data/"), bisect.bisect_left(paths, "data0")
    while lo < end:
        path = paths[lo]
        partition = path[5 : path.index("/", 5)]
        hi = bisect.bisect_left(paths, f"data/{partition}0", lo, end)
        runs[partition] = (lo, hi)
        lo = hi
    loads = list(range(n))  # a heap of bytes so far * n + shard index
    for partition in sorted(runs):
        lo, hi = runs[partition]
        units = _weigh(objects[lo:hi], sizes[lo:hi])
        empty = units.pop("", None) is not None
        # Largest first, ties by id; each on the least-loaded shard, ties by lowest index
        # (the heap holds load * n + index: one int per shard, no tuples).
        ordered = sorted(zip(map(operator.neg, units.values()), units, strict=True))
        shard_of: list[int] = []
        for neg_size, _ in ordered:
            top = loads[0]
            shard_of.append(top % n)
            heapq.heapreplace(loads, top - neg_size * n)
        where = dict(zip(map(_SECOND, ordered), shard_of, strict=True))
        where[""] = EVERY_SHARD
        out[lo:hi] = map(where.__getitem__, objects[lo:hi])
        i = lo
        while empty:  # empty files have no object: each goes by its path
            try:
                i = objects.index("", i, hi)
            except ValueError:
                break
            out[i] = zlib.crc32(paths[i].encode()) % n
            i += 1
    return out


_PATH = operator.itemgetter(0)
_SIZE = operator.itemgetter(1)
_OBJECT = operator.itemgetter(4)
_SECOND = operator.itemgetter(1)


def _weigh(objects: list[str], sizes: list[int]) -> dict[str, int]:
    """Bytes per object of one partition's files (sorted by path), in C-level steps.

    A pack's members are consecutive paths, so each object is a run: runs start where
    the object changes, and a run's bytes come from prefix sums. An object in two runs
    (the same blob twice in a partition) adds up.
    """
    m = len(objects)
    starts = [0, *itertools.compress(range(1, m), map(operator.ne, objects[1:], objects))]
    if len(starts) == m:  # every file its own run (blobs): no sums to make
        run_objects, run_bytes = objects, sizes
    else:
        prefix = list(itertools.accumulate(sizes, initial=0))
        ends = map(prefix.__getitem__, itertools.islice(starts, 1, None))
        run_bytes = [*map(operator.sub, ends, map(prefix.__getitem__, starts)), 0]
        run_bytes[-1] = prefix[m] - prefix[starts[-1]]
        run_objects = list(map(objects.__getitem__, starts))
    units = dict(zip(run_objects, run_bytes, strict=True))
    if len(units) != len(run_objects):
        units = {}
        for oid, size in zip(run_objects, run_bytes, strict=True):
            units[oid] = units.get(oid, 0) + size
    return units


def select_shard(files: Sequence[FileEntry], k: int, n: int) -> list[FileEntry]:
    """The files of shard ``k`` of ``n``: its share of ``data/`` and every file outside it.

    Args:
        files: the selected files (the split is balanced over these, see the module).
        k: 0-based shard index.
        n: number of shards.

    Raises:
        ConfigError: not ``0 <= k < n``.
    """
    k, n = check_shard((k, n))
    shards = assign_shards(files, n)
    return [f for f, s in zip(files, shards, strict=True) if s in (k, EVERY_SHARD)]
