"""What only the S3 back-end does: credentials, ACLs, checksums, errors, moto's answers."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any, cast

import aiohttp
import anyio
import botocore.exceptions as bx
import pytest
from botocore import UNSIGNED

from etcetera.backends.base import Backend, BackendOptions, PartRef
from etcetera.backends.s3 import S3Backend, _translate
from etcetera.errors import (
    AccessDeniedError,
    BackendError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
    ThrottledError,
    TransientError,
)
from etcetera.urls import parse_url
from tests.fixtures_s3 import MotoServer, free_port, new_bucket_name
from tests.support import RepoSpec

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@asynccontextmanager
async def opened(spec: RepoSpec, **extra: Any) -> AsyncIterator[S3Backend]:
    backend = spec.backend(**extra)
    assert isinstance(backend, S3Backend)
    try:
        yield backend
    finally:
        await backend.aclose()


async def read(backend: S3Backend, key: str, offset: int = 0, length: int | None = None) -> bytes:
    async with aclosing(backend.stream(key, offset, length)) as blocks:
        return b"".join([block async for block in blocks])


def public_read(client: Any, bucket: str, key: str) -> bool:
    grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)


# --- moto's answers, pinned --------------------------------------------------------------


def test_moto_answers_412_to_a_second_create_only_put(moto_s3_client: Any, s3_bucket: str) -> None:
    moto_s3_client.put_object(Bucket=s3_bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(bx.ClientError) as info:
        moto_s3_client.put_object(Bucket=s3_bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert isinstance(_translate(info.value, "PutObject", s3_bucket, "k"), PreconditionFailedError)


async def test_create_only_put_through_the_backend(s3_repo: RepoSpec) -> None:
    async with opened(s3_repo) as backend:
        await backend.put("v/1", b"first", if_absent=True)
        with pytest.raises(PreconditionFailedError, match="v/1"):
            await backend.put("v/1", b"second", if_absent=True)
        assert await read(backend, "v/1") == b"first"


# --- credentials and public access ---------------------------------------------------------


async def test_the_enforcing_server_accepts_the_right_keys(s3_iam_repo: RepoSpec) -> None:
    async with opened(s3_iam_repo) as backend:
        await backend.check()
        await backend.put("k", b"signed")
        assert await read(backend, "k") == b"signed"


@pytest.mark.parametrize("wrong_id", [True, False], ids=["unknown-key-id", "wrong-secret"])
async def test_wrong_credentials_are_refused_clearly(
    s3_iam_repo: RepoSpec, moto_iam_server: MotoServer, wrong_id: bool
) -> None:
    secret = "not-the-secret-0123456789"
    key_id = "AKIAWRONGWRONGWRONG1" if wrong_id else moto_iam_server.access_key_id
    async with opened(
        s3_iam_repo, aws_access_key_id=key_id, aws_secret_access_key=secret
    ) as backend:
        errors = []
        with pytest.raises(AccessDeniedError) as info:
            await backend.check()
        errors.append(info.value)
        with pytest.raises(AccessDeniedError) as info:
            await backend.put("k", b"x")
        errors.append(info.value)
    assert "credentials were refused by the server" in str(errors[1])
    assert "PutObject" in str(errors[1])
    assert "/k" in str(errors[1])
    for err in errors:
        assert parse_url(s3_iam_repo.url).bucket in str(err)
        assert secret not in str(err)
        assert moto_iam_server.secret_access_key not in str(err)


async def test_anonymous_reads_public_objects_only(
    s3_repo: RepoSpec, moto_s3_client: Any, s3_bucket: str
) -> None:
    # The non-enforcing moto still refuses unsigned reads of private objects (the
    # enforcing one answers 500 to any unsigned request).
    async with opened(s3_repo, public=True) as writer:
        await writer.put("pub", b"for everyone")
    async with opened(s3_repo) as writer:
        await writer.put("priv", b"secret")
    assert public_read(moto_s3_client, s3_bucket, "pub")
    assert not public_read(moto_s3_client, s3_bucket, "priv")
    async with opened(s3_repo, anonymous=True) as anon:
        assert await read(anon, "pub") == b"for everyone"
        with pytest.raises(AccessDeniedError, match="priv"):
            await read(anon, "priv")


async def test_public_multipart_upload_gets_the_acl(
    s3_repo: RepoSpec, moto_s3_client: Any, s3_bucket: str
) -> None:
    async with opened(s3_repo, public=True) as backend:
        upload = await backend.upload("big")
        await upload.complete([await upload.put_part(1, b"abc")])
    assert public_read(moto_s3_client, s3_bucket, "big")


def test_refused_acl_says_to_use_a_bucket_policy() -> None:
    exc = bx.ClientError(
        {
            "Error": {"Code": "AccessControlListNotSupported", "Message": "no ACLs"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutObject",
    )
    err = _translate(exc, "PutObject", "bkt", "ds/k")
    assert isinstance(err, AccessDeniedError)
    assert "bucket policy" in str(err)
    assert "s3://bkt/ds/k" in str(err)


# --- what the back-end sends ------------------------------------------------------------


async def test_put_sends_a_crc32_the_store_keeps(
    s3_repo: RepoSpec, moto_s3_client: Any, s3_bucket: str
) -> None:
    # moto stores the checksum it is sent without verifying it; real S3 verifies it
    calls: list[dict[str, Any]] = []
    data = os.urandom(2 * MiB + 3)  # over 1 MiB: hashed in a thread
    async with opened(s3_repo) as backend:
        client = await backend._get_client()
        client.meta.events.register(
            "before-call.s3.PutObject", lambda params, **_: calls.append(params)
        )
        await backend.put("k", data)
    assert calls[0]["headers"]["x-amz-checksum-crc32"] == crc32(data)
    # computed by the back-end, so botocore neither hashes again nor streams aws-chunked trailers
    assert "request_algorithm" not in (calls[0]["context"].get("checksum") or {})
    head = moto_s3_client.head_object(Bucket=s3_bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(data)


async def test_multipart_sends_part_checksums(s3_repo: RepoSpec) -> None:
    sent: dict[str, Any] = {}

    def capture(request: Any, event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] = request

    def header(operation: str, name: str) -> str:
        value = sent[operation].headers[name]
        return value.decode() if isinstance(value, bytes) else str(value)

    parts = [os.urandom(5 * MiB), b"tail"]
    async with opened(s3_repo) as backend:
        client = await backend._get_client()
        client.meta.events.register("before-send.s3", capture)
        upload = await backend.upload("mp")
        assert header("CreateMultipartUpload", "x-amz-checksum-algorithm") == "CRC32"
        refs: list[PartRef] = []
        for number, part in enumerate(parts, 1):
            refs.append(await upload.put_part(number, part))
            assert header("UploadPart", "x-amz-checksum-crc32") == crc32(part)
        assert [r.extra["ChecksumCRC32"] for r in refs] == [crc32(p) for p in parts]
        await upload.complete(refs)
        body = sent["CompleteMultipartUpload"].body
        for part in parts:
            assert crc32(part).encode() in body
        assert await read(backend, "mp") == b"".join(parts)


async def test_server_side_encryption(
    s3_repo: RepoSpec, moto_s3_client: Any, s3_bucket: str
) -> None:
    async with opened(s3_repo, sse="AES256") as backend:
        await backend.put("enc", b"x")
    assert moto_s3_client.head_object(Bucket=s3_bucket, Key="enc")["ServerSideEncryption"] == (
        "AES256"
    )


async def test_client_configuration(s3_repo: RepoSpec) -> None:
    async with opened(s3_repo, concurrency=7, timeout=12.5) as backend:
        config = (await backend._get_client()).meta.config
        assert config.max_pool_connections == 7
        assert config.read_timeout == 12.5
        assert config.retries["total_max_attempts"] == 1
        assert config.s3 == {"addressing_style": "path", "payload_signing_enabled": False}
        assert config.request_checksum_calculation == "when_required"
        assert config.signature_version is not UNSIGNED
    async with opened(s3_repo, anonymous=True) as backend:
        config = (await backend._get_client()).meta.config
        assert config.signature_version is UNSIGNED


def test_capabilities() -> None:
    url = parse_url("s3://bucket")
    for endpoint, cheap in [
        (None, True),
        ("https://s3.example.com", True),
        ("http://127.0.0.1:9000", False),
        ("http://localhost:9000", False),
    ]:
        caps = S3Backend(url, BackendOptions(endpoint_url=endpoint)).capabilities
        assert caps.cheap_ranges is cheap, endpoint
        assert (caps.min_part_size, caps.max_parts, caps.conditional_create) == (
            5 * MiB,
            10_000,
            True,
        )


# --- keys, listings, streams -------------------------------------------------------------


async def test_url_prefix_is_applied_and_stripped(
    moto_server: MotoServer, moto_s3_client: Any, s3_bucket: str
) -> None:
    spec = RepoSpec(f"s3://{s3_bucket}/team/data", moto_server.settings())
    moto_s3_client.put_object(Bucket=s3_bucket, Key="team/database", Body=b"outside")
    async with opened(spec) as backend:
        await backend.put("a/b", b"inside")
        upload = await backend.upload("c")
        raw = moto_s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]
        assert sorted(o["Key"] for o in raw) == ["team/data/a/b", "team/database"]
        assert [o.key async for o in backend.list("")] == ["a/b"]
        assert [(u.key, u.upload_id) async for u in backend.uploads("")] == [
            ("c", upload.upload_id)
        ]
        assert await read(backend, "a/b") == b"inside"
        await upload.abort()


async def test_list_follows_continuation_tokens(s3_repo: RepoSpec) -> None:
    keys = [f"p/{i:03d}" for i in range(7)]
    async with opened(s3_repo) as backend:
        backend._page_size = 2
        for key in reversed(keys):
            await backend.put(key, b"x")
        assert [o.key async for o in backend.list("p/")] == keys


class PagedUploads:
    """A stand-in client whose ListMultipartUploads answers in pages of one."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.calls: list[dict[str, Any]] = []

    async def list_multipart_uploads(self, **params: Any) -> dict[str, Any]:
        # moto ignores MaxUploads, so paging is checked against this fake
        self.calls.append(params)
        marker = params.get("KeyMarker", "")
        rest = [k for k in self.keys if k > marker]
        page = rest[:1]
        return {
            "Uploads": [{"Key": k, "UploadId": f"id-{k}"} for k in page],
            "IsTruncated": len(rest) > 1,
            "NextKeyMarker": page[-1] if page else "",
            "NextUploadIdMarker": f"id-{page[-1]}" if page else "",
        }


