"""A push interrupted mid-file continues its unfinished upload: it sends only the missing parts.

The killed push is a real ``python -m etcetera push`` process, SIGKILLed once some parts
of its one large file are stored; the next push counts what it keeps and what it sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.backends.base import Backend, PartRef
from etcetera.engine.transport import Transport
from etcetera.engine.unfinished import same_part
from etcetera.errors import AccessDeniedError
from etcetera.format import layout
from etcetera.format.hashing import CHUNK_SIZE, digest_bytes
from tests.fixtures_gcs import FakeGCS
from tests.fixtures_s3 import MotoServer
from tests.support import RepoSpec, cli_env, kill_etc_when, snapshot, write_tree

PART = CHUNK_SIZE  # parts are whole chunks: the smallest part there is
#: What a push sends besides its objects' bytes: the small file, the manifest, the ref.
SLACK = 64 * 1024
#: With a bandwidth limit a ``file://`` push sends parts, as to a remote store, instead of
#: copying each file into the repository in the kernel: resuming is the engine's logic,
#: the same on every store, and a folder is the quickest store to test it on.
PACED = {"bandwidth_limit": 1 << 40}


def _stored_parts(spec: RepoSpec, moto: MotoServer | None, fake: FakeGCS | None) -> list[int]:
    """Sizes of the parts stored so far, in every unfinished upload, straight from the store."""
    if spec.url.startswith("file://"):
        uploads = Path(spec.url.removeprefix("file://")) / ".uploads"
        return [p.stat().st_size for p in uploads.glob("*/*") if p.name.isdigit()]
    bucket = spec.url.split("://", 1)[1]
    if moto is not None:
        client = moto.client()
        try:
            sizes: list[int] = []
            for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                listed = client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
                sizes += [int(p["Size"]) for p in listed.get("Parts", [])]
            return sizes
        finally:
            client.close()
    assert fake is not None
    query = urllib.parse.urlencode({"prefix": layout.UPLOADS, "fields": "items(name,size)"})
    url = f"{fake.root}/storage/v1/b/{bucket}/o?{query}"
    with urllib.request.urlopen(url, timeout=10) as response:
        items = json.load(response).get("items", [])
    return [int(i["size"]) for i in items if i["name"].rsplit("/", 1)[-1].startswith("p")]


def _settled_parts(spec: RepoSpec, moto: MotoServer | None, fake: FakeGCS | None) -> list[int]:
    """Stored parts once they stop changing: a server may still store a body it had."""
    sizes = _stored_parts(spec, moto, fake)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = _stored_parts(spec, moto, fake)
        if sorted(again) == sorted(sizes):
            break
        sizes = again
    return sizes


def _uploads(backend: Backend) -> list[str]:
    async def go() -> list[str]:
        try:
            return [u.key async for u in backend.uploads("")]
        finally:
            await backend.aclose()

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "s3", "gcs"])
def test_a_push_killed_mid_file_sends_only_the_missing_parts(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    spec: RepoSpec = request.getfixturevalue(f"{kind}_repo")
    moto: MotoServer | None = request.getfixturevalue("moto_server") if kind == "s3" else None
    fake: FakeGCS | None = request.getfixturevalue("fake_gcs") if kind == "gcs" else None
    rng = random.Random(13)
    parts = 5
    big = rng.randbytes(parts * PART - 12345)
    root = write_tree(tmp_path / "sample", {"data/train/big.bin": big, "README": b"a large file\n"})
    home = tmp_path / "home"
    cfg = spec.config(home=home, part_size=PART, **PACED)
    etc.register(root, config=cfg)
    env = cli_env(spec, home)
    env.update({"ETC_CONCURRENCY": "2", "ETC_PART_SIZE": str(PART)})
    # A part a second: the pacing is paid before each part goes, so parts land one by one.
    env["ETC_BANDWIDTH_LIMIT"] = str(PART)
    status, err = kill_etc_when(
        env, ["push", "sample"], lambda: len(_stored_parts(spec, moto, fake)) >= 2
    )
    assert status == -signal.SIGKILL, f"the push ended before the kill: {err!r}"
    stored = _settled_parts(spec, moto, fake)
    assert 2 <= len(stored) < parts, "the kill did not land mid-file"
    assert etc.ls(config=cfg, remote=True) == []

    resumed = etc.push("sample", config=cfg)
    kept = resumed.stats.bytes_resumed
    assert kept == sum(stored)
    missing = len(big) - kept
    assert missing <= resumed.stats.bytes_sent <= missing + SLACK
    assert _uploads(spec.backend()) == []  # the upload was completed, not left beside another
    pulled = etc.pull("sample", config=spec.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(root)


async def _leave_upload(spec: RepoSpec, key: str, parts: dict[int, bytes]) -> None:
    """What a killed push leaves: an unfinished upload of ``key`` holding ``parts``."""
    backend = spec.backend()
    try:
        upload = await backend.upload(key)
        for number, data in parts.items():
            await upload.put_part(number, data)
    finally:
        await backend.aclose()


def _big_tree(tmp_path: Path, size: int) -> tuple[Path, bytes, str]:
    big = random.Random(size).randbytes(size)
    root = write_tree(tmp_path / "sample", {"data/train/big.bin": big})
    return root, big, layout.object_key(digest_bytes(big).hex)


def test_a_stored_part_with_other_bytes_is_sent_again(repo: RepoSpec, tmp_path: Path) -> None:
    root, big, key = _big_tree(tmp_path, 3 * PART + 4096)
    wrong = bytes(b ^ 0xFF for b in big[PART : PART + 4096]) + big[PART + 4096 : 2 * PART]
    asyncio.run(_leave_upload(repo, key, {1: big[:PART], 2: wrong, 3: big[2 * PART : 3 * PART]}))
    cfg = repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    result = etc.push("sample", config=cfg)
    assert result.stats.bytes_resumed == 2 * PART  # parts 1 and 3
    assert PART + 4096 <= result.stats.bytes_sent <= PART + 4096 + SLACK  # part 2 and the tail
    assert _uploads(repo.backend()) == []
    pulled = etc.pull("sample", config=repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(root)


def test_an_upload_made_with_another_part_size_is_aborted(repo: RepoSpec, tmp_path: Path) -> None:
    root, big, key = _big_tree(tmp_path, 3 * PART + 1)
    asyncio.run(_leave_upload(repo, key, {1: big[: 2 * PART]}))  # parts of two chunks
    cfg = repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    result = etc.push("sample", config=cfg)
    assert result.stats.bytes_resumed == 0
    assert len(big) <= result.stats.bytes_sent <= len(big) + SLACK
    assert _uploads(repo.backend()) == []  # aborted, then a fresh upload completed
    pulled = etc.pull("sample", config=repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(root)


def test_a_changed_file_is_not_completed_from_old_parts(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """Parts of the file as it was are not the new file's: another key, a fresh upload."""
    root, big, key = _big_tree(tmp_path, 2 * PART + 10)
    asyncio.run(_leave_upload(file_repo, key, {1: big[:PART]}))
    changed = big[:PART] + b"x" * (PART + 10)
    (root / "data/train/big.bin").write_bytes(changed)
    cfg = file_repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    result = etc.push("sample", config=cfg)
    assert result.stats.bytes_resumed == 0
    assert _uploads(file_repo.backend()) == [key]  # another object's upload: left for gc
    pulled = etc.pull("sample", config=file_repo.config(home=tmp_path / "home2"))
    assert (pulled.location / "data/train/big.bin").read_bytes() == changed


