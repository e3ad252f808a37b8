"""One session per operation: exactly one Transport, whose statistics count every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import etcetera as etc
from etcetera.backends.base import Backend
from etcetera.engine import transport
from etcetera.engine.config import TransferConfig
from etcetera.format import layout
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio


def _count_transports(monkeypatch: pytest.MonkeyPatch) -> list[Backend]:
    """Every Transport built from now on, by the back-end it was built over."""
    built: list[Backend] = []
    real = transport.Transport.__init__

    def counting(self: transport.Transport, backend: Backend, config: TransferConfig) -> None:
        built.append(backend)
        real(self, backend, config)

    monkeypatch.setattr(transport.Transport, "__init__", counting)
    return built


def _sample(root: Path) -> Path:
    files = {f"data/train/{i:03d}.txt": bytes([i]) * (100 + i) for i in range(60)}
    files["data/test/big.bin"] = b"b" * (3 << 20)
    files["meta.json"] = b'{"k": 1}'
    return write_tree(root, files)


async def test_every_operation_builds_one_transport(
    repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = repo.config(home=tmp_path / "home", pack_size=2048, pack_threshold=1 << 20)
    await etc.aregister(_sample(tmp_path / "s"), config=cfg)
    reader = repo.config(home=tmp_path / "reader")
    operations: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("push", lambda: etc.apush("s", config=cfg)),
        ("no-op push", lambda: etc.apush("s", config=cfg)),
        ("pull", lambda: etc.apull("s", config=reader)),
        ("partial pull", lambda: etc.apull("s", config=reader, partitions=["test"], force=True)),
        ("pull --to", lambda: etc.apull("s", config=reader, to=tmp_path / "ci")),
        ("dry run", lambda: etc.apull("s", config=reader, dry_run=True)),
        ("info --remote", lambda: etc.ainfo("s", config=reader, remote=True)),
        ("verify", lambda: etc.averify("s", config=reader)),
        ("list --remote", lambda: etc.alist_remote(config=reader)),
        ("gc", lambda: etc.agc(config=reader, dry_run=True)),
    ]
    for what, operation in operations:
        built = _count_transports(monkeypatch)
        await operation()
        assert len(built) == 1, f"{what} built {len(built)} transports"
        monkeypatch.undo()


async def test_pull_statistics_count_the_record_and_manifest_reads(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    # Stored as they are: a reader of framed objects skips their seek tables (the piece
    # lists the frames), so it reads fewer bytes than the store holds.
    cfg = file_repo.config(
        home=tmp_path / "home", pack_size=2048, pack_threshold=1 << 20, compression=0
    )
    await etc.aregister(_sample(tmp_path / "s"), config=cfg)
    await etc.apush("s", config=cfg)
    store = Path(file_repo.url.removeprefix("file://"))
    objects_dir, manifests_dir = store / layout.OBJECTS, store / layout.MANIFESTS

    def size_of(folder: str) -> int:
        return sum(p.stat().st_size for p in (store / folder).rglob("*") if p.is_file())

    objects = size_of(layout.OBJECTS)
    manifests, records = size_of(layout.MANIFESTS), size_of(layout.REFS)
    assert objects and manifests and records
    pulled = await etc.apull("s", config=file_repo.config(home=tmp_path / "fresh"))
    # A fresh home has no manifest cache: the one transport read the version record,
    # the manifest's root and pieces, and every object, and counted all of it.
    assert pulled.stats.bytes_received == objects + manifests + records
    assert pulled.stats.files_downloaded == pulled.downloaded == pulled.files
    pieces = sum(1 for _ in manifests_dir.rglob("*.piece"))
    # A listing of the refs, the record, the root, each piece, and at least one per object.
    assert pulled.stats.requests >= 3 + pieces + sum(
        1 for p in objects_dir.rglob("*") if p.is_file()
    )
