"""Hostile repositories for the tests: every byte chosen by an attacker, every hash consistent.

:func:`publish` writes a manifest (format v2, or raw root bytes), its pieces, objects
and a version record into a ``file://`` repository folder, as a push would but without
any of a push's checks. :func:`run_pull` runs ``etc`` on it in a subprocess and reports
its exit code, its stderr and its peak memory (``VmHWM``), killing it after a
minute so that a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from etcetera.format import layout
from etcetera.format.hashing import CHUNK_SIZE, combine
from etcetera.format.manifest import FileEntry, Manifest, ObjectEntry
from etcetera.format.record import VersionRecord
from etcetera.format.v2 import encode_manifest

NAME = "evil"
MiB = 1 << 20
GiB = 1 << 30


def put(repo: Path, key: str, data: bytes) -> Path:
    """Write an object of the repository (folders made as needed)."""
    path = repo / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def record(repo: Path, digest: str, number: int = 1, name: str = NAME) -> None:
    """Publish ``digest`` as version ``number`` of ``name``."""
    put(repo, layout.ref_key(name, number), VersionRecord(name, number, digest).to_json())


def publish(repo: Path, manifest: Manifest, objects: dict[str, bytes] | None = None) -> str:
    """Store a manifest as a push would (pieces, root, record) plus ``objects``; its digest."""
    encoded = encode_manifest(manifest)
    for pid, data in encoded.pieces.items():
        put(repo, layout.piece_key(pid), data)
    put(repo, layout.manifest_key(encoded.digest), encoded.root)
    for oid, data in (objects or {}).items():
        put(repo, layout.object_key(oid), data)
    record(repo, encoded.digest)
    return encoded.digest


def large_file(path: str, size: int, chunk_size: int = CHUNK_SIZE) -> FileEntry:
    """A file of ``size`` bytes as a manifest of ``chunk_size`` describes it.

    Its chunk list and digest are consistent (the attacker computed them), but the
    bytes never existed: the chunk digests are made up.
    """
    n = -(-size // chunk_size)
    chunks = tuple(hashlib.sha256(b"%d" % i).hexdigest() for i in range(n))
    digest = combine([bytes.fromhex(c) for c in chunks]) if n > 1 else chunks[0]
    return FileEntry(path, size, 0o644, digest, digest, 0, chunks if n > 1 else ())


def blob_manifest(entry: FileEntry, chunk_size: int = CHUNK_SIZE) -> Manifest:
    """A manifest of one large file stored as a blob."""
    objects = {entry.digest: ObjectEntry(entry.digest, "blob", entry.size)}
    return Manifest((entry,), objects, ("t",), chunk_size)


def pack_manifest(pack_id: str, pack_size: int, *entries: FileEntry) -> Manifest:
    """A manifest of files stored in one pack."""
    objects = {pack_id: ObjectEntry(pack_id, "pack", pack_size)}
    return Manifest(tuple(entries), objects, ("t",))


@dataclass(frozen=True)
class Outcome:
    """How an ``etc`` subprocess ended."""

    returncode: int
    stdout: str
    stderr: str
    peak_mib: float
    seconds: float


def run_etc(repo: Path, home: Path, *args: str, limit: float = 60.0) -> Outcome:
    """Run ``etc ARGS`` against the repository folder; killed after ``limit`` seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env.update(ETC_URL=f"file://{repo}", ETC_HOME=str(home), ETC_CONFIG=str(home / "none.toml"))
    out, err = home.parent / f"{home.name}.out", home.parent / f"{home.name}.err"
    peak = home.parent / f"{home.name}.peak"
    peak.unlink(missing_ok=True)
    started = time.monotonic()
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [sys.executable, "-c", _PEAK, str(peak), *args], env=env, stdout=o, stderr=e
        )
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Outcome(
        proc.returncode,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        int(peak.read_text()) / 1024 if peak.exists() else float("inf"),
        time.monotonic() - started,
    )


# Runs etc, then writes its peak memory (VmHWM, KiB). Not ``getrusage``: Linux carries
# ``ru_maxrss`` across ``exec``, so the child would start at the size of this test process.
_PEAK = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as fh:
        kib = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    with open(out, "w") as fh:
        fh.write(kib)
atexit.register(peak)
sys.argv[0] = "etc"
runpy.run_module("etcetera", run_name="__main__", alter_sys=True)
"""


def error_lines(stderr: str) -> str:
    """``stderr`` without the progress lines a transfer prints there before it fails."""
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(("pull ", "push "))
    )


def refused(outcome: Outcome, *words: str) -> str:
    """Check the run failed with one line naming ``words``, under 300 MiB; return the line."""
    assert outcome.returncode == 1, outcome
    line = error_lines(outcome.stderr)
    assert line.startswith("etc: error: ") and line.count("\n") == 1, outcome
    for word in words:
        assert word in line, (word, line)
    assert outcome.peak_mib < 300, outcome
    return line.strip()
