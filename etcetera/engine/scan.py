"""Walk a local dataset tree and hash what the cache cannot vouch for.

Symlinks are followed (a directory loop is refused), FIFOs, sockets and devices
are skipped with a warning, names in the ignore list never travel. Paths are
NFC-normalised; two paths equal once case-folded are refused. Hashing runs in
worker threads, small files in batches so that per-file overhead stays in
microseconds, a large file in ranges of whole chunks so that it uses every core.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import functools
import os
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from ..errors import LocalIOError, NotADatasetError
from ..format import _gc
from ..format.hashing import READ_BLOCK, Digest, digest_chunks, digest_file, digest_small, join
from ..format.packing import LocalFile
from ..format.paths import find_clashes
from .fdpaths import digest_path, digest_range
from .hashcache import _NOT_YET, HashCache, _local
from .progress import ProgressCallback, ProgressTracker
from .walk import ScannedFile, walk

__all__ = ["HashCache", "Scan", "ScannedFile", "hash_files", "scan_tree"]

_BATCH_FILES = 256
_BATCH_BYTES = 32 * 1024 * 1024
#: Batches of files this small on average are hashed one at a time while each takes
#: less than ``_SLOW_FILE`` a file: their time is system calls, and threads running
#: them at once only pass the GIL to each other after each call (20,000 x 4 KiB on two
#: cores, cached: 0.45-0.51 s in one thread, 0.80-0.85 s in eight). A slower batch
#: (a cold cache, a network file system) lets ``io``'s every thread take one.
_LIGHT_FILE = 64 * 1024
_SLOW_FILE = 100e-6


@dataclass
class Scan:
    """What a walk found."""

    root: Path
    files: list[ScannedFile]
    partitions: list[str]
    warnings: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    #: The walk's digest of every path and stat (:attr:`walk.Walked.stamp`).
    stamp: str = ""


@functools.lru_cache(maxsize=8)
def _ignore_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One set lookup and at most one regex per name, not a glob match per pattern."""
    literal = frozenset(p for p in patterns if not any(c in p for c in "*?["))
    globs = [fnmatch.translate(p) for p in patterns if p not in literal]
    regex = re.compile("|".join(globs)) if globs else None
    if regex is None:
        return literal.__contains__
    return lambda name: name in literal or regex.match(name) is not None


def _ignored(name: str, patterns: tuple[str, ...]) -> bool:
    return _ignore_matcher(patterns)(name)


def scan_tree(root: Path, ignore: tuple[str, ...] = (), group: str | None = None) -> Scan:
    """Walk ``root`` (blocking: run it in a thread) and check the dataset rules.

    With ``group``, walk only that partition's folder (``""``: only what lies outside
    ``data/``); ``partitions`` still lists them all.
    """
    root = root.resolve()
    data = root / "data"
    if not data.is_dir():
        raise NotADatasetError(f"{root} is not a dataset: it has no data/ folder")
    partitions: list[str] = []
    folders: dict[str, str] = {}
    for entry in os.scandir(data):
        if _ignored(entry.name, ignore):
            continue
        if not entry.is_dir():
            raise NotADatasetError(
                f"{root} is not a dataset: data/ must hold only partition folders, "
                f"but data/{entry.name} is not a folder"
            )
        partitions.append(unicodedata.normalize("NFC", entry.name))
        folders[partitions[-1]] = entry.path
    if not partitions:
        raise NotADatasetError(f"{root} is not a dataset: data/ has no partition folder")
    st_root = os.stat(root)
    seen = frozenset({(st_root.st_dev, st_root.st_ino)})
    if group and group not in folders:
        raise NotADatasetError(f"{root} has no partition folder data/{group}")
    ignored = _ignore_matcher(ignore)
    with _gc.paused():  # 10^5 ScannedFiles, no cycle among them
        if group is None:
            walked = walk(str(root), "", seen, ignored)
        elif group:
            walked = walk(folders[group], f"data/{group}/", seen, ignored)
        else:
            walked = walk(str(root), "", seen, ignored, skip="data")
        files, warnings, dirs, stamp = (
            walked.files, walked.warnings, walked.empty_dirs, walked.stamp
        )  # fmt: skip
        clashes = find_clashes(f.path for f in files)
    if clashes:
        a, b = clashes[0]
        raise NotADatasetError(
            f"{root}: paths {a!r} and {b!r} clash (equal ignoring case or Unicode form, "
            "or a file where a folder is): rename one"
        )
    files.sort(key=lambda f: f.path)
    empty = [d for d in dirs if not d.startswith("data/") and d != "data"]
    return Scan(root, files, sorted(partitions), warnings, sorted(empty), stamp)


