"""``etc rm``."""

import sys
from typing import Annotated

from cyclopts import Parameter

from ._common import say, settings


async def rm(
    name: str,
    /,
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

        question = await _question(name)
        answer = await anyio.to_thread.run_sync(input, question)
        if answer.strip().lower() not in ("y", "yes"):
            say("nothing deleted")
            return 1
    removed = await arm_remote(name, config=settings())
    base = name.partition("@")[0]
    say(f"deleted {base} version(s) {', '.join(map(str, removed))} (etc gc frees their space)")
    return 0


async def _question(name: str) -> str:
    """``delete all 3 versions of big (1-3) from s3://bucket? [y/N]``: what, and where."""
    from ..api import ainfo, parse_ref

    base, version = parse_ref(name, None)
    found = await ainfo(base, config=settings(), remote=True)
    numbers = sorted(v["version"] for v in found["versions"])
    where = found["repository"]
    if version is not None:
        if version not in numbers:
            from ..errors import DatasetNotFoundError

            raise DatasetNotFoundError(f"dataset {base} has no version {version} in {where}")
        return f"delete version {version} of {base} ({len(numbers)} in all) from {where}? [y/N] "
    listed = ", ".join(map(str, numbers))
    what = f"the only version ({listed})" if len(numbers) == 1 else f"all {len(numbers)} versions"
    if len(numbers) > 1:
        what += f" ({listed})" if len(numbers) <= 10 else f" ({numbers[0]}-{numbers[-1]})"
    return f"delete {what} of {base} from {where}? [y/N] "
