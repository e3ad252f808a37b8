"""Datasets of etcetera 0.0.x (one NAME.tgz at the repository root) stay readable, safely."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import etcetera as etc
from tests.support import RepoSpec, snapshot, write_tree


def _tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _legacy_archive(root: Path) -> bytes:
    """The way etcetera 0.0.12 packed a dataset: each top-level entry added by name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, child.name)
    return buf.getvalue()


@pytest.mark.anyio
@pytest.mark.parametrize("repo", ["file", "s3", "gcs"], indirect=True)
async def test_legacy_dataset_is_listed_and_pulled(repo: RepoSpec, tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "old",
        {"data/train/a.xml": b"<a/>", "data/test/b.xml": b"<b/>", "meta.json": b'{"v": 0}'},
        {"data/train/a.xml": 0o755},
    )
    backend = repo.backend()
    try:
        await backend.put("old.tgz", _legacy_archive(src))
    finally:
        await backend.aclose()
    cfg = repo.config(home=tmp_path / "home")
    found = await etc.api.alist_remote(config=cfg)
    assert [(d.name, d.legacy) for d in found] == [("old", True)]
    pulled = await etc.apull("old", config=cfg)
    assert pulled.version == 0
    assert snapshot(pulled.location) == snapshot(src)
    again = await etc.apull("old", config=cfg)
    assert again.noop
    ds = await etc.adataset("old", config=cfg)
    assert ds.meta == {"v": 0}


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


HOSTILE: dict[str, list[tuple[tarfile.TarInfo, bytes | None]]] = {
    "absolute": [_file("/tmp/evil", b"x")],
    "dotdot": [_file("../evil", b"x")],
    "nested-dotdot": [_file("data/train/../../../evil", b"x")],
    "symlink": [_link("data/train/link", "/etc/passwd", tarfile.SYMTYPE)],
    "hardlink": [_link("data/train/hard", "/etc/passwd", tarfile.LNKTYPE)],
    "device": [_link("data/train/dev", "", tarfile.CHRTYPE)],
    "fifo": [_link("data/train/fifo", "", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_legacy_archive_is_refused(tmp_path: Path, kind: str) -> None:
    repo = tmp_path / "repo"
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [_file("data/train/ok.txt", b"ok")]
    write_tree(repo, {"evil.tgz": _tgz(members + HOSTILE[kind])})
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(etc.ManifestError, match="refusing the archive"):
        etc.pull("evil", config=etc.Config(f"file://{repo}", home=tmp_path / "home"))
    after = sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "home"))
    assert after == before
    assert not (tmp_path / "home" / "evil").exists()
    assert not (tmp_path / "evil").exists()
