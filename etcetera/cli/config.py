"""``etc config``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from ._common import settings


async def config(*, json: Annotated[bool, Parameter(name=["--json"], negative="")] = False) -> int:
    """Show the effective settings (secrets masked).

    Parameters
    ----------
    json
        Print JSON for scripts.
    """
    from ..api import dumps

    values = settings().masked()
    if json:
        print(dumps(values))
    else:
        for key, value in values.items():
            print(f"{key} = {value!r}")
    return 0
