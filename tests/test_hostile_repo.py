"""Hostile repositories that claim too much: each is a one-line error, fast and small.

Every case is a ``file://`` repository built by an attacker who controls every byte and
keeps every hash consistent (``tests/hostile.py``). Each is run through ``etc`` in a
subprocess, whose peak memory (``VmHWM``) must stay under 300 MiB and whose stderr must
be one line naming the object; a hang is killed after a minute and fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etcetera.engine.localfs import remove_tree
from etcetera.format import layout
from etcetera.format.hashing import CHUNK_SIZE, sha256_hex
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.v2 import PieceRef, encode_manifest, manifest_root
from tests.hostile import (
    NAME,
    GiB,
    MiB,
    blob_manifest,
    error_lines,
    large_file,
    pack_manifest,
    publish,
    put,
    record,
    refused,
    run_etc,
)
from tests.support import mounted_tmpfs

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
    root = manifest_root(CHUNK_SIZE, ["t"], [], [_ref(pid, length)], ["data/t/a"])
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
    firsts = [f"data/t/{i:07d}" for i in range(len(refs))]
    root = manifest_root(CHUNK_SIZE, ["t"], [], refs, firsts)
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


def _packed(repo: Path, files: dict[str, tuple[bytes, int]], name: str = NAME) -> str:
    """A valid manifest of ``path -> (bytes, mode)`` in one pack, published as version 1."""
    pack = b"".join(data for _, (data, _) in sorted(files.items()))
    pack_id = sha256_hex(pack)
    entries, at = [], 0
    for path, (data, mode) in sorted(files.items()):
        entries.append(FileEntry(path, len(data), mode, sha256_hex(data), pack_id, at))
        at += len(data)
    partitions = tuple(sorted({p.split("/")[1] for p in files if p.startswith("data/")}))
    manifest = Manifest(tuple(entries), {pack_id: ObjectEntry(pack_id, "pack", at)}, partitions)
    encoded = encode_manifest(manifest)
    for pid, data in encoded.pieces.items():
        put(repo, layout.piece_key(pid), data)
    put(repo, layout.manifest_key(encoded.digest), encoded.root)
    put(repo, layout.object_key(pack_id), pack)
    record(repo, encoded.digest, name=name)
    return encoded.digest


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    return repo


def test_version_numbers_are_ascii_digits(tmp_path: Path) -> None:
    """``²`` (which ``int`` refuses) and ``٣`` (which it reads as 3) name no version."""
    repo = _repo(tmp_path)
    _packed(repo, {"data/t/a.txt": (b"hello", 0o644)})
    one = (repo / layout.ref_key(NAME, 1)).read_bytes()
    for key in ("\u00b2", "\u0663", "01", "1e3"):
        put(repo, f"{layout.refs_prefix(NAME)}{key}", one)
    listed = run_etc(repo, tmp_path / "home", "list", "--remote")
    assert listed.returncode == 0, listed
    assert listed.stdout.split() == [NAME, "v1"]
    line = refused(run_etc(repo, tmp_path / "home", "pull", f"{NAME}@\u0663"), "invalid version")
    print(line)
    pulled = run_etc(repo, tmp_path / "home", "pull", NAME)
    assert pulled.returncode == 0 and (tmp_path / "home" / NAME / "data/t/a.txt").exists()


_DEEP = b"[" * 100_000 + b"]" * 100_000


def _deep_record(repo: Path) -> None:
    put(repo, layout.ref_key(NAME, 1), _DEEP)


def _deep_root(repo: Path) -> None:
    root = b'{"format":"etcetera/manifest","version":2,"pieces":' + _DEEP + b"}"
    put(repo, layout.manifest_key(sha256_hex(root)), root)
    record(repo, sha256_hex(root))


def _deep_piece_header(repo: Path) -> None:
    import zstandard

    from etcetera.format.pieces import MAGIC

    raw = MAGIC + struct.pack("<I", len(_DEEP)) + _DEEP
    ref = PieceRef(sha256_hex(raw), "t", 1, 1, len(raw))
    root = manifest_root(CHUNK_SIZE, ["t"], [], [ref], ["data/t/a"])
    put(repo, layout.piece_key(sha256_hex(raw)), zstandard.ZstdCompressor().compress(raw))
    put(repo, layout.manifest_key(sha256_hex(root)), root)
    record(repo, sha256_hex(root))


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (_deep_record, ("version record evil@1 is nested too deeply",)),
        (
            _deep_root,
            (
                "manifest ",
                " is nested too deeply",
            ),
        ),
        (_deep_piece_header, ("manifest piece header is malformed",)),
    ],
    ids=["version record", "manifest root", "piece header"],
)
def test_json_nested_100000_deep_is_refused(tmp_path: Path, build: Build, words: str) -> None:
    repo = _repo(tmp_path)
    build(repo)
    print(refused(run_etc(repo, tmp_path / "home", "pull", NAME), *words))


def test_meta_json_nested_100000_deep(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _packed(repo, {"data/t/a.txt": (b"a", 0o644), "meta.json": (_DEEP, 0o644)})
    assert run_etc(repo, tmp_path / "home", "pull", NAME).returncode == 0
    print(refused(run_etc(repo, tmp_path / "home", "info", NAME), "meta.json is nested too deeply"))


def test_absurd_numbers_in_a_record(tmp_path: Path) -> None:
    """A record's size of 10^4000 (and a float of 1e400) is malformed, not an OverflowError."""
    repo = _repo(tmp_path)
    digest = _packed(repo, {"data/t/a.txt": (b"a", 0o644)})
    doc = (repo / layout.ref_key(NAME, 1)).read_text()
    doc = doc.replace('"size": 0', f'"size": 1{"0" * 4000}').replace('"files": 0', '"files": 1e400')
    assert "0" * 4000 in doc and "1e400" in doc
    put(repo, layout.ref_key(NAME, 1), doc.encode())
    info = run_etc(repo, tmp_path / "home", "info", NAME, "--remote")
    assert info.returncode == 0, info
    assert "v1" in info.stdout and "0 files  0 B" in info.stdout
    assert run_etc(repo, tmp_path / "home", "list", "--remote").returncode == 0
    assert digest


