"""The `etc` command as a user types it (subprocesses, not a terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import run_etc, write_tree


def _etc(tmp_path: Path, *args: str, home: str = "home") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ETC_HOME": str(tmp_path / home),
        "ETC_URL": f"file://{tmp_path / 'repo'}",
        "ETC_PACK_SIZE": "1024",
    }
    return run_etc(env, *args)


def test_everyday_commands(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    done = _etc(tmp_path, "create", "fresh", "--partition", "a", "--partition", "b")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "home" / "fresh" / "data" / "a").is_dir()

    files = {f"data/train/{i}.txt": b"x" * i for i in range(1, 200)}
    files.update({f"data/test/{i}.txt": b"y" * i for i in range(1, 50)})
    write_tree(tmp_path / "sample", files)
    assert _etc(tmp_path, "register", str(tmp_path / "sample")).returncode == 0
    assert _etc(tmp_path, "ls").stdout.split() == ["fresh", "sample"]

    pushed = _etc(tmp_path, "push", "sample")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed sample version 1: 248 files" in pushed.stdout
    assert "upload" in pushed.stderr  # plain progress lines when not a terminal, on stderr
    assert "upload" not in pushed.stdout
    noop = _etc(tmp_path, "push", "sample")
    assert "up to date as version 1" in noop.stdout
    (tmp_path / "sample" / "data" / "train" / "1.txt").write_bytes(b"z")
    refused = _etc(tmp_path, "push", "sample")
    assert refused.returncode == 1
    # The engine says what is wrong; the command line adds what to type next.
    assert refused.stderr.strip().endswith(
        "as version 1 with other content: etc push sample --force publishes version 2"
    ), refused.stderr
    (tmp_path / "sample" / "data" / "train" / "1.txt").write_bytes(b"x")

    remote = _etc(tmp_path, "list", "--remote", "--json")
    listed = json.loads(remote.stdout)
    assert listed["schema"] == "etcetera.list/1"
    assert [(d["name"], d["version"], d["files"]) for d in listed["datasets"]] == [
        ("sample", 1, 248)
    ]

    part = _etc(tmp_path, "pull", "sample", "--partition", "test", home="home2")
    assert part.returncode == 0, part.stderr
    assert "pulled sample version 1: 49 files" in part.stdout
    assert sorted(p.name for p in (tmp_path / "home2" / "sample" / "data").iterdir()) == ["test"]
    full = _etc(tmp_path, "pull", "sample", home="home2")
    assert "pulled sample version 1: 248 files" in full.stdout
    quiet = _etc(tmp_path, "-q", "pull", "sample", home="home2")
    assert quiet.returncode == 0
    assert quiet.stdout == ""

    older = _etc(tmp_path, "pull", "sample@7", home="home2")
    assert older.returncode == 1
    assert "has no version 7" in older.stderr

    config = _etc(tmp_path, "config", "--json")
    shown = json.loads(config.stdout)
    assert shown["schema"] == "etcetera.config/1"
    values = shown["settings"]
    assert values["pack_size"] == {"value": 1024, "source": "environment ETC_PACK_SIZE"}
    assert values["url"]["value"].startswith("file://")
    assert values["timeout"]["source"] == "default"
    flagged = _etc(tmp_path, "--url", "file:///elsewhere", "config")
    assert "url = 'file:///elsewhere'  (argument)" in flagged.stdout

    assert _etc(tmp_path, "purge", "sample").returncode == 0
    assert (tmp_path / "sample" / "data" / "train" / "1.txt").exists()
    assert _etc(tmp_path, "ls").stdout.split() == ["fresh"]


def test_secrets_are_masked(tmp_path: Path) -> None:
    env = {**os.environ, "ETC_AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "ETC_HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "etcetera", "config"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0
    assert "s3cr3t-value" not in run.stdout
    assert "aws_secret_access_key = '****'  (environment ETC_AWS_SECRET_ACCESS_KEY)" in run.stdout


def test_a_command_line_without_options_starts_from_the_default_globals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In one process, ``etc --url U config`` then ``etc config``: the second has no option
    (so no meta app parses it), and none of the first's reaches it."""
    from etcetera.cli import _entry
    from etcetera.cli._run import run

    monkeypatch.setenv("ETC_HOME", str(tmp_path / "home"))
    for argv in (["--url", "file:///elsewhere", "-v", "config"], ["config"]):
        assert run(_entry(argv), argv) == 0
    out = capsys.readouterr().out
    assert out.count("url = 'file:///elsewhere'  (argument)") == 1
    assert "url = None  (default)" in out
