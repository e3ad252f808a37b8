"""``etc purge``."""

from ._common import say, settings


async def purge(name: str, /) -> int:
    """Remove a local dataset (a registered folder itself is never deleted).

    Parameters
    ----------
    name
        Dataset name.
    """
    from ..api import apurge

    kept = await apurge(name, config=settings())
    if kept is None:
        say(f"purged {name}")
    else:
        say(f"purged {name}; kept your folder {kept} (a registered folder is never deleted)")
    return 0
