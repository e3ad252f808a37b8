"""Usage lines, and usage errors told as Unix tools tell them: one line, the usage line.

A usage error (an unknown option, a missing NAME, a stray argument, a bad value) is the
user's to mend before anything runs, so it exits 2, as ``cp``, ``git`` and ``rclone`` do;
errors met while running exit 1.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclopts import App
    from cyclopts.argument import Argument

USAGE_ERROR = 2
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _root() -> App:
    from . import app

    return app


def _command(chain: Sequence[str]) -> App:
    found = _root()
    for name in chain:
        found = found[name]
    return found


def _arguments(chain: Sequence[str]) -> list[Argument]:
    collection = _command(chain).assemble_argument_collection(parse_docstring=False)
    return [a for a in collection if a.show and a.parse]


def positional(argument: Argument) -> bool:
    """Whether ``argument`` is given by position (``NAME``) rather than as an option."""
    return argument.field_info.kind in _POSITIONAL


def label(argument: Argument) -> str:
    """How a positional argument is written in a usage line: ``NAME``."""
    return argument.name.lstrip("-").replace("-", "_").upper()


def usage_line(chain: Sequence[str]) -> str:
    """``usage: etc pull [OPTIONS] NAME`` for the command ``chain`` (``()``: etc itself)."""
    if not chain:
        return "usage: etc [OPTIONS] COMMAND [ARGS]..."
    words = ["usage: etc", *chain]
    arguments = _arguments(chain)
    if any(not positional(a) for a in arguments):
        words.append("[OPTIONS]")
    for a in arguments:
        if positional(a):
            words.append(label(a) if a.required else f"[{label(a)}]")
    return " ".join(words)


def _options(chain: Sequence[str]) -> Iterator[tuple[str, Argument]]:
    for chosen in (chain, ()) if chain else ((),):
        app = _command(chosen) if chosen else _root().meta
        for a in app.assemble_argument_collection(parse_docstring=False):
            if a.parse and not positional(a):
                for name in a.names:
                    yield name, a


def _suggest(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def _repeat_hint(chain: Sequence[str], argv: Sequence[str], token: str) -> str:
    """``(use -p train -p test)`` when ``token`` followed the value of a repeatable option."""
    if token not in argv:
        return ""
    at = len(argv) - 1 - list(reversed(argv)).index(token)
    start = at
    while start > 0 and not argv[start - 1].startswith("-"):
        start -= 1
    if start == 0:
        return ""
    option = argv[start - 1].split("=", 1)[0]
    found = dict(_options(chain)).get(option)
    if found is None or not found.token_count()[1]:
        return ""
    end = at
    while end + 1 < len(argv) and not argv[end + 1].startswith("-"):
        end += 1
    positives = [n for n in found.names if not n.startswith("--empty-")]
    flag = min(positives, key=len)
    return " (use " + " ".join(f"{flag} {value}" for value in argv[start : end + 1]) + ")"


def explain(exc: Exception, argv: Sequence[str]) -> str:
    """The one-line message and the usage line for a cyclopts usage error."""
    from cyclopts.exceptions import (
        CoercionError,
        MissingArgumentError,
        UnknownCommandError,
        UnknownOptionError,
        UnusedCliTokensError,
    )

    err: Any = exc
    chain = tuple(err.command_chain or ())
    unused = list(err.unused_tokens or [])
    if isinstance(exc, UnknownCommandError) and unused and not unused[0].startswith("-"):
        word = unused[0]
        names = [n for n in _root() if not n.startswith("-")]
        message = f"unknown command '{word}'" + (
            _suggest(word, names) or " (etc --help lists them)"
        )
    elif isinstance(exc, UnknownOptionError | UnknownCommandError):
        token = getattr(err, "token", None)
        word = (token.keyword or token.value) if token else unused[0]
        word = word.split("=", 1)[0]
        message = f"unknown option '{word}'{_suggest(word, [n for n, _ in _options(chain)])}"
    elif isinstance(exc, MissingArgumentError) and err.argument is not None:
        argument = err.argument
        if positional(argument) and err.keyword is None and not argument.tokens:
            message = f"missing {label(argument)}"
        else:
            message = f"option {err.keyword or argument.name} needs a value"
    elif isinstance(exc, UnusedCliTokensError) and unused:
        message = f"unexpected argument '{unused[0]}'{_repeat_hint(chain, argv, unused[0])}"
    elif isinstance(exc, CoercionError) and err.token is not None and err.argument is not None:
        name = err.token.keyword or err.argument.name
        message = f"invalid value '{err.token.value}' for {name}"
        kinds: dict[object, str] = {int: "an integer", float: "a number"}
        wanted = kinds.get(getattr(err, "target_type", None))
        message += f" (expected {wanted})" if wanted else ""
    else:
        text = str(exc).strip().rstrip(".")
        message = text[:1].lower() + text[1:]
    prog = " ".join(("etc", *chain))
    return f"{prog}: {message.splitlines()[0]}\n{usage_line(chain)}"
