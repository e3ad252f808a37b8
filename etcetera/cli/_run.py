"""How one command line ends: its exit status, and the one line it leaves on stderr.

0 done, 1 an error, 2 a usage error (before anything ran), 128 + N when signal N
stopped it (130 Ctrl-C, 143 SIGTERM). A closed pipe on stdout (``etc ... | head``) ends
it silently by SIGPIPE, as it ends ``git log``, so that a shell sees 141 there too.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from ._common import STATE, fail, human


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops a command as Ctrl-C does: tasks cancelled, staged data kept."""
    STATE.signal = signum
    # The SIGINT handler in force: asyncio's while a command runs (it cancels the main
    # task, so that cleanups run), Python's default (KeyboardInterrupt) otherwise.
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def interrupted(argv: Sequence[str]) -> int:
    """Say what an interrupted command kept and how to go on; return 128 + the signal."""
    transfer = STATE.transfer
    again = "etc " + shlex.join(argv)
    if transfer is None or transfer.label.split()[0] not in ("pull", "push"):
        line = "interrupted"
    elif transfer.kept:
        line = f"interrupted: {human(transfer.kept)} kept; run {again} again to resume"
    else:
        line = f"interrupted: run {again} again to resume"
    print(line, file=sys.stderr, flush=True)
    return 128 + (STATE.signal or signal.SIGINT)


def _die_of_sigpipe() -> int:
    # Nothing more can reach the reader; the interpreter's last flush must not fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    return 128 + signal.SIGPIPE  # not reached where SIGPIPE ends a process


def run(entry: Callable[[Sequence[str]], object], argv: Sequence[str]) -> int:
    """Run the command line ``argv`` through ``entry``; the exit status."""
    from cyclopts import CycloptsError

    from ._usage import USAGE_ERROR, explain

    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = entry(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except KeyboardInterrupt:
        return interrupted(argv)
    except CycloptsError as exc:
        print(explain(exc, argv), file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:
        return _die_of_sigpipe()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if _broken_pipe(exc):
            return _die_of_sigpipe()
        return fail(exc)
    return code if isinstance(code, int) else 0


def _broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` is, or wraps (a task group's ExceptionGroup), a closed pipe."""
    if isinstance(exc, BrokenPipeError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_broken_pipe(e) for e in exc.exceptions)
    return isinstance(exc.__cause__, BrokenPipeError)
