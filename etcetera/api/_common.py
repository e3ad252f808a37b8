"""What every API module shares: settings, budgets, the open repository, version refs."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.to_thread

from ..backends.base import Backend
from ..connect import open_backend, transfer_options
from ..engine import repo
from ..engine.transport import Transport
from ..errors import DatasetNotFoundError, EtceteraError
from ..format.manifest import Manifest
from ..settings import Config, load_config
from ..store import Store, valid_name


def resolve_config(config: Config | None) -> Config:
    """The given config, or the one from ``~/.etc.toml`` and ``ETC_*`` variables.

    Raises:
        SettingsError: the file or a variable holds an unknown key or an invalid value.
    """
    return config if config is not None else load_config()


#: The engine's budgets from the settings (the name the API modules use).
transfer_config = transfer_options


@contextlib.asynccontextmanager
async def repository(config: Config) -> AsyncIterator[Backend]:
    """Open the configured repository for the duration of a block."""
    backend = open_backend(config)
    try:
        yield backend
    except BaseExceptionGroup as group:
        # The engine's task groups wrap a failure; callers catch etcetera's errors.
        error = first_error(group)
        if error is None:
            raise
        raise error from error.__cause__
    finally:
        with anyio.CancelScope(shield=True):
            await backend.aclose()


def first_error(group: BaseExceptionGroup[BaseException]) -> EtceteraError | None:
    """The first etcetera error in a (nested) group whose errors are all plain exceptions."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        else:
            leaves.append(exc)
    if not all(isinstance(e, Exception) for e in leaves):
        return None  # a cancellation or an interrupt goes up as it is
    return next((e for e in leaves if isinstance(e, EtceteraError)), None)


def parse_ref(name: str, version: int | None) -> tuple[str, int | None]:
    """Split ``NAME@K`` (or ``NAME@latest``) into a checked name and a version."""
    if "@" in name:
        base, _, ver = name.partition("@")
        if ver != "latest":
            if not ver.isdigit():
                raise DatasetNotFoundError(f"invalid version {ver!r} in {name!r}: use NAME@K")
            version = int(ver)
        name = base
    return valid_name(name), version


class _HomeCache:
    """Manifest roots and pieces kept in ``home/.cache/manifests/`` (see ``repo.ManifestCache``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str) -> bytes | None:
        try:
            return self.store.manifest_cache(name).read_bytes()
        except OSError:
            return None

    def put(self, name: str, data: bytes) -> None:
        # Best effort, and safe with several writers in one home (a distributed pull).
        path = self.store.manifest_cache(name)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    def drop(self, name: str) -> None:
        self.store.manifest_cache(name).unlink(missing_ok=True)


async def load_manifest(
    t: Transport, store: Store, digest: str, partitions: Sequence[str] | None = None
) -> Manifest:
    """A manifest from the local cache (every byte checked against its name) or the repository.

    With ``partitions``, only those partitions' files are read (``Manifest.loaded``).
    """
    return await repo.read_manifest(t, digest, _HomeCache(store), partitions)


def home_cache(store: Store) -> repo.ManifestCache:
    """The manifest cache of a local home."""
    return _HomeCache(store)


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
