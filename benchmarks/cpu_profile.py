"""Where etcetera's CPU goes: ``etc push`` and ``etc pull`` under py-spy, split by kind of work.

    python benchmarks/cpu_profile.py --quick      # 3 x 32 MiB and 600 x 4 KiB, ~1-2 min
    python benchmarks/cpu_profile.py              # 16 x 64 MiB and 20,000 x 4 KiB
    python benchmarks/cpu_profile.py --workloads large --targets s3
    python benchmarks/cpu_profile.py --workloads large --content-chunks  # cut by content

(Not ``profile.py``: run from ``benchmarks/``, that name would shadow the standard
library's ``profile``, which ``cProfile`` imports, in ``micro_io.py`` among others.)

For each workload (``large``, ``small``: the seeded trees of ``workloads.py``) and each
target (``s3`` on a moto server, ``gs`` on fake-gcs-server, ``file://`` in a folder, all
started here), the ``etc`` CLI pushes the tree to a fresh bucket from a fresh home and
pulls it into another fresh home, twice per round (``--rounds``, default 1): once
unprofiled, for the client's real CPU seconds (user + system from ``/usr/bin/time``,
children included), and once under::

    py-spy record --format raw --rate 250 --nonblocking --subprocesses --threads --full-filenames

py-spy samples every thread and leaves out idle ones (blocked in ``epoll``, on a lock, a
sleep; its default), so every sample is a thread doing work. ``--nonblocking`` reads the
client's memory without pausing it, so the profile barely slows the run; ``--threads``
names each sample's OS thread. Meanwhile this script reads each thread's CPU seconds
from ``/proc/<pid>/task/*/stat`` every 50 ms: a sample only says a thread was not idle,
and on a busy machine a runnable thread that waits for a core, or one in uninterruptible
disk I/O, is sampled too (the ``sampled/cpu`` column, samples / rate over real CPU
seconds, shows how much). So each thread's CPU seconds are spread over its samples,
leaving out its wake-ups (:data:`WAKEUP_RULES`: a sample in ``selector.select`` or
``Condition.wait`` is a thread woken and waiting for a core, which costs next to no CPU
but, on a busy machine, many samples); a category's share of the CPU so spread, times the
unprofiled run's CPU seconds, is the figure printed: CPU seconds per GiB (``large``) or
per 1,000 files (``small``).

etcetera runs from a snapshot of ``etcetera/`` taken at the start (as in ``run.py``),
byte-compiled once, as an installed package is, and from the scratch folder, since
``python -m etcetera`` puts the working folder first on ``sys.path``.

How a sample is classified
--------------------------
Each frame is the text ``function (file:line)``, with ``file`` shortened to its package
path (``etcetera/engine/push.py``, ``aiohttp/streams.py``, ``asyncio/events.py``) and
followed, where the file can be read, by ``  # `` and the stripped source line, so that a
rule can name what a line does (``bytes(``, ``os.pwrite(``). py-spy records Python
frames only: time in C code (``sha256.update``, ``os.pread``, ``bytes(buf)``) lands on
the Python line that called it, which is why the source line matters.

1. :data:`STACK_RULES` are tried against every frame of the stack: a match anywhere
   decides. Only ``startup`` is decided so: a frame of the import machinery
   (``<frozen importlib._bootstrap>``, ``<frozen site>``) means an import is running,
   whatever the innermost frame does (compiling a regex, building a dataclass).
2. Otherwise the frames are walked from the innermost outwards; at each frame the
   :data:`LEAF_RULES` are tried in order, and the first frame that any rule matches
   decides. A frame no rule matches (``functools``, ``typing``, ``re``, ``gzip``) passes
   the decision to its caller; etcetera's frames, anyio's and the event loop's always
   match (as ``overhead`` at worst), so a library frame further out never claims what
   etcetera's own code spent.
3. A stack no rule matches is ``overhead``.

The categories:

- ``hashing``: SHA-256, CRC32, CRC32C and MD5 wherever they run: etcetera lines that
  call hashlib, zlib.crc32 or a digest helper; ``etcetera/format/hashing.py`` (but its
  reads are ``disk``), ``_verify``, ``_ChunkVerifier``; the SDKs' own checksums
  (``botocore/httpchecksum.py``, botocore's MD5 helpers, SigV4's payload hash).
- ``copying``: etcetera lines that copy bytes (``bytes(...)``, ``bytearray(...)``,
  ``.join(``, ``.tobytes()``, ``buf += block``, slices); aiohttp's and asyncio's buffer
  joins, appends and slices (``StreamReader._read_nowait*``, ``b"".join``, ``.extend(``,
  ``del buf[:n]``, ``data[n:]``), aiohttp reading a bytes body back out of a BytesIO.
- ``sdk_http``: aiobotocore, botocore, aiohttp, gcloud-aio, yarl, multidict and their
  helpers (client creation included: service models, endpoint rules, the CA bundle);
  asyncio's socket and SSL transports; ``ssl``, ``socket``, ``json``, ``xml``, ``email``,
  ``http``, ``urllib``, ``hmac``, ``base64``.
- ``disk``: etcetera lines calling ``os.pread``/``pwrite``/``readv``/``write``/``open``/
  ``fstat``/``fsync``/``replace``/``makedirs``/..., ``readinto``, a file object's
  ``read``/``write``, ``Path.read_bytes``, ``syncfs``; ``shutil``, ``tempfile``,
  ``os.walk``, ``genericpath``, pathlib's file methods, aiofiles.
- ``startup``: imports (see 1.), at start-up or lazily later.
- ``overhead``: the rest: etcetera's engine logic, anyio, the asyncio event loop, thread
  hand-offs, cyclopts, pydantic (the wake-ups themselves get no CPU, see above). A C
  function handed straight to
  ``anyio.to_thread.run_sync`` (``os.replace``) shows as anyio's ``WorkerThread.run``
  line, so it counts here too.

Caveats: the categories are heuristics over Python frames, not hardware counters; the
weighting corrects between threads, and for wake-ups within one, but a thread preempted
in the middle of its work is still sampled where it stopped (the ``sys`` column, the
kernel's share of the threads' CPU: syscalls, and page faults of fresh buffers, is a
check on the ``disk`` figure); the unprofiled
and the profiled run are two runs of a noisy, shared machine.

Prints one table per workload (a row per target and direction: CPU seconds, CPU seconds
per unit, per category; samples; ``sampled/cpu``; ``loop thread``, the event-loop
thread's share of the CPU; ``sys``) and each cell's top leaf lines; writes
``results/profile-<time>.json`` and ``results/profile-latest.json``: per cell the
categories (weighted and raw sample shares), the top leaves, the top stacks (not the
whole raw profile), the threads, and the rules themselves. ``--keep-raw DIR`` keeps
py-spy's raw files.
"""

