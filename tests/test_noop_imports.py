"""What an ``etc`` no-op push and pull import: the start of a command is most of its time.

Each no-op runs as the ``etc`` command in a fresh interpreter that writes the names in
``sys.modules`` when it exits; a back-end's SDK is loaded only for its own kind of
repository, and a no-op loads neither the other direction's engine nor what only a
transfer needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import etcetera as etc
from tests.support import RepoSpec, cli_env, write_tree

pytestmark = pytest.mark.anyio

#: Run ``python -m etcetera ARGS`` (argv[2:]); write to argv[1] at exit its modules and
#: how many objects it froze (see etcetera.cli._process).
_WITH_MODULES = (
    "import atexit, gc, json, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def dump():\n"
    "    with open(out, 'w') as fh:\n"
    "        json.dump({'modules': sorted(sys.modules), 'frozen': gc.get_freeze_count()}, fh)\n"
    "atexit.register(dump)\n"
    "sys.argv[0] = 'etc'\n"
    "runpy.run_module('etcetera', run_name='__main__', alter_sys=True)\n"
)

#: The top-level packages each back-end's SDK brings (gcloud-aio speaks through aiohttp).
_SDKS = {
    "file": set(),
    "s3": {"aiobotocore", "botocore", "aiohttp"},
    "gs": {"gcloud", "aiohttp"},
}
#: What no no-op needs: the other back-ends' SDKs, cyclopts' completion installer.
_NEVER = {"aiobotocore", "botocore", "aiohttp", "gcloud", "cyclopts.completion"}
#: A no-op pull is told from the version record: no engine, no manifest format, no scan.
#: A no-op push needs no pull engine (the push engine's module brings the chunker).
_NOT_IN = {
    "pull": {
        "etcetera.engine.pull",
        "etcetera.engine.push",
        "etcetera.engine.scan",
        "etcetera.format.v2",
        "pyfastcdc",
        "zstandard",
        "tarfile",
    },
    "push": {"etcetera.engine.pull", "etcetera.api.staging", "tarfile"},
}


@dataclass
class _Run:
    """One ``etc`` process: what it printed, the modules it had loaded and froze at exit."""

    stdout: str
    modules: set[str]
    frozen: int


def _run(env: dict[str, str], tmp_path: Path, *args: str) -> _Run:
    """Run ``etc ARGS`` to its end."""
    out = tmp_path / "exit.json"
    run = subprocess.run(
        [sys.executable, "-c", _WITH_MODULES, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    return _Run(run.stdout, set(doc["modules"]), doc["frozen"])


def _among(modules: set[str], packages: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize("direction", ["push", "pull"])
async def test_a_noop_imports_only_what_its_repository_needs(
    repo: RepoSpec, tmp_path: Path, direction: str
) -> None:
    src = write_tree(tmp_path / "sample", {f"data/train/f{i}.txt": b"x%d" % i for i in range(20)})
    pusher, puller = tmp_path / "a", tmp_path / "b"
    await etc.aregister(src, config=repo.config(home=pusher))
    await etc.apush("sample", config=repo.config(home=pusher))
    await etc.apull("sample", config=repo.config(home=puller))
    home = pusher if direction == "push" else puller
    run = _run(cli_env(repo, home), tmp_path, direction, "sample")
    assert ("up to date" if direction == "push" else "already local") in run.stdout
    kind = repo.url.split("://")[0]
    unneeded = (_NEVER - _SDKS[kind]) | _NOT_IN[direction]
    assert _among(run.modules, unneeded) == []
    opened = _SDKS[kind] or {"etcetera.backends.file"}
    assert _among(run.modules, opened)  # it did open the repository
    # What the command built was frozen before the interpreter's exit: its collections
    # skip it (they cost a no-op on S3 a quarter of a second).
    assert run.frozen > len(run.modules)
