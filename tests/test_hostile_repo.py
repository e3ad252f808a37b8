"""Hostile repositories that claim too much: each is a one-line error, fast and small.

Every case is a ``file://`` repository built by an attacker who controls every byte and
keeps every hash consistent (``tests/hostile.py``). Each is run through ``etc`` in a
subprocess, whose peak memory (``VmHWM``) must stay under 300 MiB and whose stderr must
be one line naming the object; a hang is killed after a minute and fails the test.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from etcetera.format import layout
from etcetera.format.hashing import CHUNK_SIZE, sha256_hex
from etcetera.format.manifest import FileEntry
from etcetera.format.v2 import PieceRef, encode_manifest, manifest_root
from tests.hostile import (
    NAME,
    GiB,
    MiB,
    blob_manifest,
    large_file,
    pack_manifest,
    publish,
    put,
    record,
    refused,
    run_etc,
)

Build = Callable[[Path], None]


def _blob(size: int, chunk_size: int = CHUNK_SIZE) -> Build:
    def build(repo: Path) -> None:
        entry = large_file("data/t/big.bin", size, chunk_size)
        publish(repo, blob_manifest(entry, chunk_size), {entry.digest: b"x" * 1000})

    return build


def _pack_member(size: int) -> Build:
    def build(repo: Path) -> None:
        pack_id = hashlib.sha256(b"pack").hexdigest()
        entry = large_file("data/t/member.bin", size)._replace(object=pack_id)
        publish(repo, pack_manifest(pack_id, size, entry), {pack_id: b"x" * 1000})

    return build


def _zstd_rle(content: int, blocks: int, *, declare: bool) -> bytes:
    """A zstd frame of ``blocks`` RLE blocks of 128 KiB of zeros (4 bytes each).

    ``declare``: its header carries ``content`` as the frame's content size.
    """
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    if declare:
        out += bytes([0xC0, 0x38]) + struct.pack("<Q", content)  # 8-byte size, 128 KiB window
    else:
        out += bytes([0x00, 0x38])
    for i in range(blocks):
        last = int(i == blocks - 1)
        out += (last | (1 << 1) | ((128 << 10) << 3)).to_bytes(3, "little") + b"\0"
    return bytes(out)


def _piece_root(repo: Path, stored: bytes, length: int) -> None:
    """A root listing one piece of ``length`` bytes stored as ``stored``."""
    pid = hashlib.sha256(b"piece").hexdigest()
    root = manifest_root(CHUNK_SIZE, ["t"], [], [_ref(pid, length)])
    put(repo, layout.piece_key(pid), stored)
    put(repo, layout.manifest_key(sha256_hex(root)), root)
    record(repo, sha256_hex(root))


def _ref(pid: str, length: int) -> PieceRef:
    return PieceRef(pid, "t", 1, 1, length)


def _zstd_claims(repo: Path) -> None:
    _piece_root(repo, _zstd_rle(4 * GiB, 32768, declare=True), MiB)


def _zstd_unsized(repo: Path) -> None:
    # Inflates to 64 MiB; the root says 32 MiB, and the frame does not say.
    _piece_root(repo, _zstd_rle(0, 512, declare=False), 32 * MiB)


def _many_pieces(repo: Path) -> None:
    refs = [_ref(hashlib.sha256(b"%d" % i).hexdigest(), 100) for i in range(220_000)]
    root = manifest_root(CHUNK_SIZE, ["t"], [], refs)
    put(repo, layout.manifest_key(sha256_hex(root)), root)
    record(repo, sha256_hex(root))


def _big_stored_piece(repo: Path) -> None:
    _piece_root(repo, os.urandom(256 << 10), 1000)


def _small_manifest(repo: Path) -> tuple[str, str]:
    """A valid one-file manifest; its root's and its piece's keys."""
    data = b"hello"
    pack_id = sha256_hex(data)
    entry = FileEntry("data/t/a.txt", 5, 0o644, sha256_hex(data), pack_id, 0)
    digest = publish(repo, pack_manifest(pack_id, 5, entry), {pack_id: data})
    (pid,) = encode_manifest(pack_manifest(pack_id, 5, entry)).pieces
    return layout.manifest_key(digest), layout.piece_key(pid)


def _special(which: str, how: str) -> Build:
    """A valid repository whose ``which`` object is a FIFO or a link to /dev/zero."""

    def build(repo: Path) -> None:
        root_key, piece_key = _small_manifest(repo)
        key = {
            "ref": layout.ref_key(NAME, 1),
            "manifest": root_key,
            "piece": piece_key,
            "pack": layout.object_key(sha256_hex(b"hello")),
        }[which]
        path = repo / key
        path.unlink()
        if how == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")

    return build


def _special_tgz(how: str) -> Build:
    def build(repo: Path) -> None:
        if how == "fifo":
            os.mkfifo(repo / f"{NAME}.tgz")
        else:
            (repo / f"{NAME}.tgz").symlink_to("/dev/zero")

    return build


CASES: dict[str, tuple[Build, tuple[str, ...]]] = {
    "blob declared 256 GiB": (_blob(256 * GiB), ("holds 1000 bytes", "big.bin")),
    "blob declared 1 TiB": (_blob(1 << 40), ("holds 1000 bytes", "big.bin")),
    "blob declared 1 PiB": (_blob(1 << 50, 1 << 34), ("holds 1000 bytes", "big.bin")),
    "pack member declared 512 MiB": (_pack_member(512 * MiB), ("holds 1000 bytes",)),
    "pack member declared 2 GiB": (_pack_member(2 * GiB), ("holds 1000 bytes",)),
    "zstd frame declaring 4 GiB": (_zstd_claims, ("declares 4294967296 bytes",)),
    "zstd frame inflating past its length": (_zstd_unsized, ("does not match its digest",)),
    "root listing 220,000 pieces": (_many_pieces, ("manifests/", "larger than 16777216 bytes")),
    "stored piece past its bound": (_big_stored_piece, ("larger than",)),
    **{
        f"{which} is a {how}": (_special(which, how), ("not a regular file", which_key))
        for which, which_key in (
            ("ref", "refs/evil/1"),
            ("manifest", ".json"),
            ("piece", ".piece"),
            ("pack", "objects/"),
        )
        for how in ("fifo", "/dev/zero link")
    },
    **{
        f"NAME.tgz is a {how}": (_special_tgz(how), ("not a regular file", "evil.tgz"))
        for how in ("fifo", "/dev/zero link")
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_repository_is_one_line_error(tmp_path: Path, case: str) -> None:
    build, words = CASES[case]
    repo = tmp_path / "repo"
    repo.mkdir()
    build(repo)
    outcome = run_etc(repo, tmp_path / "home", "pull", NAME)
    line = refused(outcome, *words)
    print(f"{case}: {line} ({outcome.peak_mib:.0f} MiB, {outcome.seconds:.1f} s)")
    # Nothing in the home grew to a claimed size (a staging file extended to 1 TiB).
    home = tmp_path / "home"
    grown = [p for p in home.rglob("*") if p.is_file() and not p.is_relative_to(home / ".cache")]
    assert sum(p.stat().st_size for p in grown) < MiB


def test_large_pack_member_streams_within_the_memory_budget(tmp_path: Path) -> None:
    """A pack holding one 96 MiB file pulls in steps, not the member whole (nor copied)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    data = os.urandom(MiB) * 96
    digest = _digest(data)
    pack = b"x" * 10 + data
    pack_id = sha256_hex(pack)
    chunks = tuple(sha256_hex(data[i : i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE))
    entry = FileEntry("data/t/member.bin", len(data), 0o644, digest, pack_id, 10, chunks)
    small = FileEntry("data/t/a.txt", 10, 0o644, sha256_hex(b"x" * 10), pack_id, 0)
    publish(repo, pack_manifest(pack_id, len(pack), small, entry), {pack_id: pack})
    del data, pack
    home = tmp_path / "home"
    (home).mkdir()
    (home / "none.toml").write_text("memory_budget = 16777216\n")
    outcome = run_etc(repo, home, "pull", NAME)
    assert outcome.returncode == 0, outcome
    pulled = home / NAME / "data/t/member.bin"
    assert _digest(pulled.read_bytes()) == digest
    assert (home / NAME / "data/t/a.txt").read_bytes() == b"x" * 10
    print(f"peak {outcome.peak_mib:.0f} MiB")
    assert outcome.peak_mib < 150, outcome


def _digest(data: bytes) -> str:
    from etcetera.format.hashing import digest_bytes

    return digest_bytes(data).hex
