"""The stream's order (etcetera/streaming/order.py): shares, windows, resume, as properties."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from etcetera.format.manifest import FileEntry
from etcetera.streaming import order


def tree(layout: list[int]) -> tuple[list[FileEntry], set[str]]:
    """Files from a layout: n > 0 is a pack of n files, 0 a blob, -1 an empty file."""
    files: list[FileEntry] = []
    packs: set[str] = set()
    for u, n in enumerate(layout):
        if n > 0:
            oid = f"{u:04x}" * 16
            packs.add(oid)
            for m in range(n):
                files.append(FileEntry(f"data/t/{u:04d}-{m:04d}", 10, 0o644, "d", oid, m * 10))
        elif n == 0:
            files.append(FileEntry(f"data/t/{u:04d}-blob", 5, 0o644, f"b{u}", f"b{u}", 0))
        else:
            files.append(FileEntry(f"data/t/{u:04d}-empty", 0, 0o644, "e"))
    return files, packs


layouts = st.lists(st.integers(min_value=-1, max_value=12), min_size=0, max_size=14)


def plan(
    files: list[FileEntry], packs: set[str], **kw: object
) -> tuple[list[list[int]], list[order.RankOrder]]:
    groups = order.units(files, packs)
    world = int(kw.pop("world", 1))  # type: ignore[call-overload]
    ranks = [order.rank_order(files, groups, world=world, rank=r, **kw) for r in range(world)]  # type: ignore[arg-type]
    return groups, ranks


@given(layouts, st.integers(1, 8), st.sampled_from(["pad", "drop"]), st.integers(0, 3))
def test_ranks_get_equal_disjoint_complete_shares(
    layout: list[int], world: int, partial: str, seed: int
) -> None:
    files, packs = tree(layout)
    _, ranks = plan(files, packs, world=world, partial=partial, seed=seed)
    n = len(files)
    lengths = {len(r) for r in ranks}
    assert len(lengths) == 1
    got = Counter(i for r in ranks for i in r.samples)
    if partial == "drop":
        assert lengths == {n // world}
        assert all(c == 1 for c in got.values())  # disjoint
        assert sum(got.values()) == n - n % world
    else:
        assert lengths == {-(-n // world)}
        assert set(got) == set(range(n))  # complete
        assert sum(got.values()) - n == (-n) % world  # only the padding repeats


@given(layouts, st.integers(0, 5), st.integers(1, 6), st.integers(1, 300))
def test_pieces_are_single_ranges_and_windows_stay_within_their_pieces(
    layout: list[int], seed: int, window: int, window_bytes: int
) -> None:
    files, packs = tree(layout)
    _, (r,) = plan(files, packs, seed=seed, window=window, window_bytes=window_bytes)
    for piece in r.pieces:
        members = [files[i] for i in piece.members]
        assert all(f.object == piece.object for f in members)
        assert piece.start == members[0].offset
        assert piece.end == members[-1].offset + members[-1].size
        for a, b in itertools.pairwise(members):
            assert b.offset == a.offset + a.size  # contiguous: one ranged read
    for pos, i in enumerate(r.samples):
        assert i in r.pieces[r.piece_of[pos]].members
    # A window's samples come from its pieces (at most `window`, at most `window_bytes`
    # unless it is one piece), all of them before the next window's.
    starts = order.window_starts(r.pieces, window, window_bytes)
    for lo, hi in itertools.pairwise(starts):
        assert 1 <= hi - lo <= window
        assert hi - lo == 1 or sum(p.size for p in r.pieces[lo:hi]) <= window_bytes
    windows = [next(k for k in range(len(starts)) if starts[k + 1] > p) for p in r.piece_of]
    assert windows == sorted(windows)


@given(layouts, st.integers(0, 9), st.integers(0, 9))
def test_order_is_a_function_of_seed_and_epoch(layout: list[int], seed: int, epoch: int) -> None:
    files, packs = tree(layout)
    _, (a,) = plan(files, packs, seed=seed, epoch=epoch)
    _, (b,) = plan(list(files), set(packs), seed=seed, epoch=epoch)
    assert a.samples == b.samples
    assert sorted(a.samples) == list(range(len(files)))


def test_epochs_and_seeds_change_the_order_and_unshuffled_keeps_it() -> None:
    files, packs = tree([5] * 20)
    _, (a,) = plan(files, packs, seed=0, epoch=0)
    _, (b,) = plan(files, packs, seed=0, epoch=1)
    _, (c,) = plan(files, packs, seed=1, epoch=0)
    _, (d,) = plan(files, packs, shuffled=False)
    assert a.samples != b.samples != c.samples
    assert d.samples == list(range(len(files)))


def test_the_permutation_is_pinned() -> None:
    # The order must not move between Python releases or etcetera versions: a resumed
    # job on another machine depends on it.
    items = list(range(10))
    order.shuffle(items, order.rng(0, 0))
    assert items == [9, 0, 3, 1, 8, 2, 5, 4, 6, 7]


@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(1, 8),
    st.integers(1, 9),
)
def test_workers_split_a_rank_disjointly_and_completely(
    length: int, start: int, workers: int, batch: int
) -> None:
    start = min(start, length)
    shares = [order.reader_positions(length, start, w, workers, batch) for w in range(workers)]
    flat = [p for s in shares for p in s]
    assert sorted(flat) == list(range(start, length))
    # A loader taking one batch of each worker in turn yields the positions in order.
    assert order.interleave(shares, batch) == list(range(start, length))


@given(
    layouts,
    st.integers(1, 4),
    st.integers(1, 8),
    st.integers(1, 8),
    st.integers(1, 7),
    st.data(),
)
def test_resume_at_any_point_with_any_workers_yields_exactly_the_rest(
    layout: list[int], world: int, workers: int, workers_after: int, batch: int, data: st.DataObject
) -> None:
    files, packs = tree(layout)
    _, ranks = plan(files, packs, world=world, seed=7)
    for r in ranks:
        length = len(r)
        shares = [order.reader_positions(length, 0, w, workers, batch) for w in range(workers)]
        seen = order.interleave([[r.samples[p] for p in s] for s in shares], batch)
        stop = data.draw(st.integers(0, length))
        consumed = seen[:stop]
        after = [
            order.reader_positions(length, stop, w, workers_after, batch)
            for w in range(workers_after)
        ]
        rest = order.interleave([[r.samples[p] for p in s] for s in after], batch)
        assert consumed + rest == r.samples
