"""The sync API: each function is a coroutine of :mod:`etcetera.api`, run to completion.

:func:`blocking` makes every one of them from its coroutine, so a sync function has
exactly its async twin's parameters, defaults and annotations (``inspect.signature``
and mypy see them) and cannot drift from it: ``pull`` is ``apull``, ``ls`` is ``als``.

Each call runs its coroutine on an event loop in a worker thread that lives only for
that call (one anyio blocking portal per call), so the functions also work where an
event loop is already running (Jupyter, an async app). Ctrl-C in the caller cancels
the coroutine, which cleans up as on any cancellation (an interrupted pull resumes
next time).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from anyio.from_thread import start_blocking_portal

from . import api
from .streaming import astream

__all__ = [
    "blocking",
    "cat",
    "create",
    "dataset",
    "diff",
    "gc",
    "info",
    "list_files",
    "list_remote",
    "log",
    "ls",
    "pull",
    "purge",
    "push",
    "register",
    "remote",
    "rm_remote",
    "run",
    "status",
    "stream",
    "verify",
]

P = ParamSpec("P")
T = TypeVar("T")


def run(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run an async API function to completion from sync code (one portal per call)."""
    with start_blocking_portal(backend="asyncio") as portal:
        return portal.call(lambda: fn(*args, **kwargs))


def sync_name(fn: Callable[..., object]) -> str:
    """The sync twin's name of an async API function: ``apull`` -> ``pull``."""
    name = fn.__name__
    if not name.startswith("a") or len(name) < 2:
        raise ValueError(f"{name} is not named like an async API function (aNAME)")
    return name[1:]


def blocking(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """The sync version of an async API function, with its signature.

    The result has ``fn``'s parameters (``__wrapped__`` is ``fn``, which
    ``inspect.signature`` and Sphinx follow; ParamSpec gives mypy the same), the
    name without the leading ``a``, and a docstring that says whose sync version it is.

    Args:
        fn: a coroutine function of :mod:`etcetera.api` named ``aNAME``.
    """
    name = sync_name(fn)

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(fn, *args, **kwargs)

    functools.update_wrapper(call, fn)
    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    call.__doc__ = _sync_doc(fn)
    return call


def _sync_doc(fn: Callable[..., object]) -> str:
    """``fn``'s summary, a line naming it, then the rest of its docstring."""
    text = inspect.cleandoc(fn.__doc__ or "")
    summary, _, body = text.partition("\n\n")
    note = (
        f"Sync version of :func:`etcetera.{fn.__name__}`: runs it to completion on an event\n"
        "loop of its own (in a worker thread, so it also works where a loop is already\n"
        "running); Ctrl-C cancels it."
    )
    return "\n\n".join(part for part in (summary, note, body) if part) + "\n"


dataset = blocking(api.adataset)

pull = blocking(api.apull)

push = blocking(api.apush)

register = blocking(api.aregister)

create = blocking(api.acreate)

purge = blocking(api.apurge)

ls = blocking(api.als)

list_remote = blocking(api.alist_remote)

list_files = blocking(api.alist_files)

cat = blocking(api.acat)

info = blocking(api.ainfo)

verify = blocking(api.averify)

# Not `rm`: it deletes from the repository (like `etc rm --remote`), and a bare `rm`
# reads as the local removal that `purge` is.
rm_remote = blocking(api.arm_remote)

gc = blocking(api.agc)

log = blocking(api.alog)

diff = blocking(api.adiff)

status = blocking(api.astatus)

stream = blocking(astream)

remote = blocking(api.aremote)
