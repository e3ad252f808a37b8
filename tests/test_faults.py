"""Faults injected on the wire, between etcetera and a real S3 or GCS emulator.

A :class:`~tests.faultproxy.FaultProxy` forwards every request to moto or
fake-gcs-server and, on a schedule, answers 500 / 503 SlowDown / 429, resets or
truncates a body, stalls past the read timeout or flips a byte. Whatever happens, a
push or pull either completes byte-identical or fails with an etcetera error; after a
failure the repository's latest version is the previous one or the new one (pulled
and compared), and the local dataset is the previous copy or the new one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.errors import EtceteraError, IntegrityError, TransientError
from tests.faultproxy import FaultKind, FaultProxy, Rule
from tests.fixtures_gcs import FakeGCS, gcs_settings
from tests.fixtures_s3 import MotoServer
from tests.support import RepoSpec, snapshot, write_tree

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * KiB
NAME = "sample"
# Object keys as they appear in a request target: /bucket/etc-v1/objects/.. on S3,
# ...?name=etc-v1%2Fobjects%2F.. (upload) or /o/etc-v1%2Fobjects%2F.. (read) on GCS.
OBJECTS = r"etc-v1(/|%2F)objects(/|%2F)"
REFS = r"etc-v1(/|%2F)refs(/|%2F)"
#: the read timeout of proxied repositories, and how long a stall lasts (well past it)
TIMEOUT = 1.0
STALL = 2.5

PUSH_FAULTS: list[FaultKind] = ["500", "503", "429", "lost", "stall", "reset-upload"]
PULL_FAULTS: list[FaultKind] = ["500", "503", "429", "reset", "truncate", "stall", "flip"]


class Proxied:
    """A repository reached through a fault proxy, and the same one reached directly."""

    def __init__(self, direct: RepoSpec, proxy: FaultProxy) -> None:
        self.direct = direct
        self.proxy = proxy
        self.via = RepoSpec(direct.url, {**direct.settings, "endpoint_url": proxy.url})
        self.s3 = direct.url.startswith("s3://")

    def object_writes(self, kind: FaultKind, **how: Any) -> Rule:
        """A rule for uploads of packs and blobs (on GCS: the unconditional uploads)."""
        if self.s3:
            return Rule(kind, "PUT", OBJECTS, **how)
        return Rule(kind, "POST", r"/o\?uploadType=multipart", **how)

    def ref_write(self, kind: FaultKind) -> Rule:
        """A rule for the one write that publishes a version (S3: the ref's PUT; GCS: the
        second create-only upload of a push, after the manifest's)."""
        if self.s3:
            return Rule(kind, "PUT", REFS)
        return Rule(kind, "POST", r"ifGenerationMatch=0", every=2)


@pytest.fixture(params=["s3", "gcs"])
def proxied(request: pytest.FixtureRequest) -> Iterator[Proxied]:
    """A fresh repository on moto or fake-gcs-server, behind its own fault proxy."""
    if request.param == "s3":
        server: MotoServer = request.getfixturevalue("moto_server")
        upstream, flavour = server.endpoint, "s3"
        spec: RepoSpec = request.getfixturevalue("s3_repo")
    else:
        fake: FakeGCS = request.getfixturevalue("fake_gcs")
        upstream, flavour = fake.root, "gcs"
        spec = request.getfixturevalue("gcs_repo")
        assert spec.settings == gcs_settings(fake)
    proxy = FaultProxy(upstream, flavour).start()  # type: ignore[arg-type]
    try:
        yield Proxied(spec, proxy)
    finally:
        proxy.stop()


def make_tree(root: Path, seed: int, big: int = 0) -> Path:
    """Forty small files in two partitions, a 200 KiB blob, and ``big`` random bytes."""
    rng = random.Random(seed)
    files = {
        f"data/{'train' if i % 3 else 'test'}/f{i:03d}.bin": rng.randbytes(rng.randrange(1, 3000))
        for i in range(40)
    }
    files["data/train/blob.bin"] = rng.randbytes(200 * KiB)
    files["meta.json"] = b'{"seed": %d}' % seed
    files["README.md"] = b"seed %d\n" % seed
    if big:
        files["data/test/big.bin"] = rng.randbytes(big)
    return write_tree(root, files)


def settings(**extra: Any) -> dict[str, Any]:
    """Small packs and blobs, a short read timeout, millisecond retries."""
    base: dict[str, Any] = {
        "pack_size": 8 * KiB,
        "pack_threshold": 64 * KiB,
        "concurrency": 4,
        "timeout": TIMEOUT,
        "retries": 6,
    }
    return {**base, **extra}


async def pull_fresh(spec: RepoSpec, home: Path, version: int | None = None) -> Path:
    """Pull ``NAME`` into a new home, straight from the server; return the folder."""
    result = await etc.apull(NAME, config=spec.config(home=home), version=version)
    return result.location


async def remote_latest(p: Proxied, tmp: Path, label: str) -> dict[str, tuple[str, int]]:
    """The repository's latest version, pulled without the proxy and snapshotted."""
    return snapshot(await pull_fresh(p.direct, tmp / f"check-{label}"))


async def published_v1(p: Proxied, tmp: Path, big: int = 0) -> tuple[Path, dict[str, Any]]:
    """Push a first version straight to the server; return the tree and its snapshot."""
    src = make_tree(tmp / NAME, 1, big)
    cfg = p.direct.config(home=tmp / "pusher", **settings())
    await etc.aregister(src, config=cfg)
    await etc.apush(NAME, config=cfg)
    return src, snapshot(src)


def change(src: Path) -> None:
    """Turn tree 1 into tree 2: change, add and remove files."""
    rng = random.Random(2)
    (src / "data/train/f001.bin").write_bytes(rng.randbytes(2500))
    (src / "data/test/f003.bin").unlink()
    (src / "data/test/new.bin").write_bytes(rng.randbytes(1500))
    (src / "data/train/blob.bin").write_bytes(rng.randbytes(220 * KiB))


def check_error(exc: BaseException) -> None:
    """A failure must be an etcetera error with a one-line message that says something."""
    assert isinstance(exc, EtceteraError), repr(exc)
    text = str(exc)
    assert text and len(text) < 2000, text


@pytest.mark.parametrize("kind", PUSH_FAULTS)
async def test_push_under_fault_publishes_whole_or_nothing(
    proxied: Proxied, tmp_path: Path, kind: FaultKind
) -> None:
    src, before = await published_v1(proxied, tmp_path)
    change(src)
    after = snapshot(src)
    proxied.proxy.inject(proxied.object_writes(kind, every=2, times=2, stall=STALL))
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings())
    error: BaseException | None = None
    try:
        pushed = await etc.apush(NAME, config=cfg, force=True)
    except Exception as exc:
        error = exc
    proxied.proxy.clear()
    assert proxied.proxy.fired(kind) >= 1, proxied.proxy.describe()
    remote = await remote_latest(proxied, tmp_path, "after")
    if error is None:
        assert pushed.version == 2
        assert remote == after
    else:
        check_error(error)
        assert remote in (before, after)
    # The next push completes and publishes the new tree whole.
    await etc.apush(
        NAME, config=proxied.direct.config(home=tmp_path / "pusher", **settings()), force=True
    )
    assert await remote_latest(proxied, tmp_path, "final") == after