async def test_uploads_follow_markers() -> None:
    backend = S3Backend(parse_url("s3://bucket/pre"), BackendOptions())
    fake = PagedUploads(["pre/a", "pre/b", "pre/c"])
    backend._client = fake
    got = [(u.key, u.upload_id) async for u in backend.uploads("")]
    assert got == [("a", "id-pre/a"), ("b", "id-pre/b"), ("c", "id-pre/c")]
    assert len(fake.calls) == 3
    assert fake.calls[1]["KeyMarker"] == "pre/a"
    assert fake.calls[0]["Prefix"] == "pre/"


async def test_stream_yields_bounded_chunks(s3_repo: RepoSpec) -> None:
    data = os.urandom(12 * MiB)
    async with opened(s3_repo) as backend:
        await backend.put("twelve", data)
        sizes: list[int] = []
        received = bytearray()
        async with aclosing(backend.stream("twelve")) as blocks:
            async for block in blocks:
                sizes.append(len(block))
                received += block
        assert bytes(received) == data
        assert max(sizes) <= 2 * MiB
        assert len(sizes) >= 6
        # ranged, from the middle to the end
        async with aclosing(backend.stream("twelve", 11 * MiB + 1)) as blocks:
            assert b"".join([b async for b in blocks]) == data[11 * MiB + 1 :]


