"""The streaming iterator (etcetera.stream) against real repositories: bytes, order, shares,
resume, requests, workers (forked processes, as a data loader's), the protocol without torch."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.api.session import session
from etcetera.errors import ConfigError, DatasetNotFoundError, PartitionNotFoundError
from etcetera.reading import open_version
from etcetera.settings import Config
from etcetera.streaming import Sample, Stream, order
from tests.support import RepoSpec, write_tree

MiB = 1 << 20


def _files() -> dict[str, bytes]:
    files = {f"data/train/{i:04d}.txt": f"train {i}\n".encode() * (40 + i % 9) for i in range(400)}
    files.update({f"data/test/{i:03d}.txt": f"test {i}\n".encode() * 10 for i in range(30)})
    files["data/train/big.bin"] = bytes(range(256)) * (9 * MiB // 256)  # a blob of 2 chunks
    files["data/train/empty.txt"] = b""
    files["README.md"] = b"# sample\n"
    return files


@pytest.fixture
def pushed(repo: RepoSpec, tmp_path: Path) -> tuple[RepoSpec, Config]:
    """The sample pushed in packs of ~32 KiB; a reader's config with its own (cold) home."""
    cfg = repo.config(home=tmp_path / "home", pack_size=32 * 1024)
    etc.register(write_tree(tmp_path / "sample", _files()), config=cfg)
    etc.push("sample", config=cfg)
    return repo, repo.config(home=tmp_path / "reader")


def _train() -> dict[str, bytes]:
    return {p: b for p, b in _files().items() if p.startswith("data/train/")}


def test_one_epoch_yields_every_file_once_verified(pushed: tuple[RepoSpec, Config]) -> None:
    _, cfg = pushed
    s = etc.stream("sample", "train", config=cfg, seed=3)
    assert len(s) == len(_train())
    got = list(s)
    assert all(isinstance(x, Sample) for x in got)
    assert dict(got) == _train()
    assert len(got) == len(_train())
    # Shuffled, deterministic for the seed and epoch, another order the next epoch.
    paths = [x.path for x in got]
    assert paths != sorted(paths)
    assert [x.path for x in s] == paths
    s.set_epoch(1)
    assert sorted(x.path for x in s) == sorted(paths) != [x.path for x in s]
    assert [x.path for x in etc.stream("sample", "train", config=cfg, seed=3)] == paths


def test_unshuffled_is_path_order_and_transform_runs_on_each(
    pushed: tuple[RepoSpec, Config],
) -> None:
    _, cfg = pushed
    s = etc.stream("sample@1", "test", config=cfg, shuffle=False, transform=_size)
    assert list(s) == [len(b) for _, b in sorted(_files().items()) if _.startswith("data/test/")]


def _size(sample: Sample) -> int:
    return len(sample.data)


def test_requests_are_one_per_pack_and_a_second_epoch_reads_the_cache(
    repo: RepoSpec, tmp_path: Path
) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=32 * 1024, compression=0)
    files = {f"data/train/{i:04d}.bin": bytes([i % 256]) * 4096 for i in range(200)}
    etc.register(write_tree(tmp_path / "small", files), config=cfg)
    etc.push("small", config=cfg)
    reader = repo.config(home=tmp_path / "reader")

    async def objects() -> int:
        async with session(reader) as s:
            v = await open_version(s, "small", 1)
            return len({f.object for f in await v.files("data/train")})

    packs = etc.sync.run(objects)
    s = etc.stream("small", "train", config=reader)
    stats = _stats_of(s)
    # The reading process pins the version again (its record; the manifest is in the
    # home's cache since the stream was made), then reads one range per pack: what
    # `etc pull` reads for the same partition.
    assert stats["requests"] == 1 + packs
    assert 0 <= stats["bytes_received"] - sum(len(b) for b in files.values()) < 1024  # + the record
    again = _stats_of(s)
    assert again["requests"] == 1  # the record: every range is in the cache now


def _stats_of(s: Stream) -> dict[str, int]:
    """Iterate a stream and return what its session did (requests, bytes)."""
    for _ in s:
        pass
    assert s.stats is not None
    return {"requests": s.stats.requests, "bytes_received": s.stats.bytes_received}


def test_ranks_read_equal_disjoint_shares(pushed: tuple[RepoSpec, Config]) -> None:
    _, cfg = pushed
    n = len(_train())
    for world in (1, 3, 8):
        for partial in ("drop", "pad"):
            assert partial == "drop" or partial == "pad"  # narrows the type
            shares = [
                [
                    x.path
                    for x in etc.stream(
                        "sample", "train", config=cfg, rank=r, world=world, partial=partial
                    )
                ]
                for r in range(world)
            ]
            assert {len(sh) for sh in shares} == {order.rank_length(n, world, partial)}
            flat = [p for sh in shares for p in sh]
            if partial == "drop":
                assert len(set(flat)) == len(flat) == n - n % world
            else:
                assert set(flat) == set(_train())


def _worker_main(payload: bytes, worker: int, workers: int, out: Any) -> None:
    stream = pickle.loads(payload)
    out.put((worker, [x.path for x in stream.for_worker(worker, workers)]))


