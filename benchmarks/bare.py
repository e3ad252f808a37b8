"""The measured child of ``ceiling.py``: one push or pull through a bare SDK client.

    python benchmarks/bare.py SPEC_JSON      # run by ceiling.py, not by hand

No etcetera code is imported here (the child checks, and fails if it was): this is what
aiobotocore or gcloud-aio-storage, the disk and this interpreter do on their own, moving
the tree the way etcetera does on that store (``ceiling.METHOD`` says how, and where it
differs). The spec (JSON) names the operation, the store, the endpoint and bucket, the
local tree, and the sizes and budgets (etcetera's defaults, chosen by ``ceiling.py``).
The last line printed is a JSON report of what was moved and what it cost.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import secrets
import struct
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
#: Bytes per read of a response body (etcetera reads 1 MiB blocks).
BLOCK = 1 * MiB
#: A pack being pulled is written out every this many bytes (etcetera's ``_BATCH``).
PACK_FLUSH = 4 * MiB
#: The object a push writes last: where the packs' members are (etcetera's manifest).
INDEX = ".ceiling-index.json"
#: GCS composes at most 32 sources per request.
COMPOSE_MAX = 32


@dataclass
class _Plan:
    """What to send: large files whole (one object each) and small files in packs."""

    blobs: list[tuple[str, int]] = field(default_factory=list)
    packs: list[list[tuple[str, int, int]]] = field(default_factory=list)  # (path, offset, size)


def _plan(root: Path, pack_size: int, pack_threshold: int) -> _Plan:
    plan = _Plan()
    current: list[tuple[str, int, int]] = []
    filled = 0
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            size = os.lstat(path).st_size
            if size >= pack_threshold:
                plan.blobs.append((rel, size))
                continue
            if current and filled + size > pack_size:
                plan.packs.append(current)
                current, filled = [], 0
            current.append((rel, filled, size))
            filled += size
    if current:
        plan.packs.append(current)
    return plan


class _Budget:
    """Bytes of bodies in memory at most (a bare client would otherwise hold them all)."""

    def __init__(self, limit: int) -> None:
        import anyio

        self.limit = limit
        self.free = limit
        self.cond = anyio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        if not self.limit:
            yield
            return
        n = min(n, self.limit)
        async with self.cond:
            while self.free < n:
                await self.cond.wait()
            self.free -= n
        try:
            yield
        finally:
            async with self.cond:
                self.free += n
                self.cond.notify_all()


class _Bare:
    """What the push and pull need from a store, written directly against its SDK.

    ``limit`` bounds the requests in flight (``concurrency``), ``io`` the worker threads,
    ``budget`` the bytes of request bodies held in memory.
    """

    requests = 0

    def __init__(self, spec: dict[str, Any], limit: Any, io: Any) -> None:
        self.spec, self.limit, self.io = spec, limit, io
        self.bucket: str = spec["bucket"]
        self.crc = spec["checksums"] == "crc"
        self.budget = _Budget(spec["memory_budget"])

    async def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    async def put_large(
        self, key: str, size: int, part: int, read: Callable[[int, int], Awaitable[bytes]]
    ) -> None:
        raise NotImplementedError

    def get(self, key: str, offset: int, length: int, whole: bool) -> Any:
        """An async context manager yielding an async iterator of blocks."""
        raise NotImplementedError

    async def get_bytes(self, key: str) -> bytes:
        out = bytearray()
        async with self.get(key, 0, 0, True) as blocks:
            async for block in blocks:
                out += block
        return bytes(out)

    async def aclose(self) -> None:
        raise NotImplementedError


class _S3(_Bare):
    def __init__(self, spec: dict[str, Any], limit: Any, io: Any) -> None:
        super().__init__(spec, limit, io)
        self.stack = contextlib.AsyncExitStack()

    async def open(self) -> None:
        import botocore.handlers
        from aiobotocore.config import AioConfig
        from aiobotocore.session import AioSession

        config = AioConfig(
            max_pool_connections=self.spec["concurrency"],
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"payload_signing_enabled": False, "addressing_style": "path"},
        )
        creator = AioSession().create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url=self.spec["endpoint"],
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            config=config,
        )
        self.client = await self.stack.enter_async_context(creator)
        # As etcetera does: a bytes Body is sent as it is, not copied through BytesIO.
        for op in ("PutObject", "UploadPart"):
            self.client.meta.events.unregister(
                f"before-parameter-build.s3.{op}",
                botocore.handlers.convert_body_to_file_like_object,
            )

    async def _crc(self, data: bytes) -> dict[str, str]:
        import anyio.to_thread

        if not self.crc:
            return {}
        value = await anyio.to_thread.run_sync(zlib.crc32, data, limiter=self.io)
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": _b64(value)}

    async def put(self, key: str, data: bytes) -> None:
        extra = await self._crc(data)
        async with self.limit:
            self.requests += 1
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    async def put_large(
        self, key: str, size: int, part: int, read: Callable[[int, int], Awaitable[bytes]]
    ) -> None:
        import anyio

        algo = {"ChecksumAlgorithm": "CRC32"} if self.crc else {}
        async with self.limit:
            self.requests += 1
            resp = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **algo)
        upload_id = resp["UploadId"]
        parts: dict[int, dict[str, Any]] = {}

        async def send(number: int, offset: int) -> None:
            length = min(part, size - offset)
            async with self.budget.hold(length):
                data = await read(offset, length)
                extra = await self._crc(data)
                async with self.limit:
                    self.requests += 1
                    r = await self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        **extra,
                    )
                del data
            parts[number] = {"PartNumber": number, "ETag": r["ETag"]}
            if "ChecksumCRC32" in extra:
                parts[number]["ChecksumCRC32"] = extra["ChecksumCRC32"]

        async with anyio.create_task_group() as tg:
            for i, offset in enumerate(range(0, size, part)):
                tg.start_soon(send, i + 1, offset)
        async with self.limit:
            self.requests += 1
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]},
            )

    @contextlib.asynccontextmanager
    async def get(self, key: str, offset: int, length: int, whole: bool) -> AsyncIterator[Any]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if not whole:
            params["Range"] = f"bytes={offset}-{offset + length - 1}"
        async with self.limit:
            self.requests += 1
            resp = await self.client.get_object(**params)
            body = resp["Body"]

            async def blocks() -> AsyncIterator[bytes]:
                while True:
                    block: bytes = await body.read(BLOCK)
                    if not block:
                        return
                    yield block

            try:
                yield blocks()
            finally:
                body.close()

    async def aclose(self) -> None:
        await self.stack.aclose()


class _NoToken:
    """Unsigned requests (the emulator checks nothing), as etcetera sends them there."""

    async def get(self) -> None:
        return None


class _GCS(_Bare):
    async def open(self) -> None:
        import aiohttp
        from gcloud.aio.storage import Storage

        # Any: the SDK's stubs name requests.Session, it takes an aiohttp one.
        session: Any = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.spec["concurrency"]),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
        )
        self.session = session
        token: Any = _NoToken()
        self.storage = Storage(
            token=token, session=session, api_root=self.spec["endpoint"], api_is_dev=True
        )
        self.call_timeout: Any = aiohttp.ClientTimeout(total=600, sock_connect=10)
        self.read_timeout: Any = aiohttp.ClientTimeout(sock_connect=10, sock_read=60)

    async def _meta(self, data: bytes, target: str | None = None) -> dict[str, Any]:
        import anyio.to_thread
        import google_crc32c

        meta: dict[str, Any] = {}
        if self.crc:
            value = (
                await anyio.to_thread.run_sync(google_crc32c.value, data, limiter=self.io)
                if len(data) > BLOCK
                else google_crc32c.value(data)
            )
            meta["crc32c"] = base64.b64encode(struct.pack(">I", value)).decode()
        if target is not None:
            meta["metadata"] = {"etc-key": target}
        return meta

    async def _upload(self, name: str, data: bytes, target: str | None = None) -> None:
        meta = await self._meta(data, target)
        async with self.limit:
            self.requests += 1
            await self.storage.upload(
                self.bucket,
                name,
                data,
                content_type="application/octet-stream",
                metadata=meta,
                force_resumable_upload=False,
                timeout=self.call_timeout,
            )

    async def put(self, key: str, data: bytes) -> None:
        await self._upload(key, data)

    async def put_large(
        self, key: str, size: int, part: int, read: Callable[[int, int], Awaitable[bytes]]
    ) -> None:
        import anyio

        tmp = f"{self.spec['prefix']}/.tmp/{secrets.token_hex(12)}/"
        marker = tmp + "0-upload"
        await self._upload(marker, b"", key)
        names: list[str] = []

        async def send(number: int, offset: int) -> None:
            length = min(part, size - offset)
            async with self.budget.hold(length):
                data = await read(offset, length)
                await self._upload(f"{tmp}p{number:05d}", data, key)
                del data

        async with anyio.create_task_group() as tg:
            for i, offset in enumerate(range(0, size, part)):
                names.append(f"{tmp}p{i + 1:05d}")
                tg.start_soon(send, i + 1, offset)
        # etcetera checks the upload's marker before composing.
        async with self.limit:
            self.requests += 1
            await self.storage.download_metadata(self.bucket, marker, timeout=self.call_timeout)
        sources, level = names, 0
        while len(sources) > COMPOSE_MAX:
            level += 1
            groups = [sources[i : i + COMPOSE_MAX] for i in range(0, len(sources), COMPOSE_MAX)]
            sources = [f"{tmp}c{level}-{i:05d}" for i in range(len(groups))]
            async with anyio.create_task_group() as tg:
                for name, group in zip(sources, groups, strict=True):
                    tg.start_soon(self._compose, name, group)
        await self._compose(key, sources)
        # Then the temporaries go: a listing, a delete each, the marker last.
        async with self.limit:
            self.requests += 1
            page = await self.storage.list_objects(
                self.bucket, params={"prefix": tmp, "fields": "items(name)"}
            )
        found = [item["name"] for item in page.get("items", [])]
        async with anyio.create_task_group() as tg:
            for name in found:
                if name != marker:
                    tg.start_soon(self._delete, name)
        await self._delete(marker)

    async def _compose(self, name: str, sources: list[str]) -> None:
        async with self.limit:
            self.requests += 1
            await self.storage.compose(
                self.bucket,
                name,
                sources,
                content_type="application/octet-stream",
                timeout=self.call_timeout,
            )

    async def _delete(self, name: str) -> None:
        async with self.limit:
            self.requests += 1
            await self.storage.delete(self.bucket, name, timeout=self.call_timeout)

    @contextlib.asynccontextmanager
    async def get(self, key: str, offset: int, length: int, whole: bool) -> AsyncIterator[Any]:
        headers = {} if whole else {"Range": f"bytes={offset}-{offset + length - 1}"}
        async with self.limit:
            self.requests += 1
            response = await self.storage.download_stream(
                self.bucket, key, headers=headers, timeout=self.read_timeout
            )
            async with response as body:

                async def blocks() -> AsyncIterator[bytes]:
                    while True:
                        block: bytes = await body.content.read(BLOCK)
                        if not block:
                            return
                        yield block

                yield blocks()

    async def aclose(self) -> None:
        await self.session.close()


def _b64(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def _read_at(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def _read_pack(root: str, members: list[tuple[str, int, int]], size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    for rel, offset, length in members:
        with open(os.path.join(root, rel), "rb", buffering=0) as fh:
            fh.readinto(view[offset : offset + length])
    return bytes(buf)


def _write_files(root: str, items: list[tuple[str, memoryview]]) -> None:
    for rel, data in items:
        with open(os.path.join(root, rel), "wb", buffering=0) as fh:
            fh.write(data)


async def _push(store: _Bare, spec: dict[str, Any], io: Any) -> tuple[int, int]:
    import anyio
    import anyio.to_thread

    root = spec["root"]
    plan = _plan(Path(root), spec["pack_size"], spec["pack_threshold"])
    part, prefix = spec["part"], spec["prefix"]
    jobs = anyio.Semaphore(spec["concurrency"])  # objects in progress, like etcetera's pool
    index: dict[str, Any] = {"blobs": [], "packs": []}

    async def blob(rel: str, size: int) -> None:
        path = os.path.join(root, rel)

        async def read(offset: int, length: int) -> bytes:
            return await anyio.to_thread.run_sync(_read_at, path, offset, length, limiter=io)

        key = f"{prefix}/{rel}"
        async with jobs:
            if size > part:
                await store.put_large(key, size, part, read)
            else:
                async with store.budget.hold(size):
                    await store.put(key, await read(0, size))
        index["blobs"].append([rel, size])

    async def pack(n: int, members: list[tuple[str, int, int]]) -> None:
        size = members[-1][1] + members[-1][2]
        key = f"{prefix}/.packs/{n:05d}"
        async with jobs, store.budget.hold(size):
            data = await anyio.to_thread.run_sync(_read_pack, root, members, size, limiter=io)
            await store.put(key, data)
        index["packs"].append([key, size, members])

    async with anyio.create_task_group() as tg:
        for rel, size in plan.blobs:
            tg.start_soon(blob, rel, size)
        for n, members in enumerate(plan.packs):
            tg.start_soon(pack, n, members)
    await store.put(f"{prefix}/{INDEX}", json.dumps(index).encode())
    files = len(plan.blobs) + sum(len(p) for p in plan.packs)
    total = sum(s for _, s in plan.blobs) + sum(p[-1][1] + p[-1][2] for p in plan.packs)
    return files, total


async def _pull(store: _Bare, spec: dict[str, Any], io: Any) -> tuple[int, int]:
    import anyio
    import anyio.to_thread

    dest = spec["root"]
    prefix = spec["prefix"]
    index = json.loads(await store.get_bytes(f"{prefix}/{INDEX}"))
    part = spec["part"]
    ranged = spec["store"] == "gs"  # etcetera sends ranges only where they are cheap
    jobs = anyio.Semaphore(spec["concurrency"])
    rels = [b[0] for b in index["blobs"]] + [m[0] for p in index["packs"] for m in p[2]]

    def folders() -> None:
        for d in sorted({os.path.dirname(os.path.join(dest, r)) for r in rels}):
            os.makedirs(d, exist_ok=True)

    await anyio.to_thread.run_sync(folders)

    async def blob(rel: str, size: int) -> None:
        path = os.path.join(dest, rel)
        fd = await anyio.to_thread.run_sync(
            lambda: os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), limiter=io
        )

        async def fetch(offset: int, length: int, whole: bool) -> None:
            pos = offset
            async with store.get(f"{prefix}/{rel}", offset, length, whole) as blocks:
                async for block in blocks:
                    await anyio.to_thread.run_sync(os.pwrite, fd, block, pos, limiter=io)
                    pos += len(block)

        try:
            async with jobs:
                if ranged and size > part:
                    async with anyio.create_task_group() as tg:
                        for offset in range(0, size, part):
                            tg.start_soon(fetch, offset, min(part, size - offset), False)
                else:
                    await fetch(0, size, True)
        finally:
            os.close(fd)

    async def pack(key: str, size: int, members: list[list[Any]]) -> None:
        buf = bytearray()
        base = 0
        idx = 0

        async def flush() -> None:
            nonlocal buf, base, idx
            ready: list[tuple[str, memoryview]] = []
            view = memoryview(buf)
            consumed = 0
            while idx < len(members):
                rel, offset, length = members[idx]
                if offset + length > base + len(buf):
                    break
                lo = offset - base
                ready.append((rel, view[lo : lo + length]))
                consumed = lo + length
                idx += 1
            if ready:
                await anyio.to_thread.run_sync(_write_files, dest, ready, limiter=io)
            ready.clear()
            del view
            buf, base = buf[consumed:], base + consumed

        async with jobs, store.get(key, 0, size, True) as blocks:
            async for block in blocks:
                buf += block
                if len(buf) >= PACK_FLUSH:
                    await flush()
        await flush()

    async with anyio.create_task_group() as tg:
        for rel, size in index["blobs"]:
            tg.start_soon(blob, rel, size)
        for key, size, members in index["packs"]:
            tg.start_soon(pack, key, size, members)
    return len(rels), sum(s for _, s in index["blobs"]) + sum(p[1] for p in index["packs"])


def _cpu_now() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _child_async(spec: dict[str, Any]) -> dict[str, Any]:
    import anyio

    at_start = _cpu_now()  # the interpreter and anyio; the SDK is imported by open()
    limit = anyio.Semaphore(spec["concurrency"])
    io = anyio.CapacityLimiter(spec["io_threads"])
    store: _S3 | _GCS = (_S3 if spec["store"] == "s3" else _GCS)(spec, limit, io)
    await store.open()
    cpu0, t0 = _cpu_now(), time.perf_counter()
    try:
        if spec["op"] == "push":
            files, size = await _push(store, spec, io)
        else:
            files, size = await _pull(store, spec, io)
    finally:
        await store.aclose()
    return {
        "op": spec["op"],
        "store": spec["store"],
        "files": files,
        "bytes": size,
        "requests": store.requests,
        "transfer_wall_s": time.perf_counter() - t0,
        "transfer_cpu_s": _cpu_now() - cpu0,
        "cpu_at_start_s": at_start,
        "cpu_before_transfer_s": cpu0,
        "etcetera_imported": any(m == "etcetera" or m.startswith("etcetera.") for m in sys.modules),
    }


def child_main(spec_json: str) -> int:
    """The measured child: one push or pull, then a JSON line with its own figures."""
    import anyio

    spec = json.loads(spec_json)
    report = anyio.run(_child_async, spec)
    print(json.dumps(report))
    if report["etcetera_imported"]:
        print("etcetera was imported: the ceiling must not run etcetera code", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
