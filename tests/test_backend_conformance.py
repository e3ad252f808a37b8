"""One suite of back-end protocol tests, run against every kind of repository."""

from __future__ import annotations

import hashlib
import os
import secrets
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import TypeVar, cast

import pytest

from etcetera.backends.base import Backend, LocalObjects, ObjectInfo, PartRef, Upload
from etcetera.errors import (
    BackendError,
    ObjectNotFoundError,
    PreconditionFailedError,
    RepositoryNotFoundError,
)
from etcetera.urls import parse_url
from tests.support import RepoSpec

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
T = TypeVar("T")


#: What s3rver does not do (each marked a strict xfail: if s3rver learns it, we hear).
S3RVER_LACKS = {
    "test_create_only_write": "s3rver ignores If-None-Match: * (etcetera probes for it)",
    "test_list_by_prefix": "s3rver lists keys in its folders' order, not in key order",
    "test_multipart_upload": "s3rver lists no multipart uploads (it lacks the call)",
    "test_parts_are_listed_after_put": "s3rver does not implement ListParts",
    "test_parts_are_listed_with_checksums_of_their_bytes": "s3rver does not implement ListParts",
    "test_an_upload_is_found_again_by_key_and_resumed": "no ListMultipartUploads in s3rver",
    "test_abort_removes_the_upload": "s3rver does not implement ListMultipartUploads",
}


@pytest.fixture(params=["file", "s3", "gcs", "s3rver"])
def repo(request: pytest.FixtureRequest) -> RepoSpec:
    """Every kind of repository, and s3rver: an S3 that is not moto."""
    spec: RepoSpec = request.getfixturevalue(f"{request.param}_repo")
    lacks = S3RVER_LACKS.get(request.node.originalname)
    if request.param == "s3rver" and lacks:
        request.applymarker(pytest.mark.xfail(reason=lacks, strict=True))
    return spec


@pytest.fixture
async def backend(repo: RepoSpec) -> AsyncIterator[Backend]:
    opened = repo.backend()
    assert isinstance(opened, Backend)
    yield opened
    await opened.aclose()


def closing(items: AsyncIterator[T]) -> aclosing[AsyncGenerator[T, None]]:
    """Close a back-end's iterator on exit (the protocol types async generators loosely)."""
    return aclosing(cast(AsyncGenerator[T, None], items))


async def read(backend: Backend, key: str, offset: int = 0, length: int | None = None) -> bytes:
    async with closing(backend.stream(key, offset, length)) as blocks:
        return b"".join([block async for block in blocks])


async def listed(backend: Backend, prefix: str) -> list[ObjectInfo]:
    async with closing(backend.list(prefix)) as items:
        return [item async for item in items]


async def uploads(backend: Backend, prefix: str) -> list[Upload]:
    async with closing(backend.uploads(prefix)) as items:
        return [item async for item in items]


async def parts(upload: Upload) -> list[PartRef]:
    async with closing(upload.parts()) as items:
        return [item async for item in items]


def same(refs: list[PartRef]) -> list[tuple[int, str, int | None]]:
    """What every store reports of a part in a listing as on upload (S3's checksum: not moto)."""
    return [(r.number, r.etag, r.size) for r in refs]


def missing_repo(spec: RepoSpec) -> RepoSpec:
    """The same kind of repository, on the same server, where nothing exists."""
    url = parse_url(spec.url)
    if url.scheme == "file":
        return RepoSpec(f"file://{url.path / 'does-not-exist'}", spec.settings)
    return RepoSpec(
        f"{spec.url.split('://')[0]}://etc-missing-{secrets.token_hex(6)}", spec.settings
    )


async def test_put_head_stream_roundtrip(backend: Backend) -> None:
    data = os.urandom(300_000)
    await backend.put("ds/v1/blob.bin", data)
    info = await backend.head("ds/v1/blob.bin")
    assert info is not None
    assert (info.key, info.size) == ("ds/v1/blob.bin", len(data))
    assert await read(backend, "ds/v1/blob.bin") == data


async def test_put_replaces(backend: Backend) -> None:
    await backend.put("k", b"first version")
    await backend.put("k", b"second")
    assert await read(backend, "k") == b"second"
    info = await backend.head("k")
    assert info is not None
    assert info.size == 6


async def test_empty_object(backend: Backend) -> None:
    await backend.put("empty", b"")
    info = await backend.head("empty")
    assert info is not None
    assert info.size == 0
    assert await read(backend, "empty") == b""


async def test_ranged_stream(backend: Backend) -> None:
    data = os.urandom(3 * MiB + 123)
    await backend.put("big", data)
    size = len(data)
    cases: list[tuple[int, int | None]] = [
        (0, 10),
        (5, 1),
        (MiB - 1, 2),  # across a block boundary
        (MiB, 2 * MiB + 5),
        (size - 1, 1),
        (size - 5, None),
        (100, None),
        (0, size),
        (0, None),
        (5, 0),  # nothing, not the whole object
    ]
    for offset, length in cases:
        got = await read(backend, "big", offset, length)
        want = data[offset:] if length is None else data[offset : offset + length]
        assert got == want, (offset, length)


