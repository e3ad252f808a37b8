"""Shards: ``etc pull NAME --shard K/N`` and ``shard=(k, n)``.

The N shards of a selection are disjoint on ``data/``, together the whole selection
byte for byte, balanced in bytes within the largest pack or blob, and each carries every
file outside ``data/`` and every selected partition folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path

import anyio
import pytest

import etcetera as etc
from etcetera.api import averify, parse_shard
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.sharding import EVERY_SHARD, assign_shards, check_shard, select_shard
from tests.support import RepoSpec, cli_env, run_etc, snapshot, write_tree

PACK_SIZE = 2048
PACK_THRESHOLD = 3000
N = 3


def _tree(root: Path, seed: int = 8) -> Path:
    """Many packs (train, test), blobs (train, a duplicate in test), empty files, an empty
    partition (valid), files and an empty folder outside ``data/``."""
    rng = random.Random(seed)
    files = {f"data/train/s{i:04d}.txt": rng.randbytes(rng.randrange(50, 900)) for i in range(300)}
    files.update(
        {f"data/train/big{i:02d}.bin": rng.randbytes(rng.randrange(3000, 12000)) for i in range(24)}
    )
    files.update({f"data/test/t{i:03d}.xml": b"<x>%d</x>" % i * (i + 1) for i in range(60)})
    twin = rng.randbytes(5000)
    files.update({"data/test/twin-a.bin": twin, "data/test/twin-b.bin": twin})
    files.update({f"data/test/empty{i}.txt": b"" for i in range(5)})
    files.update(
        {"README.md": b"hello", "meta.json": b'{"rows": 3}', "assets/nb/prep.ipynb": b"{}"}
    )
    write_tree(root, files, {"data/train/s0001.txt": 0o755})
    (root / "data" / "valid").mkdir()
    (root / "assets" / "empty-dir").mkdir()
    return root


def _bound(src: Path) -> int:
    """The largest unit a shard gets whole: a blob, or a pack (cut by twice pack_size)."""
    largest = max(p.stat().st_size for p in (src / "data").rglob("*") if p.is_file())
    return max(largest, 2 * PACK_SIZE + PACK_THRESHOLD)


def _data(snap: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {p: v for p, v in snap.items() if p.startswith("data/")}


def _outside(snap: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {p: v for p, v in snap.items() if not p.startswith("data/")}


def _bytes(root: Path, paths: set[str] | dict[str, tuple[str, int]]) -> int:
    return sum((root / p).stat().st_size for p in paths)


def _cfg(spec: RepoSpec, home: Path) -> etc.Config:
    return spec.config(home=home, pack_size=PACK_SIZE, pack_threshold=PACK_THRESHOLD)


async def _pushed(spec: RepoSpec, tmp_path: Path) -> Path:
    src = _tree(tmp_path / "sample")
    cfg = _cfg(spec, tmp_path / "home0")
    await etc.aregister(src, config=cfg)
    await etc.apush("sample", config=cfg)
    return src


# -- end to end -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_shards_are_disjoint_complete_and_balanced(repo: RepoSpec, tmp_path: Path) -> None:
    src = await _pushed(repo, tmp_path)
    full = await etc.apull("sample", config=_cfg(repo, tmp_path / "full"))
    whole = snapshot(full.location)
    assert whole == snapshot(src)

    seen: dict[str, int] = {}
    loads = []
    for k in range(N):
        cfg = _cfg(repo, tmp_path / f"node{k}")
        pulled = await etc.apull("sample", config=cfg, shard=(k, N))
        assert pulled.shard == (k, N) and not pulled.noop
        snap = snapshot(pulled.location)
        # Byte for byte what the whole copy has, and every file outside data/.
        assert all(whole[p] == v for p, v in snap.items())
        assert _outside(snap) == _outside(whole)
        for p in _data(snap):
            assert p not in seen, f"{p} is in shards {seen[p]} and {k}"
            seen[p] = k
        for folder in ("data/train", "data/test", "data/valid", "assets/empty-dir"):
            assert (pulled.location / folder).is_dir()
        loads.append(_bytes(pulled.location, _data(snap)))
        assert pulled.files == len(snap)
        ds = await etc.adataset("sample", config=cfg, shard=(k, N))
        assert ds.shard == (k, N) and ds.version == 1
        assert ds.partitions() == ["test", "train", "valid"]
        checked = await averify("sample", config=cfg)
        assert checked.ok and checked.checked == len(snap)
    assert set(seen) == set(_data(whole))
    assert sum(loads) == _bytes(src, _data(whole))
    assert max(loads) - min(loads) <= _bound(src), loads
    assert min(loads) > 0


@pytest.mark.anyio
async def test_shards_with_partition_patterns_to_and_dry_run(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = await _pushed(file_repo, tmp_path)
    train = {p for p in _data(snapshot(src)) if p.startswith("data/train/")}
    union: set[str] = set()
    loads = []
    for k in range(N):
        cfg = _cfg(file_repo, tmp_path / f"node{k}")
        dry = await etc.apull(
            "sample", config=cfg, partitions=["train"], shard=(k, N), dry_run=True
        )
        assert dry.dry_run and dry.shard == (k, N)
        assert not (tmp_path / f"node{k}" / "sample").exists()
        pulled = await etc.apull("sample", config=cfg, partitions=["train"], shard=(k, N))
        ds = await etc.adataset("sample", config=cfg)
        assert ds.partitions() == ["train"] and ds.shard == (k, N)
        snap = snapshot(pulled.location)
        assert dry.files == pulled.files == len(snap)
        assert dry.size == pulled.size
        part = set(_data(snap))
        assert part <= train and not part & union
        union |= part
        loads.append(_bytes(src, part))
        assert (await averify("sample", config=cfg)).ok
        # --to: the same files, in a folder of one's choosing.
        to = await etc.apull(
            "sample", config=cfg, partitions=["train"], shard=(k, N), to=tmp_path / f"to{k}"
        )
        assert to.shard == (k, N)
        assert snapshot(tmp_path / f"to{k}") == snap
        assert (tmp_path / f"to{k}" / "data" / "train").is_dir()
    assert union == train
    # Balanced on the selection itself, not on the whole version.
    assert max(loads) - min(loads) <= _bound(src), loads

    # Patterns, then the shard: the shards split what the patterns select.
    picked: set[str] = set()
    for k in range(N):
        cfg = _cfg(file_repo, tmp_path / f"pat{k}")
        pulled = await etc.apull(
            "sample", config=cfg, shard=(k, N), include=["data/*", "*.md"], exclude=["*.xml"]
        )
        snap = snapshot(pulled.location)
        assert set(_outside(snap)) == {"README.md"}
        assert not picked & set(_data(snap))
        picked |= set(_data(snap))
        assert (await averify("sample", config=cfg)).ok
    expected = {p for p in _data(snapshot(src)) if not p.endswith(".xml")}
    assert picked == expected


@pytest.mark.anyio
async def test_a_shard_copy_says_its_shard(file_repo: RepoSpec, tmp_path: Path) -> None:
    src = await _pushed(file_repo, tmp_path)
    home = tmp_path / "node"
    cfg = _cfg(file_repo, home)
    whole = await etc.apull("sample", config=cfg)
    assert whole.shard is None and (await etc.adataset("sample", config=cfg)).shard is None

    # A whole copy does not stand for a shard: the shard becomes the local copy, every
    # file of it linked from the whole copy, none downloaded.
    with pytest.raises(etc.DatasetNotFoundError, match="the whole dataset, not the shard"):
        await etc.adataset("sample", config=cfg, shard=(1, N))
    one = await etc.apull("sample", config=cfg, shard=(1, N))
    assert not one.noop and one.downloaded == 0 and one.reused > 0  # (empty files: made)
    assert one.files < whole.files
    again = await etc.apull("sample", config=cfg, shard=(1, N))
    assert again.noop and again.shard == (1, N)
    ds = await etc.adataset("sample", config=cfg)
    assert ds.shard == (1, N) and "shard=(1, 3)" in repr(ds)
    with pytest.raises(etc.DatasetNotFoundError, match="is shard 1/3"):
        await etc.adataset("sample", config=cfg, shard=(2, N))
    # (0, 1) is the whole dataset, like no shard.
    assert (await etc.apull("sample", config=cfg, shard=(0, 1), dry_run=True)).shard is None

    # The sync facade, auto_pull: another shard replaces this one.
    two = etc.dataset("sample", auto_pull=True, config=cfg, shard=(2, N))
    assert two.shard == (2, N) and two.version == 1
    kept = await etc.adataset("sample", config=cfg, version=1, shard=(2, N))
    assert kept.shard == (2, N) and kept.location == two.location

    env = cli_env(file_repo, home, pack_size=PACK_SIZE, pack_threshold=PACK_THRESHOLD)
    info = _etc(env, "info", "sample")
    assert info.returncode == 0, info.stderr
    assert "sample (pulled, version 1, shard 2/3)" in info.stdout
    as_json = json.loads(_etc(env, "info", "sample", "--json").stdout)
    assert as_json["shard"] == [2, 3]
    verify = _etc(env, "verify", "sample")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # verify checks the shard's files, and only those.
    victim = sorted(p for p in _data(snapshot(two.location)))[0]
    os.chmod(two.location / victim, 0o644)
    os.chmod(two.location / Path(victim).parent, 0o755)
    (two.location / victim).unlink()
    broken = _etc(env, "verify", "sample")
    assert broken.returncode == 1
    assert f"missing: {victim}" in broken.stdout
    assert "1 missing, 0 changed, 0 extra" in broken.stdout

    pulled = _etc(env, "pull", "sample", "--shard", "0/3")
    assert pulled.returncode == 0, pulled.stderr
    assert "pulled sample version 1 shard 0/3:" in pulled.stdout
    noop = _etc(env, "pull", "sample", "--shard", "0/3")
    assert "sample: version 1 shard 0/3 is already local" in noop.stdout
    back = await etc.apull("sample", config=cfg)
    assert back.shard is None and snapshot(back.location) == snapshot(src)


@pytest.mark.anyio
async def test_shards_are_the_same_from_run_to_run(file_repo: RepoSpec, tmp_path: Path) -> None:
    await _pushed(file_repo, tmp_path)
    first = await etc.apull("sample", config=_cfg(file_repo, tmp_path / "a"), shard=(2, N))
    second = await etc.apull("sample", config=_cfg(file_repo, tmp_path / "b"), shard=(2, N))
    assert snapshot(first.location) == snapshot(second.location)
    # And from process to process, whatever the string hash seed.
    digests = {_assignment_digest_in_subprocess(seed) for seed in ("1", "2", "random")}
    assert len(digests) == 1


@pytest.mark.anyio
async def test_an_interrupted_shard_resumes_only_into_itself(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    await _pushed(file_repo, tmp_path)
    fresh = {}
    for k in range(2):
        pulled = await etc.apull(
            "sample", config=_cfg(file_repo, tmp_path / f"ref{k}"), shard=(k, 2)
        )
        fresh[k] = snapshot(pulled.location)
    home = tmp_path / "node"
    slow = file_repo.config(home=home, concurrency=1, bandwidth_limit=200_000)
    with anyio.CancelScope() as scope:

        def cancel_midway(e: etc.ProgressEvent) -> None:
            if e.phase == "download" and e.bytes_done > e.bytes_total // 2:
                scope.cancel()

        await etc.apull("sample", config=slow, shard=(0, 2), progress=cancel_midway)
    assert scope.cancelled_caught
    assert not (home / "sample").exists()
    staged = [p.name for p in (home / ".staging" / "sample").iterdir()]
    assert any(name.endswith("-all-shard0of2") for name in staged), staged

    other = await etc.apull("sample", config=_cfg(file_repo, home), shard=(1, 2))
    assert other.present == 0
    assert snapshot(other.location) == fresh[1]
    resumed = await etc.apull("sample", config=_cfg(file_repo, home), shard=(0, 2))
    assert resumed.present > 0
    assert snapshot(resumed.location) == fresh[0]


_etc = run_etc


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("4/4", "invalid shard 4/4: K must be 0 to 3"),
        ("a/b", "invalid shard 'a/b': expected K/N"),
        ("0/0", "invalid shard 0/0: N must be at least 1"),
        ("3", "invalid shard '3': expected K/N"),
    ],
)
def test_bad_shard_values_are_one_line_errors(tmp_path: Path, value: str, says: str) -> None:
    env = cli_env(RepoSpec(f"file://{tmp_path / 'repo'}"), tmp_path / "home")
    done = _etc(env, "pull", "sample", "--shard", value)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"etc: error: {says}")
    assert "0-based" in done.stderr


@pytest.mark.anyio
async def test_bad_shard_values_in_the_api(file_repo: RepoSpec, tmp_path: Path) -> None:
    cfg = _cfg(file_repo, tmp_path / "home")
    for bad in [(4, 4), (-1, 4), (0, 0), (True, 2), (0, 2.0), (1,)]:
        with pytest.raises(etc.ConfigError, match="invalid shard"):
            await etc.apull("sample", config=cfg, shard=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="invalid shard"):
            await etc.adataset("sample", config=cfg, shard=bad)  # type: ignore[arg-type]


def test_parse_shard() -> None:
    assert parse_shard("0/4") == (0, 4)
    assert parse_shard(" 3 / 4 ") == (3, 4)
    assert check_shard([1, 2]) == (1, 2)
    for bad in ("", "/", "1/", "/4", "1/4/5", "-1/4", "1.0/4", "٣/٤", "4/4", "0/0"):
        with pytest.raises(etc.ConfigError, match="invalid shard"):
            parse_shard(bad)


# -- the assignment, on synthetic manifests ----------------------------------------------


def _synthetic(n_files: int, seed: int = 0) -> Manifest:
    """Packs of 1-60 files, blobs (a few shared within and across partitions), empty files,
    files outside ``data/``, an empty partition."""
    rng = random.Random(seed)
    partitions = ("a", "b", "c", "empty")
    objects: dict[str, ObjectEntry] = {}
    files: list[FileEntry] = []
    shared = hashlib.sha256(b"shared").hexdigest()
    objects[shared] = ObjectEntry(shared, "blob", 9_000_000)
    i = 0
    while len(files) < n_files:
        part = rng.choice(partitions[:3])
        kind = rng.random()
        if kind < 0.02:
            files.append(FileEntry(f"data/{part}/{i:07d}.e", 0, 0o644, "0" * 64))
            i += 1
        elif kind < 0.07:
            size = rng.randrange(5_000_000, 40_000_000)
            oid = hashlib.sha256(b"blob%d" % i).hexdigest()
            objects[oid] = ObjectEntry(oid, "blob", size)
            files.append(FileEntry(f"data/{part}/{i:07d}.bin", size, 0o644, oid, oid))
            i += 1
        elif kind < 0.072:
            files.append(FileEntry(f"data/{part}/{i:07d}.bin", 9_000_000, 0o644, shared, shared))
            i += 1
        else:
            oid = hashlib.sha256(b"pack%d" % i).hexdigest()
            offset = 0
            for _ in range(rng.randrange(1, 60)):
                size = rng.randrange(1, 100_000)
                files.append(
                    FileEntry(f"data/{part}/{i:07d}.x", size, 0o644, "1" * 64, oid, offset)
                )
                offset += size
                i += 1
            objects[oid] = ObjectEntry(oid, "pack", offset)
    files.extend(FileEntry(f"extra/{j:03d}.txt", j, 0o644, "2" * 64) for j in range(50))
    files.sort()
    return Manifest(tuple(files), objects, partitions)


def test_assignment_of_100000_entries() -> None:
    manifest = _synthetic(100_000)
    files = list(manifest.files)
    n = 7
    started = time.monotonic()
    shards = assign_shards(files, n)
    took = time.monotonic() - started
    assert took < 10, f"{took:.1f} s for 10^5 entries"  # about 0.1 s; catches O(n^2)

    units: dict[tuple[str, str], set[int]] = {}
    unit_bytes: dict[tuple[str, str], int] = {}
    loads = [0] * n
    part_loads: dict[str, list[int]] = {}
    for f, s in zip(files, shards, strict=True):
        if not f.path.startswith("data/"):
            assert s == EVERY_SHARD
            continue
        assert 0 <= s < n
        part = f.path.split("/")[1]
        loads[s] += f.size
        part_loads.setdefault(part, [0] * n)[s] += f.size
        if f.object:
            key = (part, f.object)
            units.setdefault(key, set()).add(s)
            unit_bytes[key] = unit_bytes.get(key, 0) + f.size
        else:
            assert s == zlib.crc32(f.path.encode()) % n
    # Whole packs and blobs: every unit on one shard (the shared blob once per partition).
    assert all(len(where) == 1 for where in units.values())
    assert {k for k in units if k[1] == hashlib.sha256(b"shared").hexdigest()}
    largest = max(unit_bytes.values())
    assert max(loads) - min(loads) <= largest, loads
    for part, per in part_loads.items():
        assert max(per) - min(per) <= 2 * largest, (part, per)

    # select_shard: disjoint, complete, every shard with every file outside data/.
    outside = [f for f in files if not f.path.startswith("data/")]
    union: list[FileEntry] = []
    for k in range(n):
        mine = select_shard(files, k, n)
        assert [f for f in mine if not f.path.startswith("data/")] == outside
        union.extend(f for f in mine if f.path.startswith("data/"))
    assert sorted(union) == [f for f in files if f.path.startswith("data/")]

    # Any order of the same files gives the same split; one shard is everything.
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    by_path = {f.path: s for f, s in zip(files, shards, strict=True)}
    again = assign_shards(shuffled, n)
    assert all(by_path[f.path] == s for f, s in zip(shuffled, again, strict=True))
    assert set(assign_shards(files, 1)) == {0, EVERY_SHARD}
    assert select_shard(files, 0, 1) == files


def test_assignment_by_hand() -> None:
    big, mid, small = "b" * 64, "c" * 64, "d" * 64
    files = [
        FileEntry("README.md", 5, 0o644, "0" * 64),
        FileEntry("data/p/1", 100, 0o644, "0" * 64, big),
        FileEntry("data/p/2", 60, 0o644, "0" * 64, mid),
        FileEntry("data/p/3", 30, 0o644, "0" * 64, small),
        FileEntry("data/p/4", 30, 0o644, "0" * 64, small, 30),
        FileEntry("data/q/1", 0, 0o644, "0" * 64),
    ]
    # Largest first (big 100, then mid and small, 60 each, by id), each on the
    # least-loaded shard: big → 0, mid → 1, then small → 1 (loads 100 and 60).
    shards = assign_shards(files, 2)
    assert shards[:5] == [EVERY_SHARD, 0, 1, 1, 1]
    assert shards[5] == zlib.crc32(b"data/q/1") % 2
    # Ties: the lower index wins, then the object id decides the order.
    tied = [FileEntry(f"data/p/{i}", 10, 0o644, "0" * 64, f"{i:064x}") for i in range(4)]
    assert assign_shards(tied, 4) == [0, 1, 2, 3]
    assert assign_shards([], 3) == []


def _assignment_digest_in_subprocess(seed: str) -> str:
    code = (
        "import hashlib, sys\n"
        "from tests.test_shards import _synthetic\n"
        "from etcetera.format.sharding import assign_shards\n"
        "files = list(_synthetic(3000, seed=5).files)\n"
        "print(hashlib.sha256(repr(assign_shards(files, 5)).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()
