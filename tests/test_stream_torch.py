"""The stream under PyTorch's own DataLoader (skipped where torch is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import etcetera as etc
from etcetera.settings import Config
from tests.support import RepoSpec, write_tree

torch_data = pytest.importorskip("torch.utils.data")


@pytest.fixture
def reader(file_repo: RepoSpec, tmp_path: Path) -> Config:
    cfg = file_repo.config(home=tmp_path / "home", pack_size=16 * 1024)
    files = {f"data/train/{i:04d}.bin": bytes([i % 256]) * (100 + i) for i in range(300)}
    etc.register(write_tree(tmp_path / "sample", files), config=cfg)
    etc.push("sample", config=cfg)
    return file_repo.config(home=tmp_path / "reader")


def _paths(loader: object) -> list[str]:
    out: list[str] = []
    for batch in loader:  # type: ignore[attr-defined]
        out.extend(batch.path)  # default_collate keeps the Sample tuple: lists of fields
    return out


def test_a_dataloader_with_workers_yields_the_ranks_order_and_resumes(reader: Config) -> None:
    s = etc.stream("sample", "train", config=reader, seed=2, batch_size=8)
    assert isinstance(s, torch_data.IterableDataset)
    whole = [x.path for x in s]
    for workers in (0, 1, 3):
        loader = torch_data.DataLoader(s, batch_size=8, num_workers=workers)
        assert _paths(loader) == whole
    # Stop after 13 batches with 2 workers; resume with 3: exactly the rest.
    loader = torch_data.DataLoader(s, batch_size=8, num_workers=2)
    seen: list[str] = []
    for i, batch in enumerate(loader):
        seen.extend(batch.path)
        if i == 12:
            break
    state = s.state_dict(consumed=len(seen))
    again = etc.stream("sample", "train", config=reader, seed=2, batch_size=8)
    again.load_state_dict(state)
    rest = _paths(torch_data.DataLoader(again, batch_size=8, num_workers=3))
    assert seen + rest == whole