async def test_range_past_the_end_is_an_error(s3_repo: RepoSpec) -> None:
    async with opened(s3_repo) as backend:
        await backend.put("short", b"0123456789")
        with pytest.raises(BackendError, match="short"):
            await read(backend, "short", 5, 100)
        with pytest.raises(BackendError, match="short"):
            await read(backend, "short", 50)


async def test_abandoned_stream_gives_its_connection_back(s3_repo: RepoSpec) -> None:
    data = os.urandom(3 * MiB)
    bodies: list[Any] = []
    async with opened(s3_repo, concurrency=1) as backend:  # a pool of one connection
        await backend.put("k", data)
        client = await backend._get_client()
        get_object = client.get_object

        async def spy(**params: Any) -> Any:
            response = await get_object(**params)
            bodies.append(response["Body"])
            return response

        client.get_object = spy
        for _ in range(3):
            async with aclosing(backend.stream("k")) as blocks:
                await anext(blocks)
        assert [body.raw_stream.closed for body in bodies] == [True] * 3
        with anyio.fail_after(10):
            assert await read(backend, "k", 0, 10) == data[:10]


async def test_client_is_reopened_after_aclose(s3_repo: RepoSpec) -> None:
    async with opened(s3_repo) as backend:
        await backend.put("k", b"1")
        await backend.aclose()
        await backend.aclose()
        assert await read(backend, "k") == b"1"


