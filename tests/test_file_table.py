"""The columnar file table reads as the sorted sequence of entries it was built from."""

from __future__ import annotations

import pytest

from etcetera.format.manifest import FileEntry, FileTable, Manifest, ObjectEntry
from etcetera.format.table import HexDigests

PACK = "ab" * 32


def _entries() -> list[FileEntry]:
    rows = [
        FileEntry("README.md", 3, 0o644, "01" * 32, PACK, 0),
        FileEntry("data/t/a", 0, 0o755, "02" * 32),
        FileEntry("data/t/é/b", 5, 0o644, "03" * 32, PACK, 3),
        FileEntry("data/t0", 2, 0o644, "04" * 32, PACK, 8),
        FileEntry("data/u/big", 9, 0o644, "05" * 32, "cd" * 32, 0, ("06" * 32, "07" * 32)),
        FileEntry("meta.json", 1, 0o600, "08" * 32, PACK, 10),
    ]
    return sorted(rows)


def test_a_table_gives_back_its_entries() -> None:
    rows = _entries()
    table = FileTable.of(rows)
    assert list(table) == rows
    assert table == rows and table == FileTable.of(rows)
    assert table != rows[:-1]
    assert [table[i] for i in range(-len(rows), len(rows))] == rows + rows
    assert table[1:4] == rows[1:4] and table[::2] == rows[::2]
    assert table.paths(1, 3) == [r.path for r in rows[1:3]]
    assert table.total_size == sum(r.size for r in rows)
    with pytest.raises(IndexError):
        table[len(rows)]


def test_lookups_are_binary_searches_over_sorted_paths() -> None:
    rows = _entries()
    table = FileTable.of(rows)
    assert table.find("data/t/é/b") == rows[2]
    assert table.find("data/t/") is None and table.find("zzz") is None
    assert table.index("meta.json") == len(rows) - 1
    with pytest.raises(ValueError, match="not in"):
        table.index("data")
    lo, hi = table.span("data/t/")
    assert [r.path for r in rows[lo:hi]] == ["data/t/a", "data/t/é/b"]


def test_a_manifest_selects_partitions_as_index_ranges() -> None:
    rows = _entries()
    objects = {PACK: ObjectEntry(PACK, "pack", 11), "cd" * 32: ObjectEntry("cd" * 32, "blob", 9)}
    manifest = Manifest(rows, objects, ("t", "u"))
    assert isinstance(manifest.files, FileTable)
    chosen = [f.path for f in manifest.select(["u"])]
    assert chosen == ["README.md", "data/u/big", "meta.json"]
    # data/t0 is in data/ but no file of partition t (whose prefix is "data/t/").
    chosen = [f.path for f in manifest.select(["t"])]
    assert chosen == ["README.md", "data/t/a", "data/t/é/b", "meta.json"]
    assert list(manifest.select(None)) == rows
    assert manifest.total_size == sum(r.size for r in rows)


def test_hex_digests_read_as_strings() -> None:
    digests = HexDigests(bytes(range(64)))
    assert len(digests) == 2
    assert list(digests) == [bytes(range(32)).hex(), bytes(range(32, 64)).hex()]
    assert digests[-1] == digests[1] and digests[:1] == [digests[0]]
    with pytest.raises(ValueError, match="whole number"):
        HexDigests(b"x")
