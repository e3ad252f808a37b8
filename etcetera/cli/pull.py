"""``etc pull``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from ._common import display, human, say, settings


async def pull(
    name: str,
    *,
    partition: Annotated[list[str] | None, Parameter(name=["--partition", "-p"])] = None,
    force: bool = False,
) -> int:
    """Pull a dataset (NAME or NAME@VERSION) from the repository.

    Parameters
    ----------
    name
        Dataset name, optionally NAME@VERSION.
    partition
        Pull only this partition (repeatable).
    force
        Pull again, or replace a registered dataset's link.
    """
    from ..api import apull

    with display(f"pull {name}") as progress:
        result = await apull(
            name, config=settings(), partitions=partition, force=force, progress=progress
        )
    if result.noop:
        say(f"{name}: version {result.version} is already local at {result.location}")
        return 0
    s = result.stats
    rate = human(s.bytes_received / result.seconds) if result.seconds else "-"
    say(
        f"pulled {name} version {result.version}: {result.files} files, {human(result.size)}; "
        f"downloaded {human(s.bytes_received)} ({result.downloaded} files), "
        f"reused {result.reused + result.present} local files; "
        f"{result.seconds:.1f} s, {rate}/s"
    )
    return 0
