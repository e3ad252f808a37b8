"""What every command shares: global options, settings, output, progress, errors."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._bar import Display, count, human

if TYPE_CHECKING:
    from ..settings import Config

__all__ = ["STATE", "advice", "count", "display", "fail", "human", "say", "settings", "warn"]


@dataclass
class _State:
    config_file: Path | None = None
    url: str | None = None
    verbose: bool = False
    quiet: bool = False
    transfer: Display | None = None  # the transfer under way, if any
    signal: int | None = None  # SIGTERM when that is what stopped the command
    overrides: dict[str, Any] = field(default_factory=dict)  # settings given as flags


STATE = _State()


def settings() -> Config:
    """The effective settings: --config file, ETC_* variables, --url."""
    from ..settings import load_config

    return load_config(STATE.config_file, {**STATE.overrides, "url": STATE.url})


def say(message: str) -> None:
    """Print a result line on stdout unless --quiet."""
    if not STATE.quiet:
        print(message, flush=True)


def warn(message: str) -> None:
    """Print ``warning: ...`` on stderr unless --quiet (stdout holds results alone)."""
    if not STATE.quiet:
        print(f"warning: {message}", file=sys.stderr, flush=True)


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


@contextmanager
def display(label: str) -> Iterator[Display]:
    """A progress display on stderr, removed at the end whatever happens.

    It stays in ``STATE.transfer``: an interrupted command says from it what was kept.
    """
    d = Display(label, quiet=STATE.quiet)
    STATE.transfer = d
    try:
        yield d
    finally:
        d.close()
