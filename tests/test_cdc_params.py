"""How large files are cut: recorded in the root, adopted by the next push, one pass each."""

from __future__ import annotations

import os
import random
from pathlib import Path

import anyio
import pytest

import etcetera as etc
from etcetera.backends.file import FileBackend
from etcetera.engine import chunked, manifests, scan
from etcetera.engine.chunked import chunk_files, push_chunked
from etcetera.engine.config import TransferConfig
from etcetera.engine.transport import Transport
from etcetera.errors import SourceChangedError
from etcetera.format import cdc, layout
from etcetera.format.manifest import Manifest
from etcetera.urls import parse_url
from tests.support import RepoSpec, snapshot

MiB = 1024 * 1024
SMALL = cdc.Chunking(min_size=64 * 1024, avg_size=64 * 1024, max_size=512 * 1024)


def _root_doc(url: str, digest: str) -> dict[str, object]:
    async def go() -> dict[str, object]:
        t = Transport(FileBackend(parse_url(url)), TransferConfig())
        return (await manifests.read_root(t, digest)).doc

    return anyio.run(go)


def _tree(tmp_path: Path, data: bytes) -> Path:
    root = tmp_path / "tree"
    (root / "data" / "all").mkdir(parents=True, exist_ok=True)
    (root / "data" / "all" / "big.bin").write_bytes(data)
    return root


def _registered(repo: RepoSpec, tmp_path: Path, name: str, seed: int) -> tuple[Path, etc.Config]:
    """A registered tree with one random 10 MiB file, pushed with ``content_chunks``."""
    root = _tree(tmp_path, random.Random(seed).randbytes(10 * MiB))
    cfg = repo.config(home=tmp_path / "h", content_chunks=True)
    etc.register(root, name, config=cfg)
    return root, cfg


def _count_cuts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each file cut by content from now on (``cdc.chunk_fd``)."""
    cuts: list[int] = []
    real = cdc.chunk_fd

    def counted(fd: int, params: cdc.Chunking = cdc.DEFAULT, *, with_crc: bool = False) -> object:
        cuts.append(os.fstat(fd).st_size)
        return real(fd, params, with_crc=with_crc)

    monkeypatch.setattr(cdc, "chunk_fd", counted)
    return cuts


def _pushed_with(
    repo: RepoSpec,
    tmp_path: Path,
    name: str,
    data: bytes,
    params: cdc.Chunking,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, etc.Config]:
    """A tree with one file of ``data``, pushed by a writer that cuts with ``params``."""
    root = _tree(tmp_path, data)
    cfg = repo.config(home=tmp_path / "h", content_chunks=True)
    etc.register(root, name, config=cfg)
    with monkeypatch.context() as m:  # a writer whose parameters are not this one's
        m.setattr(cdc, "DEFAULT", params)
        first = etc.push(name, config=cfg)
    assert _root_doc(cfg.url or "", first.manifest)["chunking"] == params.describe()
    return root, cfg


def test_the_root_records_the_cut_and_the_next_push_cuts_alike(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository cut with other parameters is cut with them again: the chunks line up."""
    rng = random.Random(8)
    old = rng.randbytes(12 * MiB)
    root, cfg = _pushed_with(file_repo, tmp_path, "cut", old, SMALL, monkeypatch)

    new = old[: 6 * MiB] + rng.randbytes(1000) + old[6 * MiB :]
    (root / "data" / "all" / "big.bin").write_bytes(new)
    second = etc.push("cut", config=cfg, force=True)
    doc = _root_doc(cfg.url or "", second.manifest)
    assert doc["chunking"] == SMALL.describe()
    # Small chunks around the insertion, not the default's 0.5-4 MiB ones.
    assert second.stats.bytes_sent < MiB + 64 * 1024, second.stats.bytes_sent
    pulled = etc.pull("cut", config=file_repo.config(home=tmp_path / "p"))
    assert snapshot(pulled.location) == snapshot(root)


