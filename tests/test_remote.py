"""Remote datasets (etc.remote / etc.aremote): the seed's Dataset API, paths read in place."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.errors import DatasetNotFoundError, PartitionNotFoundError, PathNotFoundError
from etcetera.settings import Config
from tests.support import RepoSpec, write_tree

MiB = 1 << 20


def _files() -> dict[str, bytes]:
    files = {f"data/train/{i:03d}.txt": f"train {i}\n".encode() * 30 for i in range(60)}
    files.update({f"data/test/sub/{i:02d}.csv": f"a,b\n{i},{i * i}\n".encode() for i in range(5)})
    files["data/test/big.bin"] = bytes(range(256)) * (9 * MiB // 256)  # 2 chunks
    files["meta.json"] = json.dumps({"classes": ["a", "b"]}).encode()
    files["assets/notes.md"] = b"# notes\n"
    return files


@pytest.fixture
def reader(repo: RepoSpec, tmp_path: Path) -> Config:
    cfg = repo.config(home=tmp_path / "home", pack_size=16 * 1024)
    root = write_tree(tmp_path / "sample", _files())
    (root / "data" / "valid").mkdir()  # an empty partition travels too
    etc.register(root, config=cfg)
    etc.push("sample", config=cfg)
    return repo.config(home=tmp_path / "reader")


def test_remote_dataset_has_the_local_api_and_reads_in_place(reader: Config) -> None:
    with etc.remote("sample@1", config=reader) as ds:
        assert (ds.name, ds.version) == ("sample", 1)
        assert ds.partitions() == ["test", "train", "valid"] == list(ds) == ds.keys()
        assert len(ds) == 3 and "train" in ds and "nope" not in ds
        assert ds.meta == {"classes": ["a", "b"]}
        train = ds["train"]
        assert str(train) == "etc://sample@1/data/train"
        names = [p.name for p in train.iterdir()]
        assert names == sorted(n.rpartition("/")[2] for n in _files() if "/train/" in n)
        first = next(train.iterdir())
        assert first.read_bytes() == _files()["data/train/000.txt"]
        assert first.read_text().startswith("train 0")
        assert first.stat().st_size == len(_files()["data/train/000.txt"])
        assert stat.S_ISREG(first.stat().st_mode) and first.is_file() and not first.is_dir()
        assert stat.S_ISDIR(train.stat().st_mode) and train.is_dir()
        assert [p.name for p in ds["test"].iterdir()] == ["big.bin", "sub"]
        assert [p.path for p in ds["test"].glob("sub/*.csv")][:2] == [
            "data/test/sub/00.csv",
            "data/test/sub/01.csv",
        ]
        assert len(list(ds.root.rglob("*.csv"))) == 5
        assert list(ds["valid"].iterdir()) == []
        assert ds.file("assets", "notes.md").read_text() == "# notes\n"
        with ds["test"].joinpath("big.bin").open() as fh:
            fh.seek(5 * MiB - 3)
            assert fh.read(6) == _files()["data/test/big.bin"][5 * MiB - 3 : 5 * MiB + 3]
        with (ds["test"] / "sub" / "03.csv").open("r") as text:
            assert text.read() == "a,b\n3,9\n"
        missing = ds["train"] / "0000.txt"
        assert not missing.exists()
        with pytest.raises(PathNotFoundError, match="nearest"):
            missing.read_bytes()
        with pytest.raises(PartitionNotFoundError, match="it has: test, train, valid"):
            ds["nope"]


@pytest.mark.anyio
async def test_aremote_awaits(reader: Config) -> None:
    ds = await etc.aremote("sample", config=reader)
    try:
        assert ds.version == 1
        files = await ds["train"].aiterdir()
        assert len(files) == 60
        assert await files[1].aread_bytes() == _files()["data/train/001.txt"]
        assert (await files[1].astat()).st_size == len(_files()["data/train/001.txt"])
        assert len(await ds.root.aglob("**/*.csv")) == 5
    finally:
        ds.close()
    with pytest.raises(ValueError, match="closed"):
        files[0].read_bytes()


def test_dataset_of_a_name_only_remote_says_how_to_read_or_pull_it(
    reader: Config, repo: RepoSpec
) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"etc\.remote\('sample'\) reads it in place"):
        etc.dataset("sample", config=reader)
    with pytest.raises(DatasetNotFoundError, match="etc pull sample"):
        etc.dataset("sample", config=reader)
    with pytest.raises(DatasetNotFoundError, match="nor in"):
        etc.dataset("other", config=reader)
    with pytest.raises(DatasetNotFoundError, match="versions: 1"):
        etc.remote("sample@4", config=reader)
