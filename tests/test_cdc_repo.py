"""Content-chunked versions through the API: pushed, pulled by delta, kept by gc."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import etcetera as etc
from tests.support import RepoSpec, snapshot

MiB = 1024 * 1024


def test_chunked_versions_push_and_pull_by_delta_and_gc_keeps_shared_chunk_objects(
    repo: RepoSpec, tmp_path: Path
) -> None:
    rng = random.Random(3)
    root = tmp_path / "tree"
    (root / "data" / "all").mkdir(parents=True)
    big = root / "data" / "all" / "big.bin"
    old = rng.randbytes(24 * MiB)
    big.write_bytes(old)
    (root / "data" / "all" / "small.txt").write_text("small")
    cfg = repo.config(home=tmp_path / "h1", content_chunks=True)
    name = f"big{rng.randrange(10**9)}"
    etc.register(root, name, config=cfg)
    first = etc.push(name, config=cfg)
    assert first.stats.bytes_sent >= len(old)
    again = etc.push(name, config=cfg)
    assert again.noop
    new = old[: 12 * MiB] + rng.randbytes(MiB) + old[12 * MiB :]
    big.write_bytes(new)
    second = etc.push(name, config=cfg, force=True)
    # The inserted MiB, the chunks around it, the manifest and the record.
    assert second.stats.bytes_sent <= 4 * MiB, second.stats.bytes_sent

    puller = repo.config(home=tmp_path / "h2")
    pulled = etc.pull(name, version=1, config=puller)
    assert (pulled.location / "data/all/big.bin").read_bytes() == old
    delta = etc.pull(name, config=puller)  # holding version 1: its chunks are copied
    assert snapshot(delta.location) == snapshot(root)
    assert delta.stats.bytes_received <= 4 * MiB, delta.stats.bytes_received
    assert delta.stats.bytes_reused >= 0.8 * len(new)

    etc.rm_remote(f"{name}@1", config=puller)
    result = etc.gc(config=puller, grace=timedelta(0))
    assert result.partly_used >= 1 and result.unreferenced_bytes > 0
    fresh = etc.pull(name, config=repo.config(home=tmp_path / "h3"))
    assert snapshot(fresh.location) == snapshot(root)
