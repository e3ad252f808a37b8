"""info, verify, rm --remote and gc, through the API and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.api import agc, ainfo, arm_remote, averify
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio


def _tree(root: Path, n: int = 30, tag: bytes = b"") -> Path:
    files = {f"data/train/{i}.txt": tag + b"t" * i for i in range(n)}
    files.update({f"data/test/{i}.txt": tag + b"v" * i for i in range(n // 3)})
    files["meta.json"] = b'{"k": 1}'
    return write_tree(root, files)


async def test_info_local_and_remote(repo: RepoSpec, tmp_path: Path) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=512)
    await etc.aregister(_tree(tmp_path / "s"), config=cfg)
    await etc.apush("s", config=cfg)
    local = await ainfo("s", config=cfg)
    assert local["kind"] == "registered"
    assert local["partitions"]["train"]["files"] == 30
    assert local["meta"] == {"k": 1}
    remote = await ainfo("s", config=cfg, remote=True)
    assert [v["version"] for v in remote["versions"]] == [1]
    assert remote["versions"][0]["files"] == 41
    assert "@" in remote["versions"][0]["pushed_by"]
    assert remote["partitions"]["test"]["files"] == 10


async def test_verify_finds_changed_missing_and_extra(repo: RepoSpec, tmp_path: Path) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=512)
    await etc.aregister(_tree(tmp_path / "s"), config=cfg)
    await etc.apush("s", config=cfg)
    cfg2 = repo.config(home=tmp_path / "home2")
    pulled = await etc.apull("s", config=cfg2)
    assert (await averify("s", config=cfg2)).ok
    loc = pulled.location
    # Same size and mtime as before: only a re-hash can tell.
    target = loc / "data/train/5.txt"
    st = target.stat()
    target.write_bytes(b"X" * st.st_size)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    (loc / "data/train/6.txt").unlink()
    (loc / "data/train/new.txt").write_bytes(b"n")
    result = await averify("s", config=cfg2)
    assert result.changed == ["data/train/5.txt"]
    assert result.missing == ["data/train/6.txt"]
    assert result.extra == ["data/train/new.txt"]
    assert not result.ok


async def test_rm_and_gc(repo: RepoSpec, tmp_path: Path) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=512)
    root = _tree(tmp_path / "s")
    await etc.aregister(root, config=cfg)
    await etc.apush("s", config=cfg)
    (root / "data/train/extra.txt").write_bytes(b"more" * 100)
    await etc.apush("s", config=cfg, force=True)
    dry = await agc(config=cfg, dry_run=True, grace=timedelta(0))
    assert dry.objects == [] and dry.manifests == [] and dry.pieces == []
    assert await arm_remote("s@1", config=cfg) == [1]
    young = await agc(config=cfg, dry_run=True, grace=timedelta(hours=1))
    assert young.objects == [] and young.kept_young > 0
    swept = await agc(config=cfg, grace=timedelta(0))
    assert swept.manifests and swept.pieces and swept.objects
    # Version 2 is whole after the sweep.
    pulled = await etc.apull("s", config=repo.config(home=tmp_path / "home2"))
    assert pulled.version == 2
    assert (pulled.location / "data/train/extra.txt").read_bytes() == b"more" * 100
    with pytest.raises(etc.DatasetNotFoundError):
        await etc.apull("s@1", config=repo.config(home=tmp_path / "home3"))
    assert await arm_remote("s", config=cfg) == [2]
    assert await etc.als(config=cfg, remote=True) == []


def test_cli_rm_refuses_without_yes_off_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "ETC_HOME": str(tmp_path / "h"), "ETC_URL": f"file://{tmp_path}"}
    run = subprocess.run(
        [sys.executable, "-m", "etcetera", "rm", "--remote", "x"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "without --yes" in run.stderr


async def test_pull_to_folder_dry_run_and_filters(repo: RepoSpec, tmp_path: Path) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=512)
    root = _tree(tmp_path / "s")
    (root / "data/train/skip.log").write_bytes(b"log")
    await etc.aregister(root, config=cfg)
    dry_push = await etc.apush("s", config=cfg, dry_run=True)
    assert dry_push.bytes_to_send > 0
    assert await etc.als(config=cfg, remote=True) == []
    await etc.apush("s", config=cfg, exclude=["*.log"])

    staged = tmp_path / "ci" / "dataset"
    cfg2 = repo.config(home=tmp_path / "home2")
    dry = await etc.apull("s", config=cfg2, to=staged, dry_run=True)
    assert dry.dry_run and dry.bytes_to_download == dry.size > 0
    assert not staged.exists()
    got = await etc.apull("s", config=cfg2, to=staged)
    assert got.location == staged
    assert (staged / "meta.json").read_bytes() == b'{"k": 1}'
    assert not (staged / "data/train/skip.log").exists()
    assert not (tmp_path / "home2" / "s").exists()
    repeat = await etc.apull("s", config=cfg2, to=staged)  # the same request: a no-op
    assert repeat.noop and repeat.location == staged
    with pytest.raises(etc.DatasetExistsError, match="--force"):
        await etc.apull("s", config=cfg2, to=staged, partitions=["test"])
    again = await etc.apull("s", config=cfg2, to=staged, force=True)
    assert again.location == staged
    assert sorted(p.name for p in staged.parent.iterdir()) == ["dataset"]

    only = await etc.apull("s", config=cfg2, include=["data/test/*"])
    names = sorted(p.name for p in (only.location / "data/test").iterdir())
    assert names == sorted(f"{i}.txt" for i in range(10))
    assert list((only.location / "data/train").iterdir()) == []
    assert not (only.location / "meta.json").exists()
    full = await etc.apull("s", config=cfg2)
    assert (full.location / "meta.json").exists() and not full.noop


def test_os_litter_is_never_pushed_and_the_ignore_list_is_a_setting(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "s", n=3)
    write_tree(
        root,
        {
            ".DS_Store": b"x",
            "data/train/Thumbs.db": b"x",
            "assets/__pycache__/m.cpython-311.pyc": b"x",
            "assets/run.log": b"log",
        },
    )
    cfg = file_repo.config(home=tmp_path / "home")
    etc.register(root, config=cfg)
    etc.push("s", config=cfg)
    pulled = etc.pull("s", config=file_repo.config(home=tmp_path / "h2"))
    names = {p.name for p in pulled.location.rglob("*")}
    assert {".DS_Store", "Thumbs.db", "__pycache__"}.isdisjoint(names)
    assert "run.log" in names and "meta.json" in names

    # `ignore` adds to the OS litter; ignore_defaults=False replaces it.
    strict = file_repo.config(
        home=tmp_path / "home", ignore=("*.log", ".DS_Store"), ignore_defaults=False
    )
    etc.push("s", config=strict, force=True)
    again = etc.pull("s", config=file_repo.config(home=tmp_path / "h3"))
    names = {p.name for p in again.location.rglob("*")}
    assert "run.log" not in names and "Thumbs.db" in names
