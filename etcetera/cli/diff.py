"""``etc diff``: exit 0 when equal, 1 when they differ, 2 on an error (as ``diff``)."""

from typing import Annotated

from cyclopts import Parameter

from ._common import fail, human, say, settings


async def diff(
    old: str,
    new: str,
    *,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """Compare two trees: NAME@K (a version in the repository) or NAME (the local copy).

    Files added, removed and changed from OLD to NEW, with sizes, from manifests and the
    hash cache alone (no data is downloaded). Exit status: 0 when equal, 1 when they
    differ, 2 on an error.

    Parameters
    ----------
    old
        NAME@K, NAME@latest, or NAME for the local copy.
    new
        NAME@K, NAME@latest, or NAME for the local copy.
    json
        Print JSON for scripts (schema etcetera.diff/1).
    """
    from ..api import adiff, dumps

    try:
        found = await adiff(old, new, config=settings())
    except Exception as exc:  # an error is 2, not the 1 of "they differ"
        return fail(exc) + 1
    if json:
        print(dumps(found.to_json()))
        return 0 if found.equal else 1
    rows = [(f"+ {p}", human(s)) for p, s in found.changes.added]
    rows += [(f"- {p}", human(s)) for p, s in found.changes.removed]
    rows += [(f"~ {p}", f"{human(a)} -> {human(b)}") for p, a, b in found.changes.changed]
    for what, size in sorted(rows, key=lambda r: r[0][2:]):
        print(f"{what}  {size}")
    if found.equal:
        say(f"{old} and {new} hold the same files")
        return 0
    s = found.changes.summary()
    say(
        f"{s['added']['files']} added ({human(s['added']['bytes'])}), "
        f"{s['removed']['files']} removed ({human(s['removed']['bytes'])}), "
        f"{s['changed']['files']} changed ({human(s['changed']['bytes'])})"
    )
    return 1