def test_a_repository_cut_otherwise_is_read_once_a_push(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan cuts as the latest version was cut: its pass is the one the layout uses."""
    old = random.Random(10).randbytes(10 * MiB)
    root, cfg = _pushed_with(file_repo, tmp_path, "other", old, SMALL, monkeypatch)
    (root / "data" / "all" / "big.bin").write_bytes(old[: 5 * MiB] + b"new" + old[5 * MiB :])
    cuts = _count_cuts(monkeypatch)
    second = etc.push("other", config=cfg, force=True)
    assert cuts == [10 * MiB + 3]
    assert _root_doc(cfg.url or "", second.manifest)["chunking"] == SMALL.describe()
    assert etc.push("other", config=cfg).noop and cuts == [10 * MiB + 3]  # the cache vouches
    monkeypatch.undo()
    pulled = etc.pull("other", config=file_repo.config(home=tmp_path / "p"))
    assert snapshot(pulled.location) == snapshot(root)


def test_parameters_this_version_cannot_cut_with_are_not_adopted() -> None:
    def previous(chunking: object) -> Manifest:
        return Manifest([], {}, ("all",), extents={"data/all/x": ()}, chunking=chunking)  # type: ignore[arg-type]

    assert chunked.adopted(None) == cdc.DEFAULT
    assert chunked.adopted(previous(SMALL.describe())) == SMALL
    good = SMALL.describe()
    for bad in (
        None,
        "fastcdc-2020",
        {**good, "algorithm": "gear-1999"},
        {**good, "max": 1 << 40},  # a window of a TiB
        {**good, "min": 1024, "avg": 1024},  # a million chunks a GiB
        {**good, "avg": 1 << 22},  # FastCDC's own bounds: avg past max
        {**good, "normalization": 7},
        {**good, "min": "65536"},
        {**good, "max": 16 * MiB, "avg": MiB},  # chunks longer than the chunk_size
        {k: v for k, v in good.items() if k != "max"},
    ):
        assert chunked.adopted(previous(bad)) == cdc.DEFAULT, bad
    # The threshold is informative: whatever a root says of it, the default is kept.
    for threshold in (-1, 10**30, "big"):
        params = chunked.adopted(previous({**good, "threshold": threshold}))
        assert params == SMALL and params.threshold == cdc.DEFAULT.threshold
        assert params.describe()["threshold"] == cdc.DEFAULT.threshold
    # Without chunked files, nothing recorded counts.
    assert chunked.adopted(Manifest([], {}, ("all",), chunking=good)) == cdc.DEFAULT


def test_a_root_cutting_longer_than_the_chunk_size_is_not_followed(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of up to 16 MiB where a manifest lists 8 MiB at most: the next push cuts its own."""
    long = cdc.Chunking(min_size=MiB, avg_size=MiB, max_size=16 * MiB, normalization=0)
    data = random.Random(9).randbytes(10 * MiB)  # (a writer, or hostile bytes, records it)
    root, cfg = _pushed_with(file_repo, tmp_path, "long", data, long, monkeypatch)

    (root / "data" / "all" / "big.bin").write_bytes(bytes(40 * MiB))  # no cut before max
    second = etc.push("long", config=cfg, force=True)
    pulled = etc.pull("long", config=file_repo.config(home=tmp_path / "p"))
    assert snapshot(pulled.location) == snapshot(root)
    assert _root_doc(cfg.url or "", second.manifest)["chunking"] == cdc.DEFAULT.describe()


def test_a_large_file_is_read_once_before_it_is_sent(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan's pass is the cut: no fixed-chunk hashing, no second cut of the same bytes."""
    root, cfg = _registered(file_repo, tmp_path, "once", 2)

    def fixed(*args: object, **kwargs: object) -> object:
        raise AssertionError("a file cut by content was hashed in fixed chunks too")

    cuts = _count_cuts(monkeypatch)
    monkeypatch.setattr(scan, "digest_chunks", fixed)
    etc.push("once", config=cfg)
    assert cuts == [10 * MiB]
    monkeypatch.undo()
    pulled = etc.pull("once", config=file_repo.config(home=tmp_path / "p"))
    assert snapshot(pulled.location) == snapshot(root)


def test_a_rewrite_that_keeps_size_and_mtime_is_not_stored(repo: RepoSpec, tmp_path: Path) -> None:
    """The bytes read to send are checked against the cut's running CRC, not the clock."""

    async def main() -> None:
        path = tmp_path / "f"
        path.write_bytes(random.Random(3).randbytes(12 * MiB))
        st = path.stat()
        t = Transport(repo.backend(), TransferConfig(part_size=5 * MiB))
        try:
            (chunks,) = await chunk_files(t, [str(path)], [st.st_size], SMALL)
            with open(path, "r+b") as fh:  # one byte late in the file, same size
                fh.seek(9 * MiB)
                fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            with pytest.raises(ExceptionGroup) as info:
                await push_chunked(t, [(str(path), chunks)], {})
            assert info.group_contains(SourceChangedError)
            assert not [o async for o in t.backend.list(layout.OBJECTS)]
        finally:
            await t.backend.aclose()

    anyio.run(main)


def test_digests_cut_by_content_and_fixed_ones_are_kept_apart(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """One hash cache serves pushes with and without content chunks, and a pull's record."""
    root = _tree(tmp_path, random.Random(4).randbytes(10 * MiB))
    on = file_repo.config(home=tmp_path / "h", content_chunks=True)
    etc.register(root, "both", config=on)
    etc.push("both", config=on)
    pulled = etc.pull("both", config=file_repo.config(home=tmp_path / "p"))
    for home, source in ((tmp_path / "h", "both"), (tmp_path / "p", "both")):
        other = tmp_path / f"repo-{home.name}"
        other.mkdir()
        off = etc.Config(f"file://{other}", home=home, content_chunks=False)
        etc.push(source, config=off)  # the cache holds the cut digest: hashed again, fixed
        back = etc.pull(
            source, config=etc.Config(f"file://{other}", home=tmp_path / f"q{home.name}")
        )
        assert snapshot(back.location) == snapshot(pulled.location) == snapshot(root)
        assert etc.verify(
            source, config=etc.Config(f"file://{other}", home=tmp_path / f"q{home.name}")
        ).ok


def test_a_content_chunked_version_verifies(file_repo: RepoSpec, tmp_path: Path) -> None:
    """``etc verify`` cuts large files as the version was cut, and sees a change."""
    _root, cfg = _registered(file_repo, tmp_path, "v", 6)
    etc.push("v", config=cfg)
    puller = file_repo.config(home=tmp_path / "p")
    pulled = etc.pull("v", config=puller)
    assert etc.verify("v", config=puller).ok
    with open(pulled.location / "data" / "all" / "big.bin", "r+b") as fh:
        fh.seek(5 * MiB)
        fh.write(b"changed")
    assert etc.verify("v", config=puller).changed == ["data/all/big.bin"]


@pytest.mark.parametrize("how", ["grow", "shrink"])
def test_a_file_changing_size_while_it_is_cut_is_refused(
    s3_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """After the scan's stat, before the cut reads it: the bytes cut are not the size scanned."""
    root = _tree(tmp_path, random.Random(7).randbytes(10 * MiB))
    target = root / "data" / "all" / "big.bin"
    cfg = s3_repo.config(home=tmp_path / "h", content_chunks=True)
    etc.register(root, "moving", config=cfg)
    real = chunked.cut_path

    def changing(path: str, params: cdc.Chunking, *, with_crc: bool = True) -> object:
        with open(target, "r+b") as fh:
            if how == "grow":
                fh.seek(0, os.SEEK_END)
                fh.write(os.urandom(MiB))
            else:
                fh.truncate(9 * MiB)
        return real(path, params, with_crc=with_crc)

    monkeypatch.setattr(chunked, "cut_path", changing)
    with pytest.raises(etc.LocalIOError, match=r"big\.bin changed while it was (read|pushed)"):
        etc.push("moving", config=cfg)
    assert etc.ls(config=cfg, remote=True) == []
    monkeypatch.undo()
    assert etc.push("moving", config=cfg).version == 1


def test_an_unchanged_large_file_is_not_read_again(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push after a small change takes the large file's chunks from the latest version."""
    root, cfg = _registered(file_repo, tmp_path, "same", 5)
    etc.push("same", config=cfg)
    (root / "data" / "all" / "small.txt").write_text("new")
    cuts = _count_cuts(monkeypatch)
    second = etc.push("same", config=cfg, force=True)
    assert cuts == [] and second.version == 2
    monkeypatch.undo()
    pulled = etc.pull("same", config=file_repo.config(home=tmp_path / "p"))
    assert snapshot(pulled.location) == snapshot(root)


def test_a_file_appended_to_before_its_chunks_are_sent_is_refused(
    s3_repo: RepoSpec, tmp_path: Path
) -> None:
    """Its chunks are still the bytes hashed, but the file is not as scanned: as a blob's."""
    root, cfg = _registered(s3_repo, tmp_path, "grown", 11)
    target = root / "data" / "all" / "big.bin"
    changed = False

    def append(event: etc.ProgressEvent) -> None:
        nonlocal changed
        if event.phase == "upload" and not changed:
            changed = True
            with open(target, "ab") as fh:
                fh.write(b"more")

    with pytest.raises(etc.LocalIOError, match=r"big\.bin changed while it was pushed"):
        etc.push("grown", config=cfg, progress=append)
    assert changed and etc.ls(config=cfg, remote=True) == []
    assert etc.push("grown", config=cfg).version == 1
