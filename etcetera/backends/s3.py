"""``s3://`` repositories: a bucket and key prefix in S3 or an S3-compatible store.

One aiobotocore session and client per back-end, created on first use, with botocore's
own retries off (the engine retries). Writes carry a CRC32 computed here so the store
verifies what it received; create-only writes send ``If-None-Match: *``. Every botocore
and aiohttp error is translated once, by :func:`_translate`, into :mod:`etcetera.errors`.
"""

from __future__ import annotations

import base64
import contextlib
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.to_thread
import botocore.exceptions as bx
import botocore.handlers
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import UNSIGNED, xform_name

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
from . import redact
from .base import BackendOptions, Buffer, Capabilities, ObjectInfo, PartRef, Requests, direct
from .s3_data import data_loader

_CHUNK = 1024 * 1024
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_REFUSED = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403", "Forbidden"})
_THROTTLED = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_TRANSIENT = frozenset({"InternalError", "ServiceUnavailable", "RequestTimeout"})
_NETWORK = (
    bx.EndpointConnectionError,
    bx.ConnectionClosedError,
    bx.ConnectTimeoutError,
    bx.ReadTimeoutError,
    bx.ResponseStreamingError,
    bx.IncompleteReadError,
    bx.HTTPClientError,
    aiohttp.ClientError,
    OSError,  # includes asyncio.TimeoutError
)
_CAUGHT = (bx.BotoCoreError, bx.ClientError, aiohttp.ClientError, OSError)


def _session(profile: str | None) -> AioSession:
    # botocore's JSON models take tens of ms to load and never change: every back-end's
    # session shares one loader and its caches (see s3_data).
    session = AioSession(profile=profile)
    session.register_component("data_loader", data_loader(session))
    return session


_CORRUPTED = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch"}
)


