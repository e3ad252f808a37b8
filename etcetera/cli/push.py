"""``etc push``."""

import time
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from ._common import count, display, human, say, settings, warn
from ._paths import tilde


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
        Dataset name, or the path of a dataset folder (./sample): registered under its
        folder's name first, unless it is already.
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

    if looks_like_a_path(name):
        name = await _register(name)
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


def looks_like_a_path(arg: str) -> bool:
    """Whether a NAME argument is a folder's path (``./sample``, ``~/data/x``, ``.``)."""
    return "/" in arg or arg in (".", "..") or arg.startswith("~")


async def _register(arg: str) -> str:
    """Register the folder ``arg`` under its name (a no-op when it is); return the name."""
    from ..api import aregister
    from ..errors import DatasetExistsError

    folder = Path(arg).expanduser().resolve()
    try:
        ds = await aregister(folder, config=settings())
    except DatasetExistsError:
        raise DatasetExistsError(
            f"dataset {folder.name} is another folder: register this one under another "
            f"name, etc register {arg} NAME, then etc push NAME"
        ) from None
    say(f"{ds.name}: pushing {tilde(ds.location)}")
    return ds.name
