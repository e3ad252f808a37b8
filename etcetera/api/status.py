"""``status``: what a push of a local dataset would send, without sending it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from ..engine import push as engine_push
from ..engine import refs
from ..engine.scan import HashCache
from ..home import Home, valid_name
from ..model import check_dataset
from ..settings import Config
from . import schemas
from ._common import resolve_config
from .changes import Changes, compare, table
from .push import push_options
from .session import session


@dataclass
class Status:
    """A local dataset against the repository's latest version of its name.

    Attributes:
        name: dataset name.
        latest: the repository's latest version (``None``: the name is new there).
        up_to_date: a push would be a no-op.
        version: the version a push would publish (``None`` when up to date).
        changes: files new, removed and changed locally since ``latest``.
        files: files of the local dataset.
        bytes: bytes of the local dataset.
        bytes_to_send: bytes of the objects the repository lacks.
        objects_to_send: packs and blobs the repository lacks.
    """

    name: str
    latest: int | None
    up_to_date: bool
    version: int | None
    changes: Changes = field(default_factory=Changes)
    files: int = 0
    bytes: int = 0
    bytes_to_send: int = 0
    objects_to_send: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``status`` schema."""
        return schemas.document(
            "status",
            name=self.name,
            latest=self.latest,
            up_to_date=self.up_to_date,
            version=self.version,
            files=self.files,
            bytes=self.bytes,
            bytes_to_send=self.bytes_to_send,
            objects_to_send=self.objects_to_send,
            summary=self.changes.summary(),
            changes=self.changes.files_json(),
        )


async def astatus(name: str, *, config: Config | None = None) -> Status:
    """What ``push(name)`` would do, without doing it.

    The files changed since the latest version, and the bytes a push would send. The
    tree is hashed as a push hashes it (the hash cache makes a second look cheap); only
    version records, manifests and object existence are asked of the repository.

    Raises:
        DatasetNotFoundError: no local dataset of that name.
    """
    cfg = resolve_config(config)
    name = valid_name(name)
    home = Home(cfg.home)
    root = await anyio.to_thread.run_sync(home.location, name)
    await anyio.to_thread.run_sync(check_dataset, root)
    cache = await anyio.to_thread.run_sync(HashCache, home.cache_file(root))
    options = push_options(cfg, dry_run=True)
    async with session(cfg) as s:
        t = s.transport
        prepared = await engine_push.prepare(
            t, root, name, options, cache=cache, cut=t.config.content_chunks
        )
        manifest = prepared.manifest
        latest = await refs.latest(t, name)
        previous = None if latest is None else await s.manifest(latest.manifest)
        changes = compare({} if previous is None else table(previous.files), table(manifest.files))
        # Equal content under another digest (an older format) is up to date too.
        same = (
            latest is not None
            and previous is not None
            and (
                latest.manifest == prepared.encoded.digest
                or (
                    changes.equal
                    and previous.partitions == manifest.partitions
                    and previous.dirs == manifest.dirs
                )
            )
        )
        status = Status(
            name,
            None if latest is None else latest.number,
            same,
            None if same else (1 if latest is None else latest.number + 1),
            changes,
            len(prepared.files),
            manifest.total_size,
        )
        if not same:
            known = set(previous.objects) if previous is not None else set()
            missing = await engine_push.missing_objects(t, manifest, known)
            status.bytes_to_send = sum(o.size for o in missing)
            status.objects_to_send = len(missing)
        return status
