"""From a :class:`~etcetera.settings.Config` to the engine's budgets and an open back-end.

:class:`~etcetera.engine.config.TransferConfig` and
:class:`~etcetera.backends.base.BackendOptions` are filled from the settings by field
name, so that a field added to either takes its setting's value without a second list
to keep in step (``tests/test_options.py`` checks names, defaults and values).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .backends import registry
from .backends.base import Backend, BackendOptions
from .engine.config import TransferConfig
from .errors import ConfigError
from .settings import Config
from .urls import RepoURL, parse_url


def _settings_of(options: type[Any], config: Config) -> dict[str, Any]:
    """The settings named like the fields of ``options``, as plain values."""
    out: dict[str, Any] = {}
    for f in fields(options):
        if f.name not in Config.model_fields:
            continue  # not a setting (TransferConfig.chunk_size is the format's)
        value = getattr(config, f.name)
        # The layers below take plain values: no pydantic secret wrappers, paths as text.
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value)
        out[f.name] = value
    return out


def transfer_options(config: Config) -> TransferConfig:
    """The engine's sizes and budgets from the settings."""
    return TransferConfig(**_settings_of(TransferConfig, config))


def backend_options(config: Config) -> BackendOptions:
    """The connection settings a back-end needs, and nothing else."""
    return BackendOptions(**_settings_of(BackendOptions, config))


def repository_url(config: Config) -> RepoURL:
    """The parsed repository URL, or a one-line error saying how to set it.

    Raises:
        ConfigError: no URL is set.
        URLError: the URL is malformed.
    """
    if not config.url:
        raise ConfigError(
            "no repository configured: set url in ~/.etc.toml, ETC_URL, --url or etc.Config(url)"
        )
    return parse_url(config.url)


def open_backend(config: Config) -> Backend:
    """Open the back-end named by ``config.url``.

    Raises:
        ConfigError: no URL is set.
        URLError: the URL is malformed.
        MissingExtraError: the back-end's optional dependencies are not installed.
        ConfigError: ``endpoint_url`` has no scheme (the SDKs say only "Invalid endpoint").
    """
    url = repository_url(config)
    endpoint = config.endpoint_url
    if endpoint and "://" not in endpoint and url.scheme != "file":
        raise ConfigError(
            f"endpoint_url {endpoint!r} has no scheme: write http://{endpoint} "
            f"(or https://{endpoint} for TLS)"
        )
    return registry.open_backend(url, backend_options(config))
