"""What every API module shares: settings, dataset references, output helpers."""

from __future__ import annotations

import getpass
import json
import socket

from ..engine.config import TransferConfig
from ..errors import ConfigError, DatasetNotFoundError, EtceteraError
from ..settings import Config, SettingsError, load_config
from ..store import valid_name


def resolve_config(config: Config | None) -> Config:
    """The given config, or the one from ``~/.etc.toml`` and ``ETC_*`` variables."""
    if config is not None:
        return config
    try:
        return load_config()
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def transfer_config(config: Config) -> TransferConfig:
    """The engine's budgets from the settings."""
    return TransferConfig(
        concurrency=config.concurrency,
        io_threads=config.io_threads,
        part_size=config.part_size,
        pack_size=config.pack_size,
        pack_threshold=config.pack_threshold,
        memory_budget=config.memory_budget,
        retries=config.retries,
        retry_delay=config.retry_delay,
        retry_max_delay=config.retry_max_delay,
        bandwidth_limit=config.bandwidth_limit,
    )


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
            if not ver.isdigit():
                raise DatasetNotFoundError(f"invalid version {ver!r} in {name!r}: use NAME@K")
            wanted = int(ver)
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
