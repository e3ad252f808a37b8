"""The workers of a Dask cluster as etcetera's tasks see them: their folders, their names."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from distributed import Client, Future, get_worker, wait

from ..errors import ClusterError

#: A folder for every worker alike, or one per worker, keyed by worker address or name.
Paths = str | os.PathLike[str] | Mapping[Any, str | os.PathLike[str]]


def mine(paths: Paths | None, default: Path, worker: Any = None) -> Path | None:
    """The current worker's entry of ``paths`` (``None``: it has no folder)."""
    if paths is None:
        return default
    if isinstance(paths, Mapping):
        worker = worker or get_worker()
        for key in (worker.address, worker.name, str(worker.name)):
            if key in paths:
                return Path(paths[key])
        return None
    return Path(paths)


class Pinned:
    """Tasks pinned to workers by *name*, re-pinned when a worker comes back.

    The scheduler pins a task to addresses; a worker its nanny restarts keeps its name
    (and its folder, its home) under a new address, so a task pinned to the old one
    would wait forever. The driver watches, and resubmits such a task to the worker's
    new address; a worker gone for longer than ``patience`` seconds fails the call.
    """

    def __init__(self, client: Client, patience: float = 600.0) -> None:
        self.client = client
        self.patience = patience

    def addresses(self, names: Sequence[Any]) -> list[str]:
        """Current addresses of the workers called ``names``."""
        info = self.client.scheduler_info()["workers"]
        return sorted(a for a, w in info.items() if w.get("name", a) in names)

    def run(
        self, jobs: Mapping[str, tuple[Sequence[Any], Callable[[list[str]], Future[Any]]]]
    ) -> dict[str, Any]:
        """Run ``submit(addresses)`` per job (pinned to the workers named); the results."""
        futures: dict[str, Future[Any]] = {}
        pinned: dict[str, set[str]] = {}
        lost: dict[str, float] = {}

        def submit(key: str) -> None:
            names, make = jobs[key]
            where = self.addresses(names)
            if not where:
                lost.setdefault(key, time.monotonic())
                return
            lost.pop(key, None)
            pinned[key] = set(where)
            futures[key] = make(where)

        for key in jobs:
            submit(key)
        while not all(k in futures and futures[k].done() for k in jobs):
            running = [f for f in futures.values() if not f.done()]
            if running:
                with contextlib.suppress(TimeoutError):
                    wait(running, timeout=1)
            else:
                time.sleep(1)  # every job waits for a worker to come back
            live = set(self.client.scheduler_info()["workers"])
            for key in jobs:
                future = futures.get(key)
                if future is not None and (future.done() or pinned[key] & live):
                    continue
                if future is not None:
                    future.cancel()
                    del futures[key]
                submit(key)
                if key in lost and time.monotonic() - lost[key] > self.patience:
                    raise ClusterError(
                        f"worker {jobs[key][0]} holding {key or 'the files outside data/'} "
                        f"has been gone for {self.patience:.0f} s"
                    )
        return {key: futures[key].result() for key in jobs}
