"""Bad input gets a clear, one-line error and loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.errors import SettingsError
from etcetera.format import layout
from etcetera.format.hashing import sha256_hex
from etcetera.format.record import VersionRecord
from etcetera.settings import load_config
from tests.support import snapshot, write_tree


def _sample(root: Path) -> Path:
    return write_tree(root, {"data/train/a.txt": b"a", "meta.json": b"{}"})


def _cfg(tmp_path: Path, **kw: object) -> etc.Config:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    return etc.Config(f"file://{repo}", home=tmp_path / "home", **kw)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"README.md": b"x"}, "has no data/ folder"),
        ({"data/stray.txt": b"x"}, "data/stray.txt is a file"),
        ({}, "has no partition folder"),
    ],
)
def test_each_dataset_rule_has_its_own_message(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    if message != "has no data/ folder":
        (root / "data").mkdir()
    write_tree(root, files)
    with pytest.raises(etc.NotADatasetError, match=message):
        etc.register(root, config=_cfg(tmp_path))
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 200, "a..b", "-x"])
def test_bad_names_are_refused_before_touching_disk(tmp_path: Path, name: str) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(etc.InvalidNameError, match="invalid dataset name"):
        etc.create(name, config=cfg)
    with pytest.raises(etc.InvalidNameError):
        etc.pull(name, config=cfg)
    with pytest.raises(etc.InvalidNameError):
        etc.register(_sample(tmp_path / "ok"), name, config=cfg)
    assert not (tmp_path / "home").exists()


def test_unknown_partition_names_the_existing_ones(tmp_path: Path) -> None:
    ds = etc.register(_sample(tmp_path / "s"), config=_cfg(tmp_path))
    with pytest.raises(etc.PartitionNotFoundError, match=r"no partition 'nope' \(it has: train\)"):
        ds["nope"]


def test_invalid_meta_json(tmp_path: Path) -> None:
    root = _sample(tmp_path / "s")
    (root / "meta.json").write_text("{not json")
    ds = etc.register(root, config=_cfg(tmp_path))
    with pytest.raises(etc.NotADatasetError, match=r"meta\.json is not valid JSON"):
        _ = ds.meta


def test_unknown_dataset_local_and_remote(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(etc.DatasetNotFoundError, match=r"not in .* nor in file://"):
        etc.dataset("nope", config=cfg)
    with pytest.raises(etc.DatasetNotFoundError, match="does not exist in file://"):
        etc.pull("nope", config=cfg)
    # Not in the repository either: pulling it would not help.
    with pytest.raises(etc.DatasetNotFoundError, match="etc register DIR nope") as caught:
        etc.push("nope", config=cfg)
    assert "etc pull" not in str(caught.value)


def test_existing_dataset_needs_force_and_purge_keeps_user_folder(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    root = _sample(tmp_path / "s")
    etc.register(root, config=cfg)
    assert etc.register(root, config=cfg).location == root.resolve()  # the same: a no-op
    with pytest.raises(etc.DatasetExistsError, match="--force"):
        etc.register(_sample(tmp_path / "other"), "s", config=cfg)
    with pytest.raises(etc.DatasetExistsError, match="already exists"):
        etc.create("s", config=cfg)
    etc.push("s", config=cfg)
    with pytest.raises(etc.DatasetExistsError, match="--force replaces the link"):
        etc.pull("s", config=cfg)
    before = snapshot(root)
    pulled = etc.pull("s", config=cfg, force=True)
    assert pulled.location != root.resolve()
    assert snapshot(root) == before
    etc.purge("s", config=cfg)
    assert snapshot(root) == before
    assert etc.ls(config=cfg) == []


def test_missing_url(tmp_path: Path) -> None:
    etc.register(_sample(tmp_path / "s"), config=etc.Config(home=tmp_path / "home"))
    with pytest.raises(etc.ConfigError, match=r"set url in ~/\.etc\.toml"):
        etc.push("s", config=etc.Config(home=tmp_path / "home"))


def test_invalid_config_file_names_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("url = [")
    with pytest.raises(SettingsError, match=r"bad\.toml is not valid TOML"):
        load_config(bad)
    bad.write_text('concurrency = "many"')
    with pytest.raises(SettingsError, match=r"'concurrency'.*bad\.toml"):
        load_config(bad)
    bad.write_text("colour = 1")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_config(bad)
    with pytest.raises(SettingsError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_precedence_argument_env_file_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "c.toml"
    f.write_text('url = "file:///from-file"\nconcurrency = 3\nretries = 9\n')
    monkeypatch.setenv("ETC_CONCURRENCY", "5")
    cfg = load_config(f, {"retries": 1})
    assert (cfg.url, cfg.concurrency, cfg.retries, cfg.timeout) == ("file:///from-file", 5, 1, 60.0)


def test_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = etc.Config(f"file://{tmp_path}", home=blocker / "home")
    with pytest.raises(etc.LocalIOError, match="is not writable"):
        etc.pull("x", config=cfg)


def test_missing_repository_folder(tmp_path: Path) -> None:
    cfg = etc.Config(f"file://{tmp_path}/nowhere", home=tmp_path / "home")
    etc.register(_sample(tmp_path / "s"), config=cfg)
    with pytest.raises(etc.RepositoryNotFoundError, match="does not exist"):
        etc.push("s", config=cfg)
    assert not (tmp_path / "nowhere").exists()


def test_cli_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ETC_HOME": str(tmp_path / "home"), "ETC_URL": f"file://{tmp_path}"}
    run = subprocess.run(
        [sys.executable, "-m", "etcetera", "pull", "nope"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("etc: error: dataset nope does not exist")
    verbose = subprocess.run(
        [sys.executable, "-m", "etcetera", "-v", "pull", "nope"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" in verbose.stderr


def _hostile(files: list[list[object]], partitions: list[str] | None = None) -> bytes:
    objects = [["ab" * 32, "pack", 10, "identity"]]
    doc = {
        "format": "etcetera/manifest",
        "version": 1,
        "chunk_size": 8 * 1024 * 1024,
        "partitions": partitions or ["train"],
        "dirs": [],
        "objects": objects,
        "files": files,
    }
    return json.dumps(doc).encode()


def _entry(path: str, size: int = 1, offset: int = 0) -> list[object]:
    return [path, size, 0o644, "cd" * 32, 0, offset]


HOSTILE = {
    "absolute": _hostile([_entry("/etc/passwd")]),
    "dotdot": _hostile([_entry("data/train/../../../escape")]),
    "case": _hostile([_entry("data/train/A"), _entry("data/train/a")]),
    "nfd": _hostile([_entry("data/train/cafe\u0301")]),
    "duplicate": _hostile([_entry("data/train/x"), _entry("data/train/x")]),
    "negative": _hostile([_entry("data/train/x", size=-5)]),
    "enormous": _hostile([_entry("data/train/x", size=1 << 60)]),
    "absurd": _hostile([_entry("data/train/x", size=10**4000)]),
    "deep": b'{"format": "etcetera/manifest", "version": 1, "files": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}",
    "past-end": _hostile([_entry("data/train/x", size=5, offset=8)]),
    "backslash": _hostile([_entry("data\\..\\x")]),
    "no-partition": _hostile([_entry("data/x")]),
    "truncated": _hostile([_entry("data/train/x")])[:-7],
    "not-json": b"\x00\xffgarbage",
    "newer": json.dumps({"format": "etcetera/manifest", "version": 99}).encode(),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_manifests_are_refused_and_write_nothing(tmp_path: Path, kind: str) -> None:
    repo = tmp_path / "repo"
    data = HOSTILE[kind]
    digest = sha256_hex(data)
    write_tree(
        repo,
        {
            layout.manifest_key(digest): data,
            layout.ref_key("evil", 1): VersionRecord("evil", 1, digest).to_json(),
            layout.object_key("ab" * 32): b"0123456789",
        },
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home")
    with pytest.raises(etc.ManifestError) as info:
        etc.pull("evil", config=cfg)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200
    after = sorted(
        p.relative_to(tmp_path)
        for p in tmp_path.rglob("*")
        if not p.is_relative_to(tmp_path / "home")
    )
    assert after == before
    assert not (tmp_path / "home" / "evil").exists()


def test_version_record_naming_another_version_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, {layout.ref_key("x", 2): VersionRecord("x", 1, "ab" * 32).to_json()})
    with pytest.raises(etc.ManifestError, match="names another version"):
        etc.pull("x", config=etc.Config(f"file://{repo}", home=tmp_path / "home"))


def test_tree_with_clashing_names_is_refused_at_push(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "s", {"data/train/Readme": b"1", "data/train/README": b"2"})
    cfg = _cfg(tmp_path)
    etc.register(root, config=cfg)
    with pytest.raises(etc.NotADatasetError, match="clash"):
        etc.push("s", config=cfg)


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    root = _sample(tmp_path / "s")
    (root / "data/train/loop").symlink_to(root / "data")
    cfg = _cfg(tmp_path)
    etc.register(root, config=cfg)
    with pytest.raises(etc.NotADatasetError, match="symlink loop"):
        etc.push("s", config=cfg)


def test_symlinks_are_followed_and_fifos_skipped(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "outside", {"shared.txt": b"shared"})
    root = _sample(tmp_path / "s")
    (root / "data/train/link.txt").symlink_to(outside / "shared.txt")
    os.mkfifo(root / "data/train/pipe")
    cfg = _cfg(tmp_path)
    etc.register(root, config=cfg)
    result = etc.push("s", config=cfg)
    assert any("pipe" in w for w in result.warnings)
    pulled = etc.pull("s", config=etc.Config(cfg.url, home=tmp_path / "home2"))
    link = pulled.location / "data/train/link.txt"
    assert link.read_bytes() == b"shared" and not link.is_symlink()
    assert not (pulled.location / "data/train/pipe").exists()


def test_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = etc.Config(home="relative-home")
    assert cfg.home == tmp_path / "relative-home"
    etc.register(_sample(tmp_path / "s"), config=cfg)
    monkeypatch.chdir("/")
    assert etc.dataset("s", config=cfg).partitions() == ["train"]