@pytest.mark.parametrize("kind", PULL_FAULTS)
async def test_pull_under_fault_gives_new_copy_or_keeps_old(
    proxied: Proxied, tmp_path: Path, kind: FaultKind
) -> None:
    src, before = await published_v1(proxied, tmp_path)
    home = tmp_path / "puller"
    cfg = proxied.via.config(home=home, **settings())
    first = await etc.apull(NAME, config=cfg)
    assert snapshot(first.location) == before
    change(src)
    after = snapshot(src)
    await etc.apush(
        NAME, config=proxied.direct.config(home=tmp_path / "pusher", **settings()), force=True
    )

    proxied.proxy.inject(Rule(kind, "GET", OBJECTS, every=2, times=2, stall=STALL))
    error: BaseException | None = None
    try:
        pulled = await etc.apull(NAME, config=cfg)
    except Exception as exc:
        error = exc
    proxied.proxy.clear()
    assert proxied.proxy.fired(kind) >= 1, proxied.proxy.describe()
    ds = await etc.adataset(NAME, config=cfg)
    if error is None:
        assert pulled.version == 2
        assert snapshot(pulled.location) == after
        assert pulled.stats.retries >= 1 or kind == "flip"
    else:
        check_error(error)
        if kind == "flip":
            assert isinstance(error, IntegrityError), repr(error)
        assert ds.version == 1
        assert snapshot(ds.location) == before
    assert snapshot(first.location) == before  # the old copy is never touched
    again = await etc.apull(NAME, config=cfg)
    assert again.version == 2
    assert snapshot(again.location) == after


async def test_persistent_failure_on_push_leaves_the_previous_version(
    proxied: Proxied, tmp_path: Path
) -> None:
    src, before = await published_v1(proxied, tmp_path)
    change(src)
    proxied.proxy.inject(proxied.object_writes("503", times=0))
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings(retries=2))
    with pytest.raises(TransientError, match="gave up") as info:
        await etc.apush(NAME, config=cfg, force=True)
    check_error(info.value)
    proxied.proxy.clear()
    assert await remote_latest(proxied, tmp_path, "after") == before


