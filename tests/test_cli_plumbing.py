"""How `etc` ends and where it writes, as a shell sees it (real processes, real signals)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import etcetera as etc
from tests.support import kill_etc_when, run_etc, write_tree

_MB = 1_000_000


def _env(tmp_path: Path, home: str = "home", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env.update(
        ETC_CONFIG=str(tmp_path / "no-such.toml"),
        ETC_HOME=str(tmp_path / home),
        ETC_URL=f"file://{tmp_path / 'repo'}",
        **extra,
    )
    return env


def _published(tmp_path: Path, files: dict[str, bytes]) -> None:
    (tmp_path / "repo").mkdir()
    root = write_tree(tmp_path / "big", files)
    cfg = etc.Config(f"file://{tmp_path / 'repo'}", home=tmp_path / "home1", pack_size=4096)
    etc.register(root, config=cfg)
    etc.push("big", config=cfg)


def _staged(home: Path) -> int:
    """Bytes written under the staging folder (blocks, not sizes: blobs are pre-sized)."""
    staging = home / ".staging"
    if not staging.exists():
        return 0
    return sum(p.stat().st_blocks * 512 for p in staging.rglob("*") if p.is_file())


def test_ctrl_c_says_what_was_kept_and_the_resume_rates_only_this_run(tmp_path: Path) -> None:
    size = 32 * 1024 * 1024  # four 8 MiB chunks: a resume keeps whole chunks
    _published(tmp_path, {"data/train/big.bin": os.urandom(size)})
    limit = 8 * _MB
    env = _env(tmp_path, ETC_BANDWIDTH_LIMIT=str(limit), ETC_CONCURRENCY="1")
    home = tmp_path / "home"

    status, err = kill_etc_when(
        env, ["pull", "big"], lambda: _staged(home) > 26 * 1024 * 1024, 30, signal.SIGINT
    )
    assert status == 130, err
    last = err.decode().strip().splitlines()[-1]
    assert re.fullmatch(
        r"interrupted: [\d.]+ MB kept; run etc -q pull big again to resume", last
    ), err
    assert not (home / "big").exists()

    resumed = run_etc(env, "pull", "big")
    assert resumed.returncode == 0, resumed.stderr
    summary = resumed.stdout.strip()
    found = re.search(r"recovered ([\d.]+) MB already on disk", summary)
    assert found and float(found[1]) >= 16, summary
    # The bar's rate counts the bytes this run moved, not those the last one left.
    rates = [float(r) for r in re.findall(r"([\d.]+) MB/s", resumed.stderr)]
    assert rates, resumed.stderr
    assert max(rates) <= 2 * limit / _MB, resumed.stderr


def test_sigterm_stops_as_ctrl_c_does_with_exit_143(tmp_path: Path) -> None:
    files = {f"data/train/{i}.bin": os.urandom(2 * 1024 * 1024) for i in range(8)}
    _published(tmp_path, files)
    env = _env(tmp_path, ETC_BANDWIDTH_LIMIT=str(4 * _MB), ETC_CONCURRENCY="1")
    home = tmp_path / "home"

    status, err = kill_etc_when(
        env, ["pull", "big"], lambda: _staged(home) > 3 * 1024 * 1024, 30, signal.SIGTERM
    )
    assert status == 128 + signal.SIGTERM, err
    assert re.fullmatch(
        r"interrupted: [\d.]+ MB kept; run etc -q pull big again to resume",
        err.decode().strip(),
    ), err
    again = run_etc(env, "pull", "big")
    assert again.returncode == 0, again.stderr
    assert "recovered" in again.stdout


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["pull"], "etc pull: missing NAME"),
        (
            ["pull", "sample", "--partition", "train", "test"],
            "etc pull: unexpected argument 'test' (use -p train -p test)",
        ),
        (
            ["pull", "sample", "--forse"],
            "etc pull: unknown option '--forse' (did you mean --force?)",
        ),
        (["pul", "sample"], "etc: unknown command 'pul' (did you mean pull?)"),
        (["gc", "--grace-hours", "soon"], "etc gc: invalid value 'soon' for --grace-hours"),
        (["pull", "sample", "--to"], "etc pull: option --to needs a value"),
    ],
)
def test_usage_errors_are_one_line_the_usage_and_exit_2(
    tmp_path: Path, args: list[str], first: str
) -> None:
    done = run_etc(_env(tmp_path), *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(first), done.stderr
    command = args[0] if args[0] in ("pull", "gc") else "[OPTIONS] COMMAND"
    assert lines[1].startswith(f"usage: etc {command}"), done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("args", [["config", "--json"], ["--help"], ["list"]])
def test_a_closed_pipe_ends_it_silently_as_it_ends_git(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "etcetera", *args],
        env=_env(tmp_path, ETC_PACK_SIZE="4096"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line: `| head -0`
    _, err = proc.communicate(timeout=60)
    assert err == b""
    # `list` of an empty store prints nothing, and so exits 0 as `git log` on no commits.
    assert proc.returncode in ((0, -signal.SIGPIPE) if args == ["list"] else (-signal.SIGPIPE,))


def test_stdout_holds_only_results(tmp_path: Path) -> None:
    files = {f"data/{p}/{i}.txt": b"x" * 30 for p in ("train", "test") for i in range(3)}
    _published(tmp_path, files)
    pulled = run_etc(_env(tmp_path), "pull", "big")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines() == [pulled.stdout.strip()]
    assert pulled.stdout.startswith("pulled big version 1: 6 files")
    assert "big: download" in pulled.stderr  # the progress, for logs


def _help(tmp_path: Path, *args: str) -> str:
    done = run_etc(_env(tmp_path), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_screens_read_like_git_and_rclone(tmp_path: Path) -> None:
    top = _help(tmp_path, "--help")
    commands = re.findall(r"^  ([a-z]+)(?:, [a-z]+)?\s{2,}\S", top, re.MULTILINE)
    assert {"pull", "push", "register", "rm", "gc"} <= set(commands), top
    for command in commands:
        page = _help(tmp_path, command, "--help")
        lines = page.splitlines()
        assert lines[0].startswith(f"usage: etc {command}"), page
        assert lines[1] == "" and lines[2], page  # the purpose
        for noise in ("[default: False]", "--no-", "--empty-", "--name", "╭", "[required]"):
            assert noise not in page, (command, noise, page)
        titles = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
        assert titles.count("Global options:") == 1 and titles[-1] == "Global options:", page
        # Every option and argument is explained on its own row.
        rows = [line for line in lines if re.match(r"  (-|[A-Z])", line)]
        assert all(re.match(r"  .*\S\s{2,}\S", row) for row in rows), page
    pull = _help(tmp_path, "pull", "-h")
    assert "Arguments:\n  NAME  " in pull
    assert pull.index("--partition") < pull.index("--config")
    assert "(default: 24.0)" in _help(tmp_path, "gc", "--help")
