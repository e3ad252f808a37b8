"""``etc log``, ``etc diff`` and ``etc status``, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support import run_etc, write_tree


def _etc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ETC_HOME": str(tmp_path / "home"),
        "ETC_URL": f"file://{tmp_path / 'repo'}",
        "ETC_PACK_SIZE": "1024",
    }
    return run_etc(env, *args)


def _two_versions(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    folder = write_tree(
        tmp_path / "s",
        {"data/train/a": b"a" * 10, "data/train/b": b"b" * 20, "data/test/c": b"c" * 30},
    )
    assert _etc(tmp_path, "register", str(folder)).returncode == 0
    assert _etc(tmp_path, "push", "s").returncode == 0
    (folder / "data" / "train" / "a").write_bytes(b"A" * 11)
    (folder / "data" / "train" / "b").unlink()
    (folder / "data" / "train" / "d").write_bytes(b"d" * 40)
    pushed = _etc(tmp_path, "push", "s", "--force")
    assert pushed.returncode == 0, pushed.stderr
    return folder


def test_log_shows_every_version_and_its_changes(tmp_path: Path) -> None:
    _two_versions(tmp_path)
    shown = _etc(tmp_path, "log", "s")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("s@2  ")
    assert "3 files" in lines[0]
    assert "1 added (40 B), 1 removed (20 B), 1 changed (11 B)" in lines[0]
    assert lines[1].startswith("s@1  ") and lines[1].endswith("(first version)")
    doc = json.loads(_etc(tmp_path, "log", "s", "--json").stdout)
    assert doc["schema"] == "etcetera.log/1"
    newest, first = doc["versions"]
    assert (newest["version"], newest["files"], newest["bytes"]) == (2, 3, 81)
    assert newest["pushed_by"] and newest["created"]
    assert newest["changes"] == {
        "added": {"files": 1, "bytes": 40},
        "removed": {"files": 1, "bytes": 20},
        "changed": {"files": 1, "bytes": 11},
    }
    assert first["changes"] is None
    one = json.loads(_etc(tmp_path, "log", "s", "-n", "1", "--json").stdout)
    assert [v["version"] for v in one["versions"]] == [2]
    assert one["versions"][0]["changes"]["added"]["files"] == 1  # still against version 1
    # What a version changed is kept: a second log reads the version records alone.
    for manifest in [
        *(tmp_path / "repo").rglob("manifests/*"),
        *(tmp_path / "home").rglob("manifests/*"),
    ]:
        manifest.unlink()
    assert _etc(tmp_path, "log", "s").stdout == shown.stdout
    missing = _etc(tmp_path, "log", "nosuch")
    assert missing.returncode == 1
    assert "nosuch does not exist" in missing.stderr


def test_diff_exit_status_and_json(tmp_path: Path) -> None:
    folder = _two_versions(tmp_path)
    differ = _etc(tmp_path, "diff", "s@1", "s@2")
    assert differ.returncode == 1, differ.stderr
    assert differ.stdout.splitlines()[:3] == [
        "~ data/train/a  10 B -> 11 B",
        "- data/train/b  20 B",
        "+ data/train/d  40 B",
    ]
    same = _etc(tmp_path, "diff", "s@2", "s")  # the local copy
    assert same.returncode == 0, same.stderr
    assert "hold the same files" in same.stdout
    (folder / "data" / "test" / "c").write_bytes(b"C" * 30)  # same size, other bytes
    doc = json.loads(_etc(tmp_path, "diff", "s@latest", "s", "--json").stdout)
    assert doc["schema"] == "etcetera.diff/1"
    assert doc["equal"] is False
    assert doc["old"] == {"ref": "s@latest", "version": 2}
    assert doc["files"] == [
        {"path": "data/test/c", "change": "changed", "old_size": 30, "new_size": 30}
    ]
    bad = _etc(tmp_path, "diff", "s@7", "s")
    assert bad.returncode == 2
    assert "has no version 7" in bad.stderr


def test_diff_downloads_no_data(tmp_path: Path) -> None:
    _two_versions(tmp_path)
    for obj in (tmp_path / "repo").rglob("*"):
        if obj.is_file() and "/objects/" in str(obj.relative_to(tmp_path)):
            obj.unlink()  # only records and manifests stay: a diff needs nothing else
    assert _etc(tmp_path, "diff", "s@1", "s@2").returncode == 1
    assert _etc(tmp_path, "log", "s").returncode == 0


def test_status_shows_what_a_push_would_send(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    folder = write_tree(tmp_path / "s", {"data/train/a": b"a" * 10, "data/train/b": b"b" * 20})
    assert _etc(tmp_path, "register", str(folder)).returncode == 0
    fresh = _etc(tmp_path, "status", "s")
    assert fresh.returncode == 0, fresh.stderr
    assert "a new dataset: 2 new" in fresh.stdout
    assert "would publish version 1" in fresh.stdout
    assert not list((tmp_path / "repo").rglob("refs/*"))  # nothing was sent
    assert _etc(tmp_path, "push", "s").returncode == 0
    assert "up to date with version 1" in _etc(tmp_path, "status", "s").stdout
    (folder / "data" / "train" / "a").write_bytes(b"x" * 500)
    (folder / "data" / "train" / "c").write_bytes(b"c" * 7)
    doc = json.loads(_etc(tmp_path, "status", "s", "--json").stdout)
    assert doc["schema"] == "etcetera.status/1"
    assert (doc["up_to_date"], doc["latest"], doc["version"]) == (False, 1, 2)
    assert doc["summary"]["added"] == {"files": 1, "bytes": 7}
    assert doc["summary"]["changed"] == {"files": 1, "bytes": 500}
    assert doc["bytes_to_send"] >= 507
    assert [r["path"] for r in doc["changes"]] == ["data/train/a", "data/train/c"]
    refs = sorted(p.name for p in (tmp_path / "repo").rglob("refs/s/*"))
    assert refs == ["1"]  # status sent nothing


def test_diff_of_two_local_copies_needs_no_repository(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env.update(ETC_HOME=str(tmp_path / "home"), ETC_CONFIG=str(tmp_path / "none.toml"))
    a = write_tree(tmp_path / "a", {"data/train/x": b"x", "data/train/y": b"yy"})
    b = write_tree(tmp_path / "b", {"data/train/x": b"x", "data/train/z": b"zzz"})
    for folder in (a, b):
        assert run_etc(env, "register", str(folder)).returncode == 0
    found = run_etc(env, "diff", "a", "b")
    assert found.returncode == 1, found.stderr
    assert found.stdout.splitlines()[:2] == ["- data/train/y  2 B", "+ data/train/z  3 B"]
    assert run_etc(env, "diff", "a", "a").returncode == 0
