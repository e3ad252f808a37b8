"""``etc rm``."""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import Parameter

from ._common import say, settings


async def rm(
    name: str,
    *,
    remote: Annotated[bool, Parameter(name=["--remote", "-r"], negative="")] = False,
    yes: Annotated[bool, Parameter(name=["--yes", "-y"], negative="")] = False,
) -> int:
    """Delete NAME (every version) or NAME@VERSION from the repository.

    Parameters
    ----------
    name
        NAME or NAME@VERSION.
    remote
        Required: this deletes from the repository (etc purge removes a local dataset).
    yes
        Do not ask; required when not on a terminal.
    """
    from ..api import arm_remote
    from ..errors import ConfigError

    if not remote:
        raise ConfigError(f"etc rm deletes from the repository: etc rm --remote {name}")
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"refusing to delete {name} without --yes (not on a terminal)")
        import anyio.to_thread

        answer = await anyio.to_thread.run_sync(input, f"delete {name} from the repository? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing deleted")
            return 1
    removed = await arm_remote(name, config=settings())
    base = name.partition("@")[0]
    say(f"deleted {base} version(s) {', '.join(map(str, removed))} (etc gc frees their space)")
    return 0