def _unimplemented(exc: BaseException | None) -> bool:
    """Whether the store answered that it lacks the operation (501 NotImplemented)."""
    if not isinstance(exc, bx.ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return bool(exc.response.get("Error", {}).get("Code") == "NotImplemented" or status == 501)


def credentials_used(options: BackendOptions) -> str:
    """Which credentials requests are signed with, for error messages (no secret in it)."""
    if options.anonymous:
        return "no credentials (anonymous = true)"
    if options.aws_access_key_id is not None:
        shown = options.aws_access_key_id[-4:]
        return f"access key ...{shown} (aws_access_key_id)"
    if options.aws_profile:
        return f"profile {options.aws_profile} (aws_profile)"
    return "the AWS SDK's default credentials (AWS_* variables, ~/.aws, instance role)"


def _translate(
    exc: BaseException,
    what: str,
    bucket: str,
    key: str | None,
    credentials: str = "the AWS SDK's default credentials",
) -> EtceteraError:
    """Map one botocore, aiohttp or socket error to the etcetera error a caller expects.

    Args:
        exc: the third-party error.
        what: the operation, e.g. ``GetObject``.
        bucket: the bucket.
        key: the full object key (prefix included), or ``None`` for bucket operations.
        credentials: which credentials were used (:func:`credentials_used`).
    """
    where = f"s3://{bucket}" if key is None else f"s3://{bucket}/{key}"
    on = f"{what} {where}"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        detail = f"{code or status}: {err.get('Message', '')}".rstrip(": ")
        if code == "NoSuchBucket" or (status == 404 and key is None):
            return RepositoryNotFoundError(f"bucket {bucket} does not exist ({on})")
        if code == "NoSuchUpload":
            return ObjectNotFoundError(f"multipart upload does not exist ({on})")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return ObjectNotFoundError(f"object {where} does not exist")
        if code == "AccessControlListNotSupported":
            return AccessDeniedError(
                f"bucket {bucket} does not allow ACLs (object ownership is enforced), so "
                f"public=true cannot make objects public ({on}): grant public read with a "
                "bucket policy instead and turn public off"
            )
        if code in _REFUSED:
            return AccessDeniedError(
                f"credentials were refused by the server ({on}, {code}): {credentials} "
                "was used; check aws_access_key_id, aws_secret_access_key, aws_session_token "
                "or aws_profile"
            )
        if code in _DENIED or status == 403:
            if credentials.startswith("no credentials"):
                return AccessDeniedError(
                    f"access denied ({on}, {detail}): the object is not public for "
                    "anonymous access (anonymous = true sends no credentials)"
                )
            return AccessDeniedError(
                f"access denied ({on}, {detail}): {credentials} lacks permission or is not valid"
            )
        # 409 ConditionalRequestConflict: another conditional write of the key was in
        # flight; S3 took the other one, so this one lost the race, as with a 412.
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
            return PreconditionFailedError(f"object {where} already exists ({on})")
        if _unimplemented(exc):
            # Not retried: the store lacks the operation (s3rver: ListMultipartUploads).
            return BackendError(f"{on}: the store does not implement this ({detail})")
        if code in _THROTTLED or status in (429, 503):
            return ThrottledError(f"the server asked to slow down ({on}, {detail})")
        if code in _TRANSIENT or status >= 500:
            return TransientError(f"server error ({on}, {detail})")
        if code in _CORRUPTED:
            # The body was damaged on its way up; sending it again may well succeed.
            return TransientError(f"the server received damaged bytes ({on}, {detail})")
        return BackendError(f"{on} failed ({detail})")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AccessDeniedError(
            f"no usable AWS credentials for {on}: set aws_access_key_id and "
            "aws_secret_access_key or aws_profile, or anonymous=true for public data"
        )
    if isinstance(exc, bx.ProfileNotFound):
        return ConfigError(f"aws_profile: {exc}")
    if isinstance(exc, _NETWORK):
        return TransientError(f"connection failed ({on}): {type(exc).__name__}: {exc}")
    return BackendError(f"{on} failed: {type(exc).__name__}: {exc}")


class StreamedBody:
    """A request body that aiohttp sends in 1 MiB views of the caller's buffer.

    Handed bytes, aiohttp on Python 3.11 joins the headers to the body and asyncio copies
    what the socket did not take at once: two to three copies of every part, 1.1 s of
    client CPU per GiB more than this (measured here, 16 MiB parts to moto: 1.62 against
    0.45 s/GiB). An async iterable is streamed view by view instead. botocore takes it as
    a file-like body (it has ``read``, ``seek``, ``tell`` and a length), so it also
    survives botocore's own rewinds.
    """

    STEP = 1 << 20

    def __init__(self, data: Buffer) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view)

    def __aiter__(self) -> AsyncIterator[memoryview]:
        return self._views()

    async def _views(self) -> AsyncIterator[memoryview]:
        for start in range(0, len(self._view), self.STEP):
            yield self._view[start : start + self.STEP]

    def read(self, n: int = -1) -> bytes:
        """File-like read (botocore's fallbacks); aiohttp iterates instead."""
        end = len(self._view) if n < 0 else min(len(self._view), self._pos + n)
        out = bytes(self._view[self._pos : end])
        self._pos = end
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        """File-like seek."""
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        """File-like tell."""
        return self._pos


def _body(data: Buffer) -> Buffer | StreamedBody:
    """Bodies over 1 MiB are streamed from the caller's buffer (see :class:`StreamedBody`)."""
    return StreamedBody(data) if len(data) > StreamedBody.STEP else data


