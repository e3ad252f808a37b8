"""One exception tree: every error class of etcetera is in ``errors.py``, drawn in its docstring."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import etcetera
from etcetera import errors
from etcetera.errors import (
    ConfigError,
    EtceteraError,
    IntegrityError,
    MissingExtraError,
    SettingsError,
    SourceChangedError,
    TransientError,
    URLError,
)


def _import_all() -> None:
    for info in pkgutil.walk_packages(etcetera.__path__, "etcetera."):
        if info.name == "etcetera.__main__":
            continue  # runs the command line
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("etcetera"):
                raise
            # An extra that is not installed: its module's classes cannot be checked here.


def _etcetera_exceptions() -> list[type[BaseException]]:
    _import_all()
    found: list[type[BaseException]] = []
    stack: list[type[BaseException]] = [BaseException]
    seen: set[type[BaseException]] = set()
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                if sub.__module__.split(".")[0] == "etcetera":
                    found.append(sub)
    return found


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_exception_class_is_in_the_tree() -> None:
    found = _etcetera_exceptions()
    assert EtceteraError in found and SettingsError in found
    outside = [_qualname(c) for c in found if c.__module__ != "etcetera.errors"]
    assert not outside, f"define these in etcetera/errors.py: {outside}"
    strays = [_qualname(c) for c in found if not issubclass(c, EtceteraError)]
    assert not strays, f"not under EtceteraError: {strays}"


def test_the_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[─└├]── (\w+)", doc)) | {"EtceteraError"}
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert drawn == defined


def test_retryable_means_the_transport_repeats_it() -> None:
    # Transport.call and Transport.stream repeat a request only for retryable errors;
    # nothing re-fetches after a failed digest check, so IntegrityError must not claim it.
    retryable = {c for c in _etcetera_exceptions() if getattr(c, "retryable", False)}
    assert retryable == {c for c in retryable if issubclass(c, TransientError)}
    assert TransientError in retryable
    assert not IntegrityError.retryable


def test_config_errors_are_raised_as_themselves() -> None:
    from etcetera.urls import parse_url

    with pytest.raises(URLError, match="unsupported repository url 'ftp://x'") as caught:
        parse_url("ftp://x")
    assert isinstance(caught.value, ConfigError | ValueError)
    assert issubclass(MissingExtraError, ConfigError) and issubclass(MissingExtraError, ImportError)
    assert issubclass(SettingsError, ConfigError)


def test_missing_extra_is_a_config_error_with_its_message(tmp_path: Path) -> None:
    # A blocked aiobotocore: opening an s3:// repository names the extra to install.
    code = (
        "import sys; sys.modules['aiobotocore'] = None; "
        "import etcetera as etc; from etcetera.connect import open_backend; "
        "from etcetera.errors import ConfigError, MissingExtraError\n"
        "try:\n"
        "    open_backend(etc.Config('s3://bucket', home=sys.argv[1]))\n"
        "except MissingExtraError as exc:\n"
        "    assert isinstance(exc, ConfigError) and isinstance(exc, ImportError)\n"
        "    print(exc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "s3:// repositories need pip install 'etcetera[s3]'" in run.stdout


def test_source_changed_survives_pickling() -> None:
    import pickle

    exc = pickle.loads(pickle.dumps(SourceChangedError("/data/a.bin")))
    assert isinstance(exc, SourceChangedError)
    assert exc.source == "/data/a.bin"
    assert str(exc) == "/data/a.bin changed while it was pushed: push again"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ETC_URL": "ftp://x"}, "unsupported repository url 'ftp://x': expected file:///path"),
        ({"ETC_URL": "s3://x"}, "invalid bucket name 'x' in repository url 's3://x'"),
        ({"ETC_CONCURRENCY": "0"}, "invalid setting 'concurrency': Input should be greater"),
        ({"ETC_URL": ""}, "no repository configured: set url in ~/.etc.toml"),
    ],
    ids=["scheme", "bucket", "setting", "no-url"],
)
def test_cli_prints_the_message_of_the_error_raised(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    from tests.support import run_etc

    base = {**os.environ, "ETC_HOME": str(tmp_path / "home"), "ETC_URL": f"file://{tmp_path}"}
    run = run_etc({**base, **env}, "list", "--remote")
    assert run.returncode == 1
    assert run.stderr.startswith(f"etc: error: {says}"), run.stderr
    assert run.stderr.count("\n") == 1


def test_a_cluster_without_workers_is_a_cluster_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    import etcetera as etc
    from etcetera import distributed as etc_distributed
    from etcetera.errors import ClusterError
    from tests.support import write_tree

    (tmp_path / "repo").mkdir()
    cfg = etc.Config(f"file://{tmp_path / 'repo'}", home=tmp_path / "home")
    etc.register(write_tree(tmp_path / "src" / "s", {"data/a/x.txt": b"x"}), config=cfg)
    etc.push("s", config=cfg)
    # Dask's constructors are unannotated (tests.test_distributed relaxes this module-wide).
    cluster = LocalCluster(n_workers=0, processes=False, dashboard_address=None)  # type: ignore[no-untyped-call]
    with (
        cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
        pytest.raises(ClusterError, match="the Dask cluster has no workers"),
    ):
        etc_distributed.pull("s", client, config=cfg)


def test_errors_with_fields_survive_pickling() -> None:
    import pickle

    exists = errors.VersionExistsError("dataset s exists as version 3", name="s", latest=3)
    back = pickle.loads(pickle.dumps(exists))
    assert (type(back), str(back), back.name, back.latest) == (
        errors.VersionExistsError,
        str(exists),
        "s",
        3,
    )
    raced = pickle.loads(pickle.dumps(errors.ConcurrentPushError("first", name="s", number=2)))
    assert (raced.name, raced.number) == ("s", 2)
