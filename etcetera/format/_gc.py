"""Pausing the cyclic garbage collector around bulk builds of acyclic objects.

Building a manifest of 10^6 entries allocates millions of tuples and strings, none in a
reference cycle; the collector would rescan the growing heap again and again (a third of
the time). The pause is counted, so overlapping pauses in several threads re-enable the
collector only when the last one ends, and only if it was enabled before the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting still frees memory)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