async def test_persistent_failure_on_pull_keeps_the_local_copy(
    proxied: Proxied, tmp_path: Path
) -> None:
    src, before = await published_v1(proxied, tmp_path)
    home = tmp_path / "puller"
    cfg = proxied.via.config(home=home, **settings(retries=2))
    await etc.apull(NAME, config=cfg)
    change(src)
    await etc.apush(
        NAME, config=proxied.direct.config(home=tmp_path / "pusher", **settings()), force=True
    )
    proxied.proxy.inject(Rule("500", "GET", OBJECTS, times=0))
    with pytest.raises(TransientError) as info:
        await etc.apull(NAME, config=cfg)
    check_error(info.value)
    proxied.proxy.clear()
    ds = await etc.adataset(NAME, config=cfg)
    assert ds.version == 1
    assert snapshot(ds.location) == before


async def test_lost_answer_to_the_publishing_write(proxied: Proxied, tmp_path: Path) -> None:
    """The ref was written, but its answer was lost: the retry must not call it a race."""
    src, _ = await published_v1(proxied, tmp_path)
    change(src)
    after = snapshot(src)
    proxied.proxy.inject(proxied.ref_write("lost"))
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings())
    pushed = await etc.apush(NAME, config=cfg, force=True)
    assert proxied.proxy.fired("lost") == 1
    assert pushed.version == 2
    assert await remote_latest(proxied, tmp_path, "after") == after


async def test_byte_flipped_on_the_way_up(proxied: Proxied, tmp_path: Path) -> None:
    """A corrupted upload is refused by the store, or else by every pull of it.

    Uploads carry a CRC32 (S3) or CRC32C/MD5 (GCS) that the real services check. The
    emulators keep it without checking it, so there the corrupted object is stored:
    every pull of it must then fail with ``IntegrityError`` and write nothing, never
    hand out a wrong file.
    """
    src, before = await published_v1(proxied, tmp_path)
    change(src)
    after = snapshot(src)
    proxied.proxy.inject(proxied.object_writes("flip-upload", every=2, times=1))
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings())
    error: BaseException | None = None
    try:
        await etc.apush(NAME, config=cfg, force=True)
    except Exception as exc:
        error = exc
    proxied.proxy.clear()
    assert proxied.proxy.fired("flip-upload") == 1, proxied.proxy.describe()
    if error is not None:
        check_error(error)
    home = tmp_path / "check"
    try:
        remote = await remote_latest(proxied, home, "after")
    except IntegrityError:
        assert not (home / "check-after" / NAME).exists()
        return
    assert remote in (before, after)
    if error is None:
        assert remote == after


async def test_multipart_upload_under_faults(proxied: Proxied, tmp_path: Path) -> None:
    """Parts cut mid-body and a lost answer to the completing request: retried, no leftovers."""
    src, _ = await published_v1(proxied, tmp_path)
    change(src)
    (src / "data/test/big.bin").write_bytes(random.Random(3).randbytes(17 * MiB))
    after = snapshot(src)
    if proxied.s3:
        part = Rule("reset-upload", "PUT", r"partNumber=2$", times=1)
        complete = Rule("lost", "POST", r"\?uploadId=", times=1)
    else:
        part = Rule("reset-upload", "POST", r"/o\?uploadType=multipart", every=3, times=1)
        complete = Rule("lost", "POST", r"/compose", times=1)
    proxied.proxy.inject(part, complete)
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings(timeout=30))
    pushed = await etc.apush(NAME, config=cfg, force=True)
    proxied.proxy.clear()
    assert proxied.proxy.fired("reset-upload") == 1, proxied.proxy.describe()
    assert proxied.proxy.fired("lost") == 1, proxied.proxy.describe()
    assert pushed.version == 2
    assert await remote_latest(proxied, tmp_path, "after") == after
    backend = proxied.direct.backend()
    try:
        leftovers = [u async for u in backend.uploads("")]
    finally:
        await backend.aclose()
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(int(os.environ.get("FAULT_SEEDS", "3"))))
async def test_random_faults_on_every_request(proxied: Proxied, tmp_path: Path, seed: int) -> None:
    """Faults of every kind on any request (listings, refs, manifests, objects), by seed."""
    rng = random.Random(seed)
    kinds: list[FaultKind] = [k for k in PULL_FAULTS + PUSH_FAULTS if k != "flip-upload"]
    rules = [
        Rule(rng.choice(kinds), every=rng.randint(2, 7), times=rng.randint(1, 3), stall=STALL)
        for _ in range(3)
    ]
    src, before = await published_v1(proxied, tmp_path)
    home = tmp_path / "puller"
    cfg = proxied.via.config(home=home, **settings())
    await etc.apull(NAME, config=cfg)
    change(src)
    after = snapshot(src)

    proxied.proxy.inject(*rules)
    outcome: dict[str, BaseException | None] = {}
    for step in ("push", "pull"):
        try:
            if step == "push":
                pusher = proxied.via.config(home=tmp_path / "pusher", **settings())
                await etc.apush(NAME, config=pusher, force=True)
            else:
                await etc.apull(NAME, config=cfg)
            outcome[step] = None
        except Exception as exc:
            check_error(exc)
            outcome[step] = exc
    proxied.proxy.clear()
    assert proxied.proxy.fired() >= 1, (rules, proxied.proxy.describe())

    remote = await remote_latest(proxied, tmp_path, "after")
    assert remote == after if outcome["push"] is None else remote in (before, after)
    local = snapshot((await etc.adataset(NAME, config=cfg)).location)
    assert local in (before, after)
    if outcome["pull"] is None:
        assert local == remote


