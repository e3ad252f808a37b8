"""``etc verify``."""

from ._common import display, say, settings


async def verify(name: str, /) -> int:
    """Re-hash the local copy against its manifest; exit 1 if anything differs.

    Parameters
    ----------
    name
        Dataset name.
    """
    from ..api import averify
    from ..errors import escape_controls

    with display(f"verify {name}") as progress:
        result = await averify(name, config=settings(), progress=progress)
    for label, paths in (("missing", result.missing), ("changed", result.changed)):
        for path in paths:
            print(f"{label}: {escape_controls(path)}")
    for path in result.extra:
        print(f"extra: {escape_controls(path)}")
    if result.ok:
        say(f"{name}: {result.checked} files match version {result.version}")
        return 0
    print(
        f"{name}: {len(result.missing)} missing, {len(result.changed)} changed, "
        f"{len(result.extra)} extra against version {result.version} "
        f"(etc pull {name} --force restores it)"
    )
    return 1
