"""Concurrent writers and readers: nobody ever sees a mix of two versions.

* Two ``etc push`` processes racing for the same name: one version wins whole; the
  other exits non-zero with a clear error, or becomes the next version.
* Two ``etc pull`` processes into one home: both succeed, the second finds the
  dataset current (the store's per-name lock), so nothing is downloaded twice.
* A reader holding a :class:`~etcetera.Dataset` while a newer version is pulled keeps
  its whole old copy.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import etcetera as etc
from etcetera.api.session import session
from etcetera.engine import refs
from etcetera.engine.transport import Transport
from etcetera.format.record import VersionRecord
from tests.support import RepoSpec, cli_env, run_etc_together, snapshot, write_tree

NAME = "sample"
KiB = 1024

Snapshot = dict[str, tuple[str, int]]


def make_tree(root: Path, seed: int, files: int = 60) -> Path:
    """A dataset whose bytes depend on ``seed``; a few files are the same in every tree."""
    rng = random.Random(seed)
    tree = {f"data/train/f{i:03d}.bin": rng.randbytes(4 * KiB) for i in range(files)}
    tree["data/test/shared.txt"] = b"the same in every tree\n" * 50
    tree["meta.json"] = b'{"seed": %d}' % seed
    return write_tree(root, tree)


@pytest.fixture(params=["file", "s3", "s3rver"])
def any_repo(request: pytest.FixtureRequest) -> RepoSpec:
    """A fresh file:// or s3:// repository (moto, or s3rver, which ignores create-only)."""
    spec: RepoSpec = request.getfixturevalue(f"{request.param}_repo")
    return spec


def run_together(
    args: list[str], envs: list[dict[str, str]], timeout: float = 90
) -> list[subprocess.CompletedProcess[str]]:
    """Start one ``python -m etcetera ARGS`` per environment at once; wait for all."""
    return run_etc_together([(args, env) for env in envs], timeout)


def remote_versions(spec: RepoSpec, tmp: Path) -> dict[int, Snapshot]:
    """Every version of ``NAME`` in the repository, each pulled into a fresh home."""
    out: dict[int, Snapshot] = {}
    for i, number in enumerate(_numbers(spec)):
        pulled = etc.pull(f"{NAME}@{number}", config=spec.config(home=tmp / f"check{i}"))
        out[number] = snapshot(pulled.location)
    return out


def _numbers(spec: RepoSpec) -> list[int]:
    async def go() -> list[int]:
        async with session(spec.config()) as s:
            return await refs.versions(s.transport, NAME)

    return anyio.run(go)


def test_two_processes_pushing_one_name(any_repo: RepoSpec, tmp_path: Path) -> None:
    trees = [make_tree(tmp_path / f"src{i}" / NAME, seed=i) for i in (1, 2)]
    wanted = [snapshot(t) for t in trees]
    envs = []
    for i, tree in enumerate(trees):
        home = tmp_path / f"home{i}"
        etc.register(tree, config=any_repo.config(home=home))
        # Slow uploads (about a second each) so that both have listed the versions
        # before either publishes.
        envs.append(cli_env(any_repo, home, bandwidth_limit=250_000, pack_size=32 * KiB))
    results = run_together(["push", NAME, "--force"], envs)

    won = [r for r in results if r.returncode == 0]
    lost = [r for r in results if r.returncode != 0]
    assert won, [r.stderr for r in results]
    for r in lost:
        assert "another push published sample@" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        # Progress lines come first on stderr; the error is one line, the last.
        errors = [line for line in r.stderr.splitlines() if line.startswith("etc:")]
        assert errors == [r.stderr.strip().splitlines()[-1]], r.stderr
    versions = remote_versions(any_repo, tmp_path)
    assert sorted(versions) == list(range(1, len(won) + 1))
    # Each version is one of the two trees, whole; two versions are the two trees.
    assert all(v in wanted for v in versions.values())
    assert len({str(sorted(v.items())) for v in versions.values()}) == len(versions)


