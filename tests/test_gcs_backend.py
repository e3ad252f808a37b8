"""GCS-specific behaviour of the gs:// back-end, against a real fake-gcs-server.

fake-gcs-server checks no credentials, ignores ACLs on compose and verifies no
checksums, so those tests put a small recording proxy between the back-end and the
server and assert what etcetera *sends*.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import anyio
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from etcetera.backends import gcs
from etcetera.backends.base import BackendOptions, PartRef
from etcetera.backends.gcs import GCSBackend, GCSUpload
from etcetera.errors import (
    AccessDeniedError,
    BackendError,
    ConfigError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
    ThrottledError,
    TransientError,
)
from etcetera.urls import parse_url
from tests.fixtures_gcs import FakeGCS, free_port, gcs_settings
from tests.support import RepoSpec

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
TMP = "etc-v1/tmp/"
T = TypeVar("T")


def bucket_of(spec: RepoSpec) -> str:
    return parse_url(spec.url).bucket


def open_gcs(url: str, **options: Any) -> GCSBackend:
    """A back-end built directly, for options the settings do not carry."""
    return GCSBackend(parse_url(url), BackendOptions(**options))


@pytest.fixture
async def backend(gcs_repo: RepoSpec) -> AsyncIterator[GCSBackend]:
    opened = gcs_repo.backend()
    assert isinstance(opened, GCSBackend)
    yield opened
    await opened.aclose()


async def read(backend: GCSBackend, key: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(await blocks(backend, key, offset, length))


async def blocks(
    backend: GCSBackend, key: str, offset: int = 0, length: int | None = None
) -> list[bytes]:
    async with aclosing(backend.stream(key, offset, length)) as body:
        return [block async for block in body]


async def multipart(backend: GCSBackend, key: str, parts: list[bytes]) -> str:
    """Upload ``parts`` concurrently and complete; returns the upload id."""
    upload = await backend.upload(key)
    refs: dict[int, PartRef] = {}

    async def send(number: int) -> None:
        refs[number] = await upload.put_part(number, parts[number - 1])

    async with anyio.create_task_group() as tg:
        for number in range(len(parts), 0, -1):
            tg.start_soon(send, number)
    await upload.complete([refs[n] for n in sorted(refs)])
    return upload.upload_id


# -- writes ---------------------------------------------------------------------------


async def test_create_only_second_write_fails(backend: GCSBackend, gcs_repo: RepoSpec) -> None:
    await backend.put("refs/ds/1", b"first", if_absent=True)
    with pytest.raises(PreconditionFailedError, match=f"{bucket_of(gcs_repo)}/refs/ds/1"):
        await backend.put("refs/ds/1", b"second", if_absent=True)
    assert await read(backend, "refs/ds/1") == b"first"


async def test_prefix_is_applied(gcs_repo: RepoSpec, fake_gcs: FakeGCS) -> None:
    spec = RepoSpec(gcs_repo.url + "/team/data", gcs_repo.settings)
    backend = spec.backend()
    try:
        await backend.put("a/b", b"x")
        assert fake_gcs.names(bucket_of(gcs_repo)) == ["team/data/a/b"]
        assert [o.key async for o in backend.list("")] == ["a/b"]
        assert await backend.head("a/b") is not None
    finally:
        await backend.aclose()


async def test_listing_pages(backend: GCSBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcs, "_PAGE_SIZE", 2)
    keys = [f"k/{i:02d}" for i in range(7)]
    for key in keys:
        await backend.put(key, b"x")
    assert [o.key async for o in backend.list("k/")] == keys


# -- parallel composite uploads -------------------------------------------------------


async def test_composite_upload_of_more_than_32_parts(
    backend: GCSBackend, gcs_repo: RepoSpec, fake_gcs: FakeGCS
) -> None:
    parts = [os.urandom(1000 + i) for i in range(70)]  # 3 groups of <= 32, then the target
    await multipart(backend, "objects/big", parts)
    assert await read(backend, "objects/big") == b"".join(parts)
    assert fake_gcs.names(bucket_of(gcs_repo), TMP) == []
    assert [o.key async for o in backend.list("")] == ["objects/big"]


async def test_composite_tree_of_several_levels(
    backend: GCSBackend, gcs_repo: RepoSpec, fake_gcs: FakeGCS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gcs, "_COMPOSE_MAX", 3)  # 40 -> 14 -> 5 -> 2 -> target
    parts = [bytes([i]) * (i + 1) for i in range(40)]
    await multipart(backend, "deep", parts)
    assert await read(backend, "deep") == b"".join(parts)
    assert fake_gcs.names(bucket_of(gcs_repo), TMP) == []


async def test_abort_deletes_temporaries(
    backend: GCSBackend, gcs_repo: RepoSpec, fake_gcs: FakeGCS
) -> None:
    upload = await backend.upload("ds/x")
    for number in (1, 2, 3):
        await upload.put_part(number, b"p" * 100)
    assert len(fake_gcs.names(bucket_of(gcs_repo), TMP)) == 4  # marker and parts
    assert [o.key async for o in backend.list("")] == []  # temporaries are not objects
    await upload.abort()
    assert fake_gcs.names(bucket_of(gcs_repo), TMP) == []


async def test_failed_complete_keeps_parts_but_not_composites(
    backend: GCSBackend, gcs_repo: RepoSpec, fake_gcs: FakeGCS
) -> None:
    key = "ds/broken"
    upload = await backend.upload(key)
    refs = [await upload.put_part(n, b"x" * 10) for n in range(1, 41)]
    await backend.delete(f"{TMP}{upload.upload_id}/p00040")  # the last group cannot compose
    with pytest.raises(BackendError) as caught:  # 404 on GCS, 500 on fake-gcs-server
        await upload.complete(refs)
    assert not isinstance(caught.value, BaseExceptionGroup)
    left = fake_gcs.names(bucket_of(gcs_repo), TMP)
    assert len(left) == 40  # the marker and 39 parts: a retry or an abort decides
    assert not any("/c1-" in name for name in left)
    await upload.abort()
    assert fake_gcs.names(bucket_of(gcs_repo), TMP) == []


async def test_complete_of_an_unknown_upload(backend: GCSBackend) -> None:
    with pytest.raises(ObjectNotFoundError, match="upload"):
        await GCSUpload(backend, "k", "0123abcd").complete([PartRef(1, "")])
    with pytest.raises(BackendError, match="invalid upload id"):
        GCSUpload(backend, "k", "../../etc")


# -- reads ----------------------------------------------------------------------------


async def test_ranged_stream_blocks_are_bounded(backend: GCSBackend) -> None:
    data = os.urandom(3 * MiB + 77)
    await backend.put("big", data)
    for offset, length in [(0, None), (1, None), (MiB + 3, 2 * MiB), (5, 10)]:
        got = await blocks(backend, "big", offset, length)
        want = data[offset:] if length is None else data[offset : offset + length]
        assert b"".join(got) == want
        # Bounded, and as they arrived: never joined into bigger blocks (the engine
        # hashes and writes them where they are).
        assert all(0 < len(b) <= MiB for b in got)


async def test_stream_edges(backend: GCSBackend) -> None:
    await backend.put("small", b"0123456789")
    assert await read(backend, "small", 10) == b""  # at the end, as from a file
    assert await read(backend, "small", 3, 0) == b""
    with pytest.raises(ObjectNotFoundError):
        await read(backend, "nope", 0, 0)
    with pytest.raises(BackendError, match="beyond the end"):
        await read(backend, "small", 20, 5)


# -- failures -------------------------------------------------------------------------


async def test_missing_bucket(fake_gcs: FakeGCS) -> None:
    backend = RepoSpec("gs://etc-no-such-bucket", gcs_settings(fake_gcs)).backend()
    try:
        with pytest.raises(RepositoryNotFoundError, match="bucket etc-no-such-bucket does not"):
            await backend.check()
        with pytest.raises(RepositoryNotFoundError):
            [o async for o in backend.list("")]
    finally:
        await backend.aclose()


async def test_endpoint_down_is_transient_and_fast() -> None:
    port = free_port()
    backend = open_gcs("gs://etc-down", endpoint_url=f"http://127.0.0.1:{port}", anonymous=True)
    start = time.monotonic()
    try:
        with pytest.raises(TransientError, match="gs://etc-down/k"):
            await backend.put("k", b"x")
        with pytest.raises(TransientError):
            await read(backend, "k")
    finally:
        await backend.aclose()
    assert time.monotonic() - start < 2


async def test_no_endpoint_never_reaches_google() -> None:
    # The fixtures point STORAGE_EMULATOR_HOST at a dead local port.
    backend = open_gcs("gs://etc-nowhere")
    try:
        with pytest.raises(TransientError, match=r"127\.0\.0\.1"):
            await backend.head("k")
    finally:
        await backend.aclose()


async def test_storage_emulator_host_is_honoured(
    gcs_repo: RepoSpec, fake_gcs: FakeGCS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.root)
    backend = open_gcs(gcs_repo.url)  # not anonymous: the SDK leaves emulators unsigned
    try:
        await backend.put("k", b"via the emulator variable")
        assert await read(backend, "k") == b"via the emulator variable"
    finally:
        await backend.aclose()


# -- what etcetera sends: a recording proxy in front of fake-gcs-server ----------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class Proxy:
    """Records every request, answers ``/token``, forwards the rest to fake-gcs-server."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    override: Handler | None = None
    url: str = ""
    ca_file: str = ""

    def calls(self, method: str, fragment: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and fragment in s.path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query = dict(request.query)
        self.seen.append(Seen(request.method, request.path, query, dict(request.headers), body))
        if self.override is not None and (canned := await self.override(request)) is not None:
            return canned
        if request.path == "/token":
            return web.json_response({"access_token": "tok-123", "expires_in": 3600})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            payload = await answer.read()
            kept = {"Content-Type", "Content-Range"}
            out = {k: v for k, v in answer.headers.items() if k in kept}
            return web.Response(status=answer.status, body=payload, headers=out)


@pytest.fixture
async def proxy(fake_gcs: FakeGCS, tls: TLS) -> AsyncIterator[Proxy]:
    recorder = Proxy(fake_gcs.root, ca_file=tls.ca_file)
    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server).start()
    recorder.url = f"https://127.0.0.1:{port}"
    yield recorder
    await runner.cleanup()


