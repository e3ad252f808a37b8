"""Help screens in the manner of ``git pull -h`` and ``rclone copy --help``.

Plain text wrapped to the terminal: the usage line, the command's purpose, its arguments
and options, then the global options once, each with its explanation and, for an option
taking a value, its default when it has one worth saying.
"""

from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclopts.help import HelpEntry, HelpPanel
    from rich.console import Console, ConsoleOptions

_SILENT_DEFAULTS = (None, "", "False", "None", "[]", "()")
_TITLES = {"Parameters": "Options", "Commands": "Commands"}
_WIDEST_LABEL = 28


def _plain(obj: Any, console: Console) -> str:
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    with console.capture() as captured:
        console.print(obj, end="", soft_wrap=True, highlight=False)
    return captured.get()


def _label(entry: HelpEntry) -> str:
    if entry.positional_label:  # NAME, not "NAME --name": an option nobody types
        return entry.positional_label
    longs = [n for n in entry.positive_names if not n.startswith("--empty-")]
    names = [*entry.positive_shorts, *longs]
    if not names:
        return ""
    text = ", ".join(names)
    if entry.metavar:
        text += f" {entry.metavar}"
    # Long-only options line up with the long names of those that have a short one.
    return text if entry.positive_shorts else "    " + text


def _closed_pipe() -> None:
    raise BrokenPipeError


class HelpScreen:
    """A cyclopts help formatter that prints plain, aligned, wrapped text."""

    show_metavar = True

    def _print(self, console: Console, text: str = "") -> None:
        # rich answers a closed pipe with exit 1; etc ends by SIGPIPE then (cli/_run.py).
        console.on_broken_pipe = _closed_pipe  # type: ignore[method-assign]
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    def render_usage(self, console: Console, options: ConsoleOptions, usage: Any) -> None:
        """Print our usage line for the command the cyclopts usage names."""
        from . import app
        from ._usage import usage_line

        words = _plain(usage, console).split()[1:]
        chain: list[str] = []
        current = app
        for word in words:
            if word.startswith(("[", "-")) or word.isupper() or word not in current:
                break
            chain.append(word)
            current = current[word]
        self._print(console, usage_line(chain))
        self._print(console)

    def render_description(
        self, console: Console, options: ConsoleOptions, description: Any
    ) -> None:
        """Print the purpose, wrapped."""
        text = _plain(description, console).strip()
        if text:
            for paragraph in text.split("\n\n"):
                self._print(console, textwrap.fill(" ".join(paragraph.split()), console.width))
            self._print(console)

    def __call__(self, console: Console, options: ConsoleOptions, panel: HelpPanel) -> None:
        """Print one group: its arguments, then its options, one aligned row each."""
        title = _plain(panel.title, console)
        positionals = [e for e in panel.entries if e.positional_label]
        others = [e for e in panel.entries if not e.positional_label]
        if positionals:
            self._table(console, "Arguments", positionals, command=False)
        self._table(console, _TITLES.get(title, title), others, panel.format == "command")

    def _table(self, console: Console, title: str, entries: list[HelpEntry], command: bool) -> None:
        rows = []
        for entry in entries:
            label = ", ".join(entry.names) if command else _label(entry)
            if not label:
                continue
            text = " ".join(_plain(entry.description, console).split())
            if entry.default not in _SILENT_DEFAULTS and entry.metavar:
                text += f" (default: {entry.default})"
            rows.append(("  " + label, text))
        if not rows:
            return
        self._print(console, title + ":")
        column = min(max(len(label) for label, _ in rows) + 2, _WIDEST_LABEL)
        width = max(console.width, column + 20)
        for label, text in rows:
            lines = textwrap.wrap(text, width - column) or [""]
            if len(label) + 2 > column:
                self._print(console, label)
            else:
                self._print(console, label.ljust(column) + lines.pop(0))
            for line in lines:
                self._print(console, " " * column + line)
        self._print(console)


def version_line() -> str:
    """``etcetera 1.0.0 (Python 3.11, aiobotocore 3.10.0, gcloud-aio-storage 9.6.5)``.

    The versions come from the installed packages' metadata: nothing is imported.
    """
    from importlib.metadata import PackageNotFoundError, version

    from .._version import __version__

    parts = [f"Python {sys.version_info.major}.{sys.version_info.minor}"]
    for package in ("aiobotocore", "gcloud-aio-storage"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return f"etcetera {__version__} ({', '.join(parts)})"
