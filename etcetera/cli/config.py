"""``etc config``."""

from typing import Annotated

from cyclopts import Parameter

from ._common import STATE, settings


async def config(*, json: Annotated[bool, Parameter(name=["--json"], negative="")] = False) -> int:
    """Show the effective settings and where each came from (secrets masked).

    Parameters
    ----------
    json
        Print JSON for scripts (schema etcetera.config/1: {"settings": {key: {"value",
        "source"}}}).
    """
    from ..api import dumps
    from ..api.schemas import document
    from ..settings import sources

    values = settings().masked()
    origin = sources(STATE.config_file, {**STATE.overrides, "url": STATE.url})
    if json:
        table = {k: {"value": v, "source": origin[k]} for k, v in values.items()}
        print(dumps(document("config", settings=table)))
    else:
        for key, value in values.items():
            print(f"{key} = {value!r}  ({origin[key]})")
    return 0
