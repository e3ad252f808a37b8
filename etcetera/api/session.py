"""One session per operation: the settings, the local home, the back-end and one Transport.

Every API operation that talks to the repository (``apush``, ``apull``, ``ainfo``
``--remote``, ``agc`` ...) opens exactly one :func:`session` and passes it (or its
transport) down. So the bounds the user set (``concurrency``, ``memory_budget``,
``io_threads``, ``bandwidth_limit``) are the bounds of the whole operation, and its
statistics count every request it made, version records and manifests included.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ..backends.base import Backend
from ..connect import open_backend, transfer_options
from ..engine.progress import TransferStats
from ..engine.transport import Transport
from ..errors import EtceteraError
from ..home import Home
from ..settings import Config
from ._common import resolve_config

if TYPE_CHECKING:
    from ..format.manifest import Manifest
    from ..format.v2 import ManifestRoot


class HomeManifests:
    """Manifest roots and pieces kept in ``home/.cache/manifests/`` (a ``ManifestCache``)."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def get(self, name: str) -> bytes | None:
        """Bytes kept under ``name`` (checked by the reader against their digest)."""
        try:
            return self.home.manifest_cache(name).read_bytes()
        except OSError:
            return None

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` under ``name``: best effort, safe with several writers in one home."""
        path = self.home.manifest_cache(name)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    def drop(self, name: str) -> None:
        """Forget ``name`` (its bytes did not verify)."""
        self.home.manifest_cache(name).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Session:
    """What one operation works with.

    Attributes:
        config: the effective settings, resolved once.
        home: the local home (``config.home``).
        transport: the operation's only transport (request limit, byte budget,
            I/O threads, statistics) over the repository's back-end.
    """

    config: Config
    home: Home
    transport: Transport

    @property
    def backend(self) -> Backend:
        """The repository's back-end."""
        return self.transport.backend

    @property
    def stats(self) -> TransferStats:
        """What the operation did so far."""
        return self.transport.stats

    async def manifest(self, digest: str, partitions: Sequence[str] | None = None) -> Manifest:
        """A manifest from the home's cache (every byte checked) or the repository.

        With ``partitions``, only those partitions' files are read (``Manifest.loaded``).
        """
        # Imported here: a no-op push or pull reads no manifest, and the format's modules
        # (zstandard with them) are a good share of a command's start.
        from ..engine import manifests

        return await manifests.read_manifest(
            self.transport, digest, HomeManifests(self.home), partitions
        )

    async def manifest_root(self, digest: str) -> ManifestRoot:
        """The root of a manifest (header and piece list), cached like :meth:`manifest`."""
        from ..engine import manifests

        return await manifests.read_root(self.transport, digest, HomeManifests(self.home))


@contextlib.asynccontextmanager
async def session(config: Config | None = None) -> AsyncIterator[Session]:
    """Open the configured repository for one operation.

    Args:
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).

    Raises:
        ConfigError: no repository is configured, or its URL or a setting is invalid.
    """
    cfg = resolve_config(config)
    backend = open_backend(cfg)
    transport = Transport(backend, transfer_options(cfg))
    try:
        yield Session(cfg, Home(cfg.home), transport)
    except BaseExceptionGroup as group:
        # The engine's task groups wrap a failure; callers catch etcetera's errors.
        error = first_error(group)
        if error is None:
            raise
        raise error from error.__cause__
    finally:
        transport.stats.peak_memory = transport.budget.peak
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
