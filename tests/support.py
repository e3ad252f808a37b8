"""Shared test helpers: how a fixture describes a repository to the tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etcetera.backends.base import Backend
from etcetera.connect import open_backend
from etcetera.settings import Config


@dataclass(frozen=True)
class RepoSpec:
    """A repository a test may use: its URL and the settings that reach it."""

    url: str
    settings: dict[str, Any] = field(default_factory=dict)

    def config(self, **extra: Any) -> Config:
        """A Config for this repository (``extra`` wins)."""
        return Config(self.url, **{**self.settings, **extra})

    def backend(self, **extra: Any) -> Backend:
        """An open back-end for this repository."""
        return open_backend(self.config(**extra))


def write_tree(root: Path, files: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    """Create files (paths relative to ``root``) with contents and optional modes."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if modes and rel in modes:
            path.chmod(modes[rel])
    return root


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """``relative path -> (sha256, permission bits)`` of every regular file under ``root``."""
    import hashlib
    import os
    import stat

    out: dict[str, tuple[str, int]] = {}
    for dirpath, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            if stat.S_ISREG(st.st_mode):
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as fh:
                    out[rel] = (hashlib.sha256(fh.read()).hexdigest(), stat.S_IMODE(st.st_mode))
    return out


def cli_env(spec: RepoSpec, home: Path, **extra: Any) -> dict[str, str]:
    """Environment for an ``etc`` subprocess: the repository's settings as ``ETC_*``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env["ETC_CONFIG"] = str(home / "no-such.toml")
    env["ETC_URL"] = spec.url
    env["ETC_HOME"] = str(home)
    for key, value in {**spec.settings, **extra}.items():
        env[f"ETC_{key.upper()}"] = str(value)
    return env


def run_etc(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m etcetera ARGS`` to completion (two minutes at most), output captured."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "etcetera", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_etc_together(
    jobs: list[tuple[list[str], dict[str, str]]], timeout: float = 120
) -> list[subprocess.CompletedProcess[str]]:
    """Start one ``python -m etcetera ARGS`` per job at once; wait for all (kill on timeout)."""
    import sys
    import time

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "etcetera", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, env in jobs
    ]
    out = []
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def kill_etc_when(
    env: dict[str, str],
    args: list[str],
    ready: Callable[[], bool],
    timeout: float = 60.0,
    sig: int | None = None,
) -> tuple[int, bytes]:
    """Run ``etc -q ARGS``, send it ``sig`` (SIGKILL) once ``ready()`` holds (polled), or at
    ``timeout``.

    Returns the exit status (``-SIGKILL`` when a kill landed while it ran) and stderr.
    """
    import signal
    import sys
    import time

    sig = signal.SIGKILL if sig is None else sig

    proc = subprocess.Popen(
        [sys.executable, "-m", "etcetera", "-q", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(sig)
        _, err = proc.communicate()
    return proc.returncode, err


def run_on_a_terminal(
    argv: list[str], env: dict[str, str], *, stream: str = "stdout"
) -> tuple[int, str]:
    """Run ``argv`` with its ``stream`` (stdout or stderr) on a pseudo-terminal.

    Returns the exit status and what the terminal received (the other stream is captured
    and dropped).
    """
    import pty

    leader, follower = pty.openpty()
    where = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=where["stdout"],
        stderr=where["stderr"],
        env={"COLUMNS": "120", "TERM": "xterm", **env},
        timeout=120,
        check=False,
    )
    os.close(follower)
    seen = b""
    try:
        while chunk := os.read(leader, 65536):
            seen += chunk
    except OSError:  # EIO: the terminal has no writer left
        pass
    os.close(leader)
    return done.returncode, seen.decode(errors="replace")


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"3m"``) at ``mount``; the test is skipped where none can be."""
    import pytest

    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
