"""The back-end interface: the few object-store operations the engine needs.

A back-end is one repository (a bucket and prefix, or a folder). Keys are
``/``-separated and relative to the repository root; the back-end adds its prefix.
Every method raises only :mod:`etcetera.errors` exceptions: third-party errors are
translated once, inside the back-end.

The engine owns concurrency, retries, memory and verification; a back-end does one
request per call and holds no more than one network buffer of a streamed body.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from .. import defaults


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a HEAD says of one object."""

    key: str
    size: int
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """An unfinished multipart upload, as listed for cleanup."""

    key: str
    upload_id: str
    initiated: datetime | None = None


@dataclass(frozen=True, slots=True)
class PartRef:
    """What ``upload_part`` returns and ``complete_multipart`` needs back."""

    number: int
    etag: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Static facts about a back-end that shape how the engine uses it.

    Attributes:
        min_part_size: smallest non-final multipart part the store accepts.
        max_parts: most parts in one multipart upload.
        conditional_create: whether ``put(..., if_absent=True)`` is enforced by the store.
        cheap_ranges: whether a ranged GET costs the store only the range (false on
            stores that read the whole object per range, where whole GETs are preferred).
    """

    min_part_size: int = 5 * 1024 * 1024
    max_parts: int = 10_000
    conditional_create: bool = True
    cheap_ranges: bool = True


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Everything a back-end needs to connect, built from the settings by the API layer.

    Back-ends never read settings or the environment themselves (the cloud SDKs'
    own credential chains aside). Every field is the setting of the same name
    (``connect.backend_options``), with that setting's default (:mod:`etcetera.defaults`).
    """

    concurrency: int = defaults.CONCURRENCY
    timeout: float = defaults.TIMEOUT
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    endpoint_url: str | None = None
    region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    ca_bundle: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    checksums: str = defaults.CHECKSUMS
    public: bool = False
    anonymous: bool = False
    gcs_credentials_file: str | None = None
    gcs_project: str | None = None


@runtime_checkable
class Backend(Protocol):
    """One repository in an object store (or a folder that behaves like one)."""

    @property
    def capabilities(self) -> Capabilities:
        """Static facts the engine plans with."""
        ...

    def describe(self) -> str:
        """The repository URL, for messages."""
        ...

    async def check(self) -> None:
        """Raise :class:`~etcetera.errors.RepositoryNotFoundError` if the repository is absent."""
        ...

    def stream(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Yield the bytes of ``key`` from ``offset`` (``length`` bytes, or to the end).

        An async generator: the caller must close it (``contextlib.aclosing``) when it
        stops early.
        """
        ...

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Write a whole object; the back-end sends a transport checksum the store verifies.

        Args:
            key: object key.
            data: the body.
            if_absent: create-only; raise :class:`~etcetera.errors.PreconditionFailedError`
                if the object exists (where ``capabilities.conditional_create``).
        """
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Size of an object, or ``None`` when it does not exist."""
        ...

    async def delete(self, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""
        ...

    async def create_multipart(self, key: str) -> str:
        """Start a multipart upload and return its id."""
        ...

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> PartRef:
        """Upload part ``number`` (1-based) of a multipart upload, with a transport checksum."""
        ...

    async def complete_multipart(self, key: str, upload_id: str, parts: list[PartRef]) -> None:
        """Assemble the parts, in number order, into the object."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard a multipart upload and its parts; a missing upload is not an error."""
        ...

    def list_multipart(self, prefix: str) -> AsyncGenerator[UploadInfo, None]:
        """Yield unfinished multipart uploads under ``prefix``."""
        ...

    async def aclose(self) -> None:
        """Release connections and sessions."""
        ...

    def list(self, prefix: str) -> AsyncGenerator[ObjectInfo, None]:
        """Yield every object whose key starts with ``prefix``, in key order."""
        ...
