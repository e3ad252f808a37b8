"""``etc push``."""

from __future__ import annotations

import time
from typing import Annotated

from cyclopts import Parameter

from ._common import count, display, human, say, settings, warn


async def push(
    name: str,
    /,
    *,
    force: bool = False,
    dry_run: bool = False,
    include: Annotated[list[str] | None, Parameter(name=["--include"])] = None,
    exclude: Annotated[list[str] | None, Parameter(name=["--exclude"])] = None,
) -> int:
    """Push a local dataset to the repository as its next version.

    Parameters
    ----------
    name
        Dataset name.
    force
        Publish a new version when the repository's latest differs.
    dry_run
        Show what would be sent, send nothing.
    include
        Only paths matching this glob (repeatable; '*' crosses '/').
    exclude
        Never paths matching this glob (repeatable).
    """
    from ..api import apush

    started = time.monotonic()
    with display(f"push {name}") as progress:
        result = await apush(
            name,
            config=settings(),
            force=force,
            dry_run=dry_run,
            progress=progress,
            include=include or (),
            exclude=exclude or (),
        )
    seconds = time.monotonic() - started
    if result.noop:
        say(f"{name}: up to date as version {result.version} ({count(result.files, 'file')})")
    elif dry_run:
        say(
            f"{name}: would publish version {result.version}: {count(result.files, 'file')}, "
            f"{human(result.bytes_to_send)} to send"
        )
    else:
        s = result.stats
        rate = human(s.bytes_sent / seconds) if seconds else "-"
        resumed = f" ({human(s.bytes_resumed)} already uploaded)" if s.bytes_resumed else ""
        # Without new objects what is sent is the version's records (manifest, refs).
        objects = f"in {count(s.objects_sent, 'object')}" if s.objects_sent else "(records only)"
        say(
            f"pushed {name} version {result.version}: {count(result.files, 'file')}, "
            f"{human(result.size)}; sent {human(s.bytes_sent)} {objects}{resumed}, "
            f"{s.objects_skipped} already present; {seconds:.1f} s, {rate}/s"
        )
    for warning in result.warnings:
        warn(warning)
    return 0
