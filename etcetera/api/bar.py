"""The progress bar of the Python API: in a notebook, or on a terminal.

``etc.pull``, ``etc.push`` and ``etc.dataset(..., auto_pull=True)`` show one when no
``progress`` callback is given, as ``huggingface_hub`` and ``datasets`` do: an HTML bar
updated in place in a Jupyter notebook, a rich bar on standard error when it is a
terminal, nothing elsewhere (a script's log, a test, a Dask worker). ``quiet=True`` or
the ``progress_bar = false`` setting turn it off; the ``etc`` command draws its own.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..engine.progress import ProgressCallback, ProgressEvent
from ..sizes import format_size


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where a bar is drawn as HTML)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _text(label: str, event: ProgressEvent) -> str:
    return (
        f"{label} {event.phase}: {format_size(event.bytes_done)} of "
        f"{format_size(event.bytes_total)}, {event.files_done} of {event.files_total} files"
    )


class NotebookBar:
    """An HTML ``<progress>`` bar in the cell's output, updated in place (no widgets needed)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._handle: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        """Progress callback: draw the event."""
        import html

        from IPython.display import display

        total = max(event.bytes_total, 1)
        done = min(event.bytes_done, total) if event.bytes_total else total
        text = _text(self.label, event)
        data = {
            "text/plain": text,
            "text/html": (
                f'<progress value="{done}" max="{total}" style="width: 24em"></progress> '
                f"<code>{html.escape(text)}</code>"
            ),
        }
        if self._handle is None:
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)

    def close(self) -> None:
        """Leave the last state shown, as a finished cell keeps it."""


class TerminalBar:
    """A rich bar on standard error, removed when the transfer ends."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.label = label
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[files]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: Any = None
        self._phase = ""
        self._progress.start()

    def __call__(self, event: ProgressEvent) -> None:
        """Progress callback: draw the event."""
        if self._task is None or event.phase != self._phase:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(f"{self.label} {event.phase}", files="")
            self._phase = event.phase
        self._progress.update(
            self._task,
            completed=event.bytes_done,
            total=max(event.bytes_total, 1),
            files=f"{event.files_done}/{event.files_total} files",
        )

    def close(self) -> None:
        """Remove the bar."""
        self._progress.stop()


@asynccontextmanager
async def progress_for(
    progress: ProgressCallback | None, *, label: str, quiet: bool, enabled: bool
) -> AsyncIterator[ProgressCallback | None]:
    """The callback a transfer reports to: the caller's, else a bar where one can be seen."""
    if progress is not None or quiet or not enabled:
        yield progress
        return
    bar: NotebookBar | TerminalBar | None = None
    if in_notebook():
        bar = NotebookBar(label)
    elif sys.stderr.isatty():
        bar = TerminalBar(label)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()
