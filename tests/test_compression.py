"""Compressed objects (format v3): round trips on every store, bytes moved, bombs refused."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import anyio
import fsspec
import pytest
import zstandard

import etcetera as etc
from etcetera.engine import framed_upload
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport, TransportUpload
from etcetera.errors import IntegrityError
from etcetera.format import compression, frames, layout
from etcetera.fs import EtcFileSystem
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.anyio

fsspec.register_implementation("etc", EtcFileSystem, clobber=True)
KiB, MiB = 1 << 10, 1 << 20
_WORDS = ["river", "stone", "signal", "vector", "sample", "label", "anchor", "meadow"]


def xml(rng: random.Random, size: int, n: int) -> bytes:
    """An XML-like document of about ``size`` bytes (tags repeat, values vary)."""
    out = [f'<?xml version="1.0"?>\n<dataset file="{n}">\n']
    total = 0
    while total < size:
        a, b = rng.choices(_WORDS, k=2)
        line = f'  <record id="{n}-{total}"><name>{a} {b}</name><value>{rng.random():.5f}</value>'
        line += f"<count>{rng.randrange(10**6)}</count></record>\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode() + b"</dataset>\n"


def text_tree(root: Path, files: int = 40) -> Path:
    """Text files around data/ and a text blob above the pack threshold, one empty file."""
    rng = random.Random(17)
    tree = {
        f"data/train/d{i % 3}/{i:04d}.xml": xml(rng, rng.randrange(8, 64) * KiB, i)
        for i in range(files)
    }
    tree["data/test/big.xml"] = xml(rng, 5 * MiB, 999)
    tree["README.md"] = b"# text\n" * 100
    tree["data/test/empty.txt"] = b""
    return write_tree(root, tree)


def random_tree(root: Path) -> Path:
    rng = random.Random(5)
    tree = {f"data/train/{i:03d}.bin": rng.randbytes(64 * KiB) for i in range(24)}
    tree["data/train/big.bin"] = rng.randbytes(6 * MiB)
    return write_tree(root, tree)


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("repo", ["file", "s3", "gcs"], indirect=True)
@pytest.mark.parametrize("level", [3, 0], ids=["compressed", "identity"])
async def test_round_trip_and_ranged_reads(repo: RepoSpec, tmp_path: Path, level: int) -> None:
    src = text_tree(tmp_path / "text")
    cfg = repo.config(home=tmp_path / "home", compression=level, pack_size=256 * KiB)
    await etc.aregister(src, "text", config=cfg)
    pushed = await etc.apush("text", config=cfg)
    again = await etc.apush("text", config=cfg)
    assert again.noop
    fresh = repo.config(home=tmp_path / "fresh", compression=level)
    pulled = await etc.apull("text", config=fresh)
    assert snapshot(pulled.location) == snapshot(src)
    size = _size(src)
    if level:
        assert pushed.stats.bytes_sent < 0.35 * size
        assert pulled.stats.bytes_received < 0.35 * size
    else:
        assert pushed.stats.bytes_sent > size
    # A partial read inflates only its frames and still verifies.
    fs = EtcFileSystem(
        skip_instance_cache=True, url=repo.url, home=str(tmp_path / "r"), **repo.settings
    )
    try:
        want = (src / "data/test/big.xml").read_bytes()
        assert (
            fs.cat_file("text/data/test/big.xml", 3 * MiB - 7, 3 * MiB + 100)
            == want[3 * MiB - 7 : 3 * MiB + 100]
        )
        assert (
            fs.cat("text/data/train/d1/0004.xml") == (src / "data/train/d1/0004.xml").read_bytes()
        )
    finally:
        fs.close()


def _framed_objects(repo: RepoSpec) -> list[Path]:
    """The objects of a file:// repository that end in a seek table."""
    root = Path(repo.url.removeprefix("file://")) / layout.OBJECTS
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            frames.read_seek_table(path.read_bytes()[-4096:], "x")
        except IntegrityError:
            continue
        found.append(path)
    return found


