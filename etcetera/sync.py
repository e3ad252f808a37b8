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

__all__ = [
    "blocking",
    "create",
    "dataset",
    "gc",
    "info",
    "list_remote",
    "ls",
    "pull",
    "purge",
    "push",
    "register",
    "rm_remote",
    "run",
    "verify",
]

P = ParamSpec("P")
T = TypeVar("T")

_SETTINGS = "config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables)."


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


def blocking(fn: Callable[P, Awaitable[T]], *, doc: str | None = None) -> Callable[P, T]:
    """The sync version of an async API function, with its signature.

    The result has ``fn``'s parameters (``__wrapped__`` is ``fn``, which
    ``inspect.signature`` and Sphinx follow; ParamSpec gives mypy the same), the
    name without the leading ``a``, and a docstring that says whose sync version it is.

    Args:
        fn: a coroutine function of :mod:`etcetera.api` named ``aNAME``.
        doc: the docstring to adapt instead of ``fn``'s, where the async one refers
            back to the sync function for its arguments.
    """
    name = sync_name(fn)

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(fn, *args, **kwargs)

    functools.update_wrapper(call, fn)
    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    call.__doc__ = _sync_doc(fn, doc)
    return call


def _sync_doc(fn: Callable[..., object], doc: str | None) -> str:
    """``fn``'s summary, a line naming it, then the rest of its docstring."""
    text = inspect.cleandoc(doc if doc is not None else fn.__doc__ or "")
    summary, _, body = text.partition("\n\n")
    note = (
        f"Sync version of :func:`etcetera.{fn.__name__}`: runs it to completion on an event\n"
        "loop of its own (in a worker thread, so it also works where a loop is already\n"
        "running); Ctrl-C cancels it."
    )
    return "\n\n".join(part for part in (summary, note, body) if part) + "\n"


dataset = blocking(
    api.adataset,
    # The seed's documented behaviour (etc.dataset('sample', auto_pull=True, config=...)).
    doc=f"""Open a local dataset; with ``auto_pull``, pull it first if it is not local.

    Args:
        name: dataset name (``NAME@K`` for version K).
        auto_pull: pull from the repository when the dataset is not local.
        {_SETTINGS}
        version: a version number instead of the latest (``NAME@K`` and a different
            ``version`` is a :class:`ConfigError`).
        partitions: with ``auto_pull``, pull only these partitions.
        shard: ``(k, n)``: shard ``k`` of ``n`` (``k`` 0-based, e.g. the rank and world
            size of a training job). The local copy must be that shard; with
            ``auto_pull`` it is pulled when it is not (see :func:`etcetera.apull`).
            ``None``: whatever copy is local (the whole dataset when it pulls).

    Raises:
        DatasetNotFoundError: not local (or not the version or shard asked for) and
            no ``auto_pull``.
    """,
)

pull = blocking(api.apull)

push = blocking(api.apush)

register = blocking(
    api.aregister,
    doc=f"""Register a folder as a local dataset (a link, not a copy).

    Args:
        path: the dataset folder.
        name: name to register it under (default: the folder's name).
        force: replace an existing dataset of that name (only its link).
        {_SETTINGS}
    """,
)

create = blocking(
    api.acreate,
    doc=f"""Create an empty dataset in the local store.

    Args:
        name: dataset name.
        partitions: partition folders to create.
        force: replace an existing dataset of that name.
        {_SETTINGS}
    """,
)

purge = blocking(
    api.apurge,
    doc=f"""Remove a local dataset (never a registered user's folder).

    Args:
        name: dataset name.
        {_SETTINGS}
    """,
)

ls = blocking(
    api.als,
    doc=f"""Names of local datasets, or of the repository's with ``remote``.

    Args:
        {_SETTINGS}
        remote: list the repository instead of the local store.
    """,
)

list_remote = blocking(api.alist_remote)

info = blocking(api.ainfo)

verify = blocking(api.averify)

# Not `rm`: it deletes from the repository (like `etc rm --remote`), and a bare `rm`
# reads as the local removal that `purge` is.
rm_remote = blocking(api.arm_remote)

gc = blocking(api.agc)
