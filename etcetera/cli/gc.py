"""``etc gc``."""

from datetime import timedelta

from ._common import count, human, say, settings


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
        f"{verb} {count(len(r.objects), 'object')} ({human(r.bytes)}), "
        f"{count(len(r.manifests), 'manifest')}, {count(len(r.uploads), 'unfinished upload')}, "
        f"{count(len(r.temporary), 'temporary object')}; "
        f"kept {count(r.kept_young, 'unreferenced object')} younger than {grace_hours:g} h"
    )
    if r.partly_used:  # chunk objects some of whose chunks no version references
        say(
            f"{count(r.partly_used, 'chunk object')} ({human(r.partly_used_bytes)}) partly "
            f"used: kept, holding {human(r.unreferenced_bytes)} no version references"
        )
    return 0
