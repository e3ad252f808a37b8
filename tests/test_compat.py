"""Repositories of formats v1 and v2 stay readable and pushable; older etcetera refuses v3.

``tests/fixtures/repo-v1`` and ``repo-v2`` were written by etcetera at commit 48005a6
(the last to write format v2): dataset ``old``, version 1 (and, in ``repo-v2``, a
version 2 with ``data/train/a.txt`` changed); in ``repo-v1`` the manifest was rewritten
as that etcetera's v1 encoder writes it (``Manifest.to_json``), its record pointing
at it. :data:`TREE` is the tree they hold.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.format import layout
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
PRE_V3 = "48005a6"  # the last commit whose etcetera writes format v2
TREE = {
    "data/train/a.txt": b"alpha\n" * 50,
    "data/train/sub/b.xml": b"<r><v>1</v></r>\n" * 200,
    "data/test/c.bin": bytes(range(256)) * 8,
    "data/test/empty.txt": b"",
    "tools/run.sh": b"#!/bin/sh\necho run\n",
}


def _tree(root: Path, version: int, changed: bool = False) -> Path:
    files = {**TREE, "README.md": f"fixture of a format-{version} repository\n".encode()}
    if changed:
        files["data/train/a.txt"] = b"alpha, changed\n"
    write_tree(root, files, {"tools/run.sh": 0o755})
    (root / "assets/empty").mkdir(parents=True, exist_ok=True)
    return root


def _repo(tmp_path: Path, version: int) -> RepoSpec:
    where = tmp_path / f"repo-v{version}"
    shutil.copytree(FIXTURES / f"repo-v{version}", where)
    return RepoSpec(f"file://{where}")


def _root_version(repo: RepoSpec, digest: str) -> int:
    path = Path(repo.url.removeprefix("file://")) / layout.manifest_key(digest)
    return int(json.loads(path.read_bytes())["version"])


@pytest.mark.parametrize("version", [1, 2])
async def test_old_repositories_pull_noop_push_and_take_a_v3_version(
    tmp_path: Path, version: int
) -> None:
    repo = _repo(tmp_path, version)
    latest = 2 if version == 2 else 1
    pulled = await etc.apull("old", config=repo.config(home=tmp_path / "reader"))
    assert pulled.version == latest
    want = _tree(tmp_path / "want" / "old", version, changed=version == 2)
    assert snapshot(pulled.location) == snapshot(want)
    # The same tree pushed from a fresh home against the old latest version: a no-op.
    cfg = repo.config(home=tmp_path / "pusher")
    await etc.aregister(want, config=cfg)
    again = await etc.apush("old", config=cfg)
    assert again.noop and again.version == latest
    # A changed tree is a v3 version beside the old ones; gc keeps everything referenced.
    (want / "data/train/new.txt").write_bytes(b"new\n" * 300)
    pushed = await etc.apush("old", config=cfg, force=True)
    assert pushed.version == latest + 1 and _root_version(repo, pushed.manifest) == 3
    await etc.api.agc(config=cfg, grace=timedelta(0))
    for number in range(1, latest + 2):
        got = await etc.apull("old", version=number, config=repo.config(home=tmp_path / "gc"))
        assert got.version == number
    assert snapshot(got.location) == snapshot(want)


def _pre_v3(tmp_path: Path) -> Path:
    """The etcetera package of :data:`PRE_V3`, extracted from this clone's history."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    made = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PRE_V3, "etcetera"], capture_output=True, check=False
    )
    if made.returncode:
        pytest.skip(f"commit {PRE_V3} is not in this clone")
    where = tmp_path / "pre-v3"
    where.mkdir()
    subprocess.run(["tar", "-x", "-C", str(where)], input=made.stdout, check=True)
    return where


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", [["pull", "new"], ["log", "new"], ["gc"], ["list", "--remote"]])
def test_an_older_etcetera_refuses_a_v3_version_in_one_line(
    file_repo: RepoSpec, tmp_path: Path, command: list[str]
) -> None:
    cfg = file_repo.config(home=tmp_path / "home")
    etc.register(_tree(tmp_path / "new", 3), config=cfg)
    etc.push("new", config=cfg)
    old = _pre_v3(tmp_path)
    repo = Path(file_repo.url.removeprefix("file://"))
    before = _files(repo)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(old),
        "ETC_URL": file_repo.url,
        "ETC_HOME": str(tmp_path / "old-home"),
        "ETC_CONFIG": str(tmp_path / "none.toml"),
    }
    ran = subprocess.run(
        [sys.executable, "-m", "etcetera", *command],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 1
    assert ran.stderr.count("\n") == 1 and "upgrade etcetera" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
    assert _files(repo) == before  # nothing written, nothing deleted
    home = tmp_path / "old-home"
    assert not home.exists() or not any(
        p.is_file() and p.suffix != ".lock" for p in home.rglob("*")
    )
