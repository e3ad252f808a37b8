"""Fixtures shared by every test: a clean environment, repositories of every kind."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import RepoSpec

pytest_plugins = ["tests.fixtures_s3", "tests.fixtures_s3rver", "tests.fixtures_gcs"]

settings.register_profile(
    "ci", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _hygiene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Never reach a real cloud, a metadata service or the user's own config."""
    saved = dict(os.environ)
    empty = tmp_path_factory.mktemp("empty-config")
    (empty / "config").write_text("")
    (empty / "credentials").write_text("")
    for key in list(os.environ):
        if key.startswith(("AWS_", "GOOGLE_", "ETC_", "STORAGE_EMULATOR", "CLOUDSDK_")):
            del os.environ[key]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_CONFIG_FILE"] = str(empty / "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(empty / "credentials")
    os.environ["NO_GCE_CHECK"] = "true"
    os.environ["ETC_CONFIG"] = str(empty / "no-such-etc.toml")
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty etcetera home."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def file_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoSpec]:
    """A fresh file:// repository, removed after the test."""
    root = tmp_path_factory.mktemp(f"repo{next(_counter)}")
    yield RepoSpec(f"file://{root}")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["file", "s3", "gcs"])
def repo(request: pytest.FixtureRequest) -> RepoSpec:
    """Every kind of repository, one after the other."""
    spec: RepoSpec = request.getfixturevalue(f"{request.param}_repo")
    return spec
