"""What every command shares: global options, settings, output, progress, errors."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import Config


@dataclass
class _State:
    config_file: Path | None = None
    url: str | None = None
    verbose: bool = False
    quiet: bool = False


STATE = _State()


def settings() -> Config:
    """The effective settings: --config file, ETC_* variables, --url."""
    from ..settings import load_config

    return load_config(STATE.config_file, {"url": STATE.url})


def say(message: str) -> None:
    """Print a line unless --quiet."""
    if not STATE.quiet:
        print(message, flush=True)


def fail(exc: BaseException) -> int:
    """Report an error in one line (a traceback with --verbose); return the exit code."""
    from ..errors import EtceteraError, escape_controls

    if STATE.verbose:
        traceback.print_exception(exc)
    if isinstance(exc, EtceteraError | OSError | ValueError):
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    line = escape_controls(text.splitlines()[0] if text else text)
    print(f"etc: error: {line}{advice(exc)}", file=sys.stderr)
    return 1


def advice(exc: BaseException) -> str:
    """What to type next, for the errors a command line can answer (``""``: none)."""
    from ..errors import ConcurrentPushError, VersionExistsError

    if isinstance(exc, VersionExistsError):
        return f": etc push {exc.name} --force publishes version {exc.latest + 1}"
    if isinstance(exc, ConcurrentPushError):
        return ": pull it, then push again with --force"
    return ""


def human(n: float) -> str:
    """Bytes for people: 1.5 MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Display:
    """One progress display per transfer: a rich bar on a terminal, periodic lines otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._progress: Any = None  # rich.progress.Progress, imported on first draw
        self._task: Any = None
        self._phase = ""
        self._last_line = 0.0
        self.tty = sys.stdout.isatty()

    def __call__(self, event: object) -> None:
        """Progress callback for the API."""
        from ..api import ProgressEvent

        if STATE.quiet or not isinstance(event, ProgressEvent):
            return
        if self.tty:
            self._draw(event)
        else:
            now = time.monotonic()
            done = event.bytes_done >= event.bytes_total and event.files_done >= event.files_total
            if event.phase != self._phase or now - self._last_line >= 2.0 or done:
                if event.bytes_total or event.files_total:
                    print(
                        f"{self.label}: {event.phase} {human(event.bytes_done)}/"
                        f"{human(event.bytes_total)}, {event.files_done}/{event.files_total} files",
                        flush=True,
                    )
                self._last_line = now
        self._phase = event.phase

    def _draw(self, event: object) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from ..api import ProgressEvent

        assert isinstance(event, ProgressEvent)
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("{task.fields[files]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._progress.start()
        progress = self._progress
        if self._task is None or event.phase != self._phase:
            if self._task is not None:
                progress.remove_task(self._task)
            self._task = progress.add_task(
                f"{self.label} {event.phase}", total=event.bytes_total, files=""
            )
        progress.update(
            self._task,
            completed=event.bytes_done,
            total=max(event.bytes_total, 1),
            files=f"{event.files_done}/{event.files_total} files",
        )

    def close(self) -> None:
        """Remove the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def display(label: str) -> Iterator[Display]:
    """A progress display that is removed at the end, whatever happens."""
    d = Display(label)
    try:
        yield d
    finally:
        d.close()
