"""The layering of STYLE.md, the public names, and what `import etcetera` must not load."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import etcetera

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    run = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_public_names_sorted_and_documented() -> None:
    names = etcetera.__all__
    assert names == sorted(names)
    for name in names:
        obj = getattr(etcetera, name)
        if name != "__version__":
            assert obj.__doc__, f"{name} has no docstring"


def test_import_does_not_load_cloud_sdks() -> None:
    code = (
        "import sys, etcetera, etcetera.cli; "
        "sdks = ('aiobotocore', 'botocore', 'gcloud'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in sdks]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    _python_succeeds(code)


def _python_succeeds(code: str) -> None:
    """Run ``code`` in a fresh interpreter (its own ``sys.modules``); it must exit 0."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_pull_does_not_load_the_push() -> None:
    """``etcetera.api`` imports a name's module on first use: ``etc pull`` loads no push."""
    code = (
        "import sys; from etcetera.api import apull, session, watch; "
        "s = sys.modules['etcetera.api.session']; "
        "assert callable(session) and callable(watch) and s.session is session; "
        "print([m for m in sys.modules if m.endswith('.push')]); "
        "sys.exit(1 if 'etcetera.engine.push' in sys.modules else 0)"
    )
    _python_succeeds(code)


def test_sync_api_works_inside_a_running_loop(tmp_path: Path) -> None:
    import asyncio

    async def app() -> list[str]:
        return etcetera.ls(config=etcetera.Config(home=tmp_path))

    assert asyncio.run(app()) == []


def test_configuration_page_lists_every_key() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "docs" / "gen_configuration.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == gen.render(), "run python docs/gen_configuration.py"
    for key in etcetera.Config.model_fields:
        assert f"`ETC_{key.upper()}`" in page


def test_architecture_page_matches_the_tree() -> None:
    import re

    page = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", page))
    assert named, "the page names no modules"
    for rel in named:
        assert (ROOT / "etcetera" / rel).is_file(), f"architecture.md names missing {rel}"
    for path in (ROOT / "etcetera").rglob("*.py"):
        rel = path.relative_to(ROOT / "etcetera").as_posix()
        if path.name in ("__init__.py", "__main__.py", "_version.py", "demo.py"):
            continue
        stem = rel.removesuffix(".py")
        assert rel in page or stem in page or path.stem in page, f"architecture.md omits {rel}"