def _crc_header(crc: int) -> str:
    """A CRC32 as S3's ``x-amz-checksum-crc32``: base64 of its 4 big-endian bytes."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def _crc32(data: Buffer) -> str:
    """The ``x-amz-checksum-crc32`` of ``data``."""
    return _crc_header(zlib.crc32(data))


async def _checksum(data: Buffer) -> str:
    # Large bodies are hashed in a thread (zlib releases the GIL) to keep the loop free.
    if len(data) > _CHUNK:
        return await anyio.to_thread.run_sync(_crc32, data)
    return _crc32(data)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


class S3Backend:
    """A repository in an S3 bucket (``s3://bucket/prefix``)."""

    #: Keys asked for per ListObjectsV2 / ListMultipartUploads page (S3's maximum).
    _page_size = 1000

    def __init__(self, url: RepoURL, options: BackendOptions) -> None:
        self._url = url
        self._bucket = url.bucket
        self._prefix = f"{url.prefix}/" if url.prefix else ""
        self._options = options
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._lock = anyio.Lock()
        host = urlsplit(options.endpoint_url).hostname if options.endpoint_url else None
        self._capabilities = Capabilities(
            min_part_size=5 * 1024 * 1024,
            max_parts=10_000,
            conditional_create=True,
            probe_create_only=True,
            # moto reads the whole object for each ranged GET
            cheap_ranges=host not in _LOCAL_HOSTS,
        )
        extra: dict[str, str] = {}
        if options.public:
            extra["ACL"] = "public-read"
        if options.sse or options.sse_kms_key_id:
            extra["ServerSideEncryption"] = options.sse or "aws:kms"
        if options.sse_kms_key_id:
            extra["SSEKMSKeyId"] = options.sse_kms_key_id
        self._write_args = extra
        # A part's ETag is the MD5 of its bytes, except under SSE-KMS.
        self._etags_are_md5 = extra.get("ServerSideEncryption", "AES256") == "AES256"

    @property
    def capabilities(self) -> Capabilities:
        """S3's part limits; ranges are cheap except on a local emulator."""
        return self._capabilities

    def describe(self) -> str:
        """Return the repository URL."""
        return str(self._url)

    @contextlib.contextmanager
    def _mapped(self, what: str, key: str | None) -> Iterator[None]:
        try:
            yield
        except EtceteraError:
            raise
        except _CAUGHT as exc:
            full = None if key is None else self._prefix + key
            who = credentials_used(self._options)
            raise _translate(exc, what, self._bucket, full, who) from exc

    def _config(self) -> AioConfig:
        opts = self._options
        kwargs: dict[str, Any] = {
            "max_pool_connections": opts.concurrency,
            "connect_timeout": opts.connect_timeout,
            "read_timeout": opts.timeout,
            "retries": {"total_max_attempts": 1},
            "request_checksum_calculation": opts.checksums,
            "response_checksum_validation": "when_required",
            "user_agent_extra": "etcetera",
        }
        # botocore would SHA-256 every body on the event loop to sign it (always over
        # plain http): 2.7 ms per MiB here, blocking every other request. Bodies carry
        # our CRC32 header instead, and every byte is verified by its SHA-256 on pull.
        s3: dict[str, Any] = {"payload_signing_enabled": False}
        if opts.endpoint_url:
            s3["addressing_style"] = "path"
        kwargs["s3"] = s3
        if opts.anonymous:
            kwargs["signature_version"] = UNSIGNED
        return AioConfig(**kwargs)

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                opts = self._options
                keys = opts.aws_access_key_id is not None and not opts.anonymous
                # Plain http (a local S3-compatible store) verifies nothing: building the
                # TLS context (loading the CA bundle) would only cost the start of a command.
                plain = (opts.endpoint_url or "").startswith("http://")
                creator = _session(None if keys else opts.aws_profile).create_client(
                    "s3",
                    region_name=opts.region or "us-east-1",
                    endpoint_url=opts.endpoint_url,
                    verify=False if plain else opts.ca_bundle,
                    aws_access_key_id=opts.aws_access_key_id if keys else None,
                    aws_secret_access_key=opts.aws_secret_access_key if keys else None,
                    aws_session_token=opts.aws_session_token if keys else None,
                    config=self._config(),
                )
                client = await self._stack.enter_async_context(creator)
                # botocore's DEBUG records carry the session token (a signed header).
                redact.guard(opts.aws_secret_access_key, opts.aws_session_token)
                # botocore wraps a bytes Body in BytesIO, and aiohttp's getbuffer() on it
                # unshares it: a second copy of every part in memory. Bodies are sent as
                # the bytes they are (our CRC32 header stands in for botocore's checksum).
                for op in ("PutObject", "UploadPart"):
                    client.meta.events.unregister(
                        f"before-parameter-build.s3.{op}",
                        botocore.handlers.convert_body_to_file_like_object,
                    )
                self._client = client
            return self._client

    async def _call(self, what: str, key: str | None, **params: Any) -> Any:
        """Run one client operation (``what`` in CamelCase) with its errors translated."""
        with self._mapped(what, key):
            client = await self._get_client()
            return await getattr(client, xform_name(what))(Bucket=self._bucket, **params)

    async def check(self) -> None:
        """HeadBucket: the bucket must exist and the credentials must reach it."""
        await self._call("HeadBucket", None)

    async def stream(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """GetObject (with a Range unless the whole object), yielded as the body arrives.

        Blocks of at most 1 MiB, as the SDK hands them over (never joined: the engine
        hashes and writes them where they are).
        """
        if length == 0:
            return
        params: dict[str, Any] = {"Key": self._prefix + key}
        # A range on an empty object is refused (416), so whole reads send none.
        if offset or length is not None:
            end = "" if length is None else offset + length - 1
            params["Range"] = f"bytes={offset}-{end}"
        resp = await self._call("GetObject", key, **params)
        body = resp["Body"]
        expected = int(resp.get("ContentLength", 0))
        # The blocks aiohttp received, as it holds them: the SDK's read(n) joins them
        # into n bytes, a copy of every byte (0.8 s of CPU per GiB here).
        content = getattr(getattr(body, "_raw_stream", None), "content", None)
        got = 0
        try:
            if length is not None and expected < length:
                where = f"s3://{self._bucket}/{self._prefix}{key}"
                raise BackendError(f"object {where} ended before the requested range")
            while True:
                with self._mapped("GetObject", key):
                    if content is None:
                        block: bytes = await body.read(_CHUNK)
                    else:
                        block, boundary = await content.readchunk()
                        if not block and boundary:  # the end of an HTTP chunk, not of the body
                            continue
                        if not block and got < expected:
                            raise bx.IncompleteReadError(actual_bytes=got, expected_bytes=expected)
                if not block:
                    break
                got += len(block)
                yield block
        finally:
            body.close()

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
        """PutObject with a CRC32 the store verifies; ``If-None-Match: *`` when create-only."""
        params: dict[str, Any] = {
            "Key": self._prefix + key,
            "Body": _body(data),
            "ChecksumAlgorithm": "CRC32",
            "ChecksumCRC32": await _checksum(data),
            **self._write_args,
        }
        if if_absent:
            params["IfNoneMatch"] = "*"
        await self._call("PutObject", key, **params)

    async def head(self, key: str) -> ObjectInfo | None:
        """HeadObject, or ``None`` when the object does not exist."""
        try:
            resp = await self._call("HeadObject", key, Key=self._prefix + key)
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, int(resp["ContentLength"]), resp.get("LastModified"))

    async def list(self, prefix: str) -> AsyncGenerator[ObjectInfo, None]:
        """ListObjectsV2 under ``prefix``, page after page, in key order."""
        params: dict[str, Any] = {"Prefix": self._prefix + prefix, "MaxKeys": self._page_size}
        cut = len(self._prefix)
        while True:
            page = await self._call("ListObjectsV2", prefix, **params)
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][cut:], int(item["Size"]), item.get("LastModified"))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token

    async def delete(self, key: str) -> None:
        """DeleteObject; a missing object is not an error."""
        with contextlib.suppress(ObjectNotFoundError):
            await self._call("DeleteObject", key, Key=self._prefix + key)

    async def upload(self, key: str) -> S3Upload:
        """CreateMultipartUpload with CRC32 part checksums."""
        resp = await self._call(
            "CreateMultipartUpload",
            key,
            Key=self._prefix + key,
            ChecksumAlgorithm="CRC32",
            **self._write_args,
        )
        return S3Upload(self, key, str(resp["UploadId"]))

    async def uploads(self, prefix: str) -> AsyncGenerator[S3Upload, None]:
        """ListMultipartUploads under ``prefix``, page after page.

        A store that does not implement it (s3rver) lists none: nothing can be resumed
        or aborted there, and pushes and ``gc`` go on without.
        """
        params: dict[str, Any] = {"Prefix": self._prefix + prefix, "MaxUploads": self._page_size}
        cut = len(self._prefix)
        while True:
            try:
                page = await self._call("ListMultipartUploads", prefix, **params)
            except BackendError as exc:
                if _unimplemented(exc.__cause__):
                    return
                raise
            for item in page.get("Uploads", []):
                key, upload_id = item["Key"][cut:], str(item["UploadId"])
                yield S3Upload(self, key, upload_id, item.get("Initiated"))
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    async def aclose(self) -> None:
        """Close the client and its connection pool; a later call opens a new one."""
        async with self._lock:
            self._client = None
            stack, self._stack = self._stack, contextlib.AsyncExitStack()
            await stack.aclose()


