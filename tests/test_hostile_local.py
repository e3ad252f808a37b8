"""Hostile local content: special files, unreadable files, files that change, full disks.

Tests run as root here, where ``chmod 000`` does not stop a read, so unreadable files
and a full disk are injected at the layer that reads or writes (the real thing is
used where the machine allows it: a non-root run, a mountable tmpfs).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import types
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

import etcetera as etc
from etcetera.backends import file as file_backend
from etcetera.engine import pull as engine_pull
from etcetera.engine import push as engine_push
from etcetera.engine.progress import ProgressEvent
from etcetera.format import hashing, layout
from tests.support import RepoSpec, mounted_tmpfs, snapshot, write_tree

pytestmark = pytest.mark.anyio

NAME = "sample"
KiB = 1024
MiB = 1024 * KiB


def make_tree(root: Path, seed: int = 0, big: int = 0) -> Path:
    """Thirty small files, one 100 KiB file, optionally one ``big`` file."""
    files = {f"data/train/f{i:02d}.txt": b"%d:%d\n" % (seed, i) * (i + 10) for i in range(30)}
    files["data/test/one.bin"] = bytes([seed % 256]) * (100 * KiB)
    if big:
        files["data/test/big.bin"] = os.urandom(big)
    return write_tree(root, files)


def fake_os(**overrides: Callable[..., Any]) -> types.SimpleNamespace:
    """The ``os`` module with some functions replaced (for one engine module only)."""
    names = {name: getattr(os, name) for name in dir(os) if not name.startswith("__")}
    return types.SimpleNamespace(**{**names, **overrides})


async def test_fifos_devices_and_sockets_are_skipped_without_hanging(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / NAME)
    train = src / "data" / "train"
    os.mkfifo(train / "pipe")  # opening it for reading would block for ever
    (train / "zeros").symlink_to("/dev/zero")  # reading it would never end
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(train / "sock"))
    specials = ["pipe", "zeros", "sock"]
    if os.geteuid() == 0:
        os.mknod(train / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        specials.append("null")
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    with anyio.fail_after(30):
        pushed = await etc.apush(NAME, config=cfg)
    for name in specials:
        assert any(f"data/train/{name}" in w and "not a regular file" in w for w in pushed.warnings)
    pulled = await etc.apull(NAME, config=file_repo.config(home=tmp_path / "home2"))
    assert sorted(p.name for p in (pulled.location / "data/train").iterdir()) == [
        f"f{i:02d}.txt" for i in range(30)
    ]


async def test_symlinks_that_loop_are_refused(file_repo: RepoSpec, tmp_path: Path) -> None:
    src = make_tree(tmp_path / NAME)
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    (src / "data/train/a").symlink_to("b")
    (src / "data/train/b").symlink_to("a")
    with anyio.fail_after(30), pytest.raises(etc.LocalIOError, match=r"data/train/(a|b)"):
        await etc.apush(NAME, config=cfg)
    (src / "data/train/a").unlink()
    (src / "data/train/b").unlink()
    (src / "data/test/up").symlink_to("../..")
    with anyio.fail_after(30), pytest.raises(etc.NotADatasetError, match="symlink loop"):
        await etc.apush(NAME, config=cfg)
    assert await etc.als(config=cfg, remote=True) == []


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Paths added to this set cannot be opened by the hashing or the upload layer."""
    paths: set[str] = set()
    real_open, real_os_open = open, os.open

    def refuse(path: Any) -> None:
        if os.path.realpath(path) in paths:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def hashing_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        refuse(path)
        return real_open(path, *args, **kwargs)

    def push_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        refuse(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "open", hashing_open, raising=False)
    monkeypatch.setattr(engine_push, "os", fake_os(open=push_os_open))
    return paths


async def test_unreadable_file_is_a_clear_error(
    file_repo: RepoSpec, tmp_path: Path, unreadable: set[str]
) -> None:
    src = make_tree(tmp_path / NAME)
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    target = src / "data/train/f07.txt"
    unreadable.add(str(target.resolve()))
    with pytest.raises(etc.LocalIOError, match=r"cannot read .*f07\.txt: Permission denied"):
        await etc.apush(NAME, config=cfg)

    # Hashed earlier (the cache vouches for it), unreadable when it is uploaded.
    unreadable.clear()
    await etc.apush(NAME, config=cfg, dry_run=True)
    unreadable.add(str(target.resolve()))
    with pytest.raises(etc.LocalIOError, match=r"cannot read .*f07\.txt: Permission denied"):
        await etc.apush(NAME, config=cfg)
    assert await etc.als(config=cfg, remote=True) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