async def test_stream_blocks_are_bounded(backend: Backend) -> None:
    data = os.urandom(3 * MiB)
    await backend.put("blocks", data)
    async with closing(backend.stream("blocks")) as blocks:
        sizes = [len(block) async for block in blocks]
    assert sum(sizes) == len(data)
    assert len(sizes) >= 2
    assert max(sizes) <= 2 * MiB


async def test_early_close_of_a_stream(backend: Backend) -> None:
    data = os.urandom(3 * MiB)
    await backend.put("partial", data)
    async with closing(backend.stream("partial")) as blocks:
        first = await anext(blocks)
    assert data.startswith(first)
    assert first
    # the back-end still works after a stream was abandoned half-way
    assert await read(backend, "partial", 10, 20) == data[10:30]


async def test_stream_missing_key(backend: Backend) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope"):
        await read(backend, "dir/nope")


async def test_head_missing_key(backend: Backend) -> None:
    assert await backend.head("dir/nope") is None


async def test_create_only_write(backend: Backend) -> None:
    if not backend.capabilities.conditional_create:
        pytest.skip("store does not enforce create-only writes")
    await backend.put("versions/1", b"winner", if_absent=True)
    with pytest.raises(PreconditionFailedError):
        await backend.put("versions/1", b"loser", if_absent=True)
    assert await read(backend, "versions/1") == b"winner"


async def test_list_by_prefix(backend: Backend) -> None:
    # "ds.txt" sorts before "ds/..." (a folder cannot hold both "ds" and "ds/a")
    keys = ["ds/a/2", "ds/a/1", "ds/ab", "ds/b/1", "other/x", "ds.txt"]
    for i, key in enumerate(keys):
        await backend.put(key, b"x" * i)
    got = await listed(backend, "ds/a")
    assert [o.key for o in got] == ["ds/a/1", "ds/a/2", "ds/ab"]
    assert [o.size for o in got] == [1, 0, 2]
    everything = [o.key for o in await listed(backend, "")]
    assert everything == sorted(keys)
    assert [o.key for o in await listed(backend, "ds/b/")] == ["ds/b/1"]
    assert await listed(backend, "nothing/") == []


async def test_unusual_key_characters(backend: Backend) -> None:
    key = "dir/with space+plus=é%20(1).bin"
    await backend.put(key, b"odd")
    assert await read(backend, key) == b"odd"
    assert [o.key for o in await listed(backend, "dir/")] == [key]


async def test_delete(backend: Backend) -> None:
    await backend.put("gone", b"x")
    await backend.put("kept", b"y")
    await backend.delete("gone")
    assert await backend.head("gone") is None
    assert [o.key for o in await listed(backend, "")] == ["kept"]
    await backend.delete("gone")  # missing is fine
    await backend.delete("never/existed")


async def test_multipart_upload(backend: Backend) -> None:
    part = max(5 * MiB, backend.capabilities.min_part_size)
    data = os.urandom(2 * part + 1234)
    chunks = [data[:part], data[part : 2 * part], data[2 * part :]]
    upload = await backend.upload("ds/big.bin")
    assert isinstance(upload, Upload)
    assert upload.key == "ds/big.bin"
    assert [u.upload_id for u in await uploads(backend, "ds/")] == [upload.upload_id]
    # out of order, as a concurrent engine would
    refs = [await upload.put_part(n, chunks[n - 1]) for n in (3, 1, 2)]
    assert [r.size for r in refs] == [len(chunks[2]), len(chunks[0]), len(chunks[1])]
    await upload.complete(refs)
    info = await backend.head("ds/big.bin")
    assert info is not None
    assert info.size == len(data)
    assert await read(backend, "ds/big.bin") == data
    assert await uploads(backend, "") == []


async def test_complete_assembles_in_number_order(backend: Backend) -> None:
    part = max(5 * MiB, backend.capabilities.min_part_size)
    chunks = [bytes([n]) * part for n in (1, 2)] + [b"tail"]
    upload = await backend.upload("ds/ordered.bin")
    refs = [await upload.put_part(n, chunks[n - 1]) for n in (2, 3, 1)]
    await upload.complete(refs)  # given in the order they were put, not by number
    assert await read(backend, "ds/ordered.bin") == b"".join(chunks)


async def test_parts_are_listed_after_put(backend: Backend) -> None:
    upload = await backend.upload("ds/listed.bin")
    assert await parts(upload) == []
    refs = {n: await upload.put_part(n, bytes([n]) * (1000 + n)) for n in (2, 1, 5)}
    assert same(await parts(upload)) == same([refs[n] for n in (1, 2, 5)])
    again = await upload.put_part(2, b"replaced")  # a part put again replaces it
    assert same(await parts(upload)) == same([refs[1], again, refs[5]])
    await upload.abort()


