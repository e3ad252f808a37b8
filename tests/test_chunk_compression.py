"""Chunk objects compressed (format v3, ``content_chunks``): bytes moved, reads, bombs refused."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard

import etcetera as etc
from etcetera.engine import manifests
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport
from etcetera.errors import BackendError, IntegrityError, ManifestError
from etcetera.format import layout
from etcetera.format.manifest import Manifest, ObjectEntry
from etcetera.fs import EtcFileSystem
from tests.hostile import put, record
from tests.support import RepoSpec, snapshot
from tests.test_compression import xml

pytestmark = pytest.mark.anyio
MiB = 1 << 20
BIG = "data/all/big.xml"


def _text_tree(root: Path, size: int = 33 * MiB, seed: int = 11) -> bytes:
    (root / "data" / "all").mkdir(parents=True)
    data = xml(random.Random(seed), size, seed)
    (root / BIG).write_bytes(data)
    (root / "data" / "all" / "small.txt").write_text("small")
    return data


async def _manifest(repo: RepoSpec, digest: str) -> Manifest:
    t = Transport(repo.backend(), TransferConfig())
    try:
        return await manifests.read_manifest(t, digest)
    finally:
        await t.backend.aclose()


def _framed_chunk_objects(manifest: Manifest) -> list[ObjectEntry]:
    return [o for o in manifest.objects.values() if o.kind == "chunks" and o.frames]


@pytest.mark.parametrize("repo", ["file", "s3", "gcs"], indirect=True)
async def test_a_text_file_cut_by_content_moves_compressed(repo: RepoSpec, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    data = _text_tree(src)
    cfg = repo.config(home=tmp_path / "h1", content_chunks=True)
    await etc.aregister(src, "text", config=cfg)
    pushed = await etc.apush("text", config=cfg)
    assert pushed.stats.bytes_sent <= 0.35 * len(data), pushed.stats.bytes_sent
    manifest = await _manifest(repo, pushed.manifest)
    assert manifest.extents[BIG] and _framed_chunk_objects(manifest)
    assert (await etc.apush("text", config=cfg)).noop
    # From a home that knows nothing: laid out again against the compressed version.
    other = repo.config(home=tmp_path / "h3", content_chunks=True)
    await etc.aregister(src, "text", config=other)
    assert (await etc.apush("text", config=other)).noop

    fresh = repo.config(home=tmp_path / "h2", content_chunks=True)
    pulled = await etc.apull("text", config=fresh)
    assert snapshot(pulled.location) == snapshot(src)
    assert pulled.stats.bytes_received <= 0.35 * len(data), pulled.stats.bytes_received

    # A change in the middle: the push sends the new chunks compressed, the pull copies
    # the others from its local copy and inflates only what it fetches.
    changed = data[: 16 * MiB] + xml(random.Random(2), MiB, 2) + data[16 * MiB :]
    (src / BIG).write_bytes(changed)
    second = await etc.apush("text", config=cfg, force=True)
    assert second.stats.bytes_sent <= 0.35 * 4 * MiB, second.stats.bytes_sent
    delta = await etc.apull("text", config=fresh)
    assert (delta.location / BIG).read_bytes() == changed
    assert delta.stats.bytes_reused >= 0.8 * len(changed)
    assert delta.stats.bytes_received <= 0.35 * 4 * MiB, delta.stats.bytes_received
    assert (await etc.averify("text", config=fresh)).ok

    fs = EtcFileSystem(
        skip_instance_cache=True, url=repo.url, home=str(tmp_path / "r"), **repo.settings
    )
    try:
        at = 20 * MiB - 5
        assert fs.cat_file(f"text/{BIG}", at, at + MiB) == changed[at : at + MiB]
    finally:
        fs.close()

    await etc.arm_remote("text@1", config=fresh)
    result = await etc.agc(config=fresh, grace=timedelta(0))
    assert result.partly_used >= 1
    assert 0 < result.unreferenced_bytes < result.partly_used_bytes <= 0.35 * len(data)


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
async def test_random_bytes_cut_by_content_move_at_most_their_size(
    repo: RepoSpec, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    (src / "data" / "all").mkdir(parents=True)
    data = random.Random(4).randbytes(33 * MiB)
    (src / "data" / "all" / "big.bin").write_bytes(data)
    cfg = repo.config(home=tmp_path / "h1", content_chunks=True)
    await etc.aregister(src, "noise", config=cfg)
    pushed = await etc.apush("noise", config=cfg)
    assert len(data) <= pushed.stats.bytes_sent <= 1.01 * len(data)
    assert not _framed_chunk_objects(await _manifest(repo, pushed.manifest))
    pulled = await etc.apull("noise", config=repo.config(home=tmp_path / "h2"))
    assert pulled.stats.bytes_received <= 1.01 * len(data)
    assert (pulled.location / "data/all/big.bin").read_bytes() == data


async def _read(repo: RepoSpec, key: str) -> bytes:
    backend = repo.backend()
    try:
        out = bytearray()
        async with aclosing(backend.stream(key)) as body:
            async for block in body:
                out += block
        return bytes(out)
    finally:
        await backend.aclose()


async def _write(repo: RepoSpec, key: str, data: bytes) -> None:
    backend = repo.backend()
    try:
        await backend.put(key, data)
    finally:
        await backend.aclose()


async def _pushed_text(repo: RepoSpec, tmp_path: Path) -> tuple[str, ObjectEntry]:
    """Push a 17 MiB text file cut by content; its manifest, the object of its first bytes."""
    src = tmp_path / "tree"
    _text_tree(src, 17 * MiB)
    cfg = repo.config(home=tmp_path / "h1", content_chunks=True)
    await etc.aregister(src, "text", config=cfg)
    pushed = await etc.apush("text", config=cfg)
    manifest = await _manifest(repo, pushed.manifest)
    obj = manifest.objects[manifest.extents[BIG][0].object]
    assert obj.frames
    return pushed.manifest, obj


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
@pytest.mark.parametrize("bomb", ["undeclared", "declared", "truncated"])
async def test_a_hostile_chunk_object_is_refused_in_one_line(
    repo: RepoSpec, tmp_path: Path, bomb: str
) -> None:
    _, obj = await _pushed_text(repo, tmp_path)
    key = layout.object_key(obj.id)
    data = await _read(repo, key)
    first = obj.frames[0]
    zeros = b"\0" * (64 * MiB)
    if bomb == "truncated":  # the frame table points past the object's end
        forged = data[: first // 2]
    else:
        frame = zstandard.ZstdCompressor(write_content_size=bomb == "declared").compress(zeros)
        assert len(frame) <= first
        forged = frame + b"\0" * (first - len(frame)) + data[first:]
    await _write(repo, key, forged)

    # A range past the end of an object is refused by the store or by the reader.
    refused = (IntegrityError, BackendError) if bomb == "truncated" else IntegrityError
    puller = repo.config(home=tmp_path / "h2", content_chunks=True)
    with pytest.raises(refused) as err:
        await etc.apull("text", config=puller)
    message = str(err.value)
    assert "\n" not in message, message
    assert any(w in message for w in ("frame", "holds", "ended before")), message
    assert not (tmp_path / "h2" / "text").exists()

    fs = EtcFileSystem(
        skip_instance_cache=True, url=repo.url, home=str(tmp_path / "r"), **repo.settings
    )
    try:
        with pytest.raises(refused) as err:
            fs.cat_file(f"text/{BIG}", 0, 4096)
        assert "\n" not in str(err.value)
    finally:
        fs.close()


async def test_a_chunk_object_of_an_unknown_encoding_asks_for_an_upgrade(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    digest, obj = await _pushed_text(file_repo, tmp_path)
    oid = obj.id
    repo = Path(file_repo.url.removeprefix("file://"))
    doc = json.loads((repo / layout.manifest_key(digest)).read_bytes())
    # The piece with the chunk object: its encoding byte set to a code no etcetera knows.
    for row in doc["pieces"]:
        raw = zstandard.ZstdDecompressor().decompress(
            (repo / layout.piece_key(row[0])).read_bytes(), max_output_size=row[4]
        )
        (hlen,) = struct.unpack_from("<I", raw, 16)
        m = json.loads(raw[20 : 20 + hlen])["objects"]
        start = 20 + hlen  # the ids, the kinds, then the encodings: one byte each
        ids = [raw[start + 32 * i : start + 32 * (i + 1)] for i in range(m)]
        if bytes.fromhex(oid) in ids:
            at = start + 33 * m + ids.index(bytes.fromhex(oid))
            forged = raw[:at] + b"\x07" + raw[at + 1 :]
            row[0] = hashlib.sha256(forged).hexdigest()
            put(repo, layout.piece_key(row[0]), zstandard.ZstdCompressor().compress(forged))
    root = json.dumps(doc, separators=(",", ":")).encode()
    digest = hashlib.sha256(root).hexdigest()
    put(repo, layout.manifest_key(digest), root)
    record(repo, digest, 2, "text")
    with pytest.raises(ManifestError, match="unknown object encoding") as err:
        await etc.apull("text", config=file_repo.config(home=tmp_path / "h2"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "h2" / "text").exists()


def _hex_tree(src: Path) -> None:
    """A 72 MiB text file of hex digits: about half its size compressed, so parts are many."""
    (src / "data" / "all").mkdir(parents=True)
    rng = random.Random(5)
    lines = (f"<r>{rng.randbytes(48).hex()}</r>\n" for _ in range(72 * MiB // 104))
    (src / BIG).write_text("".join(lines))


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
async def test_compressed_uploads_in_parts_go_through_a_small_memory_budget(
    repo: RepoSpec, tmp_path: Path
) -> None:
    """Each upload takes its share of the budget once: none waits for more while holding it."""
    src = tmp_path / "tree"
    _hex_tree(src)
    cfg = repo.config(
        home=tmp_path / "h1", content_chunks=True, part_size=5 * MiB, memory_budget=24 * MiB
    )
    await etc.aregister(src, "text", config=cfg)
    pushed = await etc.apush("text", config=cfg)
    assert len(_framed_chunk_objects(await _manifest(repo, pushed.manifest))) >= 2
    pulled = await etc.apull("text", config=repo.config(home=tmp_path / "h2"))
    assert snapshot(pulled.location) == snapshot(src)


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
async def test_an_interrupted_compressed_upload_keeps_its_stored_parts(
    repo: RepoSpec, tmp_path: Path
) -> None:
    part = 5 * MiB
    src = tmp_path / "tree"
    _hex_tree(src)
    # The same push into a scratch folder: what each part of the largest object holds.
    scratch = RepoSpec(f"file://{tmp_path / 'scratch'}")
    (tmp_path / "scratch").mkdir()
    first = scratch.config(home=tmp_path / "h0", content_chunks=True, part_size=part)
    await etc.aregister(src, "text", config=first)
    done = await etc.apush("text", config=first)
    obj = max(_framed_chunk_objects(await _manifest(scratch, done.manifest)), key=len_stored)
    stored = (tmp_path / "scratch" / layout.object_key(obj.id)).read_bytes()
    cuts, held, at = [], 0, 0
    for i, length in enumerate(obj.frames):  # parts of whole steps, ``part`` stored bytes
        held, at = held + length, at + length
        if (i + 1) % (part // MiB) == 0 and held >= part and i + 1 < len(obj.frames):
            cuts.append(at)
            held = 0
    assert len(cuts) >= 2, cuts
    key = layout.object_key(obj.id)
    backend = repo.backend()
    try:
        upload = await backend.upload(key)
        await upload.put_part(1, stored[: cuts[0]])
        await upload.put_part(2, b"x" * (cuts[1] - cuts[0]))  # other bytes: sent again
    finally:
        await backend.aclose()

    cfg = repo.config(home=tmp_path / "h1", content_chunks=True, part_size=part)
    await etc.aregister(src, "text", config=cfg)
    pushed = await etc.apush("text", config=cfg)
    assert pushed.stats.bytes_resumed == cuts[0]
    assert pushed.manifest == done.manifest
    assert await _read(repo, key) == stored
    pulled = await etc.apull("text", config=repo.config(home=tmp_path / "h2"))
    assert snapshot(pulled.location) == snapshot(src)


def len_stored(obj: ObjectEntry) -> int:
    """Stored bytes of an object (a sort key)."""
    return obj.stored_size