def test_twenty_thousand_versions(tmp_path: Path) -> None:
    """``etc info --remote`` lists every version, reading only the latest 1,000 records."""
    repo = _repo(tmp_path)
    _packed(repo, {"data/t/a.txt": (b"a", 0o644)})
    one = (
        (repo / layout.ref_key(NAME, 1)).read_text().replace('"pushed_by": ""', '"pushed_by": "me"')
    )
    for n in range(1, 20_001):
        put(repo, layout.ref_key(NAME, n), one.replace('"number": 1', f'"number": {n}').encode())
    (repo / layout.ref_key(NAME, 5)).write_bytes(b"not read: not refused")
    info = run_etc(repo, tmp_path / "home", "info", NAME, "--remote")
    assert info.returncode == 0, info
    lines = info.stdout.splitlines()
    assert len(lines) == 1 + 20_000 + 1
    # Newest first: v20000 on the second line, v1 on the one before the partitions.
    assert lines[1].startswith("  v20000  ") and " me  0 files" in lines[1]
    assert lines[-2].startswith("  v1  ") and lines[-2].endswith("  -  -")
    assert lines[1001].startswith("  v19000 ") and "me" not in lines[1001]
    assert lines[1000].startswith("  v19001 ") and "me" in lines[1000]
    print(f"etc info --remote, 20,000 versions: {info.seconds:.1f} s, {info.peak_mib:.0f} MiB")
    # list --remote --all: the same cap, the older versions said in one row.
    listed = run_etc(repo, tmp_path / "home", "list", "--remote", "--all")
    assert listed.returncode == 0, listed
    rows = listed.stdout.splitlines()
    assert len(rows) == 1000 + 1 and rows[0].split()[:2] == [NAME, "v20000"]
    assert rows[999].split()[1] == "v19001" and "me" in rows[999]
    assert rows[1].split()[1] == "v19999"
    assert rows[-1].split() == [NAME, "v1-v19000", "19,000", "older", "versions", "not", "shown"]
    doc = json.loads(run_etc(repo, tmp_path / "home", "list", "-r", "--all", "--json").stdout)
    versions = doc["datasets"][0]["versions"]
    assert [v["version"] for v in versions] == list(range(20_000, 0, -1))
    assert versions[999]["files"] == 0 and versions[1000]["files"] is None


_ESCAPES = ("\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m", "\u202etxt.exe", "two\nlines")