from __future__ import annotations

import argparse
import linecache
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CLK_TCK,
    ROOT,
    VENV_BIN,
    GiB,
    Measured,
    MiB,
    Server,
    Table,
    machine_info,
    snapshot_etcetera,
    start_fake_gcs,
    start_moto,
    tree_stats,
    versions,
    write_json,
)
from peers import DATASET, Cell, Etcetera, EtceteraChunks, Target, rmtree
from workloads import FULL, QUICK, Workload, generate

CATEGORIES = ("hashing", "copying", "sdk_http", "disk", "overhead", "startup")
MOTO_RSS_LIMIT = 1536 * MiB

#: Files whose source lines name what the C code under them does.
_ETC = r"etcetera/"
_NET = r"(aiohttp|asyncio|aiobotocore|botocore|gcloud)/"
_SDK = r"(aiobotocore|botocore|gcloud|aiohttp|google)/"


def _line(where: str, code: str) -> str:
    """A pattern for frames in files under ``where`` whose source line matches ``code``."""
    return rf"\({where}[^)]*\)  # .*(?:{code})"


#: Tried against every frame; a match anywhere in the stack decides.
STACK_RULES: list[tuple[str, str]] = [
    (
        "startup",
        r"\(<frozen (importlib\._bootstrap|importlib\._bootstrap_external|site|zipimport)>",
    ),
]

