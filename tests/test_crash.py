"""A SIGKILLed `etc pull` leaves nothing visible, and the next pull fetches only the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import etcetera as etc
from tests.support import snapshot, write_tree


def test_sigkilled_pull_resumes_with_only_the_remainder(tmp_path: Path) -> None:
    files = {f"data/train/f{i:04d}.bin": bytes([i % 251]) * 2000 for i in range(600)}
    root = write_tree(tmp_path / "sample", files)
    repo = tmp_path / "repo"
    repo.mkdir()
    pack = 4096
    cfg = etc.Config(f"file://{repo}", home=tmp_path / "home1", pack_size=pack)
    etc.register(root, config=cfg)
    etc.push("sample", config=cfg)
    total = sum(len(b) for b in files.values())

    home = tmp_path / "home2"
    env = {
        **os.environ,
        "ETC_HOME": str(home),
        "ETC_URL": f"file://{repo}",
        "ETC_CONCURRENCY": "1",
        "ETC_BANDWIDTH_LIMIT": str(total // 4),  # about four seconds for the whole pull
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "etcetera", "-q", "pull", "sample"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    staging = home / ".staging" / "sample"
    deadline = time.monotonic() + 30
    moved = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            moved = sum(p.stat().st_size for p in staging.rglob("*.bin")) if staging.exists() else 0
            if moved > total // 4:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the pull finished before the kill landed"
    moved = sum(p.stat().st_size for p in staging.rglob("*.bin"))
    assert 0 < moved < total
    assert not (home / "sample").exists()

    resumed = etc.pull("sample", config=etc.Config(f"file://{repo}", home=home))
    assert resumed.present > 0
    assert resumed.stats.bytes_received <= (total - moved) + 2 * pack + 64 * 1024
    assert snapshot(resumed.location) == snapshot(root)
    assert not staging.exists() or not any(staging.iterdir())