def test_control_characters_are_escaped_everywhere_shown(tmp_path: Path) -> None:
    """Paths, partitions and record fields holding escapes print escaped, in every command."""
    repo = _repo(tmp_path)
    files = {f"data/p\x1b[2J/{name}": (name.encode(), 0o644) for name in _ESCAPES}
    digest = _packed(repo, files)
    doc = (repo / layout.ref_key(NAME, 1)).read_text()
    put(
        repo,
        layout.ref_key(NAME, 1),
        doc.replace('"pushed_by": ""', '"pushed_by": "\\u001b]0;x\\u0007"').encode(),
    )
    home = tmp_path / "home"
    outputs = [run_etc(repo, home, "pull", NAME), run_etc(repo, home, "info", NAME)]
    outputs.append(run_etc(repo, home, "info", NAME, "--remote"))
    for path in (home / NAME / "data").rglob("*"):
        if path.is_file():
            path.write_bytes(b"changed")
    outputs.append(run_etc(repo, home, "verify", NAME))
    # An error naming such a path: a pack whose bytes do not match its files.
    other = _repo(tmp_path / "other")
    _packed(other, files)
    (pack,) = [p for p in (other / layout.OBJECTS).rglob("*") if p.is_file()]
    pack.write_bytes(bytes(len(pack.read_bytes())))
    outputs.append(run_etc(other, tmp_path / "home2", "pull", NAME))
    for out in outputs:
        text = out.stdout + out.stderr
        for raw in ("\x1b", "\x07", "\x9b", "\u202e", "two\nlines"):
            assert raw not in text, (raw, out)
    assert "\\x1b" in outputs[1].stdout and "\\x1b]0;x\\x07" in outputs[2].stdout
    assert outputs[3].stdout.count("changed: ") == 5 and "\\u202etxt.exe" in outputs[3].stdout
    failed = error_lines(outputs[4].stderr)
    assert failed.count("\n") == 1 and "\\x1b" in failed, outputs[4]
    assert digest


def test_manifest_modes_pass_through_the_umask(tmp_path: Path) -> None:
    """0o777 is not applied as given, nor 0o000: the umask applies, the owner keeps rw."""
    import etcetera as etc

    repo = _repo(tmp_path)
    _packed(
        repo, {"data/t/all": (b"1", 0o777), "data/t/none": (b"2", 0o000), "data/t/x": (b"3", 0o750)}
    )
    old = os.umask(0o027)
    try:
        pulled = etc.pull(NAME, config=etc.Config(f"file://{repo}", home=tmp_path / "home"))
        modes = {p.name: p.stat().st_mode & 0o777 for p in (pulled.location / "data/t").iterdir()}
        assert modes == {"all": 0o750, "none": 0o600, "x": 0o750}
        assert etc.verify(NAME, config=etc.Config(f"file://{repo}", home=tmp_path / "home")).ok
    finally:
        os.umask(old)


def test_paths_1200_folders_deep_are_pulled_and_verified(tmp_path: Path) -> None:
    """Deeper than Python's recursion limit, valid by the format: pulled, verified, pushed."""
    import etcetera as etc

    repo = _repo(tmp_path)
    deep = "data/t/" + "d/" * 1200 + "f.txt"
    _packed(repo, {deep: (b"deep", 0o644), "data/t/a.txt": (b"a", 0o644)})
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home")
    try:
        pulled = etc.pull(NAME, config=cfg)
        assert (pulled.location / deep).read_bytes() == b"deep"
        assert etc.verify(NAME, config=cfg).ok
        # Pushed back (scanned without recursion too), pulled elsewhere, pulled again here.
        assert etc.push(NAME, config=cfg, force=True).version == 2
        again = etc.pull(NAME, config=etc.Config(f"file://{repo}", home=tmp_path / "home2"))
        assert (again.location / deep).read_bytes() == b"deep"
        assert etc.pull(NAME, config=cfg, force=True).version == 2
        (tmp_path / "home" / NAME / "data/t/a.txt").unlink()  # a third version: the first
        assert etc.push(NAME, config=cfg, force=True).version == 3  # is pruned
        assert etc.pull(NAME, config=cfg, force=True).version == 3
        assert not pulled.location.exists()
    finally:
        for home in ("home", "home2"):  # pytest's clean-up (shutil.rmtree) recurses per folder
            remove_tree(str(tmp_path / home))