#: Tried at each frame from the innermost outwards, in order; the first frame that
#: matches any rule decides. Source-line rules come before whole-file rules, so that
#: ``fh.read()`` inside hashing.py is disk and ``bytes(pending)`` in pull.py is copying.
LEAF_RULES: list[tuple[str, str]] = [
    # What a line of etcetera does, read from the line itself.
    (
        "hashing",
        _line(_ETC, r"hashlib\.|\bsha256\w*\(|zlib\.crc32|crc32c|digest_bytes\(|digest_file\("),
    ),
    ("hashing", _line(_ETC, r"\.hexdigest\(|\.digest\(|\b(hash|h|hasher)\.update\(")),
    (
        "disk",
        _line(
            _ETC,
            r"\bos\.(pread|preadv|pwrite|pwritev|read|readv|write|writev|open|close|fstat|stat"
            r"|lstat|fsync|fdatasync|ftruncate|fchmod|chmod|replace|rename|link|unlink|makedirs"
            r"|mkdir|rmdir|scandir|walk|utime|copy_file_range|sendfile|posix_fadvise)\("
            r"|\.readinto\(|\b\w*(fh|fp|file|out|dst|src)\.(read|write|flush|truncate)\("
            r"|\.read_bytes\(|\.write_bytes\(|\.read_text\("
            r"|\.write_text\(|\bopen\(|syncfs|flush_tree\(|fsync_dir\(|\.mkdir\(|\.stat\(",
        ),
    ),
    (
        "copying",
        _line(
            _ETC,
            r"\bbytes\(|bytearray\(|\.join\(|\.tobytes\(|\w \+= \w+\s*$|\[[^\]\[]*:[^\]\[]*\]",
        ),
    ),
    # etcetera's own hashing helpers and verifiers, whatever the line.
    ("hashing", r"\(etcetera/format/hashing\.py"),
    ("hashing", r"^(\w+\.)?_verify\w* \(etcetera/"),
    ("hashing", r"^_ChunkVerifier\.\w+ \(etcetera/"),
    # Checksums the SDKs compute themselves.
    ("hashing", r"\((hashlib|zlib|crc32c|google_crc32c|awscrt)[./]"),
    ("hashing", r"\(botocore/httpchecksum\.py"),
    (
        "hashing",
        r"^(calculate_md5|_calculate_md5_from_\w+|conditionally_calculate_md5"
        r"|calculate_tree_hash|\w*payload\w*|\w*sha256\w*) \((aio)?botocore/(utils|auth)\.py",
    ),
    ("hashing", _line(_SDK, r"hashlib\.|\bsha256\(|\bmd5\(|crc32|\.hexdigest\(\)|\.digest\(\)")),
    # Buffers the HTTP stack joins, appends and slices.
    ("copying", r"^StreamReader\._read_nowait\w* \(aiohttp/streams\.py"),
    (
        "copying",
        _line(
            _NET,
            r"b\"\"\.join|b''\.join|\bbytes\(|bytearray\(|\.extend\(|\.tobytes\("
            r"|\bdel [\w.]+\[:|\+= (data|chunk|block)\b",
        ),
    ),
    ("copying", _line(r"(aiohttp|asyncio)/", r"\w\[[^\]\[]*:[^\]\[]*\]")),
    # aiohttp sends a bytes body by reading it back out of a BytesIO, 64 KiB at a time.
    ("copying", _line(r"aiohttp/payload\.py", r"\.read\(")),
    # A worker thread waking the event loop is a thread hand-off, not HTTP.
    ("overhead", r"^\w+\.(_write_to_self|_read_from_self|call_soon_threadsafe) \(asyncio/"),
    # The SDKs, the HTTP client and the transports under them.
    (
        "sdk_http",
        r"\((aiobotocore|botocore|aiohttp|gcloud|aiohappyeyeballs|multidict|yarl|propcache"
        r"|frozenlist|aiosignal|s3transfer|jmespath|dateutil|urllib3|certifi|google|rsa"
        r"|pyasn1|jwt|cryptography|backoff|charset_normalizer|idna|wrapt)/",
    ),
    (
        "sdk_http",
        r"\((ssl\.py|socket\.py|base64\.py|hmac\.py|uuid\.py|json/|xml/|email/|http/|urllib/"
        r"|asyncio/(selector_events|sslproto|streams|trsock|transports)\.py)",
    ),
    # Files and folders.
    ("disk", r"\((shutil\.py|tempfile\.py|aiofiles/|(<frozen )?genericpath(\.py|>))"),
    ("disk", r"^(walk|fwalk|_walk|makedirs|removedirs|renames) \((<frozen os>|os\.py)"),
    (
        "disk",
        r"^Path\.(stat|lstat|exists|is_dir|is_file|is_symlink|mkdir|open|read_bytes|read_text"
        r"|write_bytes|write_text|unlink|rename|replace|touch|chmod|iterdir|rmdir|glob|rglob"
        r"|resolve|samefile) \(pathlib\.py",
    ),
    # Everything else of etcetera, anyio and the event loop: the walk stops here.
    (
        "overhead",
        r"\((etcetera|anyio|asyncio|concurrent|sniffio|pydantic|pydantic_core|cyclopts|rich)/",
    ),
    ("overhead", r"\((threading|selectors|contextlib|queue)\.py"),
]

#: Innermost frames of a thread that py-spy saw as active but that was only waking up:
#: woken from ``epoll_wait`` or a lock, it is runnable and waits for a core (on a busy
#: machine, for a long time) before it runs. Such samples get no CPU (see :func:`weigh`).
WAKEUP_RULES: list[str] = [
    r"^\w*Selector\.(select|poll) \(selectors\.py",
    r"^(Condition\.wait|Event\.wait|Semaphore\.acquire|Barrier\.wait|Thread\.join"
    r"|Thread\._wait_for_tstate_lock) \(threading\.py",
    r"^(Queue|SimpleQueue)\.get \(queue\.py",
]

