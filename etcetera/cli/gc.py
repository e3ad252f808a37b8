"""``etc gc``."""

from __future__ import annotations

from datetime import timedelta

from ._common import human, say, settings


async def gc(*, dry_run: bool = False, grace_hours: float = 24.0) -> int:
    """Delete repository objects no version references, stale uploads and temporaries.

    Only what is older than the grace period goes, so a push in progress is safe.

    Parameters
    ----------
    dry_run
        Show what would be deleted and how much, delete nothing.
    grace_hours
        Keep anything younger than this.
    """
    from ..api import agc

    r = await agc(config=settings(), dry_run=dry_run, grace=timedelta(hours=grace_hours))
    verb = "would delete" if dry_run else "deleted"
    say(
        f"{verb} {len(r.objects)} objects ({human(r.bytes)}), {len(r.manifests)} manifests, "
        f"{len(r.uploads)} unfinished uploads, {len(r.temporary)} temporary objects; "
        f"kept {r.kept_young} unreferenced objects younger than {grace_hours:g} h"
    )
    return 0
