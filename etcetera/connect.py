"""From a :class:`~etcetera.settings.Config` to an open back-end (API layer)."""

from __future__ import annotations

from .backends.base import Backend, BackendOptions
from .backends.registry import MissingExtraError, open_backend
from .errors import ConfigError
from .settings import Config
from .urls import RepoURL, URLError, parse_url


def repository_url(config: Config) -> RepoURL:
    """The parsed repository URL, or a one-line error saying how to set it."""
    if not config.url:
        raise ConfigError(
            "no repository configured: set url in ~/.etc.toml, ETC_URL, --url or etc.Config(url)"
        )
    try:
        return parse_url(config.url)
    except URLError as exc:
        raise ConfigError(str(exc)) from None


def backend_options(config: Config) -> BackendOptions:
    """The connection settings a back-end needs, and nothing else."""
    return BackendOptions(
        concurrency=config.concurrency,
        timeout=config.timeout,
        connect_timeout=config.connect_timeout,
        endpoint_url=config.endpoint_url,
        region=config.region,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.secret("aws_secret_access_key"),
        aws_session_token=config.secret("aws_session_token"),
        aws_profile=config.aws_profile,
        ca_bundle=config.ca_bundle,
        sse=config.sse,
        sse_kms_key_id=config.sse_kms_key_id,
        checksums=config.checksums,
        public=config.public,
        anonymous=config.anonymous,
        gcs_credentials_file=str(config.gcs_credentials_file)
        if config.gcs_credentials_file
        else None,
        gcs_project=config.gcs_project,
    )


def open_repository(config: Config) -> Backend:
    """Open the back-end named by ``config.url``."""
    url = repository_url(config)
    try:
        return open_backend(url, backend_options(config))
    except MissingExtraError as exc:
        raise ConfigError(str(exc)) from None
