"""What `etc` says: the bar, the summaries, the prompts and the errors a new user meets."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import etcetera as etc
from etcetera.api import ProgressEvent
from etcetera.cli._bar import Display, Snapshot
from tests.fixtures_s3 import MotoServer
from tests.support import RepoSpec, cli_env, run_etc, write_tree


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env.update(
        ETC_CONFIG=str(tmp_path / "no-such.toml"),
        ETC_HOME=str(tmp_path / "home"),
        ETC_URL=f"file://{tmp_path / 'repo'}",
        ETC_PACK_SIZE="64",
    )
    env.update(extra)
    (tmp_path / "repo").mkdir(exist_ok=True)
    return env


def _event(
    done: int, total: int, files: int = 3, of: int = 1200, resumed: int = 0
) -> ProgressEvent:
    return ProgressEvent("download", "big", done, total, files, of, 5.0, resumed)


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_bar_fits_the_terminal_and_labels_its_eta(width: int) -> None:
    snapshot = Snapshot("pull imagenet-subset", _event(268_000_000, 1_512_000_000), 20e6)
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(snapshot)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()
    assert len(lines[0]) <= width
    assert "268.0 MB/1.5 GB" in lines[0]
    assert "ETA 1:02" in lines[0] or width < 50
    if width >= 80:
        assert "3/1200 files" in lines[0]
    if width >= 120:
        assert "pull imagenet-subset download" in lines[0] and "20.0 MB/s" in lines[0]


def test_the_rate_counts_only_bytes_moved_in_this_run(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 2.0])
    monkeypatch.setattr("etcetera.cli._bar.time.monotonic", lambda: next(clock))
    shown: list[str] = []
    display = Display("pull big")
    display.tty = False
    display._last_line = -10.0
    monkeypatch.setattr("builtins.print", lambda line, **_: shown.append(line))
    gib = 1_000_000_000
    # The first event after a resume finds 900 MB an interrupted run had left.
    for done in (0, 900_000_000 + 10_000_000, 900_000_000 + 20_000_000):
        display(_event(done, gib, resumed=900_000_000 if done else 0))
        display._last_line = -10.0
    assert "10.0 MB/s" in shown[-1], shown
    assert "ETA 0:08" in shown[-1], shown


def test_files_are_counted_as_they_are_written_duplicates_included(tmp_path: Path) -> None:
    same = os.urandom(3000)
    files = {"data/train/a.bin": same, "data/test/a.bin": same, "data/train/b.bin": b"b" * 3000}
    root = write_tree(tmp_path / "dup", files)
    cfg = etc.Config(
        f"file://{tmp_path / 'repo'}", home=tmp_path / "h1", pack_size=64, pack_threshold=1000
    )
    (tmp_path / "repo").mkdir()
    etc.register(root, config=cfg)
    etc.push("dup", config=cfg)
    events: list[ProgressEvent] = []
    etc.pull("dup", config=cfg.model_copy(update={"home": tmp_path / "h2"}), progress=events.append)
    last = [e for e in events if e.phase == "download"][-1]
    assert (last.files_done, last.bytes_done) == (last.files_total, last.bytes_total) == (3, 9000)


def test_summaries_count_in_words(tmp_path: Path) -> None:
    env = _env(tmp_path)
    write_tree(tmp_path / "one", {"data/train/a.txt": b"a" * 500, "data/test/b.txt": b"b" * 500})
    assert run_etc(env, "register", str(tmp_path / "one")).returncode == 0
    assert run_etc(env, "push", "one").returncode == 0
    (tmp_path / "one" / "data" / "test" / "b.txt").unlink()
    again = run_etc(env, "push", "one", "--force")
    assert again.returncode == 0, again.stderr
    # Every object is already stored: what moves is the version's records.
    assert re.match(
        r"pushed one version 2: 1 file, 500 B; sent \S+ B \(records only\), ", again.stdout
    )
    assert "0 objects" not in again.stdout
    info = run_etc(env, "info", "one")
    assert "  train: 1 file, 500 B" in info.stdout, info.stdout


def test_register_of_a_missing_folder_says_it_does_not_exist(tmp_path: Path) -> None:
    done = run_etc(_env(tmp_path), "register", str(tmp_path / "doesnotexist"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"etc: error: {tmp_path / 'doesnotexist'} does not exist"


def test_purge_says_the_registered_folder_was_kept(tmp_path: Path) -> None:
    env = _env(tmp_path)
    folder = write_tree(tmp_path / "mine", {"data/train/a.txt": b"a"})
    assert run_etc(env, "register", str(folder)).returncode == 0
    done = run_etc(env, "purge", "mine")
    assert done.returncode == 0, done.stderr
    assert f"kept your folder {folder}" in done.stdout
    assert (folder / "data" / "train" / "a.txt").exists()


def test_rm_asks_how_many_versions_from_which_repository(tmp_path: Path) -> None:
    env = _env(tmp_path)
    folder = write_tree(tmp_path / "big", {"data/train/a.txt": b"a"})
    run_etc(env, "register", str(folder))
    for content in (b"b", b"c"):
        assert run_etc(env, "push", "big", "--force").returncode == 0
        (folder / "data" / "train" / "a.txt").write_bytes(content)
    leader, follower = pty.openpty()  # the prompt is asked on a terminal only
    try:
        os.write(leader, b"n\n")  # waits in the terminal's buffer until read
        done = subprocess.run(
            [sys.executable, "-m", "etcetera", "rm", "--remote", "big"],
            env=env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 1
    assert (
        f"delete all 2 versions (1, 2) of big from file://{tmp_path / 'repo'}? [y/N]" in done.stdout
    )
    assert "nothing deleted" in done.stdout


def test_version_names_python_and_the_sdks(tmp_path: Path) -> None:
    done = run_etc(_env(tmp_path), "--version")
    assert re.fullmatch(
        r"etcetera \S+ \(Python 3\.\d+, aiobotocore \S+, gcloud-aio-storage \S+\)\n", done.stdout
    ), done.stdout


def test_an_endpoint_without_scheme_is_named_with_the_fix(tmp_path: Path) -> None:
    env = _env(tmp_path, ETC_URL="s3://bucket", ETC_ENDPOINT_URL="127.0.0.1:9000")
    done = run_etc(env, "list", "--remote")
    assert done.returncode == 1
    assert "endpoint_url '127.0.0.1:9000' has no scheme: write http://127.0.0.1:9000" in done.stderr


@pytest.mark.parametrize("profile", [False, True])
def test_a_wrong_s3_key_names_the_key_and_not_anonymous_access(
    tmp_path: Path, s3_iam_repo: RepoSpec, moto_iam_server: MotoServer, profile: bool
) -> None:
    extra = {"aws_access_key_id": "AKIAWRONGWRONGWRONG7", "aws_secret_access_key": "nope-nope"}
    env = cli_env(s3_iam_repo, tmp_path, **extra)
    if profile:
        (tmp_path / "aws").mkdir()
        (tmp_path / "aws" / "credentials").write_text(
            "[ci]\naws_access_key_id = AKIAWRONGWRONGWRONG7\naws_secret_access_key = nope\n"
        )
        env = {k: v for k, v in env.items() if "ACCESS_KEY" not in k}
        env.update(
            ETC_AWS_PROFILE="ci", AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws" / "credentials")
        )
    done = run_etc(env, "list", "--remote")
    assert done.returncode == 1
    assert "anonymous" not in done.stderr, done.stderr
    named = "profile ci (aws_profile)" if profile else "access key ...ONG7 (aws_access_key_id)"
    assert named in done.stderr, done.stderr
