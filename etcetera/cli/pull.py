"""``etc pull``."""

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from ._common import count, display, human, say, settings
from ._paths import kept, tilde


async def pull(
    name: str,
    /,
    *,
    partition: Annotated[list[str] | None, Parameter(name=["--partition", "-p"])] = None,
    force: bool = False,
    to: Path | None = None,
    dry_run: bool = False,
    include: Annotated[list[str] | None, Parameter(name=["--include"])] = None,
    exclude: Annotated[list[str] | None, Parameter(name=["--exclude"])] = None,
    shard: Annotated[str | None, Parameter(name=["--shard"])] = None,
) -> int:
    """Pull a dataset (NAME or NAME@VERSION) from the repository.

    Parameters
    ----------
    name
        Dataset name, optionally NAME@VERSION.
    partition
        Pull only this partition (repeatable).
    force
        Pull again, replace a registered dataset's link, or replace a non-empty --to folder.
    to
        Pull into this folder instead of the local store (CI staging).
    dry_run
        Show what would be downloaded, download nothing.
    include
        Only paths matching this glob (repeatable; '*' crosses '/').
    exclude
        Never paths matching this glob (repeatable).
    shard
        Only shard K of N, as K/N with K the 0-based rank (0/4, 1/4, 2/4, 3/4): a
        byte-balanced share of the files under data/ (whole packs and blobs), with every
        partition folder and every file outside data/. The N shards are disjoint and
        together are the whole selection.
    """
    from ..api import apull, parse_shard

    part = None if shard is None else parse_shard(shard)
    cfg = settings()
    with display(f"pull {name}") as progress:
        result = await apull(
            name,
            config=cfg,
            partitions=partition,
            force=force,
            progress=progress,
            to=to,
            dry_run=dry_run,
            include=include or (),
            exclude=exclude or (),
            shard=part,
        )
    what = f"version {result.version}"
    where = tilde(result.location) if to is not None else kept(cfg.home, result.name)
    if result.shard is not None:
        what += f" shard {result.shard[0]}/{result.shard[1]}"
    if result.through is not None:
        # The folder a --to link points to is what is replaced: say so.
        verb = "would replace" if result.dry_run else "replaced"
        say(f"{name}: {result.through} is a link: {verb} the content of {result.location}")
    if result.dry_run:
        say(
            f"{name}: would pull {what} into {where}: "
            f"{count(result.files, 'file')}, {human(result.size)}; "
            f"{human(result.bytes_to_download)} to download"
        )
        return 0
    if result.noop:
        say(f"{name}: {what} is already local at {where}")
        return 0
    s = result.stats
    rate = human(s.bytes_received / result.seconds) if result.seconds else "-"
    recovered = f", recovered {human(s.bytes_resumed)} already on disk" if s.bytes_resumed else ""
    say(
        f"pulled {name} {what}: {count(result.files, 'file')}, {human(result.size)}; "
        f"downloaded {human(s.bytes_received)} ({count(result.downloaded, 'file')}), "
        f"reused {count(result.reused + result.present, 'local file')}{recovered}; "
        f"{result.seconds:.1f} s, {rate}/s"
    )
    return 0