# --- errors -------------------------------------------------------------------------------


async def test_missing_bucket(moto_server: MotoServer) -> None:
    bucket = new_bucket_name()
    async with opened(RepoSpec(f"s3://{bucket}", moto_server.settings())) as backend:
        with pytest.raises(RepositoryNotFoundError, match=f"bucket {bucket} does not exist"):
            await backend.check()
        with pytest.raises(RepositoryNotFoundError, match=bucket):
            await backend.put("k", b"x")
        with pytest.raises(RepositoryNotFoundError, match=bucket):
            await read(backend, "k")
        with pytest.raises(RepositoryNotFoundError, match=bucket):
            [o async for o in backend.list("")]


async def test_missing_object_names_key_and_bucket(s3_repo: RepoSpec, s3_bucket: str) -> None:
    async with opened(s3_repo) as backend:
        with pytest.raises(ObjectNotFoundError) as info:
            await read(backend, "dir/absent")
    assert f"s3://{s3_bucket}/dir/absent" in str(info.value)


async def test_endpoint_down_is_transient_and_quick() -> None:
    spec = RepoSpec(
        "s3://bucket",
        {"endpoint_url": f"http://127.0.0.1:{free_port()}", "aws_access_key_id": "testing"}
        | {"aws_secret_access_key": "testing"},
    )
    started = time.monotonic()
    async with opened(spec) as backend:
        with pytest.raises(TransientError) as info:
            await backend.check()
        with pytest.raises(TransientError):
            await backend.put("k", b"x")
    assert time.monotonic() - started < 5
    assert info.value.retryable
    assert "s3://bucket" in str(info.value)


@asynccontextmanager
async def canned_server(response: bytes) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request with ``response`` and hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def _canned_spec(endpoint: str) -> RepoSpec:
    return RepoSpec(
        "s3://bucket",
        {"endpoint_url": endpoint, "aws_access_key_id": "a", "aws_secret_access_key": "b"},
    )


async def test_connection_lost_mid_body_is_transient() -> None:
    truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000
    async with canned_server(truncated) as endpoint, opened(_canned_spec(endpoint)) as backend:
        with pytest.raises(TransientError, match="s3://bucket/k"):
            await read(backend, "k")


