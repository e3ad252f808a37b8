"""``etc log``."""

from typing import Annotated

from cyclopts import Parameter

from ._common import human, settings


async def log(
    name: str,
    *,
    limit: Annotated[int | None, Parameter(name=["--limit", "-n"])] = None,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """Show every version of a dataset, newest first: date, who pushed it, size, changes.

    Parameters
    ----------
    name
        Dataset name.
    limit
        Only the newest N versions.
    json
        Print JSON for scripts (schema etcetera.log/1).
    """
    from ..api import alog, dumps
    from ..api.schemas import document

    entries = await alog(name, config=settings(), limit=limit)
    if json:
        print(dumps(document("log", name=name, versions=[e.to_json() for e in entries])))
        return 0
    for entry in entries:
        r = entry.record
        print(
            f"{name}@{r.number}  {r.created or '-'}  {r.pushed_by or '-'}  "
            f"{r.files} files  {human(r.size)}  {_changes(entry.changes)}"
        )
    return 0


def _changes(summary: dict[str, dict[str, int]] | None) -> str:
    if summary is None:
        return "(first version)"
    said = [
        f"{summary[key]['files']} {key} ({human(summary[key]['bytes'])})"
        for key in ("added", "removed", "changed")
        if summary[key]["files"]
    ]
    return ", ".join(said) or "(same files as the previous version)"
