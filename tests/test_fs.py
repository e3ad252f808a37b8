"""The etc:// fsspec file system against file://, moto and fake-gcs-server."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import etcetera as etc
from etcetera.errors import DatasetNotFoundError, PathNotFoundError, ReadOnlyError
from etcetera.format.manifest import FileEntry
from etcetera.fs import EtcFileSystem
from tests.support import RepoSpec, write_tree

ROOT = Path(__file__).resolve().parent.parent

# This process may run etcetera from a source tree whose entry points are not installed;
# the last test checks the entry point itself, in a child process.
fsspec.register_implementation("etc", EtcFileSystem, clobber=True)
MiB = 1 << 20

CSV = b"a,b\n1,x\n2,y\n3,z\n"


def _files() -> dict[str, bytes]:
    rng = random.Random(7)
    files = {f"data/train/{i:04d}.bin": rng.randbytes(1024) for i in range(600)}
    files["data/test/table.csv"] = CSV
    files["data/test/big.bin"] = rng.randbytes(20 * MiB)
    files["docs/readme.txt"] = b"hello\n"
    return files


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _files()


def _push(spec: RepoSpec, tmp_path: Path, files: dict[str, bytes]) -> dict[str, Any]:
    """Push ``files`` as ``sample``; the settings of a reader with a cold home."""
    cfg = spec.config(home=tmp_path / "home", pack_size=256 * 1024)
    etc.register(write_tree(tmp_path / "sample", files), config=cfg)
    etc.push("sample", config=cfg)
    return {"url": spec.url, "home": str(tmp_path / "reader"), **spec.settings}


@pytest.fixture
def fs(repo: RepoSpec, tmp_path: Path, sample: dict[str, bytes]) -> Iterator[EtcFileSystem]:
    opts = _push(repo, tmp_path, sample)
    etcfs = EtcFileSystem(skip_instance_cache=True, **opts)
    yield etcfs
    etcfs.close()


def test_listing_info_find_glob_exists(fs: EtcFileSystem, sample: dict[str, bytes]) -> None:
    assert fs.ls("", detail=False) == ["sample"]
    assert fs.ls("etc://sample", detail=False) == ["sample/data", "sample/docs"]
    assert fs.ls("sample/data", detail=False) == ["sample/data/test", "sample/data/train"]
    assert fs.ls("sample@1/data/test", detail=False) == [
        "sample@1/data/test/big.bin",
        "sample@1/data/test/table.csv",
    ]
    info = fs.info("etc://sample/data/test/big.bin")
    assert info["type"] == "file" and info["size"] == 20 * MiB and info["version"] == 1
    assert fs.info("sample/data")["type"] == "directory"
    assert fs.isdir("sample/data/train") and fs.isfile("sample/docs/readme.txt")
    assert fs.exists("sample/docs/readme.txt") and not fs.exists("sample/docs/nope.txt")
    assert len(fs.find("sample/data/train")) == 600
    assert fs.find("sample", maxdepth=2, withdirs=True) == [
        "sample",
        "sample/data",
        "sample/data/test",
        "sample/data/train",
        "sample/docs",
        "sample/docs/readme.txt",
    ]
    assert fs.glob("sample/data/*/*.csv") == ["sample/data/test/table.csv"]
    assert len(fs.glob("etc://sample/data/train/00*.bin")) == 100
    assert fs.du("sample/data/train") == 600 * 1024


def test_reads_are_the_files_bytes(fs: EtcFileSystem, sample: dict[str, bytes]) -> None:
    big = sample["data/test/big.bin"]
    assert fs.cat_file("sample/data/test/table.csv") == CSV
    assert fs.cat_file("sample/data/test/big.bin", 9 * MiB, 9 * MiB + 10) == big[9 * MiB :][:10]
    assert fs.cat_file("sample/data/test/big.bin", -5) == big[-5:]
    with fs.open("etc://sample@1/data/test/big.bin") as fh:
        fh.seek(12 * MiB)
        assert fh.read(100) == big[12 * MiB : 12 * MiB + 100]
        fh.seek(3)
        assert fh.read(5) == big[3:8]
        fh.seek(-10, io.SEEK_END)
        assert fh.read() == big[-10:]
    got = fs.cat(["sample/data/test/table.csv", "sample/docs/readme.txt"])
    assert got == {"sample/data/test/table.csv": CSV, "sample/docs/readme.txt": b"hello\n"}
    assert fs.cat("sample/docs/readme.txt") == b"hello\n"
    with fsspec.open(
        "etc://sample/docs/readme.txt", **_opts(fs)
    ) as fh:  # through fsspec's registry
        assert fh.read() == b"hello\n"


def _opts(fs: EtcFileSystem) -> dict[str, object]:
    """The storage options the file system was made with (fsspec keeps them)."""
    return dict(fs.storage_options)


def test_bad_paths_and_writes(fs: EtcFileSystem) -> None:
    with pytest.raises(PathNotFoundError, match=r"nearest: data/train/0042\.bin"):
        fs.cat_file("sample/data/train/0042.bn")
    with pytest.raises(FileNotFoundError):
        fs.info("sample/nothing")
    with pytest.raises(DatasetNotFoundError, match=r"versions: 1"):
        fs.info("sample@9/docs")
    for write in (
        lambda: fs.open("sample/docs/new.txt", "wb"),
        lambda: fs.pipe_file("sample/docs/new.txt", b"x"),
        lambda: fs.rm("sample/docs/readme.txt"),
        lambda: fs.mkdir("sample/more"),
    ):
        with pytest.raises(ReadOnlyError, match="etc push"):
            write()
    errors = fs.cat_ranges(["sample/docs/readme.txt", "sample/docs/gone.txt"], 0, 3)
    assert errors[0] == b"hel" and isinstance(errors[1], FileNotFoundError)


def test_latest_is_pinned_until_invalidated(
    file_repo: RepoSpec, tmp_path: Path, sample: dict[str, bytes]
) -> None:
    opts = _push(file_repo, tmp_path, {"data/a/readme.txt": b"one\n"})
    fs = EtcFileSystem(skip_instance_cache=True, **opts)
    try:
        assert fs.cat_file("sample/data/a/readme.txt") == b"one\n"
        cfg = file_repo.config(home=tmp_path / "home")
        (tmp_path / "sample" / "data" / "a" / "readme.txt").write_bytes(b"two\n")
        etc.push("sample", config=cfg, force=True)
        assert fs.cat_file("sample/data/a/readme.txt") == b"one\n"  # still version 1
        assert fs.cat_file("sample@2/data/a/readme.txt") == b"two\n"
        fs.invalidate_cache()
        assert fs.cat_file("sample/data/a/readme.txt") == b"two\n"
    finally:
        fs.close()


def test_cat_ranges_of_many_small_files_reads_each_pack_once(
    repo: RepoSpec, tmp_path: Path, sample: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = _push(repo, tmp_path, sample)
    built = _count_transports(monkeypatch)
    fs = EtcFileSystem(skip_instance_cache=True, cache_size=0, **opts)
    try:
        paths = sorted(p for p in sample if p.startswith("data/train/"))
        chosen = random.Random(3).sample(paths, 200)
        entries = [_entry(fs, p) for p in chosen]  # lookups first: the batch is data alone
        before = fs.stats.requests, fs.stats.bytes_received
        got = fs.cat_ranges([f"sample/{p}" for p in chosen], 100, 300)
        assert got == [sample[p][100:300] for p in chosen]
        requests = fs.stats.requests - before[0]
        downloaded = fs.stats.bytes_received - before[1]
        packs = {e.object for e in entries}
        assert 1 < len(packs) == requests  # one coalesced read per pack touched
        assert downloaded <= len(chosen) * 1024 + MiB * len(packs)
        assert len(built) == 1  # one session, one transport, however many files
    finally:
        fs.close()


def _count_transports(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    from etcetera.engine import transport

    built: list[object] = []
    real = transport.Transport.__init__

    def counting(self: transport.Transport, *args: Any) -> None:
        built.append(self)
        real(self, *args)

    monkeypatch.setattr(transport.Transport, "__init__", counting)
    return built


def _entry(fs: EtcFileSystem, path: str) -> FileEntry:
    from fsspec.asyn import sync

    version = sync(fs.loop, fs._version, "sample")
    entry: FileEntry = sync(fs.loop, version.entry, path)
    return entry


def test_pandas_and_dask_read_etc_urls(fs: EtcFileSystem) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv("etc://sample/data/test/table.csv", storage_options=_opts(fs))
    assert list(frame["b"]) == ["x", "y", "z"]
    dd = pytest.importorskip("dask.dataframe")
    lazy = dd.read_csv("etc://sample@1/data/*/*.csv", storage_options=_opts(fs))
    assert list(lazy.compute(scheduler="sync")["a"]) == [1, 2, 3]


@pytest.mark.anyio
async def test_the_async_file_system_on_the_callers_loop(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    import anyio.to_thread

    opts = await anyio.to_thread.run_sync(
        lambda: _push(file_repo, tmp_path, {"data/a/x.txt": b"async\n"})
    )
    fs = EtcFileSystem(asynchronous=True, skip_instance_cache=True, **opts)
    try:
        assert await fs._cat_file("sample/data/a/x.txt", 1, 3) == b"sy"
        assert await fs._find("sample") == ["sample/data/a/x.txt"]
    finally:
        await fs._close()


def test_parquet_column_projection_reads_ranges(file_repo: RepoSpec, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import numpy

    rng = numpy.random.default_rng(5)
    n = 1 << 19  # rows: 4 MiB per int64 column
    table = pa.table({f"c{i}": rng.integers(0, 1 << 62, n) for i in range(12)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none", row_group_size=n)
    data = buf.getvalue()
    opts = _push(file_repo, tmp_path, {"data/t/table.parquet": data})
    fs = EtcFileSystem(skip_instance_cache=True, **opts)
    try:
        got = pq.read_table("sample/data/t/table.parquet", columns=["c5"], filesystem=fs)
        assert got.column("c5").to_pylist() == table.column("c5").to_pylist()
        assert fs.stats.bytes_received < len(data) * 0.45  # column chunks and footer only
    finally:
        fs.close()


def test_the_entry_point_opens_etc_urls_without_importing_etcetera(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    opts = _push(file_repo, tmp_path, {"data/test/table.csv": CSV})
    # The entry point as pyproject.toml declares it, installed for a child process.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["fsspec.specs"]["etc"]
    dist = tmp_path / "site" / "etcetera_fs_probe-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: etcetera-fs-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[fsspec.specs]\netc = {target}\n")
    script = (
        "import sys, fsspec, pandas\n"
        "f = pandas.read_csv('etc://sample/data/test/table.csv')\n"
        "assert 'etcetera' not in sys.argv\n"
        "print(','.join(f['b']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env.update(ETC_URL=str(opts["url"]), ETC_HOME=str(opts["home"]))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x,y,z"


def test_etcetera_and_its_reading_core_do_not_import_fsspec() -> None:
    code = "import sys, etcetera, etcetera.reading, etcetera.api; print('fsspec' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
