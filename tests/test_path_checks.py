"""The bulk path check of a manifest piece refuses exactly what the one-path check refuses."""

from __future__ import annotations

import itertools

import pytest

from etcetera.errors import ManifestError
from etcetera.format.paths import check_path, check_paths

# Pieces of names that make or miss empty, dot, absolute and slash-ended segments.
_ATOMS = ("a", ".", "..", "/", "", "b.c", ".d", "e.", "longname")
_NAMES = sorted({"".join(c) for k in (1, 2, 3) for c in itertools.product(_ATOMS, repeat=k)})
_NEIGHBOURS = (None, "x", "x/y", "longer/name/here")


def _accepted(paths: list[str]) -> bool:
    try:
        check_paths(paths, strings=True)
    except ManifestError:
        return False
    return True


def _each_accepted(paths: list[str]) -> bool:
    try:
        for p in paths:
            check_path(p)
    except ManifestError:
        return False
    return True


@pytest.mark.parametrize("neighbour", _NEIGHBOURS)
def test_the_bulk_check_agrees_with_each_path_checked_alone(neighbour: str | None) -> None:
    # A bad path first, last, alone or between others: its ends are looked at apart.
    for name in _NAMES:
        lists = [[name]] if neighbour is None else [[neighbour, name], [name, neighbour]]
        lists += [[neighbour, name, neighbour]] if neighbour else []
        for paths in lists:
            assert _accepted(paths) == _each_accepted(paths), paths
