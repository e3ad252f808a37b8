"""What a repository's store does with create-only writes: probed once, kept in the home.

An S3-compatible store may take ``If-None-Match: *`` and overwrite all the same. Before
its first publish to a repository, a push finds out: it writes a probe object
create-only, then writes it again; a store that refuses the second write honours
create-only writes. The answer is kept in ``home/.cache/stores.json``, keyed by the
repository URL and endpoint, and never in the repository (whose content is untrusted).
A push to a store that does not honour them publishes through a claim
(:mod:`etcetera.engine.claims`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets

import anyio.to_thread

from ..errors import PreconditionFailedError
from ..format import layout
from .session import Session


def _key(s: Session) -> str:
    return json.dumps([s.backend.describe(), s.config.endpoint_url or ""])


def _known(s: Session) -> dict[str, bool]:
    try:
        doc = json.loads(s.home.own(".cache", "stores.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, bool)} if isinstance(doc, dict) else {}


def _remember(s: Session, answer: bool) -> None:
    """Keep the answer: best effort (an unwritable home only means probing again)."""
    with contextlib.suppress(OSError):
        path = s.home.own(".cache", "stores.json")  # never through a planted link
        tmp = path.with_name(f"stores.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({**_known(s), _key(s): answer}))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


async def create_only(s: Session) -> bool:
    """Whether the repository's store enforces create-only writes (probed once)."""
    caps = s.backend.capabilities
    if not caps.probe_create_only:
        return caps.conditional_create
    known = await anyio.to_thread.run_sync(_known, s)
    if _key(s) in known:
        return known[_key(s)]
    t = s.transport
    probe = f"{layout.UPLOADS}create-only-probe-{secrets.token_hex(8)}"
    with contextlib.suppress(PreconditionFailedError):  # a retry after a lost answer
        await t.put(probe, b"first", if_absent=True)
    try:
        await t.put(probe, b"second", if_absent=True)
        answer = False
    except PreconditionFailedError:
        answer = True
    finally:
        await t.call(probe, functools.partial(s.backend.delete, probe))
    await anyio.to_thread.run_sync(_remember, s, answer)
    return answer