async def test_file_without_read_permission(file_repo: RepoSpec, tmp_path: Path) -> None:
    src = make_tree(tmp_path / NAME)
    (src / "data/train/f07.txt").chmod(0)
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    with pytest.raises(etc.LocalIOError, match=r"cannot read .*f07\.txt: Permission denied"):
        await etc.apush(NAME, config=cfg)


def _change_on_upload(change: Callable[[], None]) -> Callable[[ProgressEvent], None]:
    """A progress callback that runs ``change`` once, after hashing, before any upload."""
    done = False

    def callback(event: ProgressEvent) -> None:
        nonlocal done
        if event.phase == "upload" and not done:
            done = True
            change()

    return callback


def _changer(target: Path, how: str) -> Callable[[], None]:
    """Change ``target``: append, or flip a byte keeping its size and putting its mtime back."""

    def change() -> None:
        st = target.stat()
        data = bytearray(target.read_bytes())
        if how == "append":
            target.write_bytes(bytes(data) + b"more")
        else:
            data[len(data) // 2] ^= 0xFF
            target.write_bytes(bytes(data))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    return change


@pytest.mark.parametrize(
    ("path", "where"), [("data/train/f03.txt", "file"), ("data/test/big.bin", "s3")]
)
@pytest.mark.parametrize("how", ["append", "same-size-same-mtime"])
async def test_file_changing_while_pushed_is_detected(
    request: pytest.FixtureRequest, tmp_path: Path, path: str, where: str, how: str
) -> None:
    """Between hashing and upload a file changes; the push refuses, nothing is published.

    ``same-size-same-mtime`` keeps the size and puts the old mtime back, as a write
    within one tick of a coarse file-system clock (or ``cp -p``) would: only the bytes
    tell. A packed file is read again to send it on every back-end; a blob is read again
    where the repository is not local (a ``file://`` push sends the copy it hashed: see
    the next test).
    """
    repo: RepoSpec = request.getfixturevalue(f"{where}_repo")
    src = make_tree(tmp_path / NAME, big=9 * MiB)  # > one 8 MiB chunk: a multipart upload
    cfg = repo.config(home=tmp_path / "home", pack_size=4 * KiB, part_size=5 * MiB)
    await etc.aregister(src, config=cfg)

    with pytest.raises(etc.LocalIOError, match=rf"{path} changed while it was pushed"):
        await etc.apush(NAME, config=cfg, progress=_change_on_upload(_changer(src / path, how)))
    assert await etc.als(config=cfg, remote=True) == []
    # Pushed again, the tree as it now is goes up whole.
    await etc.apush(NAME, config=cfg)
    pulled = await etc.apull(NAME, config=repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(src)


@pytest.mark.parametrize("how", ["append", "same-size-same-mtime"])
async def test_blob_changing_after_hashing_pushes_the_bytes_hashed(
    file_repo: RepoSpec, tmp_path: Path, how: str
) -> None:
    """On ``file://`` a blob is copied into the repository and the copy is hashed.

    A change to the file after that is not in the version, which holds the bytes as
    they were hashed (the copy), consistent with its manifest.
    """
    src = make_tree(tmp_path / NAME, big=9 * MiB)
    cfg = file_repo.config(home=tmp_path / "home", pack_size=4 * KiB)
    await etc.aregister(src, config=cfg)
    target = src / "data/test/big.bin"
    before = snapshot(src)

    await etc.apush(NAME, config=cfg, progress=_change_on_upload(_changer(target, how)))
    assert snapshot(src) != before
    pulled = await etc.apull(NAME, config=file_repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == before
    assert list(Path(file_repo.url.removeprefix("file://")).rglob(".staged.*")) == []


def _enospc_after(budget: int) -> dict[str, Callable[..., int]]:
    """``os`` writes (``write``, ``pwrite``, ``pwritev``, ``copy_file_range``) that fail with
    ENOSPC after ``budget``."""
    left = budget

    def take(n: int) -> None:
        nonlocal left
        if n > left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left -= n

    def write(fd: int, data: Any) -> int:
        take(len(data))
        return os.write(fd, data)

    def pwrite(fd: int, data: Any, offset: int) -> int:
        take(len(data))
        return os.pwrite(fd, data, offset)

    def pwritev(fd: int, buffers: Any, offset: int) -> int:
        take(sum(len(b) for b in buffers))
        return os.pwritev(fd, buffers, offset)

    def copy_file_range(src: int, dst: int, count: int, *offsets: Any) -> int:
        take(min(count, MiB))
        return os.copy_file_range(src, dst, min(count, MiB), *offsets)

    return {
        "write": write,
        "pwrite": pwrite,
        "pwritev": pwritev,
        "copy_file_range": copy_file_range,
    }


@pytest.mark.parametrize("what", ["small files", "a large file"])
async def test_disk_full_during_pull_keeps_the_previous_copy(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    big = 9 * MiB if what == "a large file" else 0
    src = make_tree(tmp_path / NAME, seed=1, big=big)
    pusher = file_repo.config(home=tmp_path / "pusher", pack_size=4 * KiB)
    await etc.aregister(src, config=pusher)
    await etc.apush(NAME, config=pusher)
    home = tmp_path / "home"
    cfg = file_repo.config(home=home)
    first = await etc.apull(NAME, config=cfg)
    before = snapshot(first.location)
    make_tree(src, seed=2, big=big)
    await etc.apush(NAME, config=pusher, force=True)

    full = fake_os(**_enospc_after(2 * MiB if big else 600))
    monkeypatch.setattr(engine_pull, "os", full)
    monkeypatch.setattr(file_backend, "os", full)  # a large file is copied by the back-end
    with pytest.raises(etc.LocalIOError, match="No space left on device"):
        await etc.apull(NAME, config=cfg)
    ds = await etc.adataset(NAME, config=cfg)
    assert ds.version == 1
    assert snapshot(ds.location) == before
    monkeypatch.undo()
    again = await etc.apull(NAME, config=cfg)
    assert again.version == 2
    assert snapshot(again.location) == snapshot(src)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs, where the machine lets the test mount one."""
    with mounted_tmpfs(tmp_path / "small", "3m") as mount:
        yield mount


async def test_real_full_disk_during_pull(
    file_repo: RepoSpec, tmp_path: Path, small_tmpfs: Path
) -> None:
    src = write_tree(tmp_path / NAME, {"data/train/a.bin": os.urandom(1 * MiB)})
    pusher = file_repo.config(home=tmp_path / "pusher")
    await etc.aregister(src, config=pusher)
    await etc.apush(NAME, config=pusher)
    cfg = file_repo.config(home=small_tmpfs / "home")
    first = await etc.apull(NAME, config=cfg)
    before = snapshot(first.location)
    (src / "data/train/b.bin").write_bytes(os.urandom(3 * MiB))
    await etc.apush(NAME, config=pusher, force=True)
    with pytest.raises(etc.LocalIOError, match="No space left on device"):
        await etc.apull(NAME, config=cfg)
    ds = await etc.adataset(NAME, config=cfg)
    assert ds.version == 1
    assert snapshot(ds.location) == before


async def test_pulled_tree_is_flushed_once_before_it_becomes_visible(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut can never leave a visible but empty or torn dataset.

    The staged tree is complete when it is flushed, it is flushed before the link is
    swapped to it, and the flush is one ``syncfs``, not an ``fsync`` per file.
    """
    from etcetera import durable
    from etcetera.api import staging as staging_module
    from etcetera.home import Home

    src = make_tree(tmp_path / NAME)
    pusher = file_repo.config(home=tmp_path / "pusher", pack_size=4 * KiB)
    await etc.aregister(src, config=pusher)
    await etc.apush(NAME, config=pusher)
    home = tmp_path / "home"
    events: list[str] = []
    real_flush, real_swap, real_fsync = durable.flush_tree, Home.swap, os.fsync

    def flush(path: Path) -> None:
        assert snapshot(path) == snapshot(src)  # every file whole before the flush
        assert not (home / NAME).exists()  # and nothing visible yet
        events.append("flush")
        real_flush(path)

    def swap(self: Home, name: str, target: Path) -> None:
        events.append("swap")
        real_swap(self, name, target)

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(staging_module, "flush_tree", flush)
    monkeypatch.setattr(Home, "swap", swap)
    monkeypatch.setattr(os, "fsync", fsync)
    pulled = await etc.apull(NAME, config=file_repo.config(home=home))
    assert pulled.files == 31
    assert events[0] == "flush" and "swap" in events
    # The version record, the versions folder and the link's folder: never one per file.
    assert events.count("fsync") <= 3, events
    assert snapshot(home / NAME) == snapshot(src)


async def test_pushed_objects_are_flushed_before_the_version_record_appears(
    file_repo: RepoSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut can never leave a version record naming objects that are not on disk.

    On file://, every object and manifest is written before one ``syncfs`` of the
    repository's file system, which comes before the record's ``link()``; the record's
    file and its folder are fsynced before the push returns.
    """
    from etcetera.backends import file as file_module

    repo = Path(file_repo.url.removeprefix("file://"))
    src = make_tree(tmp_path / NAME, big=9 * MiB)  # a multipart blob too (parts of 8 MiB)
    events: list[tuple[str, str]] = []
    real_link, real_replace, real_fsync = os.link, os.replace, os.fsync

    def rel(path: str | os.PathLike[str]) -> str:
        return os.path.relpath(path, repo)

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_link(src, dst, *args, **kwargs)
        events.append(("link", rel(dst)))

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_replace(src, dst, *args, **kwargs)
        events.append(("replace", rel(dst)))

    def fsync(fd: int) -> None:
        real_fsync(fd)
        st = os.fstat(fd)
        what = os.readlink(f"/proc/self/fd/{fd}") if stat.S_ISDIR(st.st_mode) else st.st_ino
        events.append(("fsync", rel(what) if isinstance(what, str) else f"inode {what}"))

    def syncfs(fd: int) -> None:
        events.append(("syncfs", ""))

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(file_module, "syncfs", syncfs)
    cfg = file_repo.config(home=tmp_path / "home", pack_size=4 * KiB, part_size=MiB)
    await etc.aregister(src, config=cfg)
    await etc.apush(NAME, config=cfg)

    refs = [i for i, (op, path) in enumerate(events) if op == "link" and "/refs/" in path]
    assert len(refs) == 1, events
    at = refs[0]
    ref = events[at][1]
    written = [i for i, (op, path) in enumerate(events[:at]) if op in ("link", "replace")]
    objects = [events[i][1] for i in written if "/objects/" in events[i][1]]
    assert len(objects) >= 3 and any("/manifests/" in events[i][1] for i in written)
    flushes = [i for i, (op, _) in enumerate(events[:at]) if op == "syncfs"]
    assert flushes and flushes[-1] > written[-1], events  # everything written, then flushed
    after = events[at + 1 :]
    assert ("fsync", f"inode {(repo / ref).stat().st_ino}") in after, events
    assert ("fsync", os.path.dirname(ref)) in after, events


async def test_staged_copies_go_with_a_cancelled_push_or_with_gc(
    file_repo: RepoSpec, tmp_path: Path
) -> None:
    """A cancelled push deletes the copies it staged; gc deletes those a killed one left."""
    src = make_tree(tmp_path / NAME, big=9 * MiB)
    cfg = file_repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    repo = Path(file_repo.url.removeprefix("file://"))
    with anyio.CancelScope() as scope:

        def cancel(event: ProgressEvent) -> None:
            if event.phase == "upload":
                scope.cancel()  # after hashing: the large file's copy is staged

        await etc.apush(NAME, config=cfg, progress=cancel)
    assert scope.cancelled_caught
    assert list(repo.rglob(".staged.*")) == []

    left = repo / layout.OBJECTS / ".staged.0123456789ab.tmp"  # as a SIGKILL leaves it
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"half a copy")
    await etc.agc(config=cfg, grace=timedelta(0))
    assert not left.exists()


@pytest.mark.parametrize("where", ["s3", "file"])
@pytest.mark.parametrize("how", ["grow", "shrink"])
async def test_file_changing_size_while_hashed_is_detected(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    where: str,
) -> None:
    """A large file, hashed in ranges, that changes size after the scan is refused.

    Exactly two chunks, then one more MiB: only a last range that reads to the end of
    the file sees the growth. On ``file://`` the file is copied into the repository and
    the copy hashed: a file that changes while it is copied is refused as well.
    """
    repo: RepoSpec = request.getfixturevalue(f"{where}_repo")
    src = make_tree(tmp_path / NAME, big=2 * hashing.CHUNK_SIZE)
    target = src / "data/test/big.bin"
    cfg = repo.config(home=tmp_path / "home")
    await etc.aregister(src, config=cfg)
    changed = False

    def change() -> None:
        nonlocal changed
        changed = True
        with open(target, "r+b") as fh:
            if how == "grow":
                fh.seek(0, os.SEEK_END)
                fh.write(os.urandom(MiB))
            else:
                fh.truncate(hashing.CHUNK_SIZE // 2)

    if where == "file":
        real_copy = file_backend._copy

        def copy(*args: Any) -> int:
            if not changed:
                change()  # after the file was opened and checked, before it is copied
            return real_copy(*args)

        monkeypatch.setattr(file_backend, "_copy", copy)
    else:
        real_open = open

        def hashing_open(path: Any, *args: Any, **kwargs: Any) -> Any:
            if os.path.realpath(path) == str(target.resolve()) and not changed:
                change()  # after the scan's stat, before any range is read
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(hashing, "open", hashing_open, raising=False)
    with pytest.raises(etc.LocalIOError, match=r"big\.bin changed while it was (read|pushed)"):
        await etc.apush(NAME, config=cfg)
    assert changed and await etc.als(config=cfg, remote=True) == []
    monkeypatch.undo()
    await etc.apush(NAME, config=cfg)
    pulled = await etc.apull(NAME, config=repo.config(home=tmp_path / "home2"))
    assert snapshot(pulled.location) == snapshot(src)
