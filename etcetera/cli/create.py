"""``etc create``."""

from typing import Annotated

from cyclopts import Parameter

from ._common import say, settings
from ._paths import kept


async def create(
    name: str,
    /,
    *,
    partition: Annotated[list[str] | None, Parameter(name=["--partition", "-p"])] = None,
    force: bool = False,
) -> int:
    """Create an empty dataset in the local store.

    Parameters
    ----------
    name
        Dataset name.
    partition
        Partition folders to create (repeatable; default: train and test).
    force
        Replace an existing dataset of that name.
    """
    from ..api import acreate

    cfg = settings()
    ds = await acreate(name, tuple(partition or ("train", "test")), force=force, config=cfg)
    say(f"created {ds.name} at {kept(cfg.home, ds.name)}")
    return 0
