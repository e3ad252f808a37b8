"""``etc purge``."""

from __future__ import annotations

from ._common import say, settings


async def purge(name: str) -> int:
    """Remove a local dataset (a registered folder itself is never deleted).

    Parameters
    ----------
    name
        Dataset name.
    """
    from ..api import apurge

    await apurge(name, config=settings())
    say(f"purged {name}")
    return 0
