"""Settings: read once, from arguments, ``ETC_*`` variables and ``~/.etc.toml``, then frozen.

Precedence, highest first: explicit arguments (``etc.Config(url, key=value)``, CLI
flags), environment variables ``ETC_<KEY>``, the TOML file (``--config FILE``, else
``$ETC_CONFIG``, else ``~/.etc.toml``), defaults. Nothing below the API layer reads the
environment: the resulting :class:`Config` is passed down.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from . import defaults
from .errors import SettingsError
from .sizes import parse_size

#: A byte count, also written ``20M``, ``1.5GiB``, ``512KiB``, ``64MB`` (see :mod:`etcetera.sizes`).
Size = Annotated[int, BeforeValidator(parse_size)]

_config_file: ContextVar[Path | None] = ContextVar("etc_config_file", default=None)


def default_config_file() -> Path:
    """The TOML file read when none is named: ``$ETC_CONFIG`` or ``~/.etc.toml``."""
    env = os.environ.get("ETC_CONFIG")
    return Path(env).expanduser() if env else Path.home() / ".etc.toml"


class Config(BaseSettings):
    """The effective configuration of etcetera, frozen once built.

    ``etc.Config('s3://my-datasets')`` configures a repository without a file; any other
    key may be passed by name. Unset keys come from ``ETC_<KEY>`` variables, then from
    the TOML file, then from the defaults (stated once, in :mod:`etcetera.defaults`).

    Args:
        url: repository URL (``file:///path``, ``s3://bucket/prefix``, ``gs://bucket/prefix``).
        home: folder of local datasets (default ``~/.etc``).
        **conf: any other key of this class.
    """

    model_config = SettingsConfigDict(
        env_prefix="ETC_",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    url: str | None = Field(default=None, description="Repository URL.")
    home: Path = Field(
        default_factory=lambda: Path.home() / ".etc", description="Folder of local datasets."
    )
    public: bool = Field(default=False, description="Make pushed objects publicly readable.")
    anonymous: bool = Field(
        default=False, description="Send unsigned requests (public datasets, no credentials)."
    )

    aws_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret access key (never printed)."
    )
    aws_session_token: SecretStr | None = Field(
        default=None, description="S3 session token for temporary credentials (never printed)."
    )
    aws_profile: str | None = Field(default=None, description="Profile of ~/.aws to use.")
    region: str | None = Field(default=None, description="S3 region (default us-east-1).")
    endpoint_url: str | None = Field(default=None, description="S3-compatible or GCS endpoint.")
    ca_bundle: str | None = Field(
        default=None, description="CA bundle file for TLS (else the SDK's AWS_CA_BUNDLE)."
    )
    sse: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="S3 server-side encryption of pushed objects."
    )
    sse_kms_key_id: str | None = Field(default=None, description="KMS key id for sse = aws:kms.")
    checksums: Literal["when_required", "when_supported"] = Field(
        default=defaults.CHECKSUMS,
        description="botocore checksums; 'when_supported' breaks some S3-compatible stores.",
    )
    gcs_credentials_file: Path | None = Field(
        default=None, description="GCS service-account JSON file (else application-default)."
    )
    gcs_project: str | None = Field(default=None, description="GCS project.")

    concurrency: int = Field(
        default=defaults.CONCURRENCY, ge=1, le=1024, description="Requests in flight."
    )
    io_threads: int = Field(
        default=defaults.IO_THREADS, ge=1, le=256, description="Threads for disk I/O and hashing."
    )
    part_size: Size = Field(
        default=defaults.PART_SIZE,
        ge=defaults.MiB,
        description="Multipart part and download range size.",
    )
    pack_size: Size = Field(
        default=defaults.PACK_SIZE, ge=1, description="Target size of a pack object."
    )
    pack_threshold: Size = Field(
        default=defaults.PACK_THRESHOLD, ge=0, description="Files smaller than this are packed."
    )
    compression: int = Field(
        default=defaults.COMPRESSION,
        ge=0,
        le=19,
        description="zstd level of packs and blobs that compress well (0: store all as they are).",
    )
    memory_budget: Size = Field(
        default=defaults.MEMORY_BUDGET,
        ge=defaults.MiB,
        description="Bytes of file data a transfer may hold in memory, whatever the concurrency.",
    )
    cache_size: Size = Field(
        default=defaults.CACHE_SIZE,
        ge=0,
        description="Bytes the cache of files read without a pull keeps (0: no cache).",
    )
    timeout: float = Field(default=defaults.TIMEOUT, gt=0, description="Seconds per request.")
    connect_timeout: float = Field(
        default=defaults.CONNECT_TIMEOUT, gt=0, description="Seconds to connect."
    )
    retries: int = Field(
        default=defaults.RETRIES, ge=0, le=50, description="Retries of a failed request."
    )
    retry_delay: float = Field(
        default=defaults.RETRY_DELAY, ge=0, description="First retry delay, seconds."
    )
    retry_max_delay: float = Field(
        default=defaults.RETRY_MAX_DELAY, ge=0, description="Longest retry delay, seconds."
    )
    bandwidth_limit: Annotated[int | None, BeforeValidator(parse_size)] = Field(
        default=None, ge=1, description="Bytes per second (20M is 20 MiB/s)."
    )
    content_chunks: bool = Field(
        default=False,
        description=(
            "Push files larger than 8 MiB as content-defined chunks, so that a changed file "
            "sends (and a pull holding its previous version fetches) only its new chunks."
        ),
    )
    progress_bar: bool = Field(
        default=True,
        description=(
            "The Python API's progress bar in a notebook or on a terminal (quiet=True turns "
            "it off for one call)."
        ),
    )
    ignore_defaults: bool = Field(
        default=True,
        description=(
            "Also ignore OS litter: "
            + ", ".join(defaults.IGNORE)
            + " (false: ignore only `ignore`)."
        ),
    )
    # NoDecode: ETC_IGNORE='*.tmp,*.bak' is a comma list, not JSON.
    ignore: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validate_default=True,
        description=(
            "Names never pushed, added to the OS litter of ignore_defaults "
            "(ETC_IGNORE takes a comma list)."
        ),
    )

    #: Keys whose values never appear in output.
    SECRET_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"aws_secret_access_key", "aws_session_token"}
    )

    def __init__(self, url: str | None = None, home: str | Path | None = None, **conf: Any) -> None:
        explicit: dict[str, Any] = dict(conf)
        if url is not None:
            explicit["url"] = url
        if home is not None:
            explicit["home"] = home
        try:
            super().__init__(**explicit)
        except ValidationError as exc:
            # One line naming the key and where its value came from, as load_config says.
            path = _config_file.get() or default_config_file()
            try:
                in_file = _read_file(path)
            except SettingsError:
                in_file = {}
            raise SettingsError(_describe(exc, path, in_file, explicit)) from None

    @field_validator("home", "gcs_credentials_file", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        # Absolute, so that links made in home stay valid whatever the working folder.
        return value.expanduser().absolute() if value is not None else None

    @field_validator("ignore", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(p.strip() for p in text.split(",") if p.strip())
        return value

    @field_validator("ignore", mode="after")
    @classmethod
    def _add_defaults(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # The patterns given add to the OS litter unless ignore_defaults = false.
        if not info.data.get("ignore_defaults", True):
            return value
        return tuple(dict.fromkeys((*defaults.IGNORE, *value)))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``ETC_*`` variables, then the TOML file."""
        path = _config_file.get() or default_config_file()
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))

    def secret(self, key: str) -> str | None:
        """The plain value of a secret setting, for the back-end that needs it."""
        value = getattr(self, key)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return None if value is None else str(value)

    def masked(self) -> dict[str, Any]:
        """The settings as a plain dict, secrets replaced by ``'****'``."""
        out: dict[str, Any] = {}
        for key in type(self).model_fields:
            value = getattr(self, key)
            if key in self.SECRET_KEYS and value is not None:
                value = "****"
            elif isinstance(value, Path):
                value = str(value)
            out[key] = value
        return out