async def test_slow_down_answer_is_throttled() -> None:
    xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    answer = (
        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        + f"Content-Length: {len(xml)}\r\nConnection: close\r\n\r\n".encode()
        + xml
    )
    async with canned_server(answer) as endpoint, opened(_canned_spec(endpoint)) as backend:
        with pytest.raises(ThrottledError, match="SlowDown"):
            await backend.put("k", b"x")


def _client_error(code: str, status: int) -> bx.ClientError:
    return bx.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("NoSuchKey", 404), ObjectNotFoundError),
        (_client_error("404", 404), ObjectNotFoundError),
        (_client_error("NoSuchBucket", 404), RepositoryNotFoundError),
        (_client_error("NoSuchUpload", 404), ObjectNotFoundError),
        (_client_error("AccessDenied", 403), AccessDeniedError),
        (_client_error("InvalidAccessKeyId", 403), AccessDeniedError),
        (_client_error("SignatureDoesNotMatch", 403), AccessDeniedError),
        (_client_error("PreconditionFailed", 412), PreconditionFailedError),
        (_client_error("SlowDown", 503), ThrottledError),
        (_client_error("503", 503), ThrottledError),
        (_client_error("TooManyRequests", 429), ThrottledError),
        (_client_error("InternalError", 500), TransientError),
        (_client_error("502", 502), TransientError),
        (_client_error("RequestTimeout", 400), TransientError),
        (bx.EndpointConnectionError(endpoint_url="http://x"), TransientError),
        (bx.ConnectionClosedError(endpoint_url="http://x"), TransientError),
        (bx.ReadTimeoutError(endpoint_url="http://x"), TransientError),
        (TimeoutError(), TransientError),
        (aiohttp.ServerDisconnectedError(), TransientError),
        (aiohttp.ClientPayloadError("cut"), TransientError),
        (bx.NoCredentialsError(), AccessDeniedError),
    ],
)
def test_error_translation(exc: BaseException, expected: type[Exception]) -> None:
    err = _translate(exc, "GetObject", "bkt", "ds/key")
    assert type(err) is expected
    assert "s3://bkt/ds/key" in str(err)


def test_unknown_client_error_is_not_retryable() -> None:
    err = _translate(_client_error("InvalidArgument", 400), "PutObject", "bkt", "k")
    assert type(err) is BackendError
    assert not err.retryable
    assert "InvalidArgument" in str(err)


def test_bucket_level_404_is_a_missing_repository() -> None:
    err = _translate(_client_error("404", 404), "HeadBucket", "bkt", None)
    assert isinstance(err, RepositoryNotFoundError)
    assert "bucket bkt does not exist" in str(err)


def test_cancellation_is_never_translated() -> None:
    backend = S3Backend(parse_url("s3://bucket"), BackendOptions())
    with pytest.raises(asyncio.CancelledError), backend._mapped("GetObject", "k"):
        raise asyncio.CancelledError


def test_backend_satisfies_the_protocol() -> None:
    backend = S3Backend(parse_url("s3://bucket/p"), BackendOptions())
    assert isinstance(cast(object, backend), Backend)
    assert backend.describe() == "s3://bucket/p"


async def test_a_streamed_body_is_views_of_the_buffer_and_a_file_for_botocore() -> None:
    from etcetera.backends.s3 import StreamedBody, _body

    data = bytearray(os.urandom(3 * StreamedBody.STEP + 5))
    body = StreamedBody(data)
    assert len(body) == len(data)
    views = [v async for v in body]
    assert all(isinstance(v, memoryview) and v.obj is data for v in views)  # no copies
    assert b"".join(views) == data and len(views) == 4
    assert b"".join([v async for v in body]) == data  # iterated again for a retry
    assert body.read(10) == data[:10] and body.tell() == 10  # botocore's file-like view
    assert body.seek(0) == 0 and body.read() == data
    assert body.seek(-5, 2) == len(data) - 5 and body.read() == data[-5:]
    small = bytearray(b"x" * StreamedBody.STEP)
    assert _body(small) is small  # up to 1 MiB goes as it is