@dataclass
class TLS:
    ca_file: str
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    """A self-signed certificate for 127.0.0.1, so that requests may be signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etc-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return TLS(str(cert_file), server)


def service_account_file(folder: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "etc@test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    path = folder / "sa.json"
    path.write_text(json.dumps(info))
    return path


def via(proxy: Proxy, gcs_repo: RepoSpec, **options: Any) -> GCSBackend:
    """A back-end for ``gcs_repo`` that goes through ``proxy`` (over TLS)."""
    return open_gcs(gcs_repo.url, endpoint_url=proxy.url, ca_bundle=proxy.ca_file, **options)


def upload_metadata(seen: Seen) -> dict[str, Any]:
    """The JSON part of a multipart (metadata + media) upload."""
    boundary = seen.headers["Content-Type"].split("boundary=")[1].encode()
    first = seen.body.split(b"--" + boundary)[1]
    metadata: dict[str, Any] = json.loads(first.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0])
    return metadata


async def test_anonymous_requests_carry_no_token(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    backend = via(proxy, gcs_repo, anonymous=True)
    try:
        await backend.put("k", b"data")
        assert await read(backend, "k") == b"data"
    finally:
        await backend.aclose()
    assert proxy.seen
    assert all("Authorization" not in s.headers for s in proxy.seen)
    assert not proxy.calls("POST", "/token")


async def test_service_account_signs_every_request(
    proxy: Proxy, gcs_repo: RepoSpec, tmp_path: Path
) -> None:
    sa = service_account_file(tmp_path, f"{proxy.url}/token")
    backend = via(proxy, gcs_repo, gcs_credentials_file=str(sa))
    try:
        await backend.put("k", b"data")
        assert await backend.head("k") is not None
    finally:
        await backend.aclose()
    [token_call] = proxy.calls("POST", "/token")
    assert b"grant_type=urn" in token_call.body
    storage_calls = [s for s in proxy.seen if s.path != "/token"]
    assert storage_calls
    assert all(s.headers.get("Authorization") == "Bearer tok-123" for s in storage_calls)


async def test_plain_http_endpoint_is_never_signed(gcs_repo: RepoSpec, tmp_path: Path) -> None:
    sa = service_account_file(tmp_path, "http://127.0.0.1:9/token")  # would fail if used
    backend = gcs_repo.backend(gcs_credentials_file=str(sa), anonymous=False)
    try:
        await backend.put("k", b"x")  # plain-http emulator: no token is fetched
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "cannot be read"), ("{not json", "not a JSON file"), ('{"a": 1}', "not a Google")],
)
async def test_bad_credentials_file(
    proxy: Proxy, gcs_repo: RepoSpec, tmp_path: Path, content: str | None, match: str
) -> None:
    path = tmp_path / "creds.json"
    if content is not None:
        path.write_text(content)
    backend = via(proxy, gcs_repo, gcs_credentials_file=str(path))
    try:
        with pytest.raises(ConfigError, match=f"{path}.*{match}"):
            await backend.head("k")
    finally:
        await backend.aclose()
    assert proxy.seen == []


async def test_no_credentials_fails_fast_with_a_hint(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    # No file, no ADC (CLOUDSDK_CONFIG is empty), and the metadata server unreachable.
    from gcloud.aio.auth import token

    assert token.GCE_METADATA_BASE.startswith("http://127.0.0.1:")
    backend = via(proxy, gcs_repo, connect_timeout=1.0)
    start = time.monotonic()
    try:
        with pytest.raises(AccessDeniedError, match="anonymous = true"):
            await backend.head("k")
    finally:
        await backend.aclose()
    assert time.monotonic() - start < 5
    assert proxy.seen == []


async def test_public_objects_request_a_public_acl(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    backend = via(proxy, gcs_repo, anonymous=True, public=True)
    try:
        await backend.put("small", b"x")
        await multipart(backend, "big", [b"a" * 10, b"b" * 10])
    finally:
        await backend.aclose()
    uploads = proxy.calls("POST", "/upload/")
    small = [s for s in uploads if upload_metadata(s)["name"] == "small"]
    assert small[0].query["predefinedAcl"] == "publicRead"
    assert all("predefinedAcl" not in s.query for s in uploads if TMP in upload_metadata(s)["name"])
    [compose] = proxy.calls("POST", "/compose")
    assert compose.query["destinationPredefinedAcl"] == "publicRead"


async def test_uniform_bucket_level_access_points_to_iam(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    async def refuse_acls(request: web.Request) -> web.Response | None:
        if "predefinedAcl" not in request.query:
            return None
        message = (
            "Cannot insert legacy ACL for an object when uniform bucket-level access "
            "is enabled. Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access"
        )
        error = {"code": 400, "message": message, "errors": [{"reason": "invalid"}]}
        return web.json_response({"error": error}, status=400)

    proxy.override = refuse_acls
    backend = via(proxy, gcs_repo, anonymous=True, public=True)
    try:
        with pytest.raises(AccessDeniedError, match=r"allUsers --role=roles/storage\.objectViewer"):
            await backend.put("k", b"x")
    finally:
        await backend.aclose()


def _crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("algorithm", ["md5", "crc32c"])
async def test_uploads_carry_a_checksum_the_store_checks(
    proxy: Proxy, gcs_repo: RepoSpec, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    monkeypatch.setattr(gcs, "_crc32c", _crc32c if algorithm == "crc32c" else None)
    data = os.urandom(3000)
    backend = via(proxy, gcs_repo, anonymous=True)
    try:
        await backend.put("k", data)
        upload = await backend.upload("m")
        ref = await upload.put_part(1, data)
        await upload.abort()
        stored = await fetch_json(proxy, f"/storage/v1/b/{bucket_of(gcs_repo)}/o/k")
    finally:
        await backend.aclose()
    sent = [upload_metadata(s) for s in proxy.calls("POST", "/upload/")]
    field_name = "crc32c" if algorithm == "crc32c" else "md5Hash"
    # what was sent is what the store computed itself
    assert sent[0][field_name] == stored[field_name]
    assert sent[2][field_name] == stored[field_name]
    assert ref.etag == stored["crc32c"]  # the store's CRC32C of the part, whatever was sent
    assert sent[2]["metadata"] == {"etc-key": "m"}


async def fetch_json(proxy: Proxy, path: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(proxy.upstream + path) as answer:
        data: dict[str, Any] = await answer.json()
        return data


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AccessDeniedError),
        (403, AccessDeniedError),
        (429, ThrottledError),
        (503, ThrottledError),
        (500, TransientError),
        (502, TransientError),
        (400, BackendError),
    ],
)
async def test_status_translation(
    proxy: Proxy, gcs_repo: RepoSpec, status: int, error: type[BackendError]
) -> None:
    async def fail(request: web.Request) -> web.Response:
        body = {"error": {"code": status, "message": f"failure {status}"}}
        return web.json_response(body, status=status)

    proxy.override = fail
    backend = via(proxy, gcs_repo, anonymous=True)
    try:
        with pytest.raises(error, match=f"gs://{bucket_of(gcs_repo)}/dir/k") as caught:
            await backend.head("dir/k")
    finally:
        await backend.aclose()
    assert type(caught.value) is error
    assert f"failure {status}" in str(caught.value)
    assert caught.value.retryable == (status in (429, 500, 502, 503))


async def test_missing_bucket_message_from_google(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    async def no_bucket(request: web.Request) -> web.Response:
        body = {"error": {"code": 404, "message": "The specified bucket does not exist."}}
        return web.json_response(body, status=404)

    proxy.override = no_bucket
    backend = via(proxy, gcs_repo, anonymous=True)
    try:
        with pytest.raises(RepositoryNotFoundError):
            await backend.head("k")
        with pytest.raises(RepositoryNotFoundError):
            await read(backend, "k")
    finally:
        await backend.aclose()


async def test_a_stalled_read_times_out_per_request(proxy: Proxy, gcs_repo: RepoSpec) -> None:
    async def stall(request: web.Request) -> web.StreamResponse | None:
        if request.query.get("alt") != "media":
            return None
        answer = web.StreamResponse(status=206)
        answer.content_length = 100
        await answer.prepare(request)
        await answer.write(b"x" * 10)
        await anyio.sleep(3)
        return answer

    proxy.override = stall
    backend = via(proxy, gcs_repo, anonymous=True, timeout=0.3)
    try:
        await backend.put("k", b"x" * 100)
        start = time.monotonic()
        with pytest.raises(TransientError):
            await read(backend, "k", 0, 100)
        assert time.monotonic() - start < 2
        # cancellation is never turned into an error
        with anyio.move_on_after(0.1) as scope:
            await read(backend, "k", 0, 100)
        assert scope.cancelled_caught
    finally:
        await backend.aclose()


async def test_every_request_of_a_composite_completion_goes_through_run(
    proxy: Proxy, gcs_repo: RepoSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HEAD, the composes in rounds and the deletes: each admitted by ``run``, one by one."""
    monkeypatch.setattr(gcs, "_COMPOSE_MAX", 4)  # 10 parts -> 3 composites -> the target
    admitted: list[str] = []
    active = 0
    outside: list[str] = []
    slots = anyio.Semaphore(2)

    async def run(what: str, fn: Callable[[], Awaitable[T]]) -> T:
        nonlocal active
        async with slots:
            admitted.append(what)
            active += 1
            try:
                return await fn()
            finally:
                active -= 1

    async def watch(request: web.Request) -> None:
        if active == 0:
            outside.append(f"{request.method} {request.path}")

    backend = via(proxy, gcs_repo, anonymous=True)
    try:
        upload = await backend.upload("big")
        refs = [await upload.put_part(n, bytes([n]) * 10) for n in range(1, 11)]
        proxy.seen.clear()
        proxy.override = watch
        await upload.complete(refs, run)
        proxy.override = None
        requests = len(proxy.seen)
        assert await read(backend, "big") == b"".join(bytes([n]) * 10 for n in range(1, 11))
    finally:
        await backend.aclose()
    assert outside == []
    # HEAD of the marker, 3 + 1 composes, one listing, 14 deletes (marker, parts, composites)
    assert len(admitted) == requests == 1 + 4 + 1 + 14
    assert len(proxy.calls("POST", "/compose")) == 4
    assert len(proxy.calls("DELETE", "/o/")) == 14
