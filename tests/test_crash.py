"""A SIGKILLed `etc pull` leaves nothing visible, and the next pull fetches only the rest."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.api import agc
from etcetera.backends.base import Backend
from etcetera.format import layout
from tests.fixtures_s3 import MotoServer
from tests.support import RepoSpec, cli_env, kill_etc_when, snapshot, write_tree


def test_sigkilled_pull_resumes_with_only_the_remainder(tmp_path: Path) -> None:
    files = {f"data/train/f{i:04d}.bin": bytes([i % 251]) * 2000 for i in range(600)}
    root = write_tree(tmp_path / "sample", files)
    repo = tmp_path / "repo"
    repo.mkdir()
    pack = 4096
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home1", pack_size=pack)
    etc.register(root, config=cfg)
    etc.push("sample", config=cfg)
    total = sum(len(b) for b in files.values())

    home = tmp_path / "home2"
    env = {
        **os.environ,
        "ETC_HOME": str(home),
        "ETC_URL": f"file://{repo}",
        "ETC_CONCURRENCY": "1",
        "ETC_BANDWIDTH_LIMIT": str(total // 4),  # about four seconds for the whole pull
    }
    staging = home / ".staging" / "sample"

    def staged() -> int:
        return sum(p.stat().st_size for p in staging.rglob("*.bin")) if staging.exists() else 0

    status, _ = kill_etc_when(env, ["pull", "sample"], lambda: staged() > total // 4, 30)
    assert status == -signal.SIGKILL, "the pull finished before the kill landed"
    moved = sum(p.stat().st_size for p in staging.rglob("*.bin"))
    assert 0 < moved < total
    assert not (home / "sample").exists()

    resumed = etc.pull("sample", config=etc.Config(f"file://{repo}", home=home))
    assert resumed.present > 0
    assert resumed.stats.bytes_received <= (total - moved) + 2 * pack + 64 * 1024
    assert snapshot(resumed.location) == snapshot(root)
    assert not staging.exists() or not any(staging.iterdir())


def _stored_objects(spec: RepoSpec, moto: MotoServer | None, client: Any = None) -> list[str]:
    """Keys of the stored objects; ``client``: a botocore client made once (polls are cheap)."""
    if spec.url.startswith("file://"):
        root = Path(spec.url.removeprefix("file://")) / layout.OBJECTS
        if not root.exists():
            return []
        return [p.name for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
    assert moto is not None
    listed = (client or moto.client()).list_objects_v2(
        Bucket=spec.url.removeprefix("s3://"), Prefix=layout.OBJECTS
    )
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkilled_push_publishes_nothing_and_resumes(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, seed: int
) -> None:
    """Kill `etc push` at a seeded point; the next push sends only what is missing."""
    spec: RepoSpec = request.getfixturevalue(f"{kind}_repo")
    moto: MotoServer | None = request.getfixturevalue("moto_server") if kind == "s3" else None
    rng = random.Random(seed)
    files = {f"data/train/f{i:04d}.bin": rng.randbytes(1500 + i) for i in range(300)}
    files["data/test/big.bin"] = rng.randbytes(12 * 1024 * 1024)
    root = write_tree(tmp_path / "sample", files)
    home = tmp_path / "home"
    cfg = spec.config(home=home, pack_size=4096, part_size=8 * 1024 * 1024)
    etc.register(root, config=cfg)
    env = cli_env(spec, home)
    # One request at a time: the ~150 packs then take a second or more after the large
    # file, not a burst that a kill by object count can miss on a busy machine.
    env.update({"ETC_PACK_SIZE": "4096", "ETC_CONCURRENCY": "1", "ETC_PART_SIZE": str(8 << 20)})
    # About 5 s for the whole push: a poll of the bucket takes a second or more on a
    # loaded machine, and the push must still be running when the condition is seen.
    env["ETC_BANDWIDTH_LIMIT"] = str(3 * 1024 * 1024)
    # At most half of the ~150 objects: a kill that lands late on a busy machine still
    # lands before the publish.
    kill_after = rng.randint(10, 75)  # objects stored before the kill
    # One client for every poll: a new botocore client costs a good part of a second
    # of CPU on a busy machine, long enough for the push to finish and publish.
    client = moto.client() if moto is not None else None
    status, _ = kill_etc_when(
        env, ["push", "sample"], lambda: len(_stored_objects(spec, moto, client)) >= kill_after
    )
    assert status == -signal.SIGKILL, "the push finished before the kill landed"
    stored = _stored_objects(spec, moto)
    assert stored, "the kill landed before anything was sent"
    assert etc.ls(config=cfg, remote=True) == []  # nothing published

    resumed = etc.push("sample", config=cfg)
    assert resumed.version == 1
    assert resumed.stats.objects_skipped >= len(stored) - 1
    assert resumed.stats.objects_sent + resumed.stats.objects_skipped == len(
        _stored_objects(spec, moto)
    )
    swept = asyncio.run(agc(config=cfg, grace=timedelta(0)))
    assert swept.objects == []  # everything stored is referenced by version 1
    backend = spec.backend()
    try:
        leftovers = asyncio.run(_uploads(backend))
    finally:
        asyncio.run(backend.aclose())
    assert leftovers == []
    pulled = etc.pull("sample", config=spec.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(root)


async def _uploads(backend: Backend) -> list[str]:
    return [u.key async for u in backend.uploads("")]