def load_config(
    config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Build the effective :class:`Config`.

    Args:
        config_file: the TOML file to read instead of ``~/.etc.toml``; it must exist.
        overrides: explicit values (CLI flags), highest precedence; ``None`` values are skipped.

    Raises:
        SettingsError: a file is unreadable or not TOML, or a key is unknown or invalid;
            the one-line message names the key and where its value came from.
    """
    path = Path(config_file).expanduser() if config_file is not None else default_config_file()
    if config_file is not None and not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    _read_file(path)  # an unreadable or invalid file is its own error
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_environment()
    token = _config_file.set(path)
    try:
        return Config(**explicit)
    finally:
        _config_file.reset(token)


def sources(
    config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Where each setting's effective value comes from: argument, environment, file, default."""
    path = Path(config_file).expanduser() if config_file is not None else default_config_file()
    try:
        in_file = _read_file(path)
    except SettingsError:
        in_file = {}
    return {key: _source(key, path, in_file, overrides or {}) for key in Config.model_fields}


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None


def _source(key: str, path: Path, in_file: Mapping[str, Any], overrides: Mapping[str, Any]) -> str:
    if overrides.get(key) is not None:
        return "argument"
    if f"ETC_{key.upper()}" in {k.upper() for k in os.environ}:
        return f"environment ETC_{key.upper()}"
    if key in in_file:
        return f"file {path}"
    return "default"


def _close(key: str) -> str | None:
    close = difflib.get_close_matches(key.lower(), list(Config.model_fields), n=1, cutoff=0.75)
    return close[0] if close else None


def _check_environment() -> None:
    """Refuse an ``ETC_*`` variable that is a misspelt setting (``ETC_CONCURENCY``).

    Other unknown ``ETC_*`` variables may belong to another program and are left alone.
    """
    known = {f"ETC_{k.upper()}" for k in Config.model_fields} | {"ETC_CONFIG"}
    for var in os.environ:
        upper = var.upper()
        if upper.startswith("ETC_") and upper not in known:
            close = _close(upper.removeprefix("ETC_"))
            if close is not None:
                raise SettingsError(
                    f"unknown setting {upper} (in the environment): "
                    f"did you mean ETC_{close.upper()}?"
                )


def _describe(
    exc: ValidationError, path: Path, in_file: Mapping[str, Any], explicit: Mapping[str, Any]
) -> str:
    err = exc.errors()[0]
    key = str(err["loc"][0]) if err["loc"] else "?"
    if err["type"] == "extra_forbidden":
        where = "argument" if key in explicit else f"file {path}"
        close = _close(key)
        hint = f": did you mean {close}?" if close else ""
        return f"unknown setting {key!r} (in {where}){hint}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"invalid setting {key!r}: {msg} (from {_source(key, path, in_file, explicit)})"
