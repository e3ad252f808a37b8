"""Reading a version in place, without pulling it: the core of ``etc://`` and streaming.

One pinned :class:`Version` answers path lookups from the manifest pieces it needs
and hands out verified bytes::

    async with aopen_version("sample@2", config=cfg) as v:   # one session
        entry = await v.entry("data/train/0001.txt")          # root, one piece
        data = await v.read(entry)                             # one ranged read
        many = await v.read_many(await v.files("data/train"))  # coalesced per pack

Inside an operation that already has a session, ``await open_version(session, name,
number)`` pins a version on it. Every byte is checked against the manifest before it
is returned (a packed file against its digest, a large file by the chunks a read
touches: :mod:`.plan`); every request goes through the session's one transport (its
request limit, byte budget and counters); fetched ranges are kept in the home's cache
(:class:`ObjectCache`, ``cache_size``), which ``etc pull`` reads too.
"""

from .cache import ObjectCache
from .plan import Span, Unit
from .version import Version, aopen_version, object_cache, open_version

__all__ = [
    "ObjectCache",
    "Span",
    "Unit",
    "Version",
    "aopen_version",
    "object_cache",
    "open_version",
]
