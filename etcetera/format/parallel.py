"""An ordered ``map`` over a few threads, with a bounded look-ahead.

Reading a manifest of 10^7 files inflates and hashes ~1 GB of pieces: zstd and SHA-256
release the GIL, so a piece is inflated and hashed in one thread while the one before
it is checked in the caller's. At most ``ahead`` results wait, so memory stays a few
pieces whatever the manifest's size; results (and errors) come in the order asked.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

THREADS = 2


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, threads: int = THREADS, ahead: int = 4
) -> Iterator[R]:
    """``map(fn, items)``, computed ``ahead`` items in advance in ``threads`` threads."""
    source = iter(items)
    with ThreadPoolExecutor(threads, thread_name_prefix="etc-map") as pool:
        waiting: collections.deque[Future[R]] = collections.deque()
        try:
            for item in source:
                waiting.append(pool.submit(fn, item))
                if len(waiting) >= ahead:
                    break
            while waiting:
                result = waiting.popleft().result()
                for item in source:
                    waiting.append(pool.submit(fn, item))
                    break
                yield result
        finally:
            for future in waiting:
                future.cancel()
