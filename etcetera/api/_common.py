"""What every API module shares: settings, dataset references, output helpers."""

from __future__ import annotations

import getpass
import json
import socket

from ..errors import ConfigError, DatasetNotFoundError, EtceteraError
from ..format.layout import version_number
from ..home import valid_name
from ..settings import Config, load_config


def resolve_config(config: Config | None) -> Config:
    """The given config, or the one from ``~/.etc.toml`` and ``ETC_*`` variables.

    Raises:
        SettingsError: the file or a variable holds an unknown key or an invalid value.
    """
    return config if config is not None else load_config()


def parse_ref(name: str, version: int | None) -> tuple[str, int | None]:
    """Split ``NAME@K`` (or ``NAME@latest``) into a checked name and a version.

    Raises:
        ConfigError: ``name`` names a version (``@K`` or ``@latest``) and ``version``
            another one; neither is preferred silently.
    """
    if "@" in name:
        base, _, ver = name.partition("@")
        wanted: int | None = None
        if ver != "latest":
            wanted = version_number(ver)
            if wanted is None:
                raise DatasetNotFoundError(f"invalid version {ver!r} in {name!r}: use NAME@K")
        if version is not None and version != wanted:
            raise ConfigError(
                f"conflicting versions: {name!r} and version={version}: give the version once"
            )
        name, version = base, wanted
    return valid_name(name), version


def whoami() -> str:
    """``user@host``, recorded in version records."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def describe_error(exc: BaseException) -> str:
    """One line for a person."""
    if isinstance(exc, EtceteraError | OSError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def dumps(obj: object) -> str:
    """JSON for ``--json`` output."""
    return json.dumps(obj, indent=1, default=str)
