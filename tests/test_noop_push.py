"""A no-op push is told from the hash cache's memo of the last layout, not laid out again."""

from __future__ import annotations

from pathlib import Path

import pytest

import etcetera as etc
from etcetera.engine import push as engine_push
from etcetera.format.packing import LocalFile, build_manifest
from tests.support import RepoSpec, write_tree

pytestmark = pytest.mark.anyio


def _tree(root: Path) -> Path:
    files = {f"data/train/f{i:03d}.txt": b"%d" % i * (i + 1) for i in range(40)}
    files["README.md"] = b"hello"
    return write_tree(root, files)


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each layout of a push laid out."""
    calls: list[int] = []

    def counted(files: list[LocalFile], *args: object, **kwargs: object) -> object:
        calls.append(len(files))
        return build_manifest(files, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_push, "build_manifest", counted)
    return calls


async def _pushed(repo: RepoSpec, tmp_path: Path) -> tuple[Path, etc.PushResult]:
    src = _tree(tmp_path / "sample")
    cfg = repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    return src, await etc.apush("sample", config=cfg)


async def test_a_noop_push_lays_nothing_out(
    file_repo: RepoSpec, tmp_path: Path, layouts: list[int]
) -> None:
    _, first = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    assert layouts == [41]
    again = await etc.apush("sample", config=cfg)
    assert layouts == [41]
    assert again.noop and again.version == 1
    assert (again.manifest, again.files, again.size) == (first.manifest, first.files, first.size)


async def test_a_changed_tree_or_setting_is_laid_out_again(
    file_repo: RepoSpec, tmp_path: Path, layouts: list[int]
) -> None:
    src, _ = await _pushed(file_repo, tmp_path)
    cfg = file_repo.config(home=tmp_path / "home")
    (src / "data/train/f000.txt").write_bytes(b"changed")
    second = await etc.apush("sample", config=cfg, force=True)
    assert second.version == 2 and not second.noop
    assert len(layouts) == 2
    # Other packing, same files: laid out again, and the digest it gives is the one kept.
    packed = file_repo.config(home=tmp_path / "home", pack_size=64)
    third = await etc.apush("sample", config=packed, force=True)
    assert len(layouts) == 3 and third.version == 3
    assert (await etc.apush("sample", config=packed)).noop
    assert len(layouts) == 3
