"""``etc list`` (alias ``ls``)."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from ._common import settings


async def list_(
    ref: str | None = None,
    path: str = "",
    /,
    *,
    remote: Annotated[bool, Parameter(name=["--remote", "-r"], negative="")] = False,
    recursive: Annotated[bool, Parameter(name=["--recursive", "-R"], negative="")] = False,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """List datasets: local ones, or the repository's with --remote; or a version's files.

    Parameters
    ----------
    ref
        A dataset (NAME or NAME@VERSION): list its files with their sizes, without
        pulling it (from the local copy when it is that version, else the repository).
    path
        With a dataset: the folder (or file) to list.
    remote
        List the repository instead of the local store.
    recursive
        With a dataset: every file below the folder, not one level.
    json
        Print JSON for scripts.
    """
    from ..api import alist_remote, als, dumps

    if ref is not None:
        from .files import list_files

        return await list_files(ref, path, remote=remote, recursive=recursive, json=json)
    cfg = settings()
    if remote:
        found = await alist_remote(config=cfg)
        if json:
            print(
                dumps(
                    [
                        {"name": d.name, "versions": list(d.versions), "legacy": d.legacy}
                        for d in found
                    ]
                )
            )
        for d in [] if json else found:
            tail = " (etcetera 0.0.x format)" if d.legacy else f"  v{d.latest}"
            print(f"{d.name}{tail}")
        return 0
    names = await als(config=cfg)
    if json:
        print(dumps(names))
    else:
        for name in names:
            print(name)
    return 0
