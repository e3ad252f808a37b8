"""``gs://`` repositories on Google Cloud Storage, through gcloud-aio-storage.

One aiohttp session per back-end (its connection limit the engine's concurrency)
serves every request and token refresh. Around the SDK's traps: reads are ranged
``download_stream`` requests yielded as the blocks arrive (``download`` holds a whole
object in memory); writes are single metadata + media requests carrying a CRC32C
(MD5 without a CRC32C package) that the store verifies (the SDK's "resumable" path
re-sends everything on each retry), their bodies sent from the caller's buffer
(:mod:`.gcs_media`: the SDK's own would copy it three times); each request has its own
timeout. Large objects are parallel composite uploads (``docs/gcs.md`` says why):
parts are temporary objects under ``etc-v1/tmp/<upload id>/`` that name their target
in their metadata, composed 32 at a time, in a tree, then deleted.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import importlib
import io
import json
import logging
import secrets
import ssl
import struct
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import aiohttp
import anyio
import anyio.to_thread
from gcloud.aio.storage import Storage
from gcloud.aio.storage.storage import init_api_root

from ..errors import (
    AccessDeniedError,
    BackendError,
    ConfigError,
    EtceteraError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
    ThrottledError,
    TransientError,
)
from ..urls import RepoURL
from .base import BackendOptions, Buffer, Capabilities, ObjectInfo, PartRef, Requests, direct
from .gcs_media import MediaBody

log = logging.getLogger(__name__)

_HASH_INLINE = 1024 * 1024  # hash bodies larger than this in a worker thread
_CRC_SLICE = 256 * 1024  # bytes of a body copied at once for its CRC32C
_MIN_UPLOAD_RATE = 128 * 1024  # bytes/s an upload may not fall below
_COMPOSE_MAX = 32  # sources per compose request (a hard GCS limit)
_MAX_PARTS = 10_000
_TMP = "etc-v1/tmp/"  # = etcetera.format.layout.UPLOADS, relative to the repository root
_MARKER = "0-upload"  # sorts before the parts, so a listing meets it first
_KEY_META = "etc-key"
_CONTENT_TYPE = "application/octet-stream"
_LIST_FIELDS = "items(name,size,updated,timeCreated,metadata),nextPageToken"
_PART_FIELDS = "items(name,size,crc32c,md5Hash,etag,generation),nextPageToken"
_PAGE_SIZE = 1000  # objects per listing request (the GCS maximum)
_UNIFORM_HINT = (
    "the bucket uses uniform bucket-level access, so objects cannot be made public one "
    "by one: unset public and grant read access on the bucket instead, e.g. "
    "gcloud storage buckets add-iam-policy-binding gs://{bucket} "
    "--member=allUsers --role=roles/storage.objectViewer"
)
_CREDENTIALS_HINT = (
    "set gcs_credentials_file or GOOGLE_APPLICATION_CREDENTIALS, run "
    "'gcloud auth application-default login', or set anonymous = true for public data"
)


def _crc32c_function() -> Callable[[bytes, int], int] | None:
    """Find the fastest CRC32C at hand, if a package provides one: ``f(data, crc)``."""
    with contextlib.suppress(ImportError, AttributeError):
        extend = importlib.import_module("google_crc32c").extend
        return lambda data, crc: int(extend(crc, data))
    with contextlib.suppress(ImportError, AttributeError):
        fn: Callable[[bytes, int], int] = importlib.import_module("crc32c").crc32c
        return fn
    return None


_crc32c = _crc32c_function()


def _checksum(data: Buffer) -> dict[str, str]:
    """Object metadata (as the API names it) that makes the store verify ``data`` on arrival."""
    if _crc32c is not None:
        # In slices, each copied to bytes (google_crc32c reads only read-only buffers): a
        # slice in the cache costs less than a copy of the whole body.
        view, crc = memoryview(data), 0
        for at in range(0, len(view), _CRC_SLICE):
            crc = _crc32c(bytes(view[at : at + _CRC_SLICE]), crc)
        return {"crc32c": base64.b64encode(struct.pack(">I", crc)).decode()}
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return {"md5Hash": base64.b64encode(digest).decode()}


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _detail(exc: aiohttp.ClientResponseError) -> str:
    """Google's own error message from a response, without the request's URL or headers."""
    text = str(exc.message).partition(": ")[2] or str(exc.message)
    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
        return str(json.loads(text)["error"]["message"])
    return text.strip()[:300]


def _read_credentials(path: str) -> io.StringIO:
    """Read and check the credentials file, so that a bad one fails with its name."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        info = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"gcs_credentials_file {path} cannot be read: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"gcs_credentials_file {path} is not a JSON file") from None
    if not isinstance(info, dict) or "type" not in info:
        raise ConfigError(f"gcs_credentials_file {path} is not a Google credentials file")
    return io.StringIO(text)


