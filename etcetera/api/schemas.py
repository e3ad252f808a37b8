"""The JSON that commands print with ``--json``: one versioned schema per command.

Every document is an object whose ``"schema"`` says what it is and which version
(``"etcetera.list/1"``); a new key may appear in the same version, a key is never
removed or changes meaning without the version moving. The shapes are documented in
``docs/cli.rst``; the parts several commands share (a version record, per-partition
counts) are built here only, so that ``list``, ``info`` and ``log`` agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..format.record import VersionRecord

#: Schema version of each command's ``--json`` output.
VERSIONS = {
    "list": 1,
    "files": 1,
    "info": 1,
    "log": 1,
    "diff": 1,
    "status": 1,
    "config": 1,
}


def document(command: str, **body: Any) -> dict[str, Any]:
    """The ``--json`` document of ``command``: its schema name first, then ``body``."""
    return {"schema": f"etcetera.{command}/{VERSIONS[command]}", **body}


def version_entry(record: VersionRecord) -> dict[str, Any]:
    """One version of a dataset in a repository (in ``list``, ``info`` and ``log``)."""
    return {
        "version": record.number,
        "created": record.created or None,
        "pushed_by": record.pushed_by or None,
        "tool": record.tool or None,
        "files": record.files,
        "bytes": record.size,
        "manifest": record.manifest,
    }


#: Versions of a dataset whose records ``info --remote`` and ``list --remote --all`` read,
#: the latest ones (20,000 versions would be 20,000 reads): older ones are listed unread.
RECORDS_READ = 1000


def unread_entry(number: int, created: str | None) -> dict[str, Any]:
    """A version whose record was not read: the keys of :func:`version_entry`, most ``None``."""
    return {
        "version": number,
        "created": created,
        "pushed_by": None,
        "tool": None,
        "files": None,
        "bytes": None,
        "manifest": None,
    }


def dataset_entry(
    name: str,
    *,
    kind: str,
    version: int | None,
    files: int | None,
    size: int | None,
    origin: str | None,
    location: str | None = None,
    shard: list[int] | None = None,
    created: str | None = None,
    versions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One dataset of a ``list`` document, local or remote: always these keys.

    ``kind``: ``registered``, ``created`` or ``pulled`` (local), ``remote`` or ``legacy``
    (an etcetera 0.0.x archive). ``origin``: where it came from (the repository of a
    pulled copy, the folder of a registered one, who pushed a remote version).
    ``versions``: version entries, newest first (remote only; empty locally).
    """
    return {
        "name": name,
        "kind": kind,
        "version": version,
        "files": files,
        "bytes": size,
        "origin": origin,
        "created": created,
        "location": location,
        "shard": shard,
        "versions": versions or [],
    }


def partition_counts(
    files: Iterable[tuple[str, int]],
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Files and bytes per partition of ``data/``, and of the files outside ``data/``."""
    parts: dict[str, dict[str, int]] = {}
    outside = {"files": 0, "bytes": 0}
    for path, size in files:
        entry = (
            parts.setdefault(path.split("/", 2)[1], {"files": 0, "bytes": 0})
            if path.startswith("data/")
            else outside
        )
        entry["files"] += 1
        entry["bytes"] += size
    return parts, outside