_STACK_RE = [(cat, re.compile(p)) for cat, p in STACK_RULES]
_WAKEUP_RE = [re.compile(p) for p in WAKEUP_RULES]
_LEAF_RE = [(cat, re.compile(p)) for cat, p in LEAF_RULES]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def is_wakeup(stack: tuple[str, ...]) -> bool:
    """Whether a sample's innermost frame is a wait a thread is waking up from."""
    return any(rx.search(stack[-1]) for rx in _WAKEUP_RE)


def _prefixes(snapshot: Path) -> list[tuple[str, str]]:
    """Folder prefixes to strip from py-spy's full file names, longest first."""
    out = [(str(snapshot) + "/", ""), (str(ROOT) + "/", "")]
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            out.append((path.rstrip("/") + "/", ""))
    out.append((str(Path(sys.base_prefix) / "lib") + "/", ""))
    return sorted(set(out), key=lambda p: -len(p[0]))


class Classifier:
    """Turns py-spy frames into short labelled text and stacks into categories."""

    def __init__(self, snapshot: Path) -> None:
        self.prefixes = _prefixes(snapshot)
        self._frames: dict[str, str] = {}
        self._stacks: dict[tuple[str, ...], str] = {}

    def frame(self, raw: str) -> str:
        """``function (short/file.py:line)  # source`` for one raw frame."""
        done = self._frames.get(raw)
        if done is not None:
            return done
        m = _FRAME.match(raw)
        if m is None:
            text = raw
        else:
            path, line = m["file"], int(m["line"])
            short = path
            for prefix, repl in self.prefixes:
                if path.startswith(prefix):
                    short = repl + path[len(prefix) :]
                    break
            text = f"{m['func']} ({short}:{line})"
            src = linecache.getline(path, line).strip() if path.startswith("/") else ""
            if src:
                text += f"  # {src}"
        self._frames[raw] = text
        return text

    def category(self, stack: tuple[str, ...]) -> str:
        """The category of one stack of labelled frames (outermost first)."""
        done = self._stacks.get(stack)
        if done is not None:
            return done
        cat = self._decide(stack)
        self._stacks[stack] = cat
        return cat

    @staticmethod
    def _decide(stack: tuple[str, ...]) -> str:
        for cat, rx in _STACK_RE:
            if any(rx.search(f) for f in stack):
                return cat
        for f in reversed(stack):
            for cat, rx in _LEAF_RE:
                if rx.search(f):
                    return cat
        return "overhead"


_THREAD = re.compile(r"^thread \((\d+)\)(?::\s*(.*))?$")

#: One sample's key: the OS thread id and its labelled frames, outermost first.
Key = tuple[int, tuple[str, ...]]


def parse_raw(text: str, classifier: Classifier) -> tuple[Counter[Key], dict[int, str]]:
    """Collapsed stacks of a ``py-spy record --threads`` raw file, and the threads' names."""
    stacks: Counter[Key] = Counter()
    names: dict[int, str] = {}
    for line in text.splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        tid, frames = 0, []
        for f in head.split(";"):
            m = _THREAD.match(f)
            if m:
                tid = int(m[1])
                if m[2]:
                    names[tid] = m[2].strip()
            elif f and not f.startswith("process "):
                frames.append(classifier.frame(f))
        if frames:
            stacks[(tid, tuple(frames))] += int(count)
    return stacks, names


