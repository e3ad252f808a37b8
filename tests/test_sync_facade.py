"""The sync facade: what the issue found missing, Ctrl-C, and conflicting version arguments."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import etcetera as etc
import etcetera.sync
from etcetera.api._common import parse_ref
from tests.support import RepoSpec, write_tree

ROOT = Path(__file__).resolve().parents[1]


def _published(file_repo: RepoSpec, tmp_path: Path) -> etc.Config:
    """``s`` version 1 and 2 in ``file_repo``, pushed through the sync API."""
    cfg = file_repo.config(home=tmp_path / "home")
    src = write_tree(tmp_path / "s", {"data/train/a.txt": b"1", "data/test/b.txt": b"b"})
    etc.register(src, config=cfg)
    assert etc.push("s", config=cfg, include=["data/train/*"]).files == 1
    (src / "data/train/a.txt").write_bytes(b"22")
    assert etc.push("s", config=cfg, force=True, exclude=["data/test/*"]).version == 2
    return cfg


def test_every_command_through_the_sync_api(file_repo: RepoSpec, tmp_path: Path) -> None:
    cfg = _published(file_repo, tmp_path)
    staged = tmp_path / "staged"
    # The issue: pull(name, to=...) was a TypeError.
    planned = etc.pull("s@1", config=cfg, to=staged, dry_run=True)
    assert planned.dry_run and planned.files == 1 and not staged.exists()
    assert etc.pull("s@1", config=cfg, to=staged).version == 1
    assert (staged / "data/train/a.txt").read_bytes() == b"1"
    assert etc.info("s", config=cfg, remote=True)["latest"] == 2
    assert etc.info("s", config=cfg)["kind"] == "registered"
    assert [d.name for d in etc.list_remote(config=cfg)] == ["s"]
    assert etc.ls(config=cfg, remote=True) == ["s"]
    # A registered folder is checked against the latest version, which excluded data/test.
    assert etc.verify("s", config=cfg).extra == ["data/test/b.txt"]
    assert etc.rm_remote("s@1", config=cfg) == [1]
    assert etc.gc(config=cfg, dry_run=True).dry_run
    with pytest.raises(etc.DatasetNotFoundError):
        etc.rm_remote("s@1", config=cfg)


def test_ctrl_c_cancels_the_coroutine() -> None:
    code = """
import anyio, etcetera.sync

async def aslow() -> None:
    print("started", flush=True)
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        print("cancelled", flush=True)
        raise

try:
    etcetera.sync.blocking(aslow)()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.split() == ["cancelled", "interrupted"]
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("name", "version", "want"),
    [
        ("s", None, ("s", None)),
        ("s", 3, ("s", 3)),
        ("s@2", None, ("s", 2)),
        ("s@2", 2, ("s", 2)),  # the same version twice is fine
        ("s@latest", None, ("s", None)),
    ],
)
def test_parse_ref(name: str, version: int | None, want: tuple[str, int | None]) -> None:
    assert parse_ref(name, version) == want


@pytest.mark.parametrize(("name", "version"), [("s@2", 1), ("s@latest", 1)])
def test_parse_ref_refuses_two_versions(name: str, version: int) -> None:
    with pytest.raises(etc.ConfigError) as caught:
        parse_ref(name, version)
    message = str(caught.value)
    assert "\n" not in message and name in message and f"version={version}" in message


def test_conflicting_versions_are_an_error(file_repo: RepoSpec, tmp_path: Path) -> None:
    _published(file_repo, tmp_path)
    fresh = file_repo.config(home=tmp_path / "fresh")
    with pytest.raises(etc.ConfigError, match="conflicting versions"):
        etc.dataset("s@2", version=1, auto_pull=True, config=fresh)
    with pytest.raises(etc.ConfigError, match="conflicting versions"):
        etc.pull("s@2", version=1, config=fresh)
    with pytest.raises(etc.ConfigError, match="conflicting versions"):
        etc.sync.run(etc.adataset, "s@2", True, fresh, version=1)
    assert not (tmp_path / "fresh" / "s").exists()
    assert etc.dataset("s@1", version=1, auto_pull=True, config=fresh).version == 1
    assert etc.dataset("s@2", auto_pull=True, config=fresh).version == 2
