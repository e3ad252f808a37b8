"""``list``: the local datasets or the repository's, each with version, size, files, origin.

Both listings are documents of the one ``etcetera.list/1`` schema (see
:mod:`etcetera.api.schemas`): the same keys for a local dataset and a remote one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread

from ..engine import refs
from ..engine.scan import scan_tree
from ..format.record import VersionRecord
from ..home import Home
from ..settings import Config
from . import schemas
from ._common import resolve_config
from .session import session


async def alisting(
    *, config: Config | None = None, remote: bool = False, all_versions: bool = False
) -> dict[str, Any]:
    """The ``etcetera.list/1`` document of the local store, or of the repository.

    Args:
        config: settings (default: ``~/.etc.toml`` and ``ETC_*`` variables).
        remote: list the repository instead of the local store.
        all_versions: with ``remote``, every version of each dataset, not only the
            latest (the records of the latest 1,000 read concurrently, older versions
            with only their number, the other keys ``None``, as in ``info``).
    """
    cfg = resolve_config(config)
    if not remote:
        home = Home(cfg.home)
        names = await anyio.to_thread.run_sync(home.names)
        rows = [await anyio.to_thread.run_sync(_local_entry, cfg, home, n) for n in names]
        return schemas.document("list", where="local", repository=None, datasets=rows)
    async with session(cfg) as s:
        await s.backend.check()
        found = await refs.list_datasets(s.transport)
        wanted = [
            (d.name, n)
            for d in found
            for n in d.versions[-(schemas.RECORDS_READ if all_versions else 1) :]
        ]
        records: dict[tuple[str, int], VersionRecord] = {}

        async def read(key: tuple[str, int]) -> None:
            records[key] = await refs.read_record(s.transport, *key)

        await s.transport.each(wanted, read)
        rows = []
        for d in found:
            versions = [records[(d.name, n)] for n in d.versions if (d.name, n) in records]
            older = d.versions[: -schemas.RECORDS_READ] if all_versions else ()
            rows.append(_remote_entry(d.name, versions[::-1], d.legacy, older))
        return schemas.document(
            "list", where="remote", repository=s.backend.describe(), datasets=rows
        )


def _local_entry(cfg: Config, home: Home, name: str) -> dict[str, Any]:
    location = home.location(name)
    current = home.current(name)
    scan = scan_tree(location, tuple(cfg.ignore))
    kind = "registered" if current is None else ("created" if not current.manifest else "pulled")
    return schemas.dataset_entry(
        name,
        kind=kind,
        version=current.version if current else None,
        files=len(scan.files),
        size=sum(f.size for f in scan.files),
        origin=_origin(kind, current.url if current else "", str(location)),
        location=str(location),
        shard=list(current.shard) if current and current.shard else None,
    )


def _origin(kind: str, url: str, location: str) -> str | None:
    if kind == "pulled":
        return url or None
    return location if kind == "registered" else None


def _remote_entry(
    name: str, newest_first: list[VersionRecord], legacy: bool, unread: Sequence[int] = ()
) -> dict[str, Any]:
    latest = newest_first[0] if newest_first else None
    return schemas.dataset_entry(
        name,
        kind="legacy" if latest is None and legacy else "remote",
        version=latest.number if latest else None,
        files=latest.files if latest else None,
        size=latest.size if latest else None,
        origin=(latest.pushed_by or None) if latest else None,
        created=(latest.created or None) if latest else None,
        versions=[
            *(schemas.version_entry(r) for r in newest_first),
            *(schemas.unread_entry(n, None) for n in reversed(unread)),
        ],
    )
