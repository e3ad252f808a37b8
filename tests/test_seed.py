"""The product page's Quick Start and Programmatic Configuration, run as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import etcetera as etc


def _etc(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etcetera", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_quick_start_and_programmatic_configuration(tmp_path: Path) -> None:
    user_home = tmp_path / "user"
    user_home.mkdir()
    repo = tmp_path / "my-datasets"
    repo.mkdir()
    env = {**os.environ, "HOME": str(user_home)}
    env.pop("ETC_CONFIG", None)
    work = tmp_path / "work"
    work.mkdir()

    # $ mkdir -p sample/data/train
    # $ touch sample/data/train/data00001.txt
    subprocess.run(["mkdir", "-p", "sample/data/train"], cwd=work, check=True)
    subprocess.run(["touch", "sample/data/train/data00001.txt"], cwd=work, check=True)

    # $ etc register sample
    done = _etc("register", "sample", cwd=work, env=env)
    assert done.returncode == 0, done.stderr
    assert (user_home / ".etc" / "sample").is_symlink()

    # $ etc list
    # >> sample
    done = _etc("list", cwd=work, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sample"]

    # ~/.etc.toml with at least `url` (a file:// url in place of s3://my-datasets)
    (user_home / ".etc.toml").write_text(f'url = "file://{repo}"\npublic = false\n')
    done = _etc("push", "sample", cwd=work, env=env)
    assert done.returncode == 0, done.stderr

    code = """
import etcetera as etc

dataset = etc.dataset('sample')
print(dataset.partitions())
for fname in dataset['train'].iterdir():
    print(fname)
print(dataset.meta)
"""
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "['train']"
    assert Path(lines[1]).name == "data00001.txt"
    assert Path(lines[1]).parent.name == "train"
    assert lines[2] == "{}"

    # Programmatic Configuration, on a disposable machine: no config file, fresh home.
    config = etc.Config(f"file://{repo}", home=tmp_path / "worker-home")
    dataset = etc.dataset("sample", auto_pull=True, config=config)
    assert dataset.partitions() == ["train"]
    assert [p.name for p in dataset["train"].iterdir()] == ["data00001.txt"]
    assert dataset.meta == {}
    assert dataset.location.is_relative_to(tmp_path / "worker-home")
