"""A no-op push is told from the memo of the last tree pushed, or of the last layout.

Its files' stats unchanged, a push looks up no file in the hash cache and lays out
nothing; a stat that moved (a touched file) takes the cache's path, and a changed file
a new version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.engine import push as engine_push
from etcetera.engine.hashcache import HashCache
from etcetera.format.packing import LocalFile, build_manifest
from etcetera.home import Home
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio


def _tree(root: Path) -> Path:
    files = {f"data/train/f{i:03d}.txt": b"%d" % i * (i + 1) for i in range(40)}
    files["README.md"] = b"hello"
    return write_tree(root, files)


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each layout of a push laid out."""
    calls: list[int] = []

    def counted(files: list[LocalFile], *args: object, **kwargs: object) -> object:
        calls.append(len(files))
        return build_manifest(files, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_push, "build_manifest", counted)
    return calls


async def _pushed(repo: RepoSpec, tmp_path: Path) -> tuple[Path, etc.PushResult]:
    src = _tree(tmp_path / "sample")
    cfg = repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    return src, await etc.apush("sample", config=cfg)


async def test_a_noop_push_lays_nothing_out(
    file_repo: RepoSpec, tmp_path: Path, layouts: list[int]
) -> None:
    _, first = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    assert layouts == [41]
    again = await etc.apush("sample", config=cfg)
    assert layouts == [41]
    assert again.noop and again.version == 1
    assert (again.manifest, again.files, again.size) == (first.manifest, first.files, first.size)


async def test_a_changed_tree_or_setting_is_laid_out_again(
    file_repo: RepoSpec, tmp_path: Path, layouts: list[int]
) -> None:
    src, _ = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    (src / "data/train/f000.txt").write_bytes(b"changed")
    second = await etc.apush("sample", config=cfg, force=True)
    assert second.version == 2 and not second.noop
    assert len(layouts) == 2
    # Other packing, same files: laid out again, and the digest it gives is the one kept.
    packed = file_repo.config(home=tmp_path / "home", pack_size=64)
    third = await etc.apush("sample", config=packed, force=True)
    assert len(layouts) == 3 and third.version == 3
    assert (await etc.apush("sample", config=packed)).noop
    assert len(layouts) == 3


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each push looked up in the hash cache."""
    calls: list[int] = []
    vouched = HashCache.vouched

    def counted(self: HashCache, files: list[object], *args: object) -> object:
        calls.append(len(files))
        return vouched(self, files, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HashCache, "vouched", counted)
    return calls


async def test_a_noop_push_looks_up_no_file_while_every_stat_is_unchanged(
    file_repo: RepoSpec, tmp_path: Path, lookups: list[int], layouts: list[int]
) -> None:
    src, first = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    assert lookups == [41]
    again = await etc.apush("sample", config=cfg)
    assert again.noop and (again.manifest, again.files) == (first.manifest, first.files)
    assert lookups == [41] and layouts == [41]
    # Touched, same bytes: the cache's path (no layout), and the new stamp remembered.
    os.utime(src / "data/train/f001.txt", ns=(1, 2_000_000_000))
    assert (await etc.apush("sample", config=cfg)).noop
    assert lookups == [41, 41] and layouts == [41]
    assert (await etc.apush("sample", config=cfg)).noop
    assert lookups == [41, 41]
    # Same size and mtime, other bytes: a new inode (as an editor's save makes).
    (src / "data/train/f002.txt").rename(tmp_path / "old")
    (src / "data/train/f002.txt").write_bytes(b"2" * 2 + b"!")
    with pytest.raises(etc.DatasetExistsError):
        await etc.apush("sample", config=cfg)


async def test_the_tree_memo_goes_with_the_hash_cache(
    file_repo: RepoSpec, tmp_path: Path, lookups: list[int]
) -> None:
    src, _ = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    cache = Home(cfg.home).cache_file(src.resolve())
    assert cache.with_suffix(".tree").is_file()
    cache.unlink()  # every file hashed again: the tree is not taken on trust either
    assert (await etc.apush("sample", config=cfg)).noop
    assert lookups == [41, 41]
    memo = HashCache(cache)
    stamp = json_first(cache.with_suffix(".tree"))
    assert memo.tree(stamp) is not None
    memo.forget(str(src.resolve() / "README.md"))
    memo.save()
    assert not cache.with_suffix(".tree").exists()
    assert HashCache(cache).tree(stamp) is None


async def test_a_dry_run_remembers_no_tree(
    file_repo: RepoSpec, tmp_path: Path, lookups: list[int]
) -> None:
    src, _ = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    (src / "data/train/f000.txt").write_bytes(b"changed")
    planned = await etc.apush("sample", config=cfg, force=True, dry_run=True)
    assert not planned.noop
    pushed = await etc.apush("sample", config=cfg, force=True)
    assert pushed.version == 2 and not pushed.noop
    assert len(lookups) == 3


def json_first(path: Path) -> str:
    """The stamp a tree memo holds."""
    stamp, _ = json.loads(path.read_text())
    return str(stamp)
