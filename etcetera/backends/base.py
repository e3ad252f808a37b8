"""The back-end interface: the few object-store operations the engine needs.

A back-end is one repository (a bucket and prefix, or a folder). Keys are
``/``-separated and relative to the repository root; the back-end adds its prefix.
Every method raises only :mod:`etcetera.errors` exceptions: third-party errors are
translated once, inside the back-end.

The engine owns concurrency, retries, memory and verification; a back-end holds no
more than one network buffer of a streamed body, and does one request per call: each
method sends one request to the store (a listing: one page after another, so one in
flight; a folder: one file-system operation in a thread), which the engine's transport
admits through its request limiter, retries and counts as one call.

Large objects go up through an :class:`Upload` object (:meth:`Backend.upload`): parts
are put in any order, each one request, and until it is completed or aborted a later
process finds the upload again by its key (:meth:`Backend.uploads`) and resumes it.
Only ``complete`` and ``abort`` may need more than one request (a GCS composite upload
composes its parts in rounds of 32, then deletes them: a number of requests bounded by
the number of parts), so those two take ``run``, the transport's way of sending one
request, and send each of their requests through it rather than being wrapped whole.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from .. import defaults

T = TypeVar("T")

#: A body: bytes, or a buffer the engine reuses once the call has returned.
Buffer = bytes | bytearray


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a HEAD says of one object."""

    key: str
    size: int
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class PartRef:
    """One stored part of an upload: what ``put_part`` returns and ``complete`` needs back.

    Attributes:
        number: the part's number (1-based); parts are assembled in number order.
        etag: the store's name for this part's content (an ETag or a checksum).
        extra: what else the store wants back on completion (S3's part checksum,
            when the store reports it).
        size: bytes in the part, where known.
        checksums: what a listing (``Upload.parts``) says of the part's bytes, by
            algorithm (``"crc32"``, ``"crc32c"``, ``"md5"``), in lowercase hex: only
            checksums the store computed from the bytes it holds, so that a resumed
            push can check a stored part against the local file before keeping it.
    """

    number: int
    etag: str
    extra: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    checksums: dict[str, str] = field(default_factory=dict)


class Requests(Protocol):
    """How an upload object sends one request: ``await run(what, fn)`` runs ``fn()``.

    The engine passes its transport's ``call``, which admits the request through its
    limiter, retries it on retryable errors and counts it; ``what`` names the request
    in an error message. :func:`direct` sends it as it is.
    """

    def __call__(self, what: str, fn: Callable[[], Awaitable[T]], /) -> Awaitable[T]:
        """Run ``fn`` (one request) and return what it returns."""
        ...


async def direct(what: str, fn: Callable[[], Awaitable[T]]) -> T:
    """Send one request as it is: no limit, no retry (for tests and tools)."""
    return await fn()


@runtime_checkable
class Upload(Protocol):
    """One unfinished multipart upload of an object.

    Parts are put in any order, each one request, and concurrently; ``complete``
    assembles them in number order into the object. Until it is completed or aborted
    the upload stays in the store, and :meth:`Backend.uploads` finds it again, from
    any process, so that its parts can be listed, checked and added to.
    """

    @property
    def key(self) -> str:
        """The key of the object this upload writes."""
        ...

    @property
    def upload_id(self) -> str:
        """The store's id of this upload."""
        ...

    @property
    def initiated(self) -> datetime | None:
        """When the upload was started, where the store says."""
        ...

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """Store part ``number`` (1-based), with a transport checksum; one request.

        Putting a number again replaces that part. ``crc32`` is the CRC32 of ``data`` when
        the caller already knows it (derived from the chunk CRCs hashing took), so that a
        store checking CRC32 costs no second pass over the bytes. ``data`` is not kept
        after the call returns.
        """
        ...

    def parts(self) -> AsyncGenerator[PartRef, None]:
        """Yield the parts stored so far, in number order, with their ``checksums``.

        One request per page.
        """
        ...

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        """Assemble ``parts``, in number order, into the object.

        Each request goes through ``run``. On failure the parts are kept: a retry, a
        resumed push or ``abort`` decides.
        """
        ...

    async def abort(self, run: Requests = direct) -> None:
        """Discard the upload and its parts; a missing upload is fine.

        Each request goes through ``run``.
        """
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Static facts about a back-end that shape how the engine uses it.

    Attributes:
        min_part_size: smallest non-final multipart part the store accepts.
        max_parts: most parts in one multipart upload.
        conditional_create: whether ``put(..., if_absent=True)`` is enforced by the store.
        probe_create_only: whether that depends on the server (S3-compatible stores:
            some ignore ``If-None-Match``), so that the API probes it once per
            repository before it publishes (``api/stores.py``).
        cheap_ranges: whether a ranged GET costs the store only the range (false on
            stores that read the whole object per range, where whole GETs are preferred).
        send_copies: how many copies of a body are in memory while it is sent (ours
            included): the byte budget charges each of them, so that ``memory_budget``
            bounds the real footprint.
    """

    min_part_size: int = 5 * 1024 * 1024
    max_parts: int = 10_000
    conditional_create: bool = True
    probe_create_only: bool = False
    cheap_ranges: bool = True
    send_copies: int = 2


@runtime_checkable
class StagedObject(Protocol):
    """A temporary object holding a copy of a local file, not yet under its key.

    Attributes:
        path: where the copy can be read on this machine, to hash it.
    """

    path: str

    async def publish(self, key: str) -> None:
        """Put the copy under ``key`` (replacing what is there: keys name contents); one request."""
        ...

    async def discard(self) -> None:
        """Delete the copy; one already published or discarded is fine."""
        ...


@runtime_checkable
class LocalObjects(Protocol):
    """What a back-end whose objects are files on this machine adds (``file://``).

    Bytes then move between a local file and an object inside the kernel
    (``copy_file_range``), never through the engine's buffers, and the engine hashes the
    copy, not the original: what ends up in the repository (a push) or in the
    destination (a pull) is exactly what was hashed. Each method is one request.
    """

    async def stage(self, folder: str, fd: int) -> StagedObject:
        """Copy the local file open as ``fd``, to its end, into a temporary object.

        ``folder`` is a key prefix ending in ``/``: the temporary object lies there, so
        that :meth:`Backend.uploads` of that prefix finds one a killed process left.
        """
        ...

    async def stage_ranges(
        self, folder: str, ranges: Sequence[tuple[int, int, int]]
    ) -> StagedObject:
        """Copy ranges ``(fd, offset, length)`` of local files back to back into a temporary object.

        As :meth:`stage`; a file that ends before its range is an error (``LocalIOError``).
        """
        ...

    async def copy_out(self, key: str, fd: int, offset: int, length: int) -> None:
        """Copy ``length`` bytes of ``key`` from ``offset`` into ``fd`` at the same offset."""
        ...

    async def copy_ranges(self, key: str, fd: int, ranges: Sequence[tuple[int, int, int]]) -> None:
        """Copy ranges ``(offset in key, offset in fd, length)`` of ``key`` into ``fd``."""
        ...


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

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
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

    async def upload(self, key: str) -> Upload:
        """Start a multipart upload of ``key``; one request."""
        ...

    def uploads(self, prefix: str) -> AsyncGenerator[Upload, None]:
        """Yield the unfinished uploads whose key starts with ``prefix``, to resume or abort.

        One request per page. A push resumes an upload of ``key`` by taking the one
        whose ``key`` is exactly its own.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and sessions."""
        ...

    def list(self, prefix: str) -> AsyncGenerator[ObjectInfo, None]:
        """Yield every object whose key starts with ``prefix``, in key order."""
        ...