def _hash_batch(batch: list[ScannedFile], chunk_size: int) -> list[tuple[Digest, int]]:
    out = []
    small = min(READ_BLOCK, chunk_size)
    for f in batch:
        try:
            try:
                if f.size < small:
                    out.append(digest_small(f.source, f.size))
                else:
                    out.append(digest_file(f.source, chunk_size))
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                out.append(digest_path(f.source, chunk_size))
        except OSError as exc:
            raise LocalIOError(f"cannot read {f.source}: {exc.strerror}") from None
    return out


def _hash_range(
    source: str, first: int, count: int | None, chunk_size: int, with_crc: bool
) -> tuple[list[bytes], list[int], int]:
    try:
        try:
            return digest_chunks(source, first, count, chunk_size, with_crc=with_crc)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            return digest_range(source, first, count, chunk_size, with_crc=with_crc)
    except OSError as exc:
        raise LocalIOError(f"cannot read {source}: {exc.strerror}") from None


class _Split:
    """A file of more than one chunk, hashed in ranges of whole chunks, in parallel."""

    def __init__(self, f: ScannedFile, chunk_size: int, workers: int) -> None:
        self.file = f
        chunks = -(-f.size // chunk_size)
        # Enough ranges to keep every worker busy on one file, none longer than a batch.
        per = min(max(-(-chunks // workers), 1), max(_BATCH_BYTES // chunk_size, 1))
        #: ``(first chunk, chunks)`` of each range; the last reads to the end of the
        #: file, so that one that grew since the scan is noticed.
        self.ranges: list[tuple[int, int | None]] = [
            (first, per if first + per < chunks else None) for first in range(0, chunks, per)
        ]
        self.parts: list[tuple[list[bytes], list[int], int]] = [([], [], 0)] * len(self.ranges)
        self.left = len(self.ranges)
        #: What is read: the file, or a copy of it that is what the push sends (staged).
        self.source = f.source
        self.staged = False

    def joined(self) -> tuple[Digest, int]:
        """The file's digest and the bytes read, once every range is in."""
        raw = [d for part in self.parts for d in part[0]]
        crcs = [c for part in self.parts for c in part[1]]
        return join(raw, crcs), sum(part[2] for part in self.parts)


async def hash_files(
    scan: Scan,
    cache: HashCache,
    *,
    name: str,
    chunk_size: int,
    io: anyio.CapacityLimiter,
    progress: ProgressCallback | None,
    verify: bool = False,
    stage: Callable[[ScannedFile], Awaitable[str]] | None = None,
    stage_from: int = 0,
    cut: Callable[[ScannedFile, str, bool], tuple[Digest, int]] | None = None,
) -> list[LocalFile]:
    """Digest every scanned file, from the cache where it vouches (unless ``verify``).

    Hashing runs in worker threads taken from ``io`` (the operation's I/O-thread limit):
    small files in batches, a file of more than one chunk in ranges of whole chunks
    hashed in parallel, so that one large file uses every core. With ``stage``, each
    file of at least ``stage_from`` bytes is first copied by ``stage`` (which returns
    the copy's path) and the copy is hashed, without CRCs: it is what a push sends.
    With ``cut``, a file of more than one chunk is cut by content instead, in one pass:
    ``cut(file, path to read, whether that is a copy stage made)`` gives its digest
    and the bytes read (the cache keeps those digests apart from fixed-chunk ones).
    """
    files = scan.files
    cut_above = chunk_size if cut is not None else None
    out: list[LocalFile] = [] if verify else cache.vouched(files, cut_above)
    if verify:
        out = [_NOT_YET] * len(files)
    position = {id(f): i for i, f in enumerate(files) if out[i] is _NOT_YET}
    todo = [f for f in files if id(f) in position]
    tracker = ProgressTracker("hash", name, sum(f.size for f in todo), len(todo), progress)
    workers = max(1, int(min(io.total_tokens, 256)))  # (256: the most io_threads allows)
    jobs: list[list[ScannedFile] | tuple[_Split, int] | _Split | ScannedFile] = []
    current: list[ScannedFile] = []
    current_bytes = 0
    for f in todo:
        if cut is not None and f.size > chunk_size:
            jobs.append(f)
            continue
        if stage is not None and f.size and f.size >= stage_from:
            jobs.append(_Split(f, chunk_size, workers))
            continue
        if f.size > chunk_size:
            split = _Split(f, chunk_size, workers)
            jobs.extend((split, i) for i in range(len(split.ranges)))
            continue
        current.append(f)
        current_bytes += f.size
        if len(current) >= _BATCH_FILES or current_bytes >= _BATCH_BYTES:
            jobs.append(current)
            current, current_bytes = [], 0
    if current:
        jobs.append(current)

    def done(f: ScannedFile, d: Digest, size: int) -> None:
        if size != f.size:
            raise LocalIOError(f"{f.source} changed while it was read: try again")
        out[position[id(f)]] = _local(LocalFile, (f.path, f.size, f.mode, d.hex, d.chunks))
        f.crcs = d.crcs
        cache.put(f, d, cut=cut is not None and f.size > chunk_size)

    light = anyio.CapacityLimiter(1)  # batches of small files in flight (see _LIGHT_FILE)

    async def run_batch(batch: list[ScannedFile]) -> None:
        size = sum(f.size for f in batch)
        gate = light if size < _LIGHT_FILE * len(batch) else contextlib.nullcontext()
        async with gate:
            started = time.perf_counter()
            results = await anyio.to_thread.run_sync(_hash_batch, batch, chunk_size, limiter=io)
            if gate is light:  # widened while storage is slow, one batch at a time while not
                slow = time.perf_counter() - started > _SLOW_FILE * len(batch)
                light.total_tokens = workers if slow else 1
        for f, (d, size) in zip(batch, results, strict=True):
            done(f, d, size)
        tracker.advance(sum(f.size for f in batch), len(batch))

    async def run_range(split: _Split, index: int) -> None:
        first, count = split.ranges[index]
        part = await anyio.to_thread.run_sync(
            _hash_range, split.source, first, count, chunk_size, not split.staged, limiter=io
        )
        split.parts[index] = part
        split.left -= 1
        if split.left == 0:
            done(split.file, *split.joined())
        tracker.advance(part[2], 1 if split.left == 0 else 0)

    async def run_staged(split: _Split) -> None:
        assert stage is not None
        split.source, split.staged = await stage(split.file), True
        async with anyio.create_task_group() as tg:
            for index in range(len(split.ranges)):
                tg.start_soon(run_range, split, index)

    async def run_cut(f: ScannedFile) -> None:
        assert cut is not None
        source = f.source
        if stage is not None and f.size >= stage_from:
            source = await stage(f)
        d, size = await anyio.to_thread.run_sync(cut, f, source, source != f.source, limiter=io)
        done(f, d, size)
        tracker.advance(size, 1)

    # As many workers as the limiter has threads, each taking the next job in turn:
    # the tasks stay few however many files and ranges there are.
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            if isinstance(job, list):
                await run_batch(job)
            elif isinstance(job, _Split):
                await run_staged(job)
            elif isinstance(job, ScannedFile):
                await run_cut(job)
            else:
                await run_range(*job)

    async with anyio.create_task_group() as tg:
        for _ in range(min(workers, len(jobs))):
            tg.start_soon(worker)
    tracker.finish()
    return out
