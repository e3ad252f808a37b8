"""``etc info``."""

from typing import Annotated

from cyclopts import Parameter

from ._common import count, human, settings
from ._paths import tilde


async def info(
    name: str,
    /,
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
        Print JSON for scripts (schema etcetera.info/1, the same keys local and remote).
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
            created, by = escape_controls(v["created"] or ""), escape_controls(v["pushed_by"] or "")
            sizes = (
                "-" if v["files"] is None else f"{count(v['files'], 'file')}  {human(v['bytes'])}"
            )
            print(f"  v{v['version']}  {created or '-'}  {by or '-'}  {sizes}")
    else:
        version, shard = found["version"], found["shard"]
        what = found["kind"] + (f", version {version}" if version is not None else "")
        if shard:
            what += f", shard {shard[0]}/{shard[1]}"
        print(f"{found['name']} ({what})")
        print(f"  path: {tilde(found['path'])}")
        # The folder the path resolves to now: a later pull makes another.
        print(f"  location: {tilde(found['location'])}")
        if found["repository"]:
            print(f"  from: {found['repository']}")
        print(f"  {count(found['files'], 'file')}, {human(found['bytes'])}")
        print(f"  meta: {escape_controls(str(found['meta']))}")
    for part, counts in found["partitions"].items():
        print(
            f"  {escape_controls(part)}: {count(counts['files'], 'file')}, {human(counts['bytes'])}"
        )
    outside = found["outside"]
    if outside["files"]:
        print(
            f"  files outside data/: {count(outside['files'], 'file')}, {human(outside['bytes'])}"
        )
    return 0
