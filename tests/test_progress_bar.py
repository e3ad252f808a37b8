"""The Python API's progress bar: in a real Jupyter kernel, on a terminal, and off."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

import etcetera as etc
from tests.support import run_on_a_terminal, write_tree


def _published(tmp_path: Path) -> str:
    repo = tmp_path / "repo"
    repo.mkdir()
    url = f"file://{repo}"
    files = {f"data/train/{i}.bin": bytes([i]) * 5000 for i in range(20)}
    for name in ("sample", "other", "third"):
        folder = write_tree(tmp_path / name, files)
        cfg = etc.Config(url, home=tmp_path / "pusher")
        etc.register(folder, config=cfg)
        etc.push(name, config=cfg, quiet=True)
    return url


def _outputs(cell: Any) -> list[dict[str, Any]]:
    return [dict(o) for o in cell.outputs]


def test_a_notebook_shows_a_bar_unless_quiet(tmp_path: Path) -> None:
    url = _published(tmp_path)
    setup = (
        "import etcetera as etc\n"
        f"cfg = etc.Config({url!r}, home={str(tmp_path / 'nb-home')!r})\n"
        f"off = etc.Config({url!r}, home={str(tmp_path / 'nb-home')!r}, progress_bar=False)"
    )
    cells = [
        setup,
        "ds = etc.dataset('sample', auto_pull=True, config=cfg)",
        "etc.dataset('other', auto_pull=True, config=cfg, quiet=True)",
        "etc.pull('third', config=off)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    shown = _outputs(nb.cells[1])
    assert [o["output_type"] for o in shown] == ["display_data"], shown
    data = shown[0]["data"]
    assert "<progress" in data["text/html"]
    # The last state stays: the download finished, every file counted.
    assert data["text/plain"].startswith("pull sample download: 100.0 kB of 100.0 kB")
    assert data["text/plain"].endswith("20 of 20 files")
    assert [o for o in _outputs(nb.cells[2]) if o["output_type"] != "execute_result"] == []
    assert _outputs(nb.cells[3])[0]["output_type"] == "execute_result"  # no bar, the result
    assert (tmp_path / "nb-home" / "sample" / "data" / "train" / "0.bin").is_file()


def _on_a_terminal(code: str, **env: str) -> str:
    """Run ``code`` with stderr on a pseudo-terminal; what the terminal received."""
    code_, seen = run_on_a_terminal(
        [sys.executable, "-c", code], {**os.environ, **env}, stream="stderr"
    )
    assert code_ == 0, seen
    return seen


def test_a_terminal_shows_a_bar_unless_quiet(tmp_path: Path) -> None:
    url = _published(tmp_path)
    setup = f"import etcetera as etc; cfg = etc.Config({url!r}, home={str(tmp_path / 'h')!r})\n"
    assert "pull sample download" in _on_a_terminal(setup + "etc.pull('sample', config=cfg)")
    quiet = _on_a_terminal(setup + "etc.pull('other', config=cfg, quiet=True)")
    assert "pull other" not in quiet
    off = _on_a_terminal(setup + "etc.pull('third', config=cfg)", ETC_PROGRESS_BAR="false")
    assert "pull third" not in off
