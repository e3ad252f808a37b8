"""`etc cat NAME[@K] PATH` and `etc list NAME[@K] [PATH]`: a version's files, unpulled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import RepoSpec, cli_env, run_etc, write_tree

FILES = {
    "data/train/a.txt": b"alpha\n",
    "data/train/sub/b.bin": bytes(range(256)) * 40,
    "README.md": b"# read me\n",
}


def _pushed(repo: RepoSpec, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A pusher's environment (its home holds the dataset) and a reader's (empty home)."""
    pusher = cli_env(repo, tmp_path / "home")
    write_tree(tmp_path / "sample", FILES)
    assert run_etc(pusher, "register", str(tmp_path / "sample"), "sample").returncode == 0
    assert run_etc(pusher, "push", "sample", "-q").returncode == 0
    return pusher, cli_env(repo, tmp_path / "reader")


def test_cat_writes_the_files_bytes(file_repo: RepoSpec, tmp_path: Path) -> None:
    _, reader = _pushed(file_repo, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "etcetera", "cat", "sample@1", "data/train/sub/b.bin"],
        env=reader,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == FILES["data/train/sub/b.bin"]
    missing = run_etc(reader, "cat", "sample", "data/train/a.text")
    assert missing.returncode == 1
    assert "has no file 'data/train/a.text' (nearest: data/train/a.txt" in missing.stderr
    folder = run_etc(reader, "cat", "sample", "data/train")
    assert folder.returncode == 1 and "is a folder" in folder.stderr
    nothing = run_etc(reader, "cat", "sample@4", "README.md")
    assert nothing.returncode == 1 and "(versions: 1)" in nothing.stderr
    assert not (tmp_path / "reader" / "sample").exists()  # nothing was pulled


def test_list_a_version_from_the_repository_or_the_local_copy(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    pusher, reader = _pushed(file_repo, tmp_path)
    top = run_etc(reader, "list", "sample")
    assert top.returncode == 0, top.stderr
    assert top.stdout.split("\n")[:2] == ["10 B  README.md", " DIR  data/"]
    deep = json.loads(run_etc(reader, "ls", "sample@1", "data/train", "-R", "--json").stdout)
    assert deep["source"] == "remote" and deep["version"] == 1
    assert [(e["path"], e["size"]) for e in deep["entries"]] == [
        ("data/train/a.txt", 6),
        ("data/train/sub/b.bin", 10240),
    ]
    local = json.loads(run_etc(pusher, "ls", "sample", "data/train", "--json").stdout)
    assert local["source"] == "local"
    assert [e["path"] for e in local["entries"]] == ["data/train/a.txt", "data/train/sub"]
    forced = json.loads(run_etc(pusher, "ls", "sample", "data/train", "-r", "--json").stdout)
    assert forced["source"] == "remote"
    assert forced["entries"] == local["entries"]
    assert run_etc(reader, "ls").stdout == ""  # without a name: the local datasets