class ThreadClock:
    """CPU seconds of every thread of the client py-spy started, polled from ``/proc``.

    A sample says a thread was not idle, not that it had a core: on a busy machine a
    runnable thread waits its turn, and it is sampled meanwhile. Weighting each thread's
    samples by the CPU seconds that thread really used corrects that between threads.
    """

    def __init__(self, parent: int, interval: float = 0.05) -> None:
        self.parent = parent
        self.interval = interval
        self.pid: int | None = None
        self.cpu: dict[int, float] = {}
        #: System (kernel) CPU seconds of each thread, part of :attr:`cpu`.
        self.sys: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ThreadClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        """Read each thread's user + system time once (a thread's last reading is kept)."""
        if self.pid is None:
            try:
                kids = Path(f"/proc/{self.parent}/task/{self.parent}/children").read_text()
            except OSError:
                return
            if not kids.split():
                return
            self.pid = int(kids.split()[0])
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return
        for task in tasks:
            try:
                text = Path(f"/proc/{self.pid}/task/{task}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            user, system = int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
            tid = int(task)
            if user + system >= self.cpu.get(tid, 0.0):
                self.cpu[tid] = user + system
                self.sys[tid] = system


@dataclass
class Sampled:
    """What one profiled run recorded.

    Attributes:
        weights: each stack's share of the run's thread CPU seconds (see :func:`weigh`).
        threads: per thread: id, name, samples, CPU seconds, main (the event loop's).
    """

    wall: float
    samples: int
    errors: int
    returncode: int
    output: str
    stacks: Counter[tuple[str, ...]]
    weights: dict[tuple[str, ...], float]
    threads: list[dict[str, Any]]


def weigh(
    stacks: Counter[Key], clock: ThreadClock, names: dict[int, str], rate: int
) -> tuple[dict[tuple[str, ...], float], list[dict[str, Any]]]:
    """Each stack's CPU seconds: its thread's CPU seconds spread over the thread's samples.

    Wake-up samples (:func:`is_wakeup`) get none: the thread was waiting for a core, not
    using one, so its CPU goes to its other samples (to all of them if it has no other).
    A thread whose CPU time was never read (it came and went between two polls) gets the
    run's mean CPU seconds per sample; with no reading at all, each sample is 1/rate s.
    """
    cpu, pid = clock.cpu, clock.pid
    per_thread: Counter[int] = Counter()
    working: Counter[int] = Counter()
    for (tid, stack), n in stacks.items():
        per_thread[tid] += n
        if not is_wakeup(stack):
            working[tid] += n
    known = {t: cpu[t] for t in per_thread if t in cpu}
    known_samples = sum(working[t] or per_thread[t] for t in known)
    mean = sum(known.values()) / known_samples if known_samples else 1 / rate
    w = {t: known[t] / (working[t] or per_thread[t]) if t in known else mean for t in per_thread}
    weights: dict[tuple[str, ...], float] = {}
    for (tid, stack), n in stacks.items():
        share = 0.0 if working[tid] and is_wakeup(stack) else n * w[tid]
        weights[stack] = weights.get(stack, 0.0) + share
    threads = [
        {
            "tid": t,
            "name": names.get(t, ""),
            "main": t == pid,
            "samples": per_thread[t],
            "wakeup_samples": per_thread[t] - working[t],
            "cpu_s": cpu.get(t),
            "sys_s": clock.sys.get(t),
            "weight_s": (working[t] or per_thread[t]) * w[t],
        }
        for t in sorted(per_thread, key=lambda t: -per_thread[t])
    ]
    return weights, threads


@dataclass
class CellResult:
    """One workload x target x direction: real CPU runs and pooled samples."""

    workload: str
    target: str
    direction: str
    files: int
    size: int
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    maxrss: list[int] = field(default_factory=list)
    profiled_wall: list[float] = field(default_factory=list)
    errors: int = 0
    failures: list[str] = field(default_factory=list)
    stacks: Counter[tuple[str, ...]] = field(default_factory=Counter)
    weights: dict[tuple[str, ...], float] = field(default_factory=dict)
    main_weight: float = 0.0
    threads: list[list[dict[str, Any]]] = field(default_factory=list)

    def add(self, s: Sampled) -> None:
        """Pool one profiled run into the cell."""
        self.profiled_wall.append(s.wall)
        self.errors += s.errors
        self.stacks.update(s.stacks)
        for stack, w in s.weights.items():
            self.weights[stack] = self.weights.get(stack, 0.0) + w
        self.threads.append(s.threads)
        self.main_weight += sum(t["weight_s"] for t in s.threads if t["main"])

    @property
    def unit(self) -> str:
        """``GiB`` for large files, ``1k files`` for small ones."""
        return "1k files" if self.workload == "small" else "GiB"

    @property
    def units(self) -> float:
        """How many units this cell moved."""
        return self.files / 1000 if self.workload == "small" else self.size / GiB


def find_pyspy() -> Path:
    """The py-spy binary next to this interpreter (``benchmarks/setup_peers.sh`` installs it)."""
    here = VENV_BIN / "py-spy"
    if here.exists():
        return here
    found = shutil.which("py-spy")
    if found:
        return Path(found)
    raise SystemExit("py-spy is not installed: run `bash benchmarks/setup_peers.sh`")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 x 32 MiB and 600 x 4 KiB")
    p.add_argument("--workloads", default="large,small", help="comma-separated: large,small")
    p.add_argument("--targets", default="s3,gs,file", help="comma-separated: s3,gs,file")
    p.add_argument("--rounds", type=int, default=1, help="unprofiled and profiled runs per cell")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=10, help="leaf lines printed per cell")
    p.add_argument("--top-stacks", type=int, default=25, help="stacks kept per cell in the JSON")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    p.add_argument("--keep-raw", type=Path, default=None, help="keep py-spy's raw files here")
    p.add_argument("--seed", type=int, default=20240605)
    p.add_argument(
        "--content-chunks", action="store_true", help="push with content_chunks on (format v3)"
    )
    return p.parse_args(argv)