def test_a_stray_write_beside_the_object_is_left_and_the_upload_resumed(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """A completion killed mid-copy leaves its temporary file beside the object: not an upload."""
    root, big, key = _big_tree(tmp_path, 2 * PART + 10)
    asyncio.run(_leave_upload(file_repo, key, {1: big[:PART]}))
    target = Path(file_repo.url.removeprefix("file://")) / key
    target.parent.mkdir(parents=True)
    stray = target.with_name(f".{target.name}.0123456789ab.tmp")
    stray.write_bytes(big[:1000])
    assert sorted(_uploads(file_repo.backend())) == [key, key]  # the upload and the stray
    cfg = file_repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    result = etc.push("sample", config=cfg)
    assert result.stats.bytes_resumed == PART
    assert stray.exists()  # left for gc
    pulled = etc.pull("sample", config=file_repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(root)


def test_a_store_that_will_not_list_uploads_still_takes_the_push(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, big, key = _big_tree(tmp_path, 2 * PART + 10)
    asyncio.run(_leave_upload(file_repo, key, {1: big[:PART]}))
    asked: list[str] = []

    async def refused(self: Transport, prefix: str) -> list[Any]:
        asked.append(prefix)
        raise AccessDeniedError("not allowed to list uploads")

    monkeypatch.setattr(Transport, "uploads", refused)
    cfg = file_repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    result = etc.push("sample", config=cfg)
    assert asked == [layout.OBJECTS]
    assert result.stats.bytes_resumed == 0
    assert len(big) <= result.stats.bytes_sent


def test_uploads_are_listed_once_and_only_for_large_files(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[str] = []
    real = Transport.uploads

    async def counted(self: Transport, prefix: str) -> Any:
        listings.append(prefix)
        return await real(self, prefix)

    monkeypatch.setattr(Transport, "uploads", counted)
    files = {f"data/train/small{i}.bin": os.urandom(1000) for i in range(20)}
    root = write_tree(tmp_path / "sample", files)
    cfg = file_repo.config(home=tmp_path / "home", part_size=PART, **PACED)
    etc.register(root, config=cfg)
    etc.push("sample", config=cfg)
    assert listings == []  # packs only: nothing to resume, nothing asked
    for i in range(3):
        (root / f"data/train/big{i}.bin").write_bytes(os.urandom(PART + 1 + i))
    etc.push("sample", config=cfg, force=True)
    assert listings == [layout.OBJECTS]  # three large files, one listing


@pytest.mark.parametrize(
    ("checksums", "same"),
    [
        ({"crc32": f"{zlib.crc32(b'part'):08x}"}, True),
        ({"crc32": f"{zlib.crc32(b'trap'):08x}"}, False),
        ({"md5": "f4c9385f1902f7334b00b9b4ecd164de"}, True),  # md5(b"part")
        ({"md5": "0" * 32}, False),
        ({"crc32c": "0" * 8}, False),  # not one a push computes: cannot be checked
        ({}, False),
    ],
)
def test_a_part_is_kept_only_on_a_checksum_that_matches(
    checksums: dict[str, str], same: bool
) -> None:
    assert same_part(b"part", PartRef(1, "", checksums=checksums).checksums) is same