class S3Upload:
    """An S3 multipart upload: each method is one request (ListParts: one per page)."""

    def __init__(
        self, backend: S3Backend, key: str, upload_id: str, initiated: datetime | None = None
    ) -> None:
        self._backend = backend
        self.key = key
        self.upload_id = upload_id
        self.initiated = initiated

    def _params(self) -> dict[str, Any]:
        return {"Key": self._backend._prefix + self.key, "UploadId": self.upload_id}

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        """UploadPart with its CRC32; the ref carries it on to CompleteMultipartUpload."""
        crc = _crc_header(crc32) if crc32 is not None else await _checksum(data)
        resp = await self._backend._call(
            "UploadPart",
            self.key,
            **self._params(),
            PartNumber=number,
            Body=_body(data),
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=crc,
        )
        return PartRef(number, str(resp["ETag"]), {"ChecksumCRC32": crc}, len(data))

    async def parts(self) -> AsyncGenerator[PartRef, None]:
        """ListParts, page after page; each part's CRC32 where the store reports it.

        A part's checksums: its CRC32 where listed (S3 lists it, moto does not), and
        the MD5 its ETag is, unless the bucket's objects are written with SSE-KMS.
        """
        params: dict[str, Any] = {**self._params(), "MaxParts": self._backend._page_size}
        while True:
            page = await self._backend._call("ListParts", self.key, **params)
            for item in page.get("Parts", []):
                crc = item.get("ChecksumCRC32")
                extra = {"ChecksumCRC32": str(crc)} if crc else {}
                etag = str(item["ETag"])
                yield PartRef(
                    int(item["PartNumber"]),
                    etag,
                    extra,
                    int(item["Size"]),
                    self._checksums(etag, crc),
                )
            if not page.get("IsTruncated"):
                return
            params["PartNumberMarker"] = page["NextPartNumberMarker"]

    def _checksums(self, etag: str, crc: object) -> dict[str, str]:
        out: dict[str, str] = {}
        if isinstance(crc, str):
            with contextlib.suppress(ValueError):
                raw = base64.b64decode(crc, validate=True)
                if len(raw) == 4:
                    out["crc32"] = raw.hex()
        md5 = etag.strip('"').lower()
        if self._backend._etags_are_md5 and len(md5) == 32 and _is_hex(md5):
            out["md5"] = md5
        return out

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        """CompleteMultipartUpload with the parts in number order."""
        listed = [
            {"PartNumber": p.number, "ETag": p.etag, **p.extra}
            for p in sorted(parts, key=lambda p: p.number)
        ]
        await run(
            self.key,
            lambda: self._backend._call(
                "CompleteMultipartUpload",
                self.key,
                **self._params(),
                MultipartUpload={"Parts": listed},
            ),
        )

    async def abort(self, run: Requests = direct) -> None:
        """AbortMultipartUpload; a missing upload is not an error."""
        with contextlib.suppress(ObjectNotFoundError):
            await run(
                self.key,
                lambda: self._backend._call("AbortMultipartUpload", self.key, **self._params()),
            )
