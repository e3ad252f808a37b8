"""``etc list`` (alias ``ls``)."""

import sys
from typing import Annotated, Any

from cyclopts import Parameter

from ._common import count, human, settings
from ._paths import tilde


async def list_(
    ref: str | None = None,
    path: Annotated[str, Parameter(show_default=False)] = "",
    /,
    *,
    remote: Annotated[bool, Parameter(name=["--remote", "-r"], negative="")] = False,
    long: Annotated[bool, Parameter(name=["--long", "-l"], negative="")] = False,
    all_versions: Annotated[bool, Parameter(name=["--all", "-a"], negative="")] = False,
    recursive: Annotated[bool, Parameter(name=["--recursive", "-R"], negative="")] = False,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """List datasets (local ones or the repository's), or the files of one version.

    On a terminal (or with --long) one row per dataset: its version or kind, files,
    bytes and where it came from; piped, only the names (local) or names and latest
    versions (remote), one a line, as ``ls`` does.

    Parameters
    ----------
    ref
        A dataset (NAME or NAME@VERSION): list its files with their sizes, without
        pulling it (from the local copy when it is that version, else the repository).
    path
        With a dataset: the folder (or file) to list.
    remote
        List the repository instead of the local store.
    long
        The detailed rows even when the output is not a terminal.
    all_versions
        With --remote, every version of each dataset, not only the latest (implies --long).
    recursive
        With a dataset: every file below the folder, not one level.
    json
        Print JSON for scripts (schema etcetera.list/1).
    """
    from ..api import dumps
    from ..api.listing import alisting

    if ref is not None:
        from .files import list_files

        return await list_files(ref, path, remote=remote, recursive=recursive, json=json)
    doc = await alisting(config=settings(), remote=remote, all_versions=all_versions)
    if json:
        print(dumps(doc))
        return 0
    long = long or all_versions or sys.stdout.isatty()
    rows = [r for d in doc["datasets"] for r in _rows(d, remote, long)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _rows(d: dict[str, Any], remote: bool, long: bool) -> list[list[str]]:
    if not long:
        latest = f"v{d['version']}" if d["version"] is not None else "(etcetera 0.0.x format)"
        return [[d["name"], latest]] if remote else [[d["name"]]]
    return _remote_rows(d) if remote else [_local_row(d)]


def _local_row(d: dict[str, Any]) -> list[str]:
    what = f"v{d['version']}" if d["kind"] == "pulled" else d["kind"]
    if d["shard"]:
        what += f" shard {d['shard'][0]}/{d['shard'][1]}"
    return [d["name"], what, count(d["files"], "file"), human(d["bytes"]), tilde(d["origin"] or "")]


def _remote_rows(d: dict[str, Any]) -> list[list[str]]:
    if d["kind"] == "legacy":
        return [[d["name"], "(etcetera 0.0.x format)", "", "", "", ""]]
    read = [v for v in d["versions"] if v["files"] is not None]
    rows = [
        [
            d["name"],
            f"v{v['version']}",
            count(v["files"], "file"),
            human(v["bytes"]),
            v["created"] or "-",
            v["pushed_by"] or "-",
        ]
        for v in read
    ]
    unread = [v["version"] for v in d["versions"] if v["files"] is None]
    if unread:  # past the records read: said in one row (etc info --remote lists them)
        older = f"{len(unread):,} older versions"
        rows.append([d["name"], f"v{unread[-1]}-v{unread[0]}", older, "not shown", "", ""])
    return rows
