"""The engine retries what may pass and gives up clearly on what will not.

A wrapper around the file:// back-end injects failures on a schedule; the real
servers' failure modes are covered by the S3 and GCS back-end tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

import etcetera as etc
from etcetera.api import agc
from etcetera.backends.base import Backend, Buffer, PartRef, Requests, Upload, direct
from etcetera.backends.file import FileBackend
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import RateLimiter, Transport
from etcetera.errors import AccessDeniedError, ThrottledError, TransientError
from etcetera.urls import parse_url
from tests.support import write_tree

pytestmark = pytest.mark.anyio
T = TypeVar("T")
MiB = 1024 * 1024


class Flaky:
    """Delegates to a real back-end; fails the first ``n`` calls of each listed method."""

    def __init__(self, inner: Backend, fail: dict[str, int], error: Exception) -> None:
        self.inner = inner
        self.fail = dict(fail)
        self.error = error
        self.calls: dict[str, int] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, data: Buffer, *, if_absent: bool = False) -> None:
        self._maybe_fail("put")
        await self.inner.put(key, data, if_absent=if_absent)

    async def upload(self, key: str) -> Upload:
        return FlakyUpload(await self.inner.upload(key), self)

    async def stream(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        self._maybe_fail("stream")
        sent = 0
        async for block in self.inner.stream(key, offset, length):
            # Cut the body short once, mid-way, when asked to.
            if self.fail.get("midbody", 0) > 0 and sent:
                self.fail["midbody"] -= 1
                raise TransientError("connection reset mid-body")
            sent += len(block)
            yield block


class FlakyUpload:
    """An upload whose parts (``put_part``) and completing requests (``complete``) fail."""

    def __init__(self, inner: Upload, flaky: Flaky) -> None:
        self.inner = inner
        self.flaky = flaky
        self.key, self.upload_id, self.initiated = inner.key, inner.upload_id, inner.initiated

    async def put_part(self, number: int, data: Buffer, *, crc32: int | None = None) -> PartRef:
        self.flaky._maybe_fail("put_part")
        return await self.inner.put_part(number, data, crc32=crc32)

    def parts(self) -> AsyncGenerator[PartRef, None]:
        return self.inner.parts()

    async def complete(self, parts: Sequence[PartRef], run: Requests = direct) -> None:
        async def flaky_run(what: str, fn: Callable[[], Awaitable[T]]) -> T:
            async def go() -> T:
                self.flaky._maybe_fail("complete")
                return await fn()

            return await run(what, go)

        await self.inner.complete(parts, flaky_run)

    async def abort(self, run: Requests = direct) -> None:
        self.flaky._maybe_fail("abort")
        await self.inner.abort(run)


def _transport(backend: Any, retries: int = 3) -> Transport:
    cfg = TransferConfig(retries=retries, retry_delay=0.001, retry_max_delay=0.002)
    return Transport(backend, cfg)


async def test_throttling_is_retried_then_succeeds(tmp_path: Path) -> None:
    inner = FileBackend(parse_url(f"file://{tmp_path}"))
    flaky = Flaky(inner, {"put": 2}, ThrottledError("SlowDown"))
    t = _transport(flaky)
    await t.put("a/b", b"payload")
    assert t.stats.retries == 2
    assert (tmp_path / "a" / "b").read_bytes() == b"payload"


async def test_gives_up_after_the_budget_naming_the_object(tmp_path: Path) -> None:
    inner = FileBackend(parse_url(f"file://{tmp_path}"))
    flaky = Flaky(inner, {"put": 10}, TransientError("503 from server"))
    t = _transport(flaky, retries=2)
    with pytest.raises(TransientError, match=r"gave up on a/b after 3 attempts"):
        await t.put("a/b", b"payload")
    assert flaky.calls["put"] == 3


async def test_access_denied_is_not_retried(tmp_path: Path) -> None:
    inner = FileBackend(parse_url(f"file://{tmp_path}"))
    flaky = Flaky(inner, {"put": 1}, AccessDeniedError("credentials were refused"))
    t = _transport(flaky)
    with pytest.raises(AccessDeniedError):
        await t.put("a/b", b"x")
    assert flaky.calls["put"] == 1


async def test_stream_resumes_mid_body_from_the_last_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several 1 MiB blocks
    (tmp_path / "obj").write_bytes(data)
    inner = FileBackend(parse_url(f"file://{tmp_path}"))
    flaky = Flaky(inner, {"midbody": 2}, TransientError("unused"))
    t = _transport(flaky)
    got = b"".join([b async for b in t.stream("obj", 100, len(data) - 100)])
    assert got == data[100:]
    assert t.stats.retries == 2
    # Retries fetch only the remainder: at most one block is received twice per retry.
    assert t.stats.bytes_received == len(data) - 100


async def test_rate_limiter_paces_with_an_injected_clock() -> None:
    now = 0.0
    slept: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(seconds)
        now += seconds

    limiter = RateLimiter(1000, clock=clock, sleep=sleep)
    for _ in range(5):
        await limiter.consume(500)
    assert now == pytest.approx(2.0)
    assert sum(slept) == pytest.approx(2.0)


async def test_pull_survives_flaky_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"data/train/{i}.txt": bytes([i]) * (i * 2000 + 1) for i in range(120)}
    from tests.support import snapshot, write_tree

    src = write_tree(tmp_path / "s", files)
    (tmp_path / "repo").mkdir()
    # Stored as they are: compressed, these packs would arrive in one block each, and a
    # body cannot be cut mid-way before its second block.
    cfg = etc.Config(
        f"file://{tmp_path / 'repo'}", home=tmp_path / "h1", pack_size=4 << 20, compression=0
    )
    etc.register(src, config=cfg)
    etc.push("s", config=cfg)

    from etcetera.backends import registry

    real_open = registry.open_backend

    flaky_ref: list[Flaky] = []

    def open_flaky(url: Any, options: Any) -> Any:
        flaky = Flaky(real_open(url, options), {"stream": 3, "midbody": 3}, TransientError("x"))
        flaky_ref.append(flaky)
        return flaky

    monkeypatch.setattr(registry, "open_backend", open_flaky)
    cfg2 = etc.Config(cfg.url, home=tmp_path / "h2", retry_delay=0.001, retry_max_delay=0.002)
    pulled = await etc.apull("s", config=cfg2)
    assert snapshot(pulled.location) == snapshot(src)
    assert flaky_ref[0].fail["stream"] == 0
    assert flaky_ref[0].fail["midbody"] == 0


async def test_an_upload_objects_requests_are_retried_and_counted(tmp_path: Path) -> None:
    inner = FileBackend(parse_url(f"file://{tmp_path}"))
    flaky = Flaky(inner, {"put_part": 2, "complete": 1}, ThrottledError("SlowDown"))
    t = _transport(flaky)
    upload = await t.upload("big")
    refs = [await upload.put_part(n, bytes([n]) * 100) for n in (2, 1)]
    assert [p.number for p in await upload.parts()] == [1, 2]
    await upload.complete(refs)
    assert (tmp_path / "big").read_bytes() == b"\x01" * 100 + b"\x02" * 100
    assert flaky.calls == {"put_part": 4, "complete": 2}
    assert t.stats.retries == 3
    # upload, four part attempts, the listing, two completing attempts
    assert t.stats.requests == 8
    assert t.stats.bytes_sent == 200
    assert await t.uploads("") == []


def _big_tree(root: Path) -> Path:
    """A dataset with one blob of three 8 MiB parts."""
    return write_tree(root, {"data/train/big.bin": os.urandom(17 * MiB), "meta.json": b"{}"})


async def test_a_failed_multipart_push_aborts_its_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etcetera.backends import registry
    from etcetera.backends.registry import open_backend as real_open

    (tmp_path / "repo").mkdir()
    url = f"file://{tmp_path / 'repo'}"
    # A bandwidth limit keeps file:// on the multipart path (unpaced, a local repository
    # takes blobs by a kernel copy, with no upload to abort).
    cfg = etc.Config(url, home=tmp_path / "h", part_size=8 * MiB, bandwidth_limit=1 << 40)
    await etc.aregister(_big_tree(tmp_path / "s"), config=cfg)
    denied = AccessDeniedError("credentials were refused")
    monkeypatch.setattr(
        registry,
        "open_backend",
        lambda url, options: Flaky(real_open(url, options), {"put_part": 1}, denied),
    )
    with pytest.raises(AccessDeniedError):
        await etc.apush("s", config=cfg)
    monkeypatch.undo()
    backend = FileBackend(parse_url(url))
    assert [u async for u in backend.uploads("")] == []  # not retryable: the upload is gone


async def test_a_cancelled_multipart_push_keeps_its_upload_for_gc(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    url, home = f"file://{tmp_path / 'repo'}", tmp_path / "h"
    cfg = etc.Config(url, home=home, part_size=8 * MiB)
    await etc.aregister(_big_tree(tmp_path / "s"), config=cfg)
    # Paced (about 1.5 s), so that a throttled progress event lands between parts.
    slow = etc.Config(url, home=home, part_size=8 * MiB, bandwidth_limit=12 * MiB)
    with anyio.CancelScope() as scope:

        def cancel(e: etc.ProgressEvent) -> None:
            if e.phase == "upload" and e.bytes_done:
                scope.cancel()

        await etc.apush("s", config=slow, progress=cancel)
    assert scope.cancelled_caught
    backend = FileBackend(parse_url(url))
    kept = [u async for u in backend.uploads("")]
    # Kept, with what it had, for a later push to resume or gc to remove.
    assert len(kept) == 1
    assert [p.number async for p in kept[0].parts()]
    swept = await agc(config=cfg, grace=timedelta(0))
    assert swept.uploads == [kept[0].key]
    assert [u async for u in backend.uploads("")] == []