def _as_loader(s: Stream, workers: int, batch: int, start: str) -> list[str]:
    """What a data loader of ``workers`` processes yields: their batches in turn."""
    ctx: Any = multiprocessing.get_context(start)
    out = ctx.Queue()
    payload = pickle.dumps(s)
    procs = [
        ctx.Process(target=_worker_main, args=(payload, w, workers, out)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    shares = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return order.interleave([shares[w] for w in range(workers)], batch)


def test_worker_processes_share_a_rank_and_resume_with_other_counts(
    pushed: tuple[RepoSpec, Config],
) -> None:
    repo, cfg = pushed
    # Forked workers over file://; spawned ones over the stores (a test process forked
    # after TLS set-up in pytest can hang in OpenSSL: not what is tested here).
    start = "fork" if repo.url.startswith("file:") else "spawn"
    whole = [x.path for x in etc.stream("sample", "train", config=cfg, seed=5)]
    s = etc.stream("sample", "train", config=cfg, seed=5, batch_size=16)
    assert _as_loader(s, 3, 16, start) == whole  # the rank's order, whatever the workers
    state = s.state_dict(consumed=16 * 7)
    resumed = etc.stream("sample", "train", config=cfg, seed=5, batch_size=8)
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    assert _as_loader(resumed, 2, 8, start) == whole[16 * 7 :]


def test_resume_in_process_yields_exactly_the_rest(pushed: tuple[RepoSpec, Config]) -> None:
    _, cfg = pushed
    s = etc.stream("sample", "train", config=cfg, seed=1, epoch=4)
    whole = [x.path for x in s]
    for stop in (0, 1, 57, len(whole) - 1, len(whole)):
        it = iter(s)
        head = [next(it).path for _ in range(stop)]
        state = s.state_dict()
        del it
        t = etc.stream("sample", "train", config=cfg, seed=1)
        t.load_state_dict(state)
        assert t.epoch == 4
        assert head + [x.path for x in t] == whole
        t.set_epoch(5)  # another epoch starts from its beginning
        assert len(list(t)) == len(whole)


def test_states_of_another_stream_are_refused(pushed: tuple[RepoSpec, Config]) -> None:
    _, cfg = pushed
    state = etc.stream("sample", "train", config=cfg, seed=1).state_dict()
    with pytest.raises(ConfigError, match="seed"):
        etc.stream("sample", "train", config=cfg, seed=2).load_state_dict(state)
    with pytest.raises(ConfigError, match="selection"):
        etc.stream("sample", "test", config=cfg, seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="not a stream state"):
        etc.stream("sample", "train", config=cfg).load_state_dict({"epoch": 1})


def test_bad_arguments_say_what_is_wrong(pushed: tuple[RepoSpec, Config]) -> None:
    _, cfg = pushed
    with pytest.raises(PartitionNotFoundError, match="it has: test, train"):
        etc.stream("sample", "valid", config=cfg)
    with pytest.raises(DatasetNotFoundError, match="versions: 1"):
        etc.stream("sample@7", config=cfg)
    with pytest.raises(ConfigError, match="partial"):
        etc.stream("sample", config=cfg, partial="wrap")
    with pytest.raises(ConfigError, match="rank"):
        etc.stream("sample", config=cfg, rank=2, world=2)
    with pytest.raises(ConfigError, match="memory_budget"):
        etc.stream("sample", config=cfg, window_bytes=10**12)
    with pytest.raises(ConfigError, match="batch_size"):
        list(etc.stream("sample", config=cfg).for_worker(0, 2))


@pytest.mark.anyio
async def test_async_iteration_yields_the_same_order(file_repo: RepoSpec, tmp_path: Path) -> None:
    cfg = file_repo.config(home=tmp_path / "home", pack_size=16 * 1024)
    files = {f"data/train/{i:03d}.txt": str(i).encode() * 500 for i in range(50)}
    await etc.aregister(write_tree(tmp_path / "small", files), config=cfg)
    await etc.apush("small", config=cfg)
    s = await etc.astream("small", "train", config=cfg, seed=9)
    got = [x async for x in s]
    assert [x.path for x in got] == [x.path for x in s]
    assert dict(got) == files


def test_an_unfinished_iterator_and_an_open_remote_do_not_hold_the_process(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    cfg = file_repo.config(home=tmp_path / "home", pack_size=16 * 1024)
    files = {f"data/train/{i:03d}.txt": b"x" * 100 for i in range(30)}
    etc.register(write_tree(tmp_path / "small", files), config=cfg)
    etc.push("small", config=cfg)
    script = (
        "import etcetera as etc\n"
        f"cfg = etc.Config(url={file_repo.url!r}, home={str(tmp_path / 'home')!r})\n"
        "it = iter(etc.stream('small', 'train', config=cfg))\n"
        "print(next(it).path)\n"
        "ds = etc.remote('small', config=cfg)\n"
        "print(len(list(ds['train'].iterdir())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines()[1] == "30"


def test_a_pack_longer_than_a_part_is_still_one_request(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    cfg = file_repo.config(home=tmp_path / "home", pack_size=8 * MiB)
    files = {f"data/train/{i:04d}.bin": i.to_bytes(2, "big") * 2048 for i in range(1600)}
    etc.register(write_tree(tmp_path / "small", files), config=cfg)
    etc.push("small", config=cfg)
    reader = file_repo.config(home=tmp_path / "reader", part_size=5 * MiB)
    s = etc.stream("small", "train", config=reader, window_bytes=16 * MiB)
    stats = _stats_of(s)
    assert stats["requests"] == 1 + 1  # the record, the one pack of 6.4 MiB in one read
