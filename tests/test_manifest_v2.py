"""Manifest format v2: root + zstd pieces; canonical, local to changes, hostile-safe, reads v1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

import etcetera as etc
from etcetera.errors import IntegrityError, ManifestError
from etcetera.format import layout, pieces
from etcetera.format.hashing import sha256_hex
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.record import VersionRecord
from etcetera.format.v2 import (
    PIECE_MAX,
    PIECE_MIN,
    ManifestRoot,
    decode_manifest,
    encode_manifest,
)
from tests.support import snapshot, write_tree

CHUNK = 8 * 1024 * 1024


def _digest(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _synthetic(n: int, extra: tuple[str, ...] = ()) -> Manifest:
    """Files in two partitions, a multi-chunk blob, an empty file, files around data/."""
    paths = sorted(
        {
            *(f"data/{'train' if i % 4 else 'test'}/d{i // 500:04d}/f{i:07d}" for i in range(n)),
            *extra,
        }
    )
    files: list[FileEntry] = []
    objects: dict[str, ObjectEntry] = {}
    pack, offset = "", 0
    for i, path in enumerate(paths):
        if i % 200 == 0:
            if pack:
                objects[pack] = ObjectEntry(pack, "pack", offset)
            pack, offset = _digest(-i - 1), 0
        files.append(FileEntry(path, 100, 0o644, _digest(i), pack, offset))
        offset += 100
    objects[pack] = ObjectEntry(pack, "pack", offset)
    chunks = (_digest(1 << 40), _digest(1 << 41))
    big = hashlib.sha256(b"".join(bytes.fromhex(c) for c in chunks)).hexdigest()
    files += [
        FileEntry("README.md", 0, 0o644, hashlib.sha256(b"").hexdigest()),
        FileEntry("zz/big.bin", CHUNK + 1, 0o755, big, big, 0, chunks),
    ]
    objects[big] = ObjectEntry(big, "blob", CHUNK + 1)
    files.sort()
    return Manifest(tuple(files), objects, ("test", "train"))


def test_roundtrip_is_exact_and_canonical() -> None:
    manifest = _synthetic(2 * PIECE_MAX)
    encoded = encode_manifest(manifest)
    assert decode_manifest(encoded.root, encoded.pieces) == manifest
    # Pure function of the tree: the same bytes again, whatever the compression level.
    assert encode_manifest(manifest, level=1).digest == encoded.digest
    root = ManifestRoot.parse(encoded.root)
    assert root.version == 3
    groups = [r.group for r in root.pieces]
    # Files outside data/ before and after it, each partition cut into pieces.
    assert groups[0] == "" and groups[-1] == "" and groups.count("train") >= 2
    assert all(PIECE_MIN <= r.files <= PIECE_MAX for r in root.pieces if r.group == "train")
    assert sum(r.files for r in root.pieces) == len(manifest.files)
    # Pieces are stored compressed and named by their uncompressed bytes.
    for ref in root.pieces:
        raw = zstandard.ZstdDecompressor().decompress(encoded.pieces[ref.id])
        assert sha256_hex(raw) == ref.id and len(raw) == ref.length


def test_one_added_file_changes_at_most_two_pieces() -> None:
    manifest = _synthetic(2 * PIECE_MAX)
    empty = FileEntry("data/train/d0100/f0050000x", 0, 0o644, hashlib.sha256(b"").hexdigest())
    grown = Manifest(tuple(sorted((*manifest.files, empty))), manifest.objects, manifest.partitions)
    before, after = encode_manifest(manifest), encode_manifest(grown)
    changed = set(after.pieces) - set(before.pieces)
    assert 1 <= len(changed) <= 2
    assert len(after.pieces) >= 5


def _one_piece(cols: pieces.Columns, **root: object) -> tuple[bytes, dict[str, bytes]]:
    raw = pieces.encode(cols)
    pid = sha256_hex(raw)
    doc = {
        "format": "etcetera/manifest",
        "version": 2,
        "chunk_size": CHUNK,
        "partitions": ["train"],
        "dirs": [],
        "files": len(cols.paths),
        "size": sum(cols.sizes),
        "pieces": [[pid, cols.group, len(cols.paths), sum(cols.sizes), len(raw)]],
    }
    doc.update(root)
    return json.dumps(doc).encode(), {pid: zstandard.ZstdCompressor().compress(raw)}


def _cols(paths: list[str], group: str = "train", **over: object) -> pieces.Columns:
    n = len(paths)
    base: dict[str, object] = {
        "group": group,
        "object_ids": ["ab" * 32],
        "object_kinds": ["pack"],
        "object_sizes": [10 * n],
        "paths": paths,
        "sizes": [10] * n,
        "modes": [0o644] * n,
        "objects": [0] * n,
        "offsets": [10 * i for i in range(n)],
        "digests": [_digest(i) for i in range(n)],
        "chunks": [()] * n,
    }
    base.update(over)
    return pieces.Columns(**base)  # type: ignore[arg-type]


HOSTILE_PIECES = {
    "climbing": _cols(["data/train/../../x"]),
    "other-partition": _cols(["data/test/x"]),
    "unlisted-group": _cols(["data/test/x"], group="test"),
    "unsorted": _cols(["data/train/b", "data/train/a"]),
    "case-clash": _cols(["data/train/A", "data/train/a"]),
    "file-as-folder": _cols(["data/train/a", "data/train/a-b", "data/train/a/c"]),
    "file-as-folder-case": _cols(["data/train/A", "data/train/a/c"]),
    "past-end": _cols(["data/train/x"], offsets=[5]),
    "bad-index": _cols(["data/train/x"], objects=[3]),
    "blob-mismatch": _cols(["data/train/x"], object_kinds=["blob"]),
    "bytes-no-object": _cols(["data/train/x"], objects=[-1]),
    "mode": _cols(["data/train/x"], modes=[0o7777]),
    "chunks-on-small": _cols(["data/train/x"], chunks=[(_digest(1),)]),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PIECES))
def test_hostile_pieces_are_refused(kind: str) -> None:
    root, stored = _one_piece(HOSTILE_PIECES[kind])
    with pytest.raises(ManifestError):
        decode_manifest(root, stored)


def test_a_file_where_the_next_piece_needs_a_folder_is_refused() -> None:
    first, second = _cols(["data/train/a"]), _cols(["data/train/a/b"])
    raws = [pieces.encode(first), pieces.encode(second)]
    ids = [sha256_hex(raw) for raw in raws]
    doc: dict[str, Any] = {
        "format": "etcetera/manifest",
        "version": 2,
        "chunk_size": CHUNK,
        "partitions": ["train"],
        "dirs": [],
        "files": 2,
        "size": 20,
        "pieces": [[pid, "train", 1, 10, len(raw)] for pid, raw in zip(ids, raws, strict=True)],
    }
    stored = {
        pid: zstandard.ZstdCompressor().compress(raw) for pid, raw in zip(ids, raws, strict=True)
    }
    with pytest.raises(ManifestError, match="clash"):
        decode_manifest(json.dumps(doc).encode(), stored)
    doc["pieces"] = doc["pieces"][:1]
    doc["files"], doc["size"] = 1, 10
    assert len(decode_manifest(json.dumps(doc).encode(), stored).files) == 1


def test_a_piece_whose_chunk_counts_disagree_with_its_header_is_refused() -> None:
    raw = bytearray(pieces.encode(_cols(["data/train/a", "data/train/b"])))
    assert pieces.decode(bytes(raw)).paths == ["data/train/a", "data/train/b"]
    raw[-4:] = (1).to_bytes(4, "little")  # its last column: chunk counts (no chunk follows)
    with pytest.raises(ManifestError, match="chunk count does not match"):
        pieces.decode(bytes(raw))


def test_a_valid_piece_passes_the_same_checks() -> None:
    root, stored = _one_piece(_cols(["data/train/a", "data/train/b"]))
    manifest = decode_manifest(root, stored)
    assert [f.path for f in manifest.files] == ["data/train/a", "data/train/b"]


def test_tampered_missing_or_bomb_pieces_are_refused() -> None:
    root, stored = _one_piece(_cols(["data/train/a"]))
    (pid,) = stored
    with pytest.raises(ManifestError, match="missing"):
        decode_manifest(root, {})
    other = zstandard.ZstdCompressor().compress(pieces.encode(_cols(["data/train/b"])))
    with pytest.raises(IntegrityError):
        decode_manifest(root, {pid: other})
    with pytest.raises(IntegrityError):
        decode_manifest(root, {pid: b"\x28\xb5\x2f\xfd garbage"})
    # The root bounds what a piece may inflate to.
    doc = json.loads(root)
    doc["pieces"][0][4] = 10
    with pytest.raises(IntegrityError):
        decode_manifest(json.dumps(doc).encode(), stored)
    doc["pieces"][0][2] = 2
    with pytest.raises(ManifestError, match="totals"):
        decode_manifest(json.dumps(doc).encode(), stored)
    with pytest.raises(ManifestError, match="truncated"):
        pieces.decode(pieces.encode(_cols(["data/train/a"]))[:-1])


def test_newer_format_asks_for_an_upgrade() -> None:
    with pytest.raises(ManifestError, match="upgrade etcetera"):
        Manifest.parse(json.dumps({"format": "etcetera/manifest", "version": 4}).encode())


def test_a_v1_version_is_pulled_and_the_same_tree_is_a_noop_push(tmp_path: Path) -> None:
    """A repository written by the previous format keeps working, and is not re-pushed."""
    src = tmp_path / "src"
    tree = {"data/train/a.txt": b"alpha", "data/train/b.txt": b"beta" * 50, "meta.json": b"{}"}
    write_tree(src, tree)
    repo = tmp_path / "repo"
    repo.mkdir()
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home")
    etc.register(src, config=cfg)
    etc.push("src", config=cfg)
    # Rewrite history: version 1 as the v1 format wrote it (one JSON manifest).
    (ref,) = (repo / layout.refs_prefix("src")).iterdir()
    record = json.loads(ref.read_bytes())
    v2_root = (repo / layout.manifest_key(record["manifest"])).read_bytes()
    pieces_of = ManifestRoot.parse(v2_root).pieces
    stored = {p.id: (repo / layout.piece_key(p.id)).read_bytes() for p in pieces_of}
    v1 = decode_manifest(v2_root, stored).to_json()
    for p in pieces_of:
        (repo / layout.piece_key(p.id)).unlink()
    (repo / layout.manifest_key(record["manifest"])).unlink()
    write_tree(repo, {layout.manifest_key(sha256_hex(v1)): v1})
    ref.unlink()
    write_tree(repo, {layout.ref_key("src", 1): VersionRecord("src", 1, sha256_hex(v1)).to_json()})

    pulled = etc.pull("src", config=etc.Config(f"file://{repo}", home=tmp_path / "h2"))
    assert snapshot(pulled.location) == snapshot(src)
    assert (pulled.location / "data/train/b.txt").read_bytes() == tree["data/train/b.txt"]
    again = etc.push("src", config=cfg)
    assert again.noop and again.version == 1


def test_a_noop_pull_is_decided_without_reading_the_manifest(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"data/train/a.txt": b"a"})
    repo = tmp_path / "repo"
    repo.mkdir()
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home")
    etc.register(src, config=cfg)
    etc.push("src", config=cfg)
    other = etc.Config(f"file://{repo}", home=tmp_path / "h2")
    first = etc.pull("src", config=other)
    # Take the manifest away, remote and cached: a no-op must not need it ...
    for path in [*(repo / "etc-v1" / "manifests").iterdir(), *(tmp_path / "h2").rglob("*.json")]:
        if "manifests" in path.parts:
            path.unlink()
    again = etc.pull("src", config=other)
    assert again.noop and again.location == first.location
    # ... while anything that is not a no-op does.
    with pytest.raises(ManifestError, match="missing"):
        etc.pull("src", config=other, force=True)


def test_a_partition_is_pulled_without_reading_the_others_pieces(tmp_path: Path) -> None:
    tree = {"data/train/a.txt": b"a", "data/test/b.txt": b"b", "meta.json": b"{}"}
    src = write_tree(tmp_path / "src", tree)
    repo = tmp_path / "repo"
    repo.mkdir()
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home")
    etc.register(src, config=cfg)
    pushed = etc.push("src", config=cfg)
    root = ManifestRoot.parse((repo / layout.manifest_key(pushed.manifest)).read_bytes())
    for ref in root.pieces:
        if ref.group == "test":
            (repo / layout.piece_key(ref.id)).unlink()
    other = etc.Config(f"file://{repo}", home=tmp_path / "h2")
    pulled = etc.pull("src", config=other, partitions=["train"])
    assert snapshot(pulled.location) == {
        k: v for k, v in snapshot(src).items() if not k.startswith("data/test/")
    }
    with pytest.raises(ManifestError, match="missing its piece"):
        etc.pull("src", config=other)


def test_a_path_outside_data_that_folds_onto_a_data_file_clashes() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    clash = Manifest(
        (FileEntry("Data/train/a", 0, 0o644, empty), FileEntry("data/train/a", 0, 0o644, empty)),
        {},
        ("train",),
    )
    encoded = encode_manifest(clash)
    with pytest.raises(ManifestError, match="clash"):
        decode_manifest(encoded.root, encoded.pieces)
    with pytest.raises(ManifestError, match="clash"):
        Manifest.parse(clash.to_json())
