"""Distributed push and pull on a real Dask LocalCluster (worker processes on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from distributed import Client, LocalCluster

import etcetera as etc
from etcetera import distributed as etc_dask
from etcetera.engine import inflight, manifests
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes (named 0 and 1), each with a nanny that restarts it if it dies."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _tree(seed: int = 0) -> dict[str, bytes]:
    files = {
        "meta.json": b'{"source": "test"}',
        "README.md": b"readme",
        "assets/logo.txt": b"logo",
    }
    for i in range(40):
        files[f"data/train/{i:03d}.txt"] = f"train {i} {seed}".encode() * (i + 1)
    for i in range(25):
        files[f"data/test/{i:03d}.bin"] = os.urandom(200 + i)
    files["data/test/big.bin"] = bytes(range(256)) * 4096  # 1 MiB: a blob
    return files


def _split(tmp: Path, files: dict[str, bytes]) -> dict[int, str]:
    """Worker 0 holds train and the files outside data/; worker 1 holds test and val."""
    w0 = {k: v for k, v in files.items() if not k.startswith("data/test/")}
    w1 = {k: v for k, v in files.items() if k.startswith("data/test/")}
    write_tree(tmp / "w0", w0)
    write_tree(tmp / "w1", w1)
    (tmp / "w1" / "data" / "val").mkdir(parents=True)  # an empty partition
    return {0: str(tmp / "w0"), 1: str(tmp / "w1")}


def _local_push(spec: RepoSpec, tmp: Path, files: dict[str, bytes], name: str, **conf: int) -> str:
    root = write_tree(tmp / "whole", files)
    if any(k.startswith("data/test/") for k in files):
        (root / "data" / "val").mkdir()
    # compression=0: a distributed push stores its objects as they are.
    conf = conf or {"pack_size": 4096, "pack_threshold": 65536, "compression": 0}
    cfg = spec.config(home=tmp / "local-home", **conf)
    etc.register(root, name=name, config=cfg)
    return etc.push(name, config=cfg).manifest


def _pushed_locally(
    spec: RepoSpec, tmp: Path, name: str, files: dict[str, bytes], **conf: int
) -> Path:
    """``files`` written under ``tmp/src``, registered as ``name`` and pushed from one process."""
    src = write_tree(tmp / "src", files)
    cfg = spec.config(home=tmp / "home", **(conf or {"pack_size": 4096, "pack_threshold": 65536}))
    etc.register(src, name=name, config=cfg)
    etc.push(name, config=cfg)
    return src


def test_distributed_push_equals_a_local_push(
    repo: RepoSpec, client: Client, tmp_path: Path
) -> None:
    files = _tree()
    roots = _split(tmp_path, files)
    cfg = repo.config(home=tmp_path / "home", pack_size=4096, pack_threshold=65536)
    result = etc_dask.push("ds", client, roots, config=cfg)
    assert result.version == 1 and not result.noop
    assert result.files == len(files)
    # Same tree, same manifest: the driver's root equals a local push's byte for byte.
    assert result.manifest == _local_push(repo, tmp_path, files, "copy")
    pulled = etc.pull("ds", config=repo.config(home=tmp_path / "h2"))
    assert snapshot(pulled.location) == snapshot(tmp_path / "whole")
    assert (pulled.location / "data" / "val").is_dir()
    assert etc.dataset("ds", config=repo.config(home=tmp_path / "h2")).partitions() == [
        "test",
        "train",
        "val",
    ]
    again = etc_dask.push("ds", client, roots, config=cfg)
    assert again.noop and again.version == 1


def test_changed_tree_needs_force_and_a_refused_push_writes_nothing(
    file_repo: RepoSpec, client: Client, tmp_path: Path
) -> None:
    roots = _split(tmp_path, _tree())
    cfg = file_repo.config(home=tmp_path / "home")
    etc_dask.push("ds", client, roots, config=cfg)
    repository = Path(file_repo.url.removeprefix("file://"))
    before = snapshot(repository)
    (Path(roots[1]) / "data" / "test" / "new.txt").write_bytes(b"new")
    # Refused before a byte is uploaded: no object, no manifest piece, no ref.
    with pytest.raises(etc.DatasetExistsError):
        etc_dask.push("ds", client, roots, config=cfg)
    assert snapshot(repository) == before
    # A worker named without its folder is refused as well, before any upload.
    broken = {0: roots[0], 1: str(tmp_path / "missing")}
    with pytest.raises(etc.EtceteraError):
        etc_dask.push("ds", client, broken, config=cfg, force=True)
    assert snapshot(repository) == before
    forced = etc_dask.push("ds", client, roots, config=cfg, force=True)
    assert forced.version == 2
    assert snapshot(repository) != before


@contextlib.contextmanager
def _killing_the_first_busy_worker(client: Client, task: str) -> Iterator[list[str]]:
    """SIGKILL the first worker seen running ``task`` for half a second (then its nanny
    restarts it). Planning and discovery take milliseconds; an upload or download of the
    tests' slowed-down transfers takes seconds, so the kill lands mid-transfer."""
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        since: dict[str, float] = {}
        while not stop.is_set():
            now = time.monotonic()
            for address, keys in client.processing().items():
                if any(task in str(k) for k in keys) and address in pids:
                    since.setdefault(address, now)
                    if now - since[address] > 0.5:
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        return
                else:
                    since.pop(address, None)
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()
        client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("layout", ["shared path", "per-worker folders"])
