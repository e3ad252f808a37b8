"""Symlinks in the home and in ``--to``: never followed into someone else's folders.

The home's own folders (``.versions``, ``.staging``, ``.cache``, ``.locks``) are made
by etcetera; a symlink planted among them is refused with a clear error, and nothing
is written through it. Pruning old versions deletes only the ``<K>.<token>`` folders
etcetera made, with their records. ``--to DIR`` where DIR is a link replaces the
content of the folder it points to, says so, and leaves no stray folder or link.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import etcetera as etc
from tests.support import RepoSpec, cli_env, run_etc, snapshot, write_tree

pytestmark = pytest.mark.anyio

NAME = "sample"


async def _publish(repo: RepoSpec, tmp: Path, versions: int = 1) -> list[Path]:
    """Push ``versions`` versions of NAME (each other content); their source trees."""
    cfg = repo.config(home=tmp / "pusher")
    trees = []
    for v in range(1, versions + 1):
        tree = write_tree(tmp / f"src{v}" / NAME, {"data/train/a.txt": b"v%d" % v * 100})
        await etc.aregister(tree, config=cfg, force=True)
        await etc.apush(NAME, config=cfg, force=True)
        trees.append(tree)
    return trees


def _victim(tmp: Path) -> Path:
    """A folder of the user's, with folders in it, that a link will point at."""
    return write_tree(tmp / "victim", {"photos/a.jpg": b"A", "1.abcdef12/keep.txt": b"K"})


@pytest.mark.parametrize(
    "planted", [".versions", ".versions/sample", ".staging", ".cache", ".cache/hashes", ".locks"]
)
async def test_a_link_planted_in_the_home_is_refused(
    file_repo: RepoSpec, tmp_path: Path, planted: str
) -> None:
    await _publish(file_repo, tmp_path)
    victim = _victim(tmp_path)
    before = snapshot(victim)
    home = tmp_path / "home"
    (home / planted).parent.mkdir(parents=True)
    os.symlink(victim, home / planted)
    with pytest.raises(etc.LocalIOError, match="is a symlink etcetera did not make"):
        await etc.apull(NAME, config=file_repo.config(home=home))
    assert snapshot(victim) == before
    assert sorted(p.name for p in victim.iterdir()) == ["1.abcdef12", "photos"]
    assert not (home / NAME).exists()


async def test_pruning_deletes_only_version_folders_with_their_record(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    trees = await _publish(file_repo, tmp_path, versions=4)
    home = tmp_path / "home"
    cfg = file_repo.config(home=home)
    await etc.apull(f"{NAME}@1", config=cfg)
    base = home / ".versions" / NAME
    victim = _victim(tmp_path)
    # What is not etcetera's, in its folder: a user folder, a folder named like a
    # version but without a record, and a link named like one, with a record.
    write_tree(base / "mine", {"notes.txt": b"mine"})
    write_tree(base / "7.0badc0de", {"x": b"x"})
    os.symlink(victim, base / "3.deadbeef")
    (base / "3.deadbeef.json").write_text("{}")
    before = snapshot(victim)
    for v in (2, 3, 4):
        await etc.apull(f"{NAME}@{v}", config=cfg)
    assert snapshot(home / NAME) == snapshot(trees[-1])
    kept = sorted(p.name for p in base.iterdir())
    assert {"mine", "7.0badc0de", "3.deadbeef", "3.deadbeef.json"} <= set(kept)
    ours = [n for n in kept if n[0] in "1234" and not n.endswith(".json") and n != "3.deadbeef"]
    assert sorted(n.split(".")[0] for n in ours) == ["3", "4"]
    assert snapshot(victim) == before and (base / "mine" / "notes.txt").read_bytes() == b"mine"


async def test_pull_to_a_link_replaces_the_folder_it_points_to(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    (tree,) = await _publish(file_repo, tmp_path)
    real = write_tree(tmp_path / "real" / "ci-data", {"old.txt": b"old"})
    link = tmp_path / "links" / "data"
    link.parent.mkdir()
    os.symlink(real, link)
    cfg = file_repo.config(home=tmp_path / "home")
    with pytest.raises(etc.DatasetExistsError, match="links to it"):
        await etc.apull(NAME, config=cfg, to=link)
    result = await etc.apull(NAME, config=cfg, to=link, force=True)
    assert (result.location, result.through) == (real, link)
    assert link.is_symlink() and link.resolve() == real
    assert snapshot(real) == snapshot(tree)
    # Nothing left beside the link or the folder (no .data.etc-old-* link, no staging).
    assert sorted(p.name for p in link.parent.iterdir()) == ["data"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["ci-data"]

    # The command line says what it replaces.
    write_tree(real, {"old.txt": b"old"})
    out = run_etc(
        cli_env(file_repo, tmp_path / "home2"), "pull", NAME, "--to", str(link), "--force"
    )
    assert out.returncode == 0, out.stderr
    assert f"{link} is a link: replaced the content of {real}" in out.stdout
    assert sorted(p.name for p in link.parent.iterdir()) == ["data"]