class Profiler:
    """One session: its servers, the etcetera snapshot, the results of every cell."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pyspy = find_pyspy()
        command, self.code = snapshot_etcetera(work / "snapshot")
        # An installed etcetera has its .pyc files; the snapshot would compile its modules
        # from source in every run (the clients run with PYTHONDONTWRITEBYTECODE).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(work / "snapshot" / "etcetera")],
            check=True,
        )
        self.tool = EtceteraChunks(command) if args.content_chunks else Etcetera(command)
        self.classifier = Classifier(work / "snapshot")
        self.results: list[CellResult] = []

    def start(self, kind: str) -> Server | None:
        """A fresh server for a target kind (``None`` for ``file``)."""
        if kind == "s3":
            return start_moto(self.logs)
        if kind == "gs":
            return start_fake_gcs(self.work / "servers", self.logs)
        return None

    def workload(self, wl: Workload) -> None:
        """Every target, unprofiled and profiled, ``rounds`` times each."""
        for kind in self.args.targets.split(","):
            cells = {d: CellResult(wl.name, kind, d, wl.files, wl.size) for d in ("push", "pull")}
            target = Target(kind, self.start(kind), self.work / "repos")
            try:
                for rnd in range(self.args.rounds):
                    for profiled in (False, True):
                        self.round(target, wl, cells, rnd, profiled)
                        target = self.recycle(target)
            finally:
                if target.server is not None:
                    target.server.stop()
            self.results += cells.values()

    def recycle(self, target: Target) -> Target:
        """Restart moto when its memory has grown past the limit."""
        if target.server is not None and target.server.rss() > MOTO_RSS_LIMIT:
            target.server.stop()
            return Target(target.kind, self.start(target.kind), target.work)
        return target

    def round(
        self, target: Target, wl: Workload, cells: dict[str, CellResult], rnd: int, profiled: bool
    ) -> None:
        """Push to a fresh bucket from a fresh home, pull into another fresh home."""
        mode = "profiled" if profiled else "cpu"
        tag = f"{wl.name}-{target.kind}-{mode}-{rnd}"
        scratch = self.work / "cells" / tag
        rmtree(scratch)
        scratch.mkdir(parents=True)
        location = target.new_location(tag)
        cell = Cell(target, wl.root, location, scratch, self.args.timeout)
        print(f"  {tag} ...", end="", flush=True)
        try:
            self.tool.prepare(cell)
            for direction in ("push", "pull"):
                flush(self.work)
                result = cells[direction]
                if profiled:
                    ok = self.sampled(cell, result, f"{tag}-{direction}")
                else:
                    ok = self.measured(cell, result)
                if direction == "pull" and ok:
                    got = tree_stats(scratch / "b" / DATASET)
                    if got != (wl.files, wl.size):
                        result.failures.append(f"{mode}: pulled {got[0]} files, {got[1]} bytes")
                        ok = False
                print(f" {direction} {'ok' if ok else 'FAILED'}", end="", flush=True)
                if not ok:
                    break
            print()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            print(f" FAILED: {exc}")
            cells["push"].failures.append(f"{mode}: setup failed: {exc}"[:200])
        finally:
            rmtree(scratch)
            if target.kind == "file":
                rmtree(Path(location))

    def measured(self, cell: Cell, result: CellResult) -> bool:
        """An unprofiled run: the client's real CPU seconds."""
        run = getattr(self.tool, result.direction)
        m: Measured = run(cell)[0] if result.direction == "pull" else run(cell)
        if not m.ok:
            result.failures.append(f"cpu: exit {m.returncode}: {m.output.strip()[-300:]}")
            return False
        result.cpu.append(m.cpu)
        result.wall.append(m.wall)
        result.maxrss.append(m.maxrss)
        return True

    def sampled(self, cell: Cell, result: CellResult, name: str) -> bool:
        """A run under py-spy; its stacks join the cell's."""
        side = "a" if result.direction == "push" else "b"
        s = self.record(cell, [*self.tool.etc(result.direction, DATASET)], side, name)
        result.add(s)
        if s.returncode != 0 or not s.samples:
            result.failures.append(f"profiled: exit {s.returncode}: {s.output.strip()[-300:]}")
            return False
        return True

    def record(self, cell: Cell, cmd: list[str | Path], side: str, name: str) -> Sampled:
        """Run ``cmd`` under ``py-spy record`` and read its collapsed stacks."""
        raw = cell.scratch / f"{name}.raw"
        argv = [str(self.pyspy), "record", "--format", "raw", "--rate", str(self.args.rate)]
        argv += ["--nonblocking", "--subprocesses", "--threads", "--full-filenames"]
        argv += ["-o", str(raw), "--"]
        argv += [str(c) for c in cmd]
        env = self.tool.home_env(cell, side)
        started = time.perf_counter()
        # Its own session: at the time cap the whole group (py-spy and the client) is killed.
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        with ThreadClock(proc.pid) as clock:
            try:
                out, _ = proc.communicate(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                timed_out = True
        wall = time.perf_counter() - started
        text = out.decode(errors="replace")
        m = re.search(r"Samples: (\d+) Errors: (\d+)", text)
        samples, errors = (int(m[1]), int(m[2])) if m else (0, 0)
        body = raw.read_text() if raw.exists() else ""
        if self.args.keep_raw is not None:
            self.args.keep_raw.mkdir(parents=True, exist_ok=True)
            (self.args.keep_raw / raw.name).write_text(body)
        # py-spy exits 0 whatever the client did: its failure is read from what it printed
        # (and a push that failed makes the pull after it fail its file count).
        rc = proc.returncode
        if timed_out:
            rc = -signal.SIGKILL
        elif rc == 0 and re.search(r"^(etc: error|etc: interrupted|Traceback)", text, re.M):
            rc = 1
        keyed, names = parse_raw(body, self.classifier)
        weights, threads = weigh(keyed, clock, names, self.args.rate)
        stacks: Counter[tuple[str, ...]] = Counter()
        for (_, stack), n in keyed.items():
            stacks[stack] += n
        return Sampled(wall, samples, errors, rc, text, stacks, weights, threads)


def flush(path: Path) -> None:
    """Write back dirty pages (untimed) so that a run does not pay for the one before it."""
    subprocess.run(["sync", "-f", str(path)], check=False)


def summarize(
    r: CellResult, classifier: Classifier, rate: int, top: int, top_stacks: int
) -> dict[str, Any]:
    """Categories scaled to real CPU seconds, the top leaf lines and the top stacks.

    A category's share is its stacks' thread CPU seconds (:func:`weigh`) over all of
    them; times the unprofiled run's CPU seconds per unit, it is the figure printed.
    """
    total = sum(r.stacks.values())
    weight = sum(r.weights.values())
    cpu = statistics.median(r.cpu) if r.cpu else None
    per_unit = cpu / r.units if cpu is not None and r.units else None
    counts: Counter[str] = Counter()
    shares: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    leaves: dict[tuple[str, str], list[float]] = {}
    for stack, n in r.stacks.items():
        cat = classifier.category(stack)
        w = r.weights.get(stack, 0.0)
        counts[cat] += n
        shares[cat] += w
        leaf = leaves.setdefault((stack[-1], cat), [0.0, 0.0])
        leaf[0] += n
        leaf[1] += w

    def share(w: float) -> float | None:
        return w / weight if weight else None

    def scaled(w: float) -> float | None:
        return per_unit * w / weight if per_unit is not None and weight else None

    runs = max(1, len(r.profiled_wall))
    # The kernel's part of the threads' CPU: what disk and socket calls cost, a check
    # on the ``disk`` and ``sdk_http`` figures, which come from sample counts.
    read = [t for run in r.threads for t in run if t["cpu_s"] is not None]
    thread_cpu = sum(t["cpu_s"] for t in read)
    sys_share = sum(t["sys_s"] or 0.0 for t in read) / thread_cpu if thread_cpu else None
    categories = {
        c: {
            "samples": counts[c],
            "sample_share": counts[c] / total if total else None,
            "share": share(shares[c]),
            "cpu_per_unit": scaled(shares[c]),
        }
        for c in CATEGORIES
    }
    top_leaves = sorted(leaves.items(), key=lambda kv: -kv[1][1])[:top]
    return {
        "workload": r.workload,
        "target": r.target,
        "direction": r.direction,
        "files": r.files,
        "bytes": r.size,
        "unit": r.unit,
        "units": r.units,
        "cpu_s": r.cpu,
        "cpu_s_median": cpu,
        "cpu_per_unit": per_unit,
        "wall_s": r.wall,
        "maxrss": r.maxrss,
        "profiled_wall_s": r.profiled_wall,
        "profiled_thread_cpu_s": weight / runs,
        "profiled_sys_share": sys_share,
        "samples": total,
        "sampler_errors": r.errors,
        # Thread-seconds the sampler saw active, per run, over real CPU seconds: above 1,
        # threads were runnable but waiting for a core (or in uninterruptible I/O).
        "sampled_s_per_cpu_s": total / rate / runs / cpu if cpu and total else None,
        "main_thread_share": share(r.main_weight),
        "wakeup_sample_share": (
            sum(n for st, n in r.stacks.items() if is_wakeup(st)) / total if total else None
        ),
        "categories": categories,
        "top_leaves": [
            {
                "frame": f,
                "category": c,
                "samples": int(n),
                "share": share(w),
                "cpu_per_unit": scaled(w),
            }
            for (f, c), (n, w) in top_leaves
        ],
        "top_stacks": [
            {
                "samples": n,
                "cpu_s": r.weights.get(s, 0.0),
                "category": classifier.category(s),
                "stack": list(s),
            }
            for s, n in sorted(r.stacks.items(), key=lambda kv: -r.weights.get(kv[0], 0.0))[
                :top_stacks
            ]
        ],
        "threads": r.threads,
        "failures": r.failures,
    }


LABELS = {"sdk_http": "sdk+http"}


def tables(cells: list[dict[str, Any]], top: int) -> str:
    """One table per workload, then each cell's top leaf lines."""
    out: list[str] = []
    for workload in dict.fromkeys(c["workload"] for c in cells):
        rows = [c for c in cells if c["workload"] == workload]
        unit = rows[0]["unit"]
        t = Table(
            ["target", "dir", "cpu s", f"cpu s/{unit}"]
            + [LABELS.get(c, c) for c in CATEGORIES]
            + ["samples", "sampled/cpu", "loop thread", "sys"]
        )
        for c in rows:
            cats = [_num(c["categories"][k]["cpu_per_unit"]) for k in CATEGORIES]
            t.add(
                c["target"],
                c["direction"],
                _num(c["cpu_s_median"]),
                _num(c["cpu_per_unit"]),
                *cats,
                c["samples"],
                _num(c["sampled_s_per_cpu_s"]),
                _pct(c["main_thread_share"]),
                _pct(c["profiled_sys_share"]),
            )
        size = rows[0]["bytes"] / MiB
        out.append(
            f"\n{workload}: {rows[0]['files']:,} files, {size:,.0f} MiB; "
            f"client CPU s per {unit}, split by py-spy samples weighted by thread CPU"
        )
        out.append(t.render())
        for c in rows:
            out.append(
                f"\n  {workload} {c['target']} {c['direction']}: top {top} leaf lines "
                f"(share of CPU, cpu s/{unit}, category)"
            )
            for leaf in c["top_leaves"]:
                out.append(
                    f"    {leaf['share']:6.1%} {_num(leaf['cpu_per_unit']):>6} "
                    f"{LABELS.get(leaf['category'], leaf['category']):<9} {leaf['frame'][:150]}"
                )
            for failure in c["failures"]:
                out.append(f"    FAILED {failure[:200]}")
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def pyspy_version(pyspy: Path) -> str:
    """What ``py-spy --version`` says."""
    out = subprocess.run([str(pyspy), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Profile every cell; print the tables; write the JSON."""
    args = parse(argv)
    started = time.monotonic()
    specs = QUICK if args.quick else FULL
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in ("large", "small")]
    if unknown:
        sys.exit(f"unknown workload {unknown[0]!r}: choose from large, small")
    work = Path(tempfile.mkdtemp(prefix="etc-profile-", dir=args.work)).resolve()
    if args.keep_raw is not None:
        args.keep_raw = args.keep_raw.resolve()
    home = Path.cwd()
    mode = "quick" if args.quick else "full"
    print(f"etcetera CPU profile ({mode}), scratch {work}")
    try:
        # ``python -m etcetera`` puts the working folder first on sys.path: run from the
        # scratch folder, so that the snapshot, not a checkout's etcetera/, is what runs.
        os.chdir(work)
        prof = Profiler(args, work)
        for name in names:
            spec = specs[name]
            wl = generate(spec, work / "src" / name / "dataset", args.seed)
            print(f"{name}: {spec.describe()} = {wl.size / MiB:,.0f} MiB")
            prof.workload(wl)
            rmtree(work / "src" / name)
        cells = [
            summarize(r, prof.classifier, args.rate, args.top, args.top_stacks)
            for r in prof.results
        ]
    finally:
        os.chdir(home)
        shutil.rmtree(work, ignore_errors=True)
    print(tables(cells, args.top))
    elapsed = time.monotonic() - started
    print(f"\n{mode} profile took {elapsed / 60:.1f} min")
    doc: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python", "benchmarks/cpu_profile.py", *(argv or sys.argv[1:])]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "elapsed_s": elapsed,
        "machine": machine_info(),
        "versions": {**versions(), "py-spy": pyspy_version(prof.pyspy)},
        "etcetera_code": prof.code,
        "sampler": {
            "command": f"py-spy record --format raw --rate {args.rate} --nonblocking "
            "--subprocesses --threads --full-filenames",
            "rounds": args.rounds,
        },
        "rules": {"stack": STACK_RULES, "leaf": LEAF_RULES, "wakeup": WAKEUP_RULES},
        "categories": list(CATEGORIES),
        "cells": cells,
    }
    dated, _ = write_json(doc, "profile")
    print(f"results: {dated} (and profile-latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
