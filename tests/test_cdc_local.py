"""A content-chunked version and local copies: a repeated pull, a diff, a moved file.

The hash cache names a file cut by content by its cut digest alone; each reader of the
cache compares a local copy with such a version by that digest, not the fixed-chunk one.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import etcetera as etc
from tests.support import RepoSpec, cli_env, run_etc, snapshot, write_tree

MiB = 1024 * 1024


def _pushed(file_repo: RepoSpec, tmp_path: Path) -> dict[str, str]:
    """``ds`` version 1 in ``file_repo``, one file above the chunk size cut by content."""
    folder = write_tree(
        tmp_path / "ds",
        {
            "data/all/big.bin": random.Random(12).randbytes(10 * MiB),
            "data/all/small.txt": b"small",
        },
    )
    env = cli_env(file_repo, tmp_path / "h", content_chunks="true")
    for args in (("register", str(folder)), ("push", "ds")):
        done = run_etc(env, *args)
        assert done.returncode == 0, done.stderr
    return cli_env(file_repo, tmp_path / "p", content_chunks="true")


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_same_pull_to_a_folder_twice_is_a_no_op(file_repo: RepoSpec, tmp_path: Path) -> None:
    env = _pushed(file_repo, tmp_path)
    target = tmp_path / "out" / "ds"
    args = ("pull", "ds@1", "--to", str(target))
    _ok(run_etc(env, *args))
    before = snapshot(target)
    second = _ok(run_etc(env, *args))
    assert "already local" in second.stdout
    assert snapshot(target) == before
    with open(target / "data" / "all" / "big.bin", "r+b") as fh:  # same size, edited
        fh.seek(9 * MiB)
        fh.write(b"edited")
    edited = run_etc(env, *args)
    assert edited.returncode == 1 and "holds other files" in edited.stderr


def test_a_pulled_copy_diffs_equal_to_its_version(file_repo: RepoSpec, tmp_path: Path) -> None:
    env = _pushed(file_repo, tmp_path)
    _ok(run_etc(env, "pull", "ds"))
    same = _ok(run_etc(env, "diff", "ds@1", "ds"))
    assert "big.bin" not in same.stdout
    _ok(run_etc(env, "diff", "ds", "ds@1"))
    home = tmp_path / "p" / "ds"
    with open(home / "data" / "all" / "big.bin", "r+b") as fh:
        fh.seek(9 * MiB)
        fh.write(b"edited")
    changed = run_etc(env, "diff", "ds@1", "ds")
    assert changed.returncode == 1 and "big.bin" in changed.stdout


def test_a_moved_large_file_is_taken_from_the_local_copy(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """Found by its cut digest in the hash cache, under its old path: not downloaded."""
    big = random.Random(13).randbytes(10 * MiB)
    folder = write_tree(tmp_path / "ds", {"data/all/big.bin": big, "data/all/s": b"s"})
    cfg = file_repo.config(home=tmp_path / "h", content_chunks=True)
    etc.register(folder, "ds", config=cfg)
    etc.push("ds", config=cfg)
    puller = file_repo.config(home=tmp_path / "p", content_chunks=True)
    etc.pull("ds", config=puller)
    (folder / "data" / "all" / "big.bin").rename(folder / "data" / "all" / "moved.bin")
    etc.push("ds", config=cfg, force=True)
    pulled = etc.pull("ds", config=puller)
    assert pulled.stats.files_reused == 2 and pulled.bytes_to_download == 0
    assert snapshot(pulled.location) == snapshot(folder)
