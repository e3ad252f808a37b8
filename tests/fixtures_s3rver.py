"""s3rver: a second, independent S3 implementation, which ignores ``If-None-Match: *``.

It is installed with npm once per machine (kept under ``$XDG_CACHE_HOME/etcetera-tests``,
so a second run, or a second test session, pays nothing) and started once per session
on 127.0.0.1. Tests that use it skip, saying why, only where node or npm is missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_s3 import MotoServer, _die_with_parent, _stop, free_port, new_bucket_name
from tests.support import RepoSpec

VERSION = "3.7.1"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "etcetera-tests" / f"s3rver-{VERSION}"


def install_s3rver() -> Path:
    """The s3rver executable, installed with npm on first use (skip without node or npm)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"s3rver tests need node and npm ({' and '.join(missing)} not on PATH)")
    folder = _cache_dir()
    exe = folder / "node_modules" / ".bin" / "s3rver"
    folder.mkdir(parents=True, exist_ok=True)
    # One installer at a time (two test sessions on one machine share the cache).
    with open(folder.parent / f"s3rver-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder),
                 f"s3rver@{VERSION}"],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=300,
            )  # fmt: skip
    return exe


@dataclass(frozen=True)
class S3rver(MotoServer):
    """A running s3rver (any keys are accepted; these are its documented ones)."""

    access_key_id: str = "S3RVER"
    secret_access_key: str = "S3RVER"


def _start(exe: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        proc = subprocess.Popen(
            [str(exe), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{endpoint}/", timeout=2):
                    return proc, endpoint
            except urllib.error.HTTPError:
                return proc, endpoint  # it answers: ready
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        _stop(proc)
    raise RuntimeError("s3rver did not start")


@pytest.fixture(scope="session")
def s3rver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    """One s3rver for the session, on 127.0.0.1 with a free port."""
    exe = install_s3rver()
    proc, endpoint = _start(exe, tmp_path_factory.mktemp("s3rver"))
    try:
        yield S3rver(endpoint)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def s3rver_client(s3rver_server: S3rver) -> Iterator[Any]:
    """A plain botocore client on the session's s3rver."""
    client = s3rver_server.client()
    yield client
    client.close()


@pytest.fixture
def s3rver_repo(s3rver_server: S3rver, s3rver_client: Any) -> RepoSpec:
    """A repository in a fresh bucket on the session's s3rver."""
    bucket = new_bucket_name()
    s3rver_client.create_bucket(Bucket=bucket)
    return RepoSpec(url=f"s3://{bucket}", settings=s3rver_server.settings())