def test_a_killed_worker_costs_a_retry_not_a_half_version(
    s3_repo: RepoSpec, client: Client, tmp_path: Path, layout: str
) -> None:
    files = {f"data/p{i}/blob.bin": os.urandom(3 << 20) for i in range(4)}
    files["meta.json"] = b"{}"
    shared = write_tree(tmp_path / "shared", files)
    roots: str | dict[int, str] = str(shared)
    if layout == "per-worker folders":
        # Worker 1 alone holds p1 and p3: its restarted self (same name) must redo them.
        odd = {k: v for k, v in files.items() if k[len("data/p")] in "13"}
        write_tree(tmp_path / "w1", odd)
        write_tree(tmp_path / "w0", {k: v for k, v in files.items() if k not in odd})
        roots = {0: str(tmp_path / "w0"), 1: str(tmp_path / "w1")}
    # Slow uploads, so that a worker is surely killed in the middle of one.
    cfg = s3_repo.config(home=tmp_path / "home", bandwidth_limit=2 << 20, pack_threshold=1 << 20)
    with _killing_the_first_busy_worker(client, "_send") as killed:
        result = etc_dask.push("big", client, roots, config=cfg)
    assert killed, "no worker was killed: the test proved nothing"
    assert result.version == 1
    assert result.manifest == _local_push(s3_repo, tmp_path, files, "big2", pack_threshold=1 << 20)
    pulled = etc.pull("big", config=s3_repo.config(home=tmp_path / "h2"))
    assert snapshot(pulled.location) == snapshot(shared)


def test_a_worker_killed_mid_download_is_survived(
    s3_repo: RepoSpec, client: Client, tmp_path: Path
) -> None:
    files = {f"data/p{i}/blob.bin": os.urandom(3 << 20) for i in range(4)}
    files["meta.json"] = b"{}"
    src = _pushed_locally(s3_repo, tmp_path, "big", files, pack_threshold=1 << 20)
    shared = s3_repo.config(
        home=tmp_path / "shared-home", bandwidth_limit=2 << 20, pack_threshold=1 << 20
    )
    with _killing_the_first_busy_worker(client, "_stage_shard") as killed:
        result = etc_dask.pull("big", client, config=shared)
    assert killed, "no worker was killed: the test proved nothing"
    assert isinstance(result, etc.PullResult)
    assert snapshot(result.location) == snapshot(src)
    assert etc.dataset("big", config=shared).version == 1


def test_distributed_pull_into_a_shared_home(
    repo: RepoSpec, client: Client, tmp_path: Path
) -> None:
    files = _tree(seed=1)
    src = _pushed_locally(repo, tmp_path, "ds", files)
    shared = repo.config(home=tmp_path / "shared-home", pack_size=4096, pack_threshold=65536)
    result = etc_dask.pull("ds", client, config=shared)
    assert isinstance(result, etc.PullResult)
    assert result.version == 1
    assert snapshot(result.location) == snapshot(src)
    # The shard tasks downloaded everything: the publishing task only moved it into place.
    assert result.downloaded == 0 and result.present == len(files)
    assert etc.dataset("ds", config=shared).shard is None


def test_distributed_pull_per_worker_gives_each_node_its_shard(
    repo: RepoSpec, client: Client, tmp_path: Path
) -> None:
    files = _tree(seed=2)
    _pushed_locally(repo, tmp_path, "ds", files)
    homes = {0: str(tmp_path / "node0"), 1: str(tmp_path / "node1")}
    cfg = repo.config(home=tmp_path / "home")  # each worker's own home comes from homes
    results = etc_dask.pull("ds", client, config=cfg, per_worker=True, homes=homes)
    assert isinstance(results, dict) and len(results) == 2
    shards = [snapshot(r.location) for r in results.values()]
    data = [{k for k in s if k.startswith("data/")} for s in shards]
    assert not data[0] & data[1]
    assert data[0] | data[1] == {k for k in files if k.startswith("data/")}
    for s in shards:
        assert {k for k in s if not k.startswith("data/")} == {
            k for k in files if not k.startswith("data/")
        }
    used = sorted(
        h for r in results.values() for h in homes.values() if str(r.location).startswith(h)
    )
    assert used == sorted(homes.values())


def test_gc_while_a_distributed_push_publishes(
    file_repo: RepoSpec, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers uploaded, the driver is held before the manifest: a gc with no grace keeps it."""
    files = _tree(seed=5)
    roots = _split(tmp_path, files)
    cfg = file_repo.config(home=tmp_path / "home", pack_size=4096, pack_threshold=65536)
    paused, resume = threading.Event(), threading.Event()
    real_write = manifests.write_root

    async def held(*args: Any) -> None:
        paused.set()
        await anyio.to_thread.run_sync(resume.wait, 120)
        await real_write(*args)

    monkeypatch.setattr(manifests, "write_root", held)
    pushed: list[etc.PushResult] = []
    pusher = threading.Thread(
        target=lambda: pushed.append(etc_dask.push("ds", client, roots, config=cfg))
    )
    pusher.start()
    try:
        assert paused.wait(120)
        swept = etc.gc(config=cfg, grace=timedelta(0))
    finally:
        resume.set()
        pusher.join(120)
    assert swept.objects == [] and swept.pieces == []
    assert pushed and pushed[0].version == 1
    monkeypatch.setattr(manifests, "write_root", real_write)
    pulled = etc.pull("ds", config=file_repo.config(home=tmp_path / "reader"))
    whole = write_tree(tmp_path / "whole", files)
    (whole / "data" / "val").mkdir()
    assert snapshot(pulled.location) == snapshot(whole)
    root = Path(file_repo.url.removeprefix("file://"))
    assert not list((root / inflight.PREFIX).glob("*"))