def checks_out(ref: PartRef, data: bytes) -> bool:
    """Whether a listed part's checksums (those a push can compute) say it holds ``data``."""
    sums = {"crc32": f"{zlib.crc32(data):08x}", "md5": hashlib.md5(data).hexdigest()}
    known = {k: v for k, v in ref.checksums.items() if k in sums}
    return bool(known) and all(sums[k] == v for k, v in known.items())


async def test_parts_are_listed_with_checksums_of_their_bytes(backend: Backend) -> None:
    upload = await backend.upload("ds/summed.bin")
    first, second = os.urandom(3000), os.urandom(4000)
    await upload.put_part(1, first)
    await upload.put_part(2, second)
    listed = await parts(upload)
    assert [checks_out(p, d) for p, d in zip(listed, (first, second), strict=True)] == [True] * 2
    replaced = os.urandom(3000)  # same size, other bytes
    await upload.put_part(1, replaced)
    listed = await parts(upload)
    assert not checks_out(listed[0], first)
    assert checks_out(listed[0], replaced)
    await upload.abort()


async def test_an_upload_is_found_again_by_key_and_resumed(
    backend: Backend, repo: RepoSpec
) -> None:
    part = max(5 * MiB, backend.capabilities.min_part_size)
    chunks = [os.urandom(part), os.urandom(part), b"the end"]
    first = await backend.upload("ds/resumed.bin")
    await first.put_part(1, chunks[0])
    await first.put_part(3, chunks[2])
    other = await backend.upload("ds/resumed.bin.other")  # same prefix, another key
    # Another process (another back-end object) finds it by its key and carries on.
    later = repo.backend()
    try:
        found = [u for u in await uploads(later, "ds/resumed.bin") if u.key == "ds/resumed.bin"]
        assert [u.upload_id for u in found] == [first.upload_id]
        upload = found[0]
        assert upload.initiated is not None
        have = await parts(upload)
        assert [p.number for p in have] == [1, 3]
        assert [p.size for p in have] == [part, len(chunks[2])]
        refs = [*have, await upload.put_part(2, chunks[1])]
        await upload.complete(refs)
        assert await read(later, "ds/resumed.bin") == b"".join(chunks)
    finally:
        await later.aclose()
    assert [u.key for u in await uploads(backend, "")] == ["ds/resumed.bin.other"]
    await other.abort()


async def test_abort_removes_the_upload(backend: Backend) -> None:
    upload = await backend.upload("ds/aborted.bin")
    await upload.put_part(1, b"a" * 1024)
    found = await uploads(backend, "ds/")
    assert [(u.key, u.upload_id) for u in found] == [("ds/aborted.bin", upload.upload_id)]
    assert await uploads(backend, "elsewhere/") == []
    await found[0].abort()  # the listed object aborts as well as the one that started it
    assert await uploads(backend, "") == []
    assert await backend.head("ds/aborted.bin") is None
    assert [o.key for o in await listed(backend, "")] == []
    await upload.abort()  # already gone is fine
    with pytest.raises(BackendError):
        await upload.complete([PartRef(1, "x")])


async def test_check(backend: Backend, repo: RepoSpec) -> None:
    await backend.check()
    missing = missing_repo(repo).backend()
    try:
        with pytest.raises(RepositoryNotFoundError, match="does not exist"):
            await missing.check()
    finally:
        await missing.aclose()


async def test_only_a_folder_has_local_objects(backend: Backend, repo: RepoSpec) -> None:
    assert isinstance(backend, LocalObjects) is repo.url.startswith("file://")


async def test_a_folder_stages_publishes_and_copies_out(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """A local file copied in, published under a key, and a range of it copied out."""
    backend = file_repo.backend()
    assert isinstance(backend, LocalObjects)
    data = os.urandom(3 * MiB + 5)
    (tmp_path / "src").write_bytes(data)
    fd = os.open(tmp_path / "src", os.O_RDONLY)
    try:
        staged = await backend.stage("objects/", fd)
        again = await backend.stage("objects/", fd)
    finally:
        os.close(fd)
    await again.discard()
    assert not Path(again.path).exists()
    assert Path(staged.path).read_bytes() == data
    # Until published it is an unfinished write, which gc can find and remove.
    assert [u.key async for u in backend.uploads("objects/")] == ["objects/staged"]
    await staged.publish("objects/ab/abc")
    await staged.discard()  # once published: nothing to do
    info = await backend.head("objects/ab/abc")
    assert info is not None and info.size == len(data)
    out = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await backend.copy_out("objects/ab/abc", out, MiB, MiB + 5)
        assert os.pread(out, MiB + 5, MiB) == data[MiB : 2 * MiB + 5]
        # Refused from the object's size before a byte is copied.
        with pytest.raises(BackendError, match=f"holds {len(data)} bytes, not the"):
            await backend.copy_out("objects/ab/abc", out, len(data) - 1, 10)
        with pytest.raises(ObjectNotFoundError):
            await backend.copy_out("objects/no/such", out, 0, 1)
    finally:
        os.close(out)
