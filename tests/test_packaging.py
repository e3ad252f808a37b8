"""The wheel: built from a copy of the project, it holds every module, the marker, the extras."""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import etcetera

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("api", "cli", "engine", "backends", "format", "reading", "fs")
EXTRAS = {
    "s3": "aiobotocore",
    "gcs": "gcloud-aio-storage",
    "dask": "distributed",
    "fsspec": "fsspec",
    "all": "etcetera[dask,fsspec,gcs,s3]",
}
# pip could not fetch the build back-end (setuptools, wheel): no index reachable.
_OFFLINE = re.compile(r"No matching distribution found|Could not find a version|NewConnection")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of the project (others may be editing the checkout meanwhile)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "etcetera", src / "etcetera", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "-w", str(out), "--no-deps", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 and _OFFLINE.search(done.stdout + done.stderr):
        pytest.skip(f"cannot fetch the build back-end: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("etcetera-*.whl")
    return built


def _metadata(whl: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
    return email.parser.Parser().parsestr(whl.read(name).decode())


def test_wheel_holds_every_module_and_the_marker(wheel: Path) -> None:
    assert wheel.name == f"etcetera-{etcetera.__version__}-py3-none-any.whl"
    src = wheel.parent.parent / "src"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert "etcetera/py.typed" in names
    for sub in SUBPACKAGES:
        assert f"etcetera/{sub}/__init__.py" in names, f"etcetera.{sub} is not packaged"
    modules = {p.relative_to(src).as_posix() for p in (src / "etcetera").rglob("*.py")}
    assert modules <= names, f"not packaged: {sorted(modules - names)}"
    stray = [n for n in names if not n.startswith(("etcetera/", "etcetera-"))]
    assert not stray, f"the wheel carries more than the package: {stray}"


def test_wheel_metadata_declares_extras_and_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        meta = _metadata(whl)
        (entry_points,) = [n for n in whl.namelist() if n.endswith("entry_points.txt")]
        scripts = whl.read(entry_points).decode()
    assert meta["Version"] == etcetera.__version__
    assert meta["Requires-Python"] == ">=3.11"
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"s3", "gcs", "dask", "all", "docs"} <= extras
    requires = meta.get_all("Requires-Dist") or []
    for extra, package in EXTRAS.items():
        assert any(r.startswith(package) and f'extra == "{extra}"' in r for r in requires), (
            f"extra {extra} does not pull in {package}"
        )
    # import etcetera must work without any cloud SDK: they are extras only.
    base = [r for r in requires if "extra ==" not in r]
    sdks = ("aiobotocore", "gcloud", "aiohttp", "distributed", "dask", "fsspec")
    assert not [r for r in base if r.startswith(sdks)], base
    assert re.search(r"^etc = etcetera\.cli:main$", scripts, re.M), scripts
    # fsspec.open('etc://...') finds the file system with no import of etcetera.
    assert re.search(r"^\[fsspec\.specs\]\netc = etcetera\.fs:EtcFileSystem$", scripts, re.M)


def test_version_is_defined_once() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == etcetera.__version__
    done = subprocess.run(
        [sys.executable, "-m", "etcetera", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == etcetera.__version__
