"""The progress of a transfer, on standard error: a bar on a terminal, plain lines in logs.

Standard output holds results alone (the summary, ``--json``), so that it can be parsed
or logged while the progress is watched or dropped (``2>/dev/null``).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from ..api import ProgressEvent

_WINDOW = 10.0  # seconds of samples behind the rate: steady, yet quick to follow a change
_MIN_BAR = 10
_SHORT_LABEL = 8  # letters of a label kept when the width is short


def human(n: float) -> str:
    """Bytes for people: 1.5 MB."""
    from ..sizes import format_size

    return format_size(n)


def count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def clock(seconds: float) -> str:
    """``0:42``, ``12:05``, ``3:02:10``."""
    s = int(seconds + 0.5)
    hours, rest = divmod(s, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Rate:
    """Bytes per second moved in this run, over a sliding window of progress samples.

    Bytes an interrupted run had moved (``bytes_resumed``) are done but not moved now:
    counted in, they made a resumed pull at 20 MB/s show 1.3 GB/s and a 1 s ETA.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, moved: int) -> None:
        """Record the bytes moved so far at ``now``."""
        self._samples.append((now, moved))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _WINDOW:
            self._samples.popleft()

    def per_second(self) -> float | None:
        """The rate, or None before there is enough to tell."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 0.5 else None


class Snapshot:
    """What one line of progress says, laid out to a width (least useful parts go first)."""

    def __init__(self, label: str, event: ProgressEvent, rate: float | None) -> None:
        self.label = label
        self.phase = event.phase
        self.fraction = event.bytes_done / event.bytes_total if event.bytes_total else 1.0
        self.size = f"{human(event.bytes_done)}/{human(event.bytes_total)}"
        self.files = f"{event.files_done}/{count(event.files_total, 'file')}"
        left = event.bytes_total - event.bytes_done
        self.rate = f"{human(rate)}/s" if rate else ""
        self.eta = f"ETA {clock(left / rate)}" if rate and left > 0 else ""

    def parts(self, width: int) -> tuple[str, str]:
        """The text before the bar and after it, with what fits in ``width``.

        Given up in this order: the phase word, the rate, the file count, the end of the
        label (down to a few letters), the ETA, the byte count.
        """
        tail = [p for p in (self.size, self.files, self.rate, self.eta) if p]

        def room(title: str) -> int:
            return width - _MIN_BAR - 2 - len("  ".join(tail)) - len(title)

        title = f"{self.label} {self.phase}"
        if room(title) < 0:
            title = self.label
        for part in (self.rate, self.files, "", self.eta, self.size):
            if room(title) >= 0:
                break
            if part == "":  # shorten the label before giving up the ETA and the bytes
                keep = max(len(title) + room(title), _SHORT_LABEL)
                title = title if keep >= len(title) else title[: keep - 1] + "…"
            elif part in tail:
                tail.remove(part)
        if room(title) < 0:
            title = title[: max(width - _MIN_BAR - 2, 1)]
        return title, "  ".join(tail)

    def line(self) -> str:
        """The plain form, for logs."""
        return f"{self.label}: " + ", ".join(
            p for p in (f"{self.phase} {self.size}", self.files, self.rate, self.eta) if p
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The bar, fitted to the terminal's width (never wrapped)."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        width = options.max_width
        title, after = self.parts(width)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(width=max(width - len(title) - len(after) - 2, 1))
        grid.add_column(no_wrap=True)
        grid.add_row(title, ProgressBar(total=1.0, completed=self.fraction), after)
        yield grid


class Display:
    """One progress display per transfer: a bar on a terminal, a line every 2 s otherwise.

    Attributes:
        kept: bytes done in the last upload or download phase seen (what an interrupted
            transfer leaves for the next run), or None before one started.
    """

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.kept: int | None = None
        self.tty = sys.stderr.isatty()
        self._live: Any = None  # rich.live.Live, imported on first draw
        self._phase = ""
        self._rate = Rate()
        self._last_line = 0.0
        self._last_text = ""

    def __call__(self, event: object) -> None:
        """Progress callback for the API."""
        from ..api import ProgressEvent

        if not isinstance(event, ProgressEvent):
            return
        if event.phase in ("upload", "download"):
            self.kept = event.bytes_done
        if event.phase != self._phase:
            self._rate = Rate()
        now = time.monotonic()
        self._rate.add(now, event.bytes_done - event.bytes_resumed)
        snapshot = Snapshot(self.label, event, self._rate.per_second())
        if not self.quiet and (event.bytes_total or event.files_total):
            if self.tty:
                self._draw(snapshot)
            else:
                done = event.bytes_done >= event.bytes_total
                done = done and event.files_done >= event.files_total
                line = snapshot.line()
                due = event.phase != self._phase or now - self._last_line >= 2.0 or done
                if due and line != self._last_text:  # the end is often reported twice
                    print(line, file=sys.stderr, flush=True)
                    self._last_line, self._last_text = now, line
        self._phase = event.phase

    def _draw(self, snapshot: Snapshot) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(stderr=True), transient=True, auto_refresh=False)
            self._live.start()
        self._live.update(snapshot, refresh=True)

    def close(self) -> None:
        """Remove the bar."""
        if self._live is not None:
            self._live.stop()
            self._live = None
