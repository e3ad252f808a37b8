"""``etc register``."""

from pathlib import Path

from ._common import say, settings
from ._paths import tilde


async def register(path: Path, name: str | None = None, /, *, force: bool = False) -> int:
    """Register a dataset folder under a name (a link to it, not a copy).

    Parameters
    ----------
    path
        The dataset folder (with data/ of partition folders).
    name
        Name to register it under (default: the folder's name).
    force
        Replace an existing dataset of that name (only its link; folders stay).
    """
    from ..api import aregister

    ds = await aregister(path, name, force=force, config=settings())
    say(f"registered {ds.name} -> {tilde(ds.location)}")
    return 0
