"""Content-chunked versions in a repository: pulled with the API, kept and counted by gc.

The push's steps are composed here as ``engine.push`` would run them once it lays large
files out by content (``engine.chunked.lay_out``): packs go by the push's uploader,
chunk objects by ``ChunkUploader``, then the manifest and the version record.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import anyio

import etcetera as etc
from etcetera.engine import manifests, refs
from etcetera.engine import push as engine_push
from etcetera.engine.chunk_push import ChunkUploader
from etcetera.engine.chunked import lay_out
from etcetera.engine.config import TransferConfig
from etcetera.engine.scan import HashCache
from etcetera.engine.transport import Transport
from etcetera.format.manifest import Manifest
from etcetera.format.record import VersionRecord
from etcetera.format.v2 import encode_manifest
from tests.support import RepoSpec, snapshot

MiB = 1024 * 1024


async def _push(repo: RepoSpec, root: Path, number: int, previous: Manifest | None) -> Manifest:
    t = Transport(repo.backend(), TransferConfig())
    try:
        options = engine_push.PushOptions()
        prepared = await engine_push.prepare(t, root, "big", options, cache=HashCache(None))
        sources = {f.path: f.source for f in prepared.scan.files}
        manifest, plan = await lay_out(t, prepared.manifest, sources, previous)
        missing = await engine_push.missing_objects(t, manifest)
        packs = [o for o in missing if o.kind != "chunks"]
        await engine_push.send(t, prepared, packs, name="big", cache=HashCache(None))
        await ChunkUploader(t).send_all(plan.objects)
        encoded = encode_manifest(manifest)
        await manifests.write_manifest(t, encoded)
        record = VersionRecord("big", number, encoded.digest, files=len(manifest.files))
        await refs.commit(t, record)
        return manifest
    finally:
        await t.backend.aclose()


def test_chunked_versions_pull_by_delta_and_gc_keeps_shared_chunk_objects(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    rng = random.Random(3)
    root = tmp_path / "tree"
    (root / "data" / "all").mkdir(parents=True)
    big = root / "data" / "all" / "big.bin"
    old = rng.randbytes(24 * MiB)
    big.write_bytes(old)
    (root / "data" / "all" / "small.txt").write_text("small")
    first = anyio.run(_push, file_repo, root, 1, None)
    assert list(first.extents) == ["data/all/big.bin"]
    new = old[: 12 * MiB] + rng.randbytes(MiB) + old[12 * MiB :]
    big.write_bytes(new)
    anyio.run(_push, file_repo, root, 2, first)

    cfg = file_repo.config(home=tmp_path / "home")
    pulled = etc.pull("big", version=1, config=cfg)
    assert (pulled.location / "data/all/big.bin").read_bytes() == old
    again = etc.pull("big", config=cfg)  # holding version 1: its chunks are copied
    assert snapshot(again.location) == snapshot(root)
    assert again.stats.bytes_received <= 0.25 * len(new), again.stats.bytes_received
    assert again.stats.bytes_reused >= 0.75 * len(new)

    etc.rm_remote("big@1", config=cfg)
    result = etc.gc(config=cfg, grace=timedelta(0))
    assert result.partly_used >= 1 and result.unreferenced_bytes > 0
    fresh = etc.pull("big", config=file_repo.config(home=tmp_path / "home2"))
    assert snapshot(fresh.location) == snapshot(root)
