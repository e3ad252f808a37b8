"""Chunked files through two versions on every store: random trees, random edits, resume."""

from __future__ import annotations

import itertools
import os
import random
import shutil
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcetera.engine.chunk_push import ChunkUploader, parts_of, read_members
from etcetera.engine.chunked import chunk_files, pull_chunked, push_chunked
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport
from etcetera.format import cdc, layout
from etcetera.format.chunkobjects import Extent, known_chunks, plan_push
from tests.support import RepoSpec

TINY = cdc.Chunking(min_size=2048, avg_size=2048, max_size=16384)
_counter = itertools.count()

_edit = st.tuples(
    st.sampled_from(["insert", "delete", "append", "overwrite", "truncate"]),
    st.floats(0, 1),
    st.integers(1, 5000),
)
_file = st.tuples(st.integers(0, 200_000), st.lists(_edit, max_size=4), st.integers(0, 2**32))


def _edited(data: bytes, edits: list[tuple[str, float, int]], rng: random.Random) -> bytes:
    out = bytearray(data)
    for kind, where, n in edits:
        at = int(where * len(out))
        if kind == "insert":
            out[at:at] = rng.randbytes(n)
        elif kind == "delete":
            del out[at : at + n]
        elif kind == "append":
            out += rng.randbytes(n)
        elif kind == "overwrite":
            out[at : at + n] = rng.randbytes(min(n, len(out) - at))
        else:
            del out[at:]
    return bytes(out)


async def _push(t: Transport, paths: list[Path], known: dict[bytes, Extent]) -> list[list[Extent]]:
    sizes = [p.stat().st_size for p in paths]
    chunks = await chunk_files(t, [str(p) for p in paths], sizes, TINY)
    pushed = await push_chunked(
        t, list(zip(map(str, paths), chunks, strict=True)), known, 64 * 1024
    )
    return [pushed.extents[str(p)] for p in paths]


async def _pull(
    t: Transport, extents: list[Extent], dest: Path, local: Path | None, old: list[Extent]
) -> bytes:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        await pull_chunked(t, dest.name, extents, fd, str(local) if local else None, old)
    finally:
        os.close(fd)
    return dest.read_bytes()


def test_random_trees_with_random_edits_come_back_byte_identical(
    repo: RepoSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_file, min_size=1, max_size=4))
    def run(files: list[tuple[int, list[tuple[str, float, int]], int]]) -> None:
        base = tmp_path_factory.mktemp(f"cdc{next(_counter)}")
        v1, v2 = [], []
        for i, (size, edits, seed) in enumerate(files):
            rng = random.Random(seed)
            old = rng.randbytes(size)
            new = _edited(old, edits, rng)
            (base / f"a{i}").write_bytes(old)
            (base / f"b{i}").write_bytes(new)
            v1.append(old)
            v2.append(new)

        async def main() -> None:
            t = Transport(repo.backend(), TransferConfig(part_size=1024 * 1024))
            try:
                n = len(files)
                first = await _push(t, [base / f"a{i}" for i in range(n)], {})
                second = await _push(t, [base / f"b{i}" for i in range(n)], known_chunks(first))
                for i in range(n):
                    assert await _pull(t, first[i], base / f"p{i}", None, []) == v1[i]
                    local = base / f"p{i}"
                    assert await _pull(t, second[i], base / f"q{i}", local, first[i]) == v2[i]
            finally:
                await t.backend.aclose()

        anyio.run(main)
        shutil.rmtree(base)

    run()


async def _resume(repo: RepoSpec, tmp_path: Path) -> None:
    data = random.Random(5).randbytes(12 * cdc.MiB)
    (tmp_path / "f").write_bytes(data)
    t = Transport(repo.backend(), TransferConfig(part_size=5 * cdc.MiB))
    try:
        (chunks,) = await chunk_files(t, [str(tmp_path / "f")], [len(data)])
        plan = plan_push([(str(tmp_path / "f"), chunks)], {})
        (obj,) = plan.objects
        part = max(t.config.part_size, t.backend.capabilities.min_part_size)
        parts = parts_of(obj, part)
        assert len(parts) >= 2
        # An interrupted push stored the first part only.
        key = layout.object_key(obj.id)
        upload = await t.upload(key)
        _number, _offset, members = parts[0]
        first = bytearray(sum(m.size for m in members))
        crc = read_members(members, memoryview(first))
        await upload.put_part(1, first, crc32=crc)
        sent = t.stats.bytes_sent
        await ChunkUploader(t).send_all(plan.objects)
        # Checked by the store's CRC32 or MD5; file:// writes a chunk object at once.
        assert t.stats.bytes_resumed == (0 if t.local is not None else len(first))
        assert t.stats.bytes_sent - sent == len(data) - t.stats.bytes_resumed
        out = tmp_path / "out"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            await pull_chunked(t, "f", plan.extents[str(tmp_path / "f")], fd)
        finally:
            os.close(fd)
        assert out.read_bytes() == data
        # Pushed again, nothing is sent: the object is there.
        sent = t.stats.bytes_sent
        await ChunkUploader(t).send_all(plan.objects)
        assert t.stats.bytes_sent == sent
    finally:
        await t.backend.aclose()


def test_an_interrupted_chunk_object_upload_is_resumed(repo: RepoSpec, tmp_path: Path) -> None:
    anyio.run(_resume, repo, tmp_path)
