"""Paths near 4,096 characters, valid by the format, in a home whose own path is long.

Past ``PATH_MAX`` once the home's path is prefixed: the pull writes through directory
descriptors, the push and ``verify`` read the same way, and nothing is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.engine.localfs import remove_tree
from etcetera.engine.scan import HashCache
from etcetera.home import Home
from tests.support import RepoSpec

NAME = "deep"
_SEGMENT = 200  # bytes per folder name (NAME_MAX is 255)


def _long_path(prefix: str, total: int) -> str:
    """``prefix``, then folders of 200 characters and a file name: ``total`` characters."""
    parts = [prefix]
    left = total - len(prefix) - 1  # for what follows the prefix's "/"
    while left > 250:
        parts.append(f"{len(parts):03d}".ljust(_SEGMENT, "d"))
        left -= _SEGMENT + 1
    parts.append("f" * left)
    return "/".join(parts)


def _at(root: Path, rel: str, create: bool) -> tuple[int, str]:
    """The folder of ``rel`` under ``root`` opened by descriptor, and the file's name."""
    *folders, name = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for folder in folders:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, dir_fd=fd)
        child = os.open(folder, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd, name


def _write(root: Path, rel: str, data: bytes) -> None:
    fd, name = _at(root, rel, create=True)
    try:
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        with open(out, "wb") as fh:
            fh.write(data)
    finally:
        os.close(fd)


def _read(root: Path, rel: str) -> bytes:
    fd, name = _at(root, rel, create=False)
    try:
        with open(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


@pytest.fixture
def long_home(tmp_path: Path) -> Iterator[Path]:
    """A home about 600 characters from the root of the file system."""
    home = tmp_path
    while len(str(home)) < 600:
        home = home / ("h" * 120)
    home.mkdir(parents=True)
    yield home
    remove_tree(str(tmp_path / ("h" * 120)))  # (pytest's clean-up would warn on PATH_MAX)


DEEP = _long_path("data/t", 4090)
FILES = {DEEP: b"deep bytes " * 50, "data/t/a.txt": b"a", DEEP[:-5] + "other": b"x" * 70_000}


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_path_of_4090_characters_is_pushed_pulled_and_verified(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, long_home: Path
) -> None:
    """Pushed from, pulled into and verified in folders whose full paths pass PATH_MAX."""
    assert len(DEEP) == 4090 and len(str(long_home / NAME / DEEP)) > 4096
    spec: RepoSpec = request.getfixturevalue(f"{kind}_repo")
    src = long_home / "src" / NAME
    src.mkdir(parents=True)
    for rel, data in FILES.items():
        _write(src, rel, data)
    push_cfg = spec.config(home=long_home / "push-home")
    etc.register(src, NAME, config=push_cfg)
    assert etc.push(NAME, config=push_cfg).version == 1
    assert etc.push(NAME, config=push_cfg).noop

    cfg = spec.config(home=long_home / "home")
    pulled = etc.pull(NAME, config=cfg)
    for rel, data in FILES.items():
        assert _read(pulled.location, rel) == data
    assert etc.verify(NAME, config=cfg).ok
    # The pull left every digest in the hash cache, the deep file's too.
    cached = HashCache(Home(cfg.home).cache_file(pulled.location.resolve())).items()
    assert {source.rpartition("/data/")[2] for source, _ in cached} == {
        p.removeprefix("data/") for p in FILES
    }
    assert etc.pull(NAME, config=cfg).noop
    assert etc.status(NAME, config=cfg).up_to_date
    again = etc.pull(NAME, config=cfg, force=True)  # a new copy, from the local files
    assert again.stats.files_reused == len(FILES) and again.bytes_to_download == 0
    for rel, data in FILES.items():
        assert _read(again.location, rel) == data


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_large_file_at_a_long_path_is_cut_by_content_pushed_and_pulled(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, long_home: Path
) -> None:
    """``content_chunks``: the cut, the chunk objects' reads and copies, the delta pull."""
    import random

    spec: RepoSpec = request.getfixturevalue(f"{kind}_repo")
    src = long_home / "src" / NAME
    src.mkdir(parents=True)
    rng = random.Random(9)
    big = rng.randbytes(9 * 1024 * 1024)  # past the 8 MiB from which files are cut
    _write(src, DEEP, big)
    push_cfg = spec.config(home=long_home / "push-home", content_chunks=True)
    etc.register(src, NAME, config=push_cfg)
    assert etc.push(NAME, config=push_cfg).version == 1
    cfg = spec.config(home=long_home / "home")
    assert _read(etc.pull(NAME, config=cfg).location, DEEP) == big
    edited = big[:4096] + rng.randbytes(100) + big[4096:]
    _write(src, DEEP, edited)
    second = etc.push(NAME, config=push_cfg, force=True)
    assert second.version == 2 and second.stats.bytes_sent < len(big) // 2
    assert etc.status(NAME, config=push_cfg).up_to_date  # hashed as the push cut it
    assert _read(etc.pull(NAME, config=cfg).location, DEEP) == edited
    assert etc.verify(NAME, config=cfg).ok


def test_4096_characters_of_two_bytes_each_are_pulled_into_a_long_home(
    tmp_path: Path, long_home: Path
) -> None:
    """8 KiB of UTF-8 in one path, past PATH_MAX even relative to the dataset's folder."""
    from etcetera.format.hashing import sha256_hex
    from etcetera.format.manifest import FileEntry
    from tests.hostile import pack_manifest, publish

    deep = "/".join(["data/t", *["é" * 120] * 33])
    deep += "/" + "é" * (4096 - len(deep) - 1)
    assert len(deep) == 4096 and len(deep.encode()) > 8000
    files = {deep: b"deep", "data/t/a": b"a"}
    pack = b"".join(files[p] for p in sorted(files))
    pid = sha256_hex(pack)
    entries, offset = [], 0
    for path in sorted(files):
        data = files[path]
        entries.append(FileEntry(path, len(data), 0o644, sha256_hex(data), pid, offset))
        offset += len(data)
    repo = tmp_path / "repo"
    publish(repo, pack_manifest(pid, len(pack), *entries), {pid: pack})
    cfg = etc.Config(f"file://{repo}", home=long_home / "home")
    pulled = etc.pull("evil", config=cfg)
    assert _read(pulled.location, deep) == b"deep"
    assert etc.verify("evil", config=cfg).ok
    assert etc.pull("evil", config=cfg).noop


def test_a_tree_makes_folders_by_descriptor_and_follows_no_link(tmp_path: Path) -> None:
    """Folders made one name at a time; a link on the way is refused; few stay open."""
    from etcetera.engine.fdpaths import Tree

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "link").symlink_to(outside)
    tree = Tree(str(root), keep=4)
    try:
        for i in range(20):  # more folders than the tree keeps open
            with tree.parent(f"a/b{i}/c/file") as (folder, name):
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=folder))
        assert len(tree._open) <= 4 + 1
        with pytest.raises(OSError, match="link is a symbolic link"), tree.parent("a/link/x/f"):
            pass
        with pytest.raises(FileNotFoundError), tree.parent("a/none/f", create=False):
            pass
    finally:
        tree.close()
    assert sorted(p.name for p in root.glob("a/b*/c/file")) == ["file"] * 20
    assert list(outside.iterdir()) == []
