"""``etc info``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from ._common import human, settings


async def info(
    name: str,
    *,
    remote: Annotated[bool, Parameter(name=["--remote", "-r"], negative="")] = False,
    json: Annotated[bool, Parameter(name=["--json"], negative="")] = False,
) -> int:
    """Show a dataset: versions, who pushed them and when, size, files per partition, meta.

    Parameters
    ----------
    name
        Dataset name.
    remote
        Describe the repository's copy instead of the local one.
    json
        Print JSON for scripts.
    """
    from ..api import ainfo, dumps
    from ..errors import escape_controls

    found = await ainfo(name, config=settings(), remote=remote)
    if json:
        print(dumps(found))
        return 0
    if remote:
        print(f"{found['name']} in {found['repository']}")
        for v in found["versions"]:
            created, by = escape_controls(v["created"]), escape_controls(v["pushed_by"] or "")
            sizes = "-" if v["files"] is None else f"{v['files']} files  {human(v['bytes'])}"
            print(f"  v{v['version']}  {created or '-'}  {by or '-'}  {sizes}")
    else:
        version, shard = found["version"], found["shard"]
        what = found["kind"] + (f", version {version}" if version else "")
        if shard:
            what += f", shard {shard[0]}/{shard[1]}"
        print(f"{found['name']} ({what})")
        print(f"  location: {found['location']}")
        print(f"  {found['files']} files, {human(found['bytes'])}")
        print(f"  meta: {escape_controls(str(found['meta']))}")
    for part, counts in sorted(found["partitions"].items()):
        print(f"  {escape_controls(part)}: {counts['files']} files, {human(counts['bytes'])}")
    return 0