@pytest.mark.parametrize("bomb", ["undeclared", "declared", "garbage", "truncated"])
async def test_a_frame_that_inflates_past_its_size_is_refused(
    file_repo: RepoSpec, tmp_path: Path, bomb: str
) -> None:
    src = text_tree(tmp_path / "text", files=12)
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, "text", config=cfg)
    await etc.apush("text", config=cfg)
    (path, *_) = _framed_objects(file_repo)
    data = path.read_bytes()
    first = frames.read_seek_table(data[-4096:], "x")[0][0]
    zeros = b"\0" * (64 * MiB)
    forged = {
        "undeclared": zstandard.ZstdCompressor(write_content_size=False).compress(zeros),
        "declared": zstandard.ZstdCompressor().compress(zeros),
        "garbage": b"\x28\xb5\x2f\xfd" + b"\xff" * 64,
        "truncated": b"",
    }[bomb]
    assert len(forged) <= first
    path.write_bytes(forged + b"\0" * (first - len(forged)) + data[first:])
    if bomb == "truncated":  # the frame table points past the object's end
        path.write_bytes(data[: first // 2])
    with pytest.raises(IntegrityError) as err:
        await etc.apull("text", config=file_repo.config(home=tmp_path / "fresh"))
    message = str(err.value)
    assert "\n" not in message and ("frame" in message or "holds" in message)
    assert not (tmp_path / "fresh" / "text").exists()


async def test_objects_stored_by_another_dataset_are_found_with_their_frames(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = text_tree(tmp_path / "a")
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, "a", config=cfg)
    first = await etc.apush("a", config=cfg)
    other = file_repo.config(home=tmp_path / "other")
    await etc.aregister(src, "b", config=other)
    second = await etc.apush("b", config=other)
    assert second.manifest == first.manifest  # the same tree, stored the same way
    assert second.stats.objects_sent == 0
    pulled = await etc.apull("b", config=file_repo.config(home=tmp_path / "fresh"))
    assert snapshot(pulled.location) == snapshot(src)


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
async def test_random_bytes_move_at_most_their_size(repo: RepoSpec, tmp_path: Path) -> None:
    src = random_tree(tmp_path / "rand")
    cfg = repo.config(home=tmp_path / "home", pack_size=512 * KiB)
    await etc.aregister(src, "rand", config=cfg)
    pushed = await etc.apush("rand", config=cfg)
    pulled = await etc.apull("rand", config=repo.config(home=tmp_path / "fresh"))
    size = _size(src)
    assert pushed.stats.bytes_sent <= 1.01 * size
    assert pulled.stats.bytes_received <= 1.01 * size
    assert snapshot(pulled.location) == snapshot(src)


def test_the_trial_tells_text_from_noise() -> None:
    rng = random.Random(3)
    assert compression.pays(xml(rng, 300 * KiB, 1))
    assert not compression.pays(rng.randbytes(300 * KiB))
    assert not compression.pays(b"x" * 100)  # too small to bother
    data = xml(rng, 3 * MiB + 5, 2)
    done = compression.compress(data, 3, 1 * MiB)
    assert done is not None
    stored, lengths = done
    table = frames.FrameTable.of(lengths, len(data), MiB)
    _, _, at, length = table.span(2 * MiB, 10)
    assert compression.inflate(stored[at : at + length], MiB, "x")[:10] == data[2 * MiB :][:10]
    with pytest.raises(IntegrityError, match="declares"):
        compression.inflate(stored[at : at + length], MiB - 1, "x")


@pytest.mark.parametrize("repo", ["file", "gcs"], indirect=True)
async def test_a_large_blob_is_sent_compressed_in_parts(repo: RepoSpec, tmp_path: Path) -> None:
    rng = random.Random(11)
    big = xml(rng, 19 * MiB, 1)
    src = write_tree(tmp_path / "big", {"data/train/big.xml": big})
    cfg = repo.config(home=tmp_path / "home", part_size=8 * MiB)
    await etc.aregister(src, config=cfg)
    pushed = await etc.apush("big", config=cfg)
    assert pushed.stats.bytes_sent < 0.35 * len(big)
    pulled = await etc.apull("big", config=repo.config(home=tmp_path / "fresh"))
    assert pulled.stats.bytes_received < 0.35 * len(big)
    assert (pulled.location / "data/train/big.xml").read_bytes() == big
    assert (await etc.apush("big", config=cfg)).noop


@pytest.mark.parametrize("repo", ["file", "s3"], indirect=True)
async def test_a_blob_whose_frames_do_not_shrink_is_left_unsent(
    repo: RepoSpec, tmp_path: Path
) -> None:
    """Past the trial, a blob that comes out no smaller aborts its upload: nothing stays."""
    data = random.Random(3).randbytes(3 * MiB + 5)  # random: zstd's frames only grow
    t = Transport(repo.backend(), TransferConfig(part_size=1 * MiB))
    try:

        def read(offset: int, length: int) -> bytes:
            return data[offset : offset + length]

        key = layout.object_key("ab" * 32)
        assert await framed_upload.upload(t, key, read, len(data), 1 * MiB, 3) is None
        assert await t.backend.head(key) is None
        assert [u async for u in t.backend.uploads("")] == []
    finally:
        await t.backend.aclose()


class _GatedUpload:
    """A real upload whose parts wait for ``gate``: a store that takes its time."""

    def __init__(self, up: Any, gate: anyio.Event) -> None:
        self.up, self.gate = up, gate

    async def put_part(self, number: int, data: Any, **kw: Any) -> Any:
        await self.gate.wait()
        return await self.up.put_part(number, data, **kw)

    async def complete(self, refs: Any) -> Any:
        return await self.up.complete(refs)

    async def abort(self) -> Any:
        return await self.up.abort()


async def test_a_slow_store_holds_back_the_compression_of_later_steps(
    file_repo: RepoSpec,
) -> None:
    """While parts wait on the store, steps are read and compressed a few ahead, not all.

    Before, every step was read and compressed at once and its frames kept until sent:
    a large compressible blob over a slow link took its compressed size in memory.
    """
    rng = random.Random(8)
    steps = 40
    data = b"".join(rng.randbytes(512 * KiB) + bytes(512 * KiB) for _ in range(steps))
    read_at: list[int] = []

    def read(offset: int, length: int) -> bytes:
        read_at.append(offset)
        return data[offset : offset + length]

    t = Transport(file_repo.backend(), TransferConfig(part_size=1 * MiB))
    gate = anyio.Event()
    try:
        key = layout.object_key("cd" * 32)
        # the same three methods as the upload it wraps
        up = cast(TransportUpload, _GatedUpload(await t.upload(key), gate))
        lengths: list[tuple[int, ...] | None] = []

        async def go() -> None:
            lengths.append(
                await framed_upload.upload(t, key, read, len(data), 1 * MiB, 3, resume=(up, {}))
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            for _ in range(100):  # until the reads stop (each step takes milliseconds)
                before = len(read_at)
                await anyio.sleep(0.05)
                if len(read_at) == before and before:
                    break
            waiting = len(read_at)
            gate.set()
        assert waiting <= steps // 2, f"{waiting} of {steps} steps read with no part stored"
        assert len(read_at) == steps and lengths and lengths[0] is not None
        assert sum(lengths[0]) < 0.6 * len(data)
    finally:
        await t.backend.aclose()
