"""Every async API function has a sync twin with the same signature; the public names are clean.

The sync functions are made from their coroutines (:func:`etcetera.sync.blocking`), so
today the signatures match by construction; these tests keep it so when someone writes a
sync function by hand, and check that the Python API covers every ``etc`` command.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import etcetera
import etcetera.api
import etcetera.sync
from etcetera.api import PullResult, apull
from etcetera.cli import app
from etcetera.settings import Config

ROOT = Path(__file__).resolve().parents[1]

# The coroutines of etcetera.api that must have a sync twin (a floor, so that the pair
# test cannot pass by finding none).
KNOWN_ASYNC = {
    "acreate",
    "adataset",
    "agc",
    "ainfo",
    "alist_remote",
    "als",
    "apull",
    "apurge",
    "apush",
    "aregister",
    "arm_remote",
    "averify",
    "acat",
    "alist_files",
}


def signature_differences(afn: Callable[..., Any], fn: Callable[..., Any]) -> list[str]:
    """How the sync ``fn`` differs from the async ``afn``: parameters, kinds, defaults, types.

    Both are read the way a user, mypy's stubs and Sphinx see them: through
    ``__wrapped__``, with string annotations evaluated in the defining module.
    """
    want = inspect.signature(afn, eval_str=True)
    got = inspect.signature(fn, eval_str=True)
    out = []
    have = got.parameters
    for name, p in want.parameters.items():
        q = have.get(name)
        if q is None:
            out.append(f"lost parameter {name!r}")
            continue
        for what in ("kind", "default", "annotation"):
            a, b = getattr(p, what), getattr(q, what)
            # Types too: a default of 0 is not the default False (0 == False).
            if type(a) is not type(b) or a != b:
                out.append(f"{name!r}: {what} {b!r}, not {a!r}")
    out += [f"extra parameter {name!r}" for name in have if name not in want.parameters]
    if list(have) != list(want.parameters) and not out:
        out.append(f"parameter order {list(have)}, not {list(want.parameters)}")
    if got.return_annotation != want.return_annotation:
        out.append(f"returns {got.return_annotation!r}, not {want.return_annotation!r}")
    return out


def public_pairs() -> list[tuple[Callable[..., Any], Callable[..., Any]]]:
    """(async, sync) for every coroutine function that etcetera.api exports."""
    pairs = []
    for name in etcetera.api.__all__:
        afn = getattr(etcetera.api, name)
        if inspect.iscoroutinefunction(afn):
            twin = etcetera.sync.sync_name(afn)
            assert hasattr(etcetera.sync, twin), f"etcetera.api.{name} has no sync {twin}"
            pairs.append((afn, getattr(etcetera.sync, twin)))
    return pairs


def test_every_async_function_has_a_sync_twin_with_its_signature() -> None:
    pairs = public_pairs()
    assert {a.__name__ for a, _ in pairs} >= KNOWN_ASYNC
    for afn, fn in pairs:
        assert not inspect.iscoroutinefunction(fn), fn
        assert fn.__name__ == etcetera.sync.sync_name(afn)
        # A wrapper that points at another coroutine would show that one's signature.
        assert getattr(fn, "__wrapped__", afn) is afn, f"{fn.__name__} wraps something else"
        assert signature_differences(afn, fn) == [], fn.__name__
        # Each can be given settings in code, like every `etc` command (--config, --url).
        assert "config" in inspect.signature(fn).parameters, fn.__name__


def test_the_comparison_fails_on_a_sync_function_that_lost_a_parameter() -> None:
    def pull(name: str, *, config: Config | None = None) -> PullResult:  # the pull
        return etcetera.sync.run(apull, name, config=config)

    lost = signature_differences(apull, pull)
    assert "lost parameter 'to'" in lost and "lost parameter 'exclude'" in lost

    def renamed(
        name: str, *, config: Config | None = None, dry_run: int = 0, **rest: object
    ) -> PullResult:
        raise NotImplementedError

    found = signature_differences(apull, renamed)
    assert "'dry_run': default 0, not False" in found
    assert "'dry_run': annotation <class 'int'>, not <class 'bool'>" in found
    assert "extra parameter 'rest'" in found


def test_sync_functions_are_documented_as_the_sync_versions() -> None:
    for afn, fn in public_pairs():
        doc = fn.__doc__ or ""
        assert f"Sync version of :func:`etcetera.{afn.__name__}`" in doc, fn.__name__
        assert fn.__module__ == "etcetera.sync" and fn.__qualname__ == fn.__name__
    # The seed's product page: etc.dataset('sample', auto_pull=True, config=...).
    doc = etcetera.dataset.__doc__ or ""
    assert "auto_pull: pull from the repository when the dataset is not local" in doc
    assert list(inspect.signature(etcetera.dataset).parameters)[:3] == [
        "name",
        "auto_pull",
        "config",
    ]


def _checked_by_mypy() -> None:
    # Never called: strict mypy checks it (tests/ included) and flags an unused ignore,
    # so these lines fail the type check if the sync functions lose their typed
    # parameters (ParamSpec) or their result types.
    etcetera.pull("s", to="x", dry_run=True, include=["a"], exclude=["b"], shard=(0, 2))
    etcetera.push("s", include=["a"], exclude=["b"])
    etcetera.pull("s", bogus=1)  # type: ignore[call-arg]
    etcetera.info("s", remote="yes")  # type: ignore[arg-type]
    etcetera.rm_remote("s", config=None).append(1)
    etcetera.verify("s").ok.bit_length()


def test_all_is_sorted_complete_and_resolves() -> None:
    names = etcetera.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    lazy: dict[str, str] = vars(etcetera)["_LAZY"]
    assert set(names) == set(lazy) | {"__version__"}
    for name in etcetera.sync.__all__:
        if name not in ("blocking", "run", "sync_name"):
            assert name in names, f"etcetera.{name} is not exported"
    for afn, fn in public_pairs():
        assert afn.__name__ in names and fn.__name__ in names
    # Each name resolves in a fresh interpreter, lazily, to the object its module holds.
    code = (
        "import importlib, etcetera\n"
        "for n, m in vars(etcetera)['_LAZY'].items():\n"
        "    assert getattr(etcetera, n) is getattr(importlib.import_module(m), n), n\n"
        "print(len(etcetera.__all__))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(names))


@pytest.mark.parametrize("stray", ["Any", "TYPE_CHECKING", "importlib", "typing", "annotations"])
def test_no_stray_names(stray: str) -> None:
    assert stray not in dir(etcetera)
    assert not hasattr(etcetera, stray)


def test_dir_shows_the_api_and_loaded_submodules_only() -> None:
    code = (
        "import etcetera, types\n"
        "subs = {n for n, v in vars(etcetera).items() if isinstance(v, types.ModuleType)}\n"
        "odd = [n for n in dir(etcetera) if not n.startswith('__') and n not in\n"
        "       set(etcetera.__all__) | subs]\n"
        "odd += [n for n in vars(etcetera) if not n.startswith('_') and n not in\n"
        "        set(etcetera.__all__) | subs]\n"
        "print(odd)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert set(etcetera.__all__) <= set(dir(etcetera))


# Each `etc` command and the Python function that does the same.
COMMANDS = {
    "register": "register",
    "create": "create",
    "list": "ls",
    "ls": "ls",
    "purge": "purge",
    "push": "push",
    "pull": "pull",
    "info": "info",
    "verify": "verify",
    "rm": "rm_remote",
    "gc": "gc",
    "config": "Config",
    "cat": "cat",
}
# CLI options named differently in Python, and those only the CLI has (output format,
# a prompt, the flag that makes `etc rm` say where it deletes).
RENAMED = {"partition": "partitions", "grace_hours": "grace"}
CLI_ONLY = {"json", "yes"}
# `etc list NAME [PATH]` lists a version's files: etc.list_files (checked below).
CLI_ONLY_FOR = {
    "rm": {"remote"},
    **{c: {"ref", "path", "recursive"} for c in ("list", "ls")},
    "cat": {"ref"},  # etc.cat's NAME is its first parameter, `name`
}


def test_python_api_covers_every_command() -> None:
    commands = {c for c in app if not c.startswith("-")}
    assert commands == set(COMMANDS)
    assert {"path", "remote", "recursive"} <= set(inspect.signature(etcetera.list_files).parameters)
    for command, target in COMMANDS.items():
        obj = getattr(etcetera, target)
        if command == "config":  # `etc config` shows what etc.Config() loads
            assert hasattr(obj, "masked")
            continue
        cli = app[command].default_command
        assert cli is not None
        params = inspect.signature(obj).parameters
        for name in inspect.signature(cli).parameters:
            if name in CLI_ONLY | CLI_ONLY_FOR.get(command, set()):
                continue
            assert RENAMED.get(name, name) in params, f"etc {command} --{name}: not in {target}"
