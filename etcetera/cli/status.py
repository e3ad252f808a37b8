"""``etc status``."""

from typing import Annotated

from cyclopts import Parameter

from ._common import human, say, settings


async def status(
    name: str,
    *,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """Show what a push of a local dataset would send, without sending anything.

    Parameters
    ----------
    name
        Dataset name.
    json
        Print JSON for scripts (schema etcetera.status/1).
    """
    from ..api import astatus, dumps

    found = await astatus(name, config=settings())
    if json:
        print(dumps(found.to_json()))
        return 0
    if found.up_to_date:
        say(f"{name}: up to date with version {found.latest} ({found.files} files)")
        return 0
    c = found.changes
    for label, rows in (("new", c.added), ("removed", c.removed)):
        for path, size in rows:
            print(f"{label}: {path}  {human(size)}")
    for path, _, size in c.changed:
        print(f"changed: {path}  {human(size)}")
    base = "a new dataset" if found.latest is None else f"against version {found.latest}"
    s = c.summary()
    say(
        f"{name}: {base}: {s['added']['files']} new, {s['changed']['files']} changed, "
        f"{s['removed']['files']} removed; a push would publish version {found.version} and "
        f"send {human(found.bytes_to_send)} in {found.objects_to_send} objects"
    )
    return 0
