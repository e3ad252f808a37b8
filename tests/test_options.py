"""The engine's and the back-ends' options are the settings: same names, defaults, values."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from etcetera import defaults
from etcetera.backends.base import BackendOptions
from etcetera.connect import backend_options, transfer_options
from etcetera.engine.config import TransferConfig
from etcetera.settings import Config

#: Fields that are not settings, and why.
NOT_SETTINGS = {(TransferConfig, "chunk_size")}  # the format's hash chunk, fixed

#: A valid value, unlike the default, for every setting an options class carries.
OTHER: dict[str, Any] = {
    "concurrency": 7,
    "io_threads": 3,
    "part_size": 5 * defaults.MiB,
    "pack_size": 9 * defaults.MiB,
    "pack_threshold": 1234,
    "memory_budget": 77 * defaults.MiB,
    "retries": 2,
    "retry_delay": 0.5,
    "retry_max_delay": 3.0,
    "bandwidth_limit": 4096,
    "content_chunks": True,
    "compression": 5,
    "timeout": 12.5,
    "connect_timeout": 2.5,
    "endpoint_url": "http://127.0.0.1:9",
    "region": "eu-west-3",
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "secret-key",
    "aws_session_token": "session-token",
    "aws_profile": "other",
    "ca_bundle": "/etc/ca.pem",
    "sse": "aws:kms",
    "sse_kms_key_id": "key-1",
    "checksums": "when_supported",
    "public": True,
    "anonymous": True,
    "gcs_credentials_file": "/creds/sa.json",
    "gcs_project": "proj",
}

OPTIONS = [TransferConfig, BackendOptions]


def _settings(options: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(options) if (options, f.name) not in NOT_SETTINGS]


def _plain(value: object) -> object:
    """A setting's value as the layers below take it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value) if isinstance(value, Path) else value


@pytest.mark.parametrize("options", OPTIONS, ids=lambda c: c.__name__)
def test_every_field_is_a_setting(options: type[Any]) -> None:
    # A misspelt or new knob would otherwise keep its own default, never set.
    for f in _settings(options):
        assert f.name in Config.model_fields, f"{options.__name__}.{f.name} is not a setting"


@pytest.mark.parametrize("options", OPTIONS, ids=lambda c: c.__name__)
def test_defaults_are_the_settings_defaults(options: type[Any]) -> None:
    built = options()
    for f in _settings(options):
        setting = Config.model_fields[f.name]
        assert not setting.is_required(), f.name
        want = _plain(setting.get_default(call_default_factory=True))
        assert getattr(built, f.name) == want, f"{options.__name__}.{f.name} default drifted"


def test_defaults_flow_through() -> None:
    cfg = Config("file:///repo")
    assert transfer_options(cfg) == TransferConfig()
    assert backend_options(cfg) == BackendOptions()


@pytest.mark.parametrize(
    ("options", "derive"),
    [(TransferConfig, transfer_options), (BackendOptions, backend_options)],
    ids=["TransferConfig", "BackendOptions"],
)
def test_every_setting_is_passed_on(options: type[Any], derive: Any) -> None:
    names = [f.name for f in _settings(options)]
    missing = [n for n in names if n not in OTHER]
    assert not missing, f"add a non-default value for {missing} to OTHER"
    cfg = Config("file:///repo", **{n: OTHER[n] for n in names})
    built = derive(cfg)
    assert isinstance(built, options)
    for name in names:
        assert getattr(built, name) != getattr(options(), name), f"{name}: OTHER is the default"
        assert getattr(built, name) == _plain(getattr(cfg, name)), f"{name} was not passed on"
    for cls, name in NOT_SETTINGS:
        if cls is options:
            assert getattr(built, name) == getattr(options(), name)


def test_secrets_and_paths_reach_the_back_end_as_plain_text() -> None:
    cfg = Config(
        "s3://bucket",
        aws_secret_access_key="k",
        aws_session_token="t",
        gcs_credentials_file="/creds/sa.json",
    )
    options = backend_options(cfg)
    assert (options.aws_secret_access_key, options.aws_session_token) == ("k", "t")
    assert options.gcs_credentials_file == "/creds/sa.json"
    assert isinstance(options.gcs_credentials_file, str)