@pytest.mark.anyio
async def test_racing_pushes_in_one_process_one_wins_whole(
    any_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pushes reach the publishing write together: one publishes, one gets the error."""
    trees = [make_tree(tmp_path / f"src{i}" / NAME, seed=i) for i in (1, 2)]
    arrived: list[int] = []
    both = anyio.Event()
    real_publish = refs.commit

    async def publish_together(t: Transport, record: VersionRecord, **kw: bool) -> None:
        arrived.append(record.number)
        if len(arrived) == 2:
            both.set()
        with anyio.fail_after(30):
            await both.wait()
        await real_publish(t, record, **kw)

    monkeypatch.setattr(refs, "commit", publish_together)
    outcomes: list[etc.PushResult | BaseException] = []

    async def push(i: int) -> None:
        cfg = any_repo.config(home=tmp_path / f"home{i}", pack_size=32 * KiB)
        await etc.aregister(trees[i], config=cfg)
        try:
            outcomes.append(await etc.apush(NAME, config=cfg, force=True))
        except etc.EtceteraError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(push, 0)
        tg.start_soon(push, 1)
    assert arrived == [1, 1]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], etc.ConcurrentPushError)
    assert "another push published sample@1 first" in str(errors[0])
    winner = next(o for o in outcomes if isinstance(o, etc.PushResult))
    monkeypatch.setattr(refs, "commit", real_publish)
    pulled = await etc.apull(NAME, config=any_repo.config(home=tmp_path / "reader"))
    assert pulled.version == winner.version == 1
    assert snapshot(pulled.location) in [snapshot(t) for t in trees]


def test_two_processes_pulling_into_one_home(any_repo: RepoSpec, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / NAME, seed=1, files=100)
    etc.register(tree, config=any_repo.config(home=tmp_path / "pusher"))
    etc.push(NAME, config=any_repo.config(home=tmp_path / "pusher", pack_size=32 * KiB))
    home = tmp_path / "shared-home"
    # About a second and a half per pull, so that the second waits on the first's lock.
    env = cli_env(any_repo, home, bandwidth_limit=300_000)
    results = run_together(["pull", NAME], [env, env])

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    pulled = [r.stdout for r in results if f"pulled {NAME} version 1:" in r.stdout]
    current = [r.stdout for r in results if f"{NAME}: version 1 is already local" in r.stdout]
    assert len(pulled) == 1 and len(current) == 1, [r.stdout for r in results]
    # One download in all: the second pull waited, then found the dataset current.
    files = sum(1 for p in tree.rglob("*") if p.is_file())
    assert f"({files} files), reused 0 local files" in pulled[0], pulled[0]
    assert snapshot(home / NAME) == snapshot(tree)
    assert len([p for p in (home / ".versions" / NAME).iterdir() if p.is_dir()]) == 1
    staging = home / ".staging" / NAME
    assert not staging.exists() or not any(staging.iterdir())


def test_reader_keeps_its_copy_while_a_new_version_is_pulled(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / NAME, seed=1, files=150)
    pusher = file_repo.config(home=tmp_path / "pusher", pack_size=8 * KiB)
    etc.register(src, config=pusher)
    etc.push(NAME, config=pusher)
    home = tmp_path / "home"
    etc.pull(NAME, config=file_repo.config(home=home))
    reader = etc.dataset(NAME, config=file_repo.config(home=home))
    v1 = snapshot(reader.location)
    assert v1 == snapshot(src)

    make_tree(src, seed=2, files=150)  # every file changes
    etc.push(NAME, config=pusher, force=True)
    v2 = snapshot(src)
    env = cli_env(file_repo, home, bandwidth_limit=400_000)  # about 1.5 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "etcetera", "-q", "pull", NAME],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reads = 0
    seen_by_link: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            # The reader's own copy never changes under it ...
            assert snapshot(reader.location) == v1
            # ... and the name always resolves to one whole version or the other.
            now = snapshot((home / NAME).resolve())
            assert now in (v1, v2)
            seen_by_link.add(1 if now == v1 else 2)
            reads += 1
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert reads >= 3, "the pull finished before the reader could look"
    assert 1 in seen_by_link
    assert snapshot(reader.location) == v1
    assert reader["train"].is_dir()
    fresh = etc.dataset(NAME, config=file_repo.config(home=home))
    assert fresh.version == 2
    assert snapshot(fresh.location) == v2