class _NoToken:
    """Stands in for the SDK's Token on unsigned requests (building one reads ADC files)."""

    async def get(self) -> None:
        return None


class GCSBackend:
    """A repository in a Google Cloud Storage bucket (``gs://bucket/prefix``)."""

    def __init__(self, url: RepoURL, options: BackendOptions) -> None:
        self._url = str(url)
        self._bucket = url.bucket
        self._root = f"{url.prefix}/" if url.prefix else ""
        self._options = options
        self._storage: Storage | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = anyio.Lock()
        connect = options.connect_timeout
        # gcloud-aio types its timeouts as int, but passes a ClientTimeout through.
        self._call_timeout: Any = aiohttp.ClientTimeout(total=options.timeout, sock_connect=connect)
        self._read_timeout: Any = aiohttp.ClientTimeout(
            sock_connect=connect, sock_read=options.timeout
        )

    @property
    def capabilities(self) -> Capabilities:
        """Parts are objects of any size; ranges are cheap; creates are conditional."""
        # Our buffer, sent from where it is (.gcs_media), and what the socket holds.
        return Capabilities(min_part_size=1, max_parts=_MAX_PARTS, conditional_create=True)

    def describe(self) -> str:
        """Return the repository URL."""
        return self._url

    def _upload_timeout(self, size: int) -> Any:
        total = self._options.timeout + size / _MIN_UPLOAD_RATE
        return aiohttp.ClientTimeout(total=total, sock_connect=self._options.connect_timeout)

    async def _client(self) -> Storage:
        """Return the SDK client, making it and its session on first use (in the loop)."""
        if self._storage is not None:
            return self._storage
        async with self._lock:
            if self._storage is None:
                self._storage = await self._connect()
            return self._storage

    def _signed(self, api_root: str, env_emulator: bool) -> bool:
        # Unsigned when anonymous, and for emulators (STORAGE_EMULATOR_HOST, or a plain
        # http endpoint_url): a token must never travel in clear text.
        if self._options.anonymous:
            return False
        return api_root.startswith("https://") if self._options.endpoint_url else not env_emulator

    async def _connect(self) -> Storage:
        opts = self._options
        env_emulator, root = init_api_root((opts.endpoint_url or "").rstrip("/") or None)
        signed = self._signed(root, env_emulator)
        service = None
        if signed and opts.gcs_credentials_file:
            service = await anyio.to_thread.run_sync(_read_credentials, opts.gcs_credentials_file)
        ssl_ctx = ssl.create_default_context(cafile=opts.ca_bundle) if opts.ca_bundle else True
        session: Any = aiohttp.ClientSession(  # Any: the SDK's stubs name requests.Session
            connector=aiohttp.TCPConnector(limit=opts.concurrency, ssl=ssl_ctx),
            timeout=self._call_timeout,
        )
        try:
            if not signed:
                no_token: Any = _NoToken()
                storage = Storage(token=no_token, session=session, api_root=root, api_is_dev=True)
            else:
                storage = await self._signed_storage(service, session, root)
        except BaseException:
            await session.close()
            raise
        self._session = session
        return storage

    async def _signed_storage(
        self, service: io.StringIO | None, session: Any, root: str
    ) -> Storage:
        try:
            storage = Storage(
                service_file=service, session=session, api_root=root, api_is_dev=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot load Google credentials: {exc}") from None
        try:
            # Fail fast where there are no credentials: the SDK's token retries take minutes.
            with anyio.fail_after(self._options.connect_timeout):
                await storage.token.get()
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise AccessDeniedError(
                f"no usable Google credentials for {self._url} ({reason}): {_CREDENTIALS_HINT}"
            ) from exc
        return storage

    def _name(self, key: str) -> str:
        return self._root + key

    def _translate(self, exc: Exception, what: str, *, bucket_level: bool) -> BackendError:
        """Turn an SDK or aiohttp error into an etcetera error: the only place that does."""
        where = f"gs://{self._bucket}/{self._root}{what}"
        if not isinstance(exc, aiohttp.ClientResponseError):
            return TransientError(f"{where}: {type(exc).__name__}: {exc}".rstrip(": "))
        status, detail = exc.status, _detail(exc)
        if status == 404 and (bucket_level or "bucket does not exist" in detail.lower()):
            return RepositoryNotFoundError(f"bucket {self._bucket} does not exist ({self._url})")
        if status == 404:
            return ObjectNotFoundError(f"{where} does not exist")
        if status == 400 and "uniform bucket-level access" in detail.lower():
            return AccessDeniedError(f"{where}: {_UNIFORM_HINT.format(bucket=self._bucket)}")
        if status in (401, 403):
            hint = " (sent unsigned: unset anonymous to sign)" if self._options.anonymous else ""
            return AccessDeniedError(f"access denied to {where}: {detail}{hint}")
        if status == 412:
            return PreconditionFailedError(f"{where} already exists")
        if status == 416:
            return BackendError(f"{where}: the requested range is beyond the end of the object")
        if status in (429, 503):
            return ThrottledError(f"{where}: HTTP {status}, slow down: {detail}")
        if status >= 500 or status == 408:
            return TransientError(f"{where}: HTTP {status}: {detail}")
        return BackendError(f"{where}: HTTP {status}: {detail}")

    @contextlib.contextmanager
    def _mapped(self, what: str, *, bucket_level: bool = False) -> Iterator[None]:
        try:
            yield
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise self._translate(exc, what, bucket_level=bucket_level) from exc

    async def check(self) -> None:
        """Fail if the bucket does not exist; etcetera does not create buckets.

        Readers granted only object access may not read bucket metadata: a 401/403
        here passes, and the first object request reports it precisely.
        """
        storage = await self._client()
        try:
            with self._mapped("", bucket_level=True):
                await storage.get_bucket_metadata(self._bucket, timeout=self._call_timeout)
        except AccessDeniedError:
            return

    async def stream(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """One ranged GET, yielded in the blocks the connection received."""
        if length == 0:
            if await self.head(key) is None:
                raise ObjectNotFoundError(f"gs://{self._bucket}/{self._name(key)} does not exist")
            return
        storage = await self._client()
        headers = {}
        if offset or length is not None:
            end = "" if length is None else offset + length - 1
            headers["Range"] = f"bytes={offset}-{end}"
        with self._mapped(key):
            try:
                response = await storage.download_stream(
                    self._bucket, self._name(key), headers=headers, timeout=self._read_timeout
                )
            except aiohttp.ClientResponseError as exc:
                if exc.status == 416 and length is None:
                    return  # offset at or past the end: nothing to read, as from a file
                raise
            # Leaving the block releases the connection, or drops it if the body is unread.
            async with response as body:
                # A server that ignores Range answers 200 with the whole object.
                skip = offset if headers and body.status == 200 else 0
                remaining = length
                # Blocks as aiohttp received them (read(n) would join them into n bytes, a
                # copy of every byte; the engine hashes and writes them where they are);
                # sliced only to skip or to stop at the range's end.
                while remaining != 0:
                    block, boundary = await body.content.readchunk()
                    if not block and boundary:  # the end of an HTTP chunk, not of the body
                        continue
                    if not block:
                        break
                    if skip:
                        block, skip = block[skip:], max(0, skip - len(block))
                    if remaining is not None and len(block) > remaining:
                        block = block[:remaining]
                    if remaining is not None:
                        remaining -= len(block)
                    if block:
                        yield block

    async def _upload(
        self, name: str, data: Buffer, params: dict[str, str], what: str, key: str | None = None
    ) -> dict[str, Any]:
        """One multipart upload of ``data`` with a checksum (and the target key of a part).

        The request is the SDK's ``upload`` (metadata + media), but its body is sent from
        ``data`` itself (:mod:`.gcs_media`) through the SDK's session, which raises for
        an error status with Google's message.
        """
        metadata: dict[str, Any] = dict(
            await anyio.to_thread.run_sync(_checksum, data)
            if len(data) > _HASH_INLINE
            else _checksum(data)
        )
        if key is not None:
            metadata["metadata"] = {_KEY_META: key}
        storage = await self._client()
        body = MediaBody(name, metadata, data, _CONTENT_TYPE)
        # The SDK's own URL and token (its private helpers: upload() would copy the body).
        headers = {**await storage._headers(), **body.headers(), "Accept": "application/json"}
        with self._mapped(what):
            resp = await storage.session.post(
                f"{storage._api_root_write}/{self._bucket}/o",
                headers=headers,
                data=cast(Any, body.chunks()),  # aiohttp takes an async iterable; the stubs do not
                params={**params, "uploadType": "multipart"},
                timeout=self._upload_timeout(len(data)),
            )
            async with resp:
                reply: dict[str, Any] = await resp.json(content_type=None)
        return reply

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
        """Write an object; create-only through ``ifGenerationMatch=0``."""
        params = {"ifGenerationMatch": "0"} if if_absent else {}
        if self._options.public:
            params["predefinedAcl"] = "publicRead"
        await self._upload(self._name(key), data, params, key)

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and update time of an object, or ``None``."""
        storage = await self._client()
        try:
            with self._mapped(key):
                meta = await storage.download_metadata(
                    self._bucket, self._name(key), timeout=self._call_timeout
                )
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, int(meta["size"]), _time(meta.get("updated")))

    async def _list(
        self, prefix: str, fields: str = _LIST_FIELDS
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Raw listing of every object whose key starts with ``prefix``, page by page."""
        storage = await self._client()
        params = {"prefix": self._name(prefix), "fields": fields}
        params["maxResults"] = str(_PAGE_SIZE)
        while True:
            with self._mapped(prefix, bucket_level=True):
                page = await storage.list_objects(
                    self._bucket, params=params, timeout=self._call_timeout
                )
            for item in page.get("items", []):
                yield item
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    async def list(self, prefix: str) -> AsyncGenerator[ObjectInfo, None]:
        """Objects under ``prefix`` in key order, without the temporary parts of uploads."""
        async with contextlib.aclosing(self._list(prefix)) as items:
            async for item in items:
                key = item["name"][len(self._root) :]
                if not key.startswith(_TMP) or prefix.startswith(_TMP):
                    yield ObjectInfo(key, int(item["size"]), _time(item.get("updated")))

    async def _delete_name(self, name: str) -> None:
        storage = await self._client()
        with contextlib.suppress(ObjectNotFoundError), self._mapped(name[len(self._root) :]):
            await storage.delete(self._bucket, name, timeout=self._call_timeout)

    async def delete(self, key: str) -> None:
        """Delete an object; a missing one is fine."""
        await self._delete_name(self._name(key))

    async def _each(
        self, fn: Callable[[str], Coroutine[Any, Any, None]], items: Iterable[str]
    ) -> None:
        """Run ``fn`` on every item concurrently (the connector bounds the requests).

        A failure does not cancel the others: a cancelled compose may still complete
        on the server after its client gave up, so the cleanup that follows a failure
        must wait until every request has been answered. One error is raised, alone
        (callers and the engine's retries expect one error, not a group): an
        unexpected one before etcetera's own.
        """
        errors: builtins.list[Exception] = []

        async def one(item: str) -> None:
            try:
                await fn(item)
            except Exception as exc:  # collected; one is raised below
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(one, item)
        if errors:
            errors.sort(key=lambda exc: isinstance(exc, EtceteraError))  # a bug's error first
            raise errors[0]

    def _tmp(self, upload_id: str) -> str:
        if not (upload_id.isascii() and upload_id.isalnum()):
            raise BackendError(f"invalid upload id {upload_id!r}")
        return f"{_TMP}{upload_id}/"

    async def _compose(
        self, name: str, sources: builtins.list[str], params: dict[str, str], what: str
    ) -> None:
        storage = await self._client()
        with self._mapped(what):
            await storage.compose(
                self._bucket,
                name,
                sources,
                content_type=_CONTENT_TYPE,
                params=params,
                timeout=self._call_timeout,
            )

    async def upload(self, key: str) -> GCSUpload:
        """Write the upload's marker object, which names the target key."""
        upload = GCSUpload(self, key, secrets.token_hex(12))
        await self._upload(self._name(upload.tmp + _MARKER), b"", {}, key, key)
        return upload

    async def uploads(self, prefix: str) -> AsyncGenerator[GCSUpload, None]:
        """Unfinished uploads whose target key starts with ``prefix``, from their objects."""
        seen: set[str] = set()
        async with contextlib.aclosing(self._list(_TMP)) as items:
            async for item in items:
                upload_id = item["name"][len(self._root) + len(_TMP) :].split("/", 1)[0]
                target = (item.get("metadata") or {}).get(_KEY_META)
                if upload_id in seen or not isinstance(target, str):
                    continue
                seen.add(upload_id)
                # Other names under the prefix are not etcetera's uploads.
                if target.startswith(prefix) and upload_id.isascii() and upload_id.isalnum():
                    yield GCSUpload(self, target, upload_id, _time(item.get("timeCreated")))

    async def aclose(self) -> None:
        """Close the shared session."""
        session, self._session, self._storage = self._session, None, None
        if session is not None:
            await session.close()


def _part_ref(number: int, obj: dict[str, Any]) -> PartRef:
    """A part's ref from its object resource (an upload's answer or a listing's item).

    Its checksums are the object's MD5 and CRC32C (base64 in the resource), as the
    store computed them.
    """
    etag = str(obj.get("crc32c") or obj.get("md5Hash") or obj.get("etag") or "")
    size = int(obj["size"]) if "size" in obj else None
    checksums: dict[str, str] = {}
    for attr, name, length in (("md5Hash", "md5", 16), ("crc32c", "crc32c", 4)):
        value = obj.get(attr)
        with contextlib.suppress(ValueError, TypeError):
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
            if len(raw) == length:
                checksums[name] = raw.hex()
    generation = {"generation": str(obj.get("generation", ""))}
    return PartRef(number, etag, generation, size, checksums)


class GCSUpload:
    """A parallel composite upload: parts are temporary objects under ``etc-v1/tmp/<id>/``.

    Putting or listing parts is one request (a page); completing composes the parts
    32 at a time in rounds (each round's composes concurrently), then deletes the
    temporaries; aborting lists them and deletes them. Every one of those requests
    goes through ``run``.
    """

    def __init__(
        self, backend: GCSBackend, key: str, upload_id: str, initiated: datetime | None = None
    ) -> None:
        self._backend = backend
        self.tmp = backend._tmp(upload_id)
        self.key = key
        self.upload_id = upload_id
        self.initiated = initiated

    def _part_name(self, number: int) -> str:
        return f"{self._backend._name(self.tmp)}p{number:05d}"

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """Upload part ``number`` as a temporary object, verified by its checksum.

        GCS checks CRC32C, not CRC32, so ``crc32`` is of no use here.
        """
        if not 1 <= number <= _MAX_PARTS:
            raise BackendError(f"part number {number} of {self.key} is outside 1..{_MAX_PARTS}")
        what = f"{self.key} (part {number})"
        obj = await self._backend._upload(self._part_name(number), data, {}, what, self.key)
        return _part_ref(number, {**obj, "size": len(data)})

    async def parts(self) -> AsyncGenerator[PartRef, None]:
        """The part objects, in number order (their names sort by number)."""
        items = self._backend._list(self.tmp + "p", _PART_FIELDS)
        async with contextlib.aclosing(items):
            async for item in items:
                yield _part_ref(int(item["name"].rsplit("/", 1)[-1][1:]), item)

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        """Compose the parts into the key, 32 at a time in a tree, then delete the temporaries.

        Requests: one HEAD of the marker, one compose per 32 sources at each level of
        the tree (10,000 parts: 313 + 10 + 1), then those of :meth:`abort` (a listing
        and a delete per temporary object). When a compose fails for good, the
        intermediate composites are deleted but the parts are kept, for a retry, a
        resumed push or ``abort``. A cancelled completion leaves both: they are the
        upload's temporaries, which a later completion rewrites and ``abort`` removes.
        """
        b = self._backend
        if not parts:
            raise BackendError(f"multipart upload {self.upload_id} of {self.key} has no parts")
        marker = self.tmp + _MARKER
        if await run(f"{self.key} (upload {self.upload_id})", lambda: b.head(marker)) is None:
            raise ObjectNotFoundError(
                f"multipart upload {self.upload_id} of {self.key} does not exist"
            )
        base = b._name(self.tmp)
        sources = [self._part_name(n) for n in sorted({p.number for p in parts})]
        groups: dict[str, builtins.list[str]] = {}

        async def compose_group(name: str) -> None:
            await run(f"{self.key} (compose)", lambda: b._compose(name, groups[name], {}, self.key))

        async def delete(name: str) -> None:
            await run(f"{self.key} (temporary)", lambda: b._delete_name(name))

        try:
            level = 0
            while len(sources) > _COMPOSE_MAX:
                level += 1
                starts = range(0, len(sources), _COMPOSE_MAX)
                names = [f"{base}c{level}-{i // _COMPOSE_MAX:05d}" for i in starts]
                groups.update(
                    (n, sources[i : i + _COMPOSE_MAX]) for n, i in zip(names, starts, strict=True)
                )
                await b._each(compose_group, names)
                sources = names
            final = {"destinationPredefinedAcl": "publicRead"} if b._options.public else {}
            await run(self.key, lambda: b._compose(b._name(self.key), sources, final, self.key))
        except EtceteraError:
            with contextlib.suppress(EtceteraError):
                await b._each(delete, groups)
            raise
        try:
            await self.abort(run)
        except EtceteraError as exc:  # the object is complete; uploads() shows leftovers
            log.warning(
                "temporary parts of %s (upload %s) remain: %s", self.key, self.upload_id, exc
            )

    async def abort(self, run: Requests = direct) -> None:
        """Delete the upload's parts and composites, then its marker; a missing upload is fine.

        Requests: a listing (one per 1,000 objects), then one delete per object.
        """
        b = self._backend

        async def listing() -> builtins.list[str]:
            return [item["name"] async for item in b._list(self.tmp)]

        async def delete(name: str) -> None:
            await run(f"{self.key} (temporary)", lambda: b._delete_name(name))

        names = await run(f"{self.key} (upload {self.upload_id})", listing)
        marker = b._name(self.tmp + _MARKER)
        # The marker goes last, so that an abort cut short still leaves a whole upload.
        await b._each(delete, [n for n in names if n != marker])
        if marker in names:
            await delete(marker)