def _sparse_tgz(claimed: int) -> bytes:
    """An old-GNU sparse member: one 512-byte block stored, ``claimed`` bytes once unpacked."""
    import gzip
    import tarfile

    info = tarfile.TarInfo("data/t/sparse.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 512
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))

    def number(n: int) -> bytes:  # GNU base-256: 0x80, then 11 bytes big-endian
        return b"\x80" + n.to_bytes(11, "big")

    header[386:398] = number(claimed - 512)  # the one extent: its offset, its length
    header[398:410] = number(512)
    header[483:495] = number(claimed)  # the size unpacked
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return gzip.compress(bytes(header) + b"x" * 512 + bytes(1024))


def _bomb_tgz(size: int) -> bytes:
    """A gzip of a tar holding one file of ``size`` zeros (about 1,000 times smaller)."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("data/t/zeros.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return gzip.compress(raw.getvalue(), compresslevel=1)


def test_legacy_sparse_member_claiming_100_gib(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    archive = _sparse_tgz(100 * GiB)
    assert len(archive) < 400
    (repo / f"{NAME}.tgz").write_bytes(archive)
    outcome = run_etc(repo, tmp_path / "home", "pull", NAME)
    print(refused(outcome, "sparse.bin", "is a sparse file"), f"({outcome.peak_mib:.0f} MiB)")
    assert not [p for p in (tmp_path / "home").rglob("*") if p.is_file() and "lock" not in p.name]


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A home on a 24 MiB tmpfs, where the machine lets the test mount one."""
    with mounted_tmpfs(tmp_path / "small", "24m") as mount:
        yield mount / "home"


def test_legacy_gzip_bomb_is_refused_before_it_fills_the_disk(
    tmp_path: Path, small_home: Path
) -> None:
    """64 MiB of zeros in a 64 KiB archive, for a home with 24 MiB free: refused, nothing kept."""
    repo = _repo(tmp_path)
    archive = _bomb_tgz(64 * MiB)
    assert len(archive) < 400 << 10
    (repo / f"{NAME}.tgz").write_bytes(archive)
    outcome = run_etc(repo, small_home, "pull", NAME)
    print(refused(outcome, "evil.tgz", "unpacks to more than"), f"({outcome.peak_mib:.0f} MiB)")
    assert not [p for p in small_home.rglob("*") if p.is_file() and "lock" not in p.name]


def test_legacy_unpack_is_bounded(tmp_path: Path) -> None:
    from etcetera import legacy
    from etcetera.errors import ManifestError

    archive = tmp_path / "a.tgz"
    archive.write_bytes(_bomb_tgz(4 * MiB))
    with pytest.raises(ManifestError, match="unpacks to more than 1048576 bytes"):
        legacy.unpack(archive, tmp_path / "out", "a.tgz", limit=MiB)
    assert legacy.space_for(tmp_path) > 0


def test_fifos_among_unfinished_uploads_do_not_hang_a_push(tmp_path: Path) -> None:
    """A push or gc listing uploads reads ``.uploads/*/key`` and parts: FIFOs are skipped."""
    import etcetera as etc
    from etcetera.format.hashing import digest_bytes

    repo = _repo(tmp_path)
    big = os.urandom(9 * MiB)
    uploads = repo / ".uploads"
    (uploads / "aaaa").mkdir(parents=True)
    os.mkfifo(uploads / "aaaa" / "key")
    (uploads / "bbbb").mkdir()
    key = layout.object_key(digest_bytes(big).hex)
    (uploads / "bbbb" / "key").write_text(key)
    os.mkfifo(uploads / "bbbb" / "000001")
    src = tmp_path / NAME
    (src / "data/t").mkdir(parents=True)
    (src / "data/t/big.bin").write_bytes(big)
    home = tmp_path / "home"
    cfg = etc.Config(f"file://{repo}", home=home)
    etc.register(src, config=cfg)
    (home / "none.toml").write_text(f"part_size = {4 * MiB}\n")  # a multipart upload
    outcome = run_etc(repo, home, "push", NAME)
    assert outcome.returncode == 0, outcome
    outcome = run_etc(repo, home, "gc")  # lists every unfinished upload
    assert outcome.returncode == 0, outcome
    pulled = etc.pull(NAME, config=etc.Config(f"file://{repo}", home=tmp_path / "home2"))
    assert (pulled.location / "data/t/big.bin").read_bytes() == big
