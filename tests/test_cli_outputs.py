"""What ``etc`` shows and how it answers a repeat: kept paths, listings, JSON, no-ops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import etcetera as etc
from tests.support import run_etc, run_on_a_terminal, write_tree


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    (tmp_path / "user").mkdir(exist_ok=True)
    env.update(
        HOME=str(tmp_path / "user"),
        ETC_URL=f"file://{tmp_path / 'repo'}",
        ETC_PACK_SIZE="1024",
        **extra,
    )
    return env


def _etc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_etc(env, *args)


def _sample(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir(exist_ok=True)
    return write_tree(
        tmp_path / "sample",
        {
            "data/train/a": b"a" * 10,
            "data/test/b": b"b" * 20,
            "README.md": b"r" * 5,
        },
    )


def test_messages_show_the_path_a_user_keeps(tmp_path: Path) -> None:
    env = _env(tmp_path)  # home is the default, ~/.etc
    created = _etc(env, "create", "scratch")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created scratch at ~/.etc/scratch"
    folder = _sample(tmp_path)
    assert _etc(env, "register", str(folder)).returncode == 0
    assert _etc(env, "push", "sample").returncode == 0
    other = _env(tmp_path, ETC_HOME=str(tmp_path / "user" / "laptop"))
    assert _etc(other, "pull", "sample").returncode == 0
    again = _etc(other, "pull", "sample")
    assert again.stdout.strip() == "sample: version 1 is already local at ~/laptop/sample"
    assert ".versions" not in created.stdout + again.stdout
    shown = _etc(other, "info", "sample").stdout
    assert "  path: ~/laptop/sample\n" in shown
    assert "  location: ~/laptop/.versions/sample/1." in shown  # only info shows it
    ds = etc.dataset("sample", config=etc.Config(home=tmp_path / "user" / "laptop"))
    assert ds.location.parent.name == "sample"
    assert ds.location.parent.parent.name == ".versions"  # the resolved version folder


def test_listings_show_version_size_files_and_origin(tmp_path: Path) -> None:
    env = _env(tmp_path, ETC_HOME=str(tmp_path / "home"))
    folder = _sample(tmp_path)
    assert _etc(env, "register", str(folder)).returncode == 0
    assert _etc(env, "push", "sample").returncode == 0
    (folder / "data" / "train" / "c").write_bytes(b"c" * 7)
    assert _etc(env, "push", "sample", "--force").returncode == 0
    laptop = _env(tmp_path, ETC_HOME=str(tmp_path / "laptop"))
    assert _etc(laptop, "pull", "sample@1").returncode == 0
    assert _etc(laptop, "create", "scratch").returncode == 0

    assert _etc(laptop, "list").stdout.split() == ["sample", "scratch"]  # piped: names
    status, screen = run_on_a_terminal([sys.executable, "-m", "etcetera", "list"], laptop)
    assert status == 0, screen
    assert screen.split()[:7] == [
        "sample",
        "v1",
        "3",
        "files",
        "35",
        "B",
        f"file://{tmp_path / 'repo'}",
    ]
    rows = [line.split() for line in _etc(laptop, "list", "--long").stdout.splitlines()]
    assert rows[0] == ["sample", "v1", "3", "files", "35", "B", f"file://{tmp_path / 'repo'}"]
    assert rows[1] == ["scratch", "created", "0", "files", "0", "B"]
    mine = _etc(env, "list", "-l").stdout.split()
    assert mine == ["sample", "registered", "4", "files", "42", "B", str(folder)]

    local = json.loads(_etc(laptop, "list", "--json").stdout)
    remote = json.loads(_etc(laptop, "list", "--remote", "--all", "--json").stdout)
    assert local["schema"] == remote["schema"] == "etcetera.list/1"
    assert (local["where"], remote["where"]) == ("local", "remote")
    for a, b in zip(local["datasets"], remote["datasets"], strict=False):
        assert a.keys() == b.keys()  # one shape, local or remote
    entry = remote["datasets"][0]
    assert (entry["name"], entry["version"], entry["files"], entry["bytes"]) == (
        "sample",
        2,
        4,
        42,
    )
    assert [v["version"] for v in entry["versions"]] == [2, 1]  # every version
    latest = json.loads(_etc(laptop, "list", "-r", "--json").stdout)["datasets"][0]
    assert [v["version"] for v in latest["versions"]] == [2]
    text = _etc(laptop, "list", "-r", "--all").stdout.splitlines()
    assert [line.split()[:2] for line in text] == [["sample", "v2"], ["sample", "v1"]]

    here = json.loads(_etc(laptop, "info", "sample", "--json").stdout)
    there = json.loads(_etc(laptop, "info", "sample", "--remote", "--json").stdout)
    assert here.keys() == there.keys()
    assert here["schema"] == there["schema"] == "etcetera.info/1"
    assert here["partitions"] == {
        "test": {"files": 1, "bytes": 20},
        "train": {"files": 1, "bytes": 10},
    }
    assert here["outside"] == {"files": 1, "bytes": 5}
    assert "(outside data/)" not in json.dumps(there)
    assert [v["version"] for v in there["versions"]] == [2, 1]


def test_the_same_request_twice_is_a_no_op(tmp_path: Path) -> None:
    env = _env(tmp_path, ETC_HOME=str(tmp_path / "home"))
    folder = _sample(tmp_path)
    assert _etc(env, "register", str(folder)).returncode == 0
    again = _etc(env, "register", str(folder))
    assert again.returncode == 0, again.stderr
    other = write_tree(tmp_path / "x" / "sample", {"data/train/z": b"z"})
    taken = _etc(env, "register", str(other))
    assert taken.returncode == 1
    assert "--force" in taken.stderr
    assert _etc(env, "push", "sample").returncode == 0

    ci = _env(tmp_path, ETC_HOME=str(tmp_path / "ci-home"))
    target = tmp_path / "ci-data" / "sample"
    args = ("pull", "sample@1", "--partition", "test", "--to", str(target))
    first = _etc(ci, *args)
    assert first.returncode == 0, first.stderr
    second = _etc(ci, *args)
    assert second.returncode == 0, second.stderr
    assert "already local" in second.stdout
    fresh_home = _env(tmp_path, ETC_HOME=str(tmp_path / "another-home"))
    assert _etc(fresh_home, *args).returncode == 0  # no hash cache: hashed, still equal
    wider = _etc(ci, "pull", "sample@1", "--to", str(target))
    assert wider.returncode == 1
    assert "--force" in wider.stderr
    (target / "data" / "test" / "b").write_bytes(b"B" * 20)  # same size, edited
    edited = _etc(ci, *args)
    assert edited.returncode == 1
    assert "holds other files" in edited.stderr
    assert _etc(ci, *args, "--force").returncode == 0
    assert (target / "data" / "test" / "b").read_bytes() == b"b" * 20


def test_push_of_a_path_or_of_an_unknown_name(tmp_path: Path) -> None:
    env = _env(tmp_path, ETC_HOME=str(tmp_path / "home"))
    folder = _sample(tmp_path)
    pushed = run_etc(env, "push", "./sample", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed sample version 1" in pushed.stdout
    assert (tmp_path / "home" / "sample").resolve() == folder
    other = write_tree(tmp_path / "o" / "sample", {"data/train/z": b"z"})
    clash = _etc(env, "push", str(other))
    assert clash.returncode == 1
    assert f"etc register {other} NAME, then etc push NAME" in clash.stderr

    unknown = _etc(env, "push", "nosuch")
    assert unknown.returncode == 1
    assert "etc pull" not in unknown.stderr
    assert "etc register DIR nosuch" in unknown.stderr
    elsewhere = _etc(_env(tmp_path, ETC_HOME=str(tmp_path / "h2")), "push", "sample")
    assert elsewhere.returncode == 1
    assert "etc pull sample first" in elsewhere.stderr


def test_every_json_schema_is_documented() -> None:
    from etcetera.api.schemas import VERSIONS

    page = (Path(__file__).parent.parent / "docs" / "cli.rst").read_text(encoding="utf-8")
    for command, version in VERSIONS.items():
        # Named with the command that prints it (files: `etc list NAME --json`).
        assert f"``etcetera.{command}/{version}`` (``etc " in page, command