async def test_signed_requests_pass_the_proxy_unchanged(
    moto_iam_server: MotoServer, s3_iam_repo: RepoSpec, tmp_path: Path
) -> None:
    """The credential-checking moto verifies every SigV4 signature, which covers ``Host``
    and the signed headers: a push and a pull through the proxy pass, so the proxy forwards
    requests exactly."""
    proxy = FaultProxy(moto_iam_server.endpoint, "s3").start()
    try:
        via = RepoSpec(s3_iam_repo.url, {**s3_iam_repo.settings, "endpoint_url": proxy.url})
        src = make_tree(tmp_path / NAME, 1, big=9 * MiB)
        cfg = via.config(home=tmp_path / "pusher", **settings(timeout=30))
        await etc.aregister(src, config=cfg)
        await etc.apush(NAME, config=cfg)
        pulled = await etc.apull(NAME, config=via.config(home=tmp_path / "puller"))
        assert snapshot(pulled.location) == snapshot(src)
        assert any(e.method == "PUT" and "partNumber=" in e.target for e in proxy.log)
        # A wrong secret is refused through the proxy just the same.
        wrong = via.config(home=tmp_path / "pusher", aws_secret_access_key="wrong")
        with pytest.raises(etc.AccessDeniedError):
            await etc.apull(NAME, config=wrong.model_copy(update={"home": tmp_path / "x"}))
    finally:
        proxy.stop()


async def test_failed_push_resumes_with_only_the_missing_objects(
    proxied: Proxied, tmp_path: Path
) -> None:
    """Objects that went up before a push failed are not sent again by the next push."""
    src, before = await published_v1(proxied, tmp_path)
    change(src)
    (src / "data/test/more.bin").write_bytes(random.Random(4).randbytes(300 * KiB))
    cfg = proxied.via.config(home=tmp_path / "pusher", **settings(retries=0, concurrency=1))
    plan = await etc.apush(NAME, config=cfg, force=True, dry_run=True)
    # On GCS the push's in-progress marker is an unconditional upload too, before its objects.
    marker = 0 if proxied.s3 else 1
    rule = proxied.object_writes("503", every=2 + marker, times=0)
    proxied.proxy.inject(rule)
    with pytest.raises(etc.ThrottledError):
        await etc.apush(NAME, config=cfg, force=True)
    proxied.proxy.clear()
    landed = [
        e
        for e in proxied.proxy.log
        if e.fault is None and e.status == 200 and rule.applies(e.method, e.target)
    ][marker:]
    assert len(landed) >= 1
    assert await remote_latest(proxied, tmp_path, "failed") == before

    resumed = await etc.apush(NAME, config=cfg, force=True)
    total = resumed.stats.objects_sent + resumed.stats.objects_skipped
    missing_at_first = total - plan.stats.objects_skipped
    assert resumed.stats.objects_sent == missing_at_first - len(landed)
    assert resumed.bytes_to_send < plan.bytes_to_send
    assert await remote_latest(proxied, tmp_path, "resumed") == snapshot(src)


def test_guarantees_page_names_only_tests_that_exist() -> None:
    """Each guarantee in docs/guarantees.md points at a test function that is there."""
    import re

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "guarantees.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(tests/\w+\.py)::(\w+)", page))
    assert len(named) >= 30
    for path, name in sorted(named):
        source = (root / path).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name}"
