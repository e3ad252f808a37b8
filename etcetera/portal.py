"""A blocking portal whose event loop runs in a daemon thread.

anyio's ``start_blocking_portal`` runs its loop in a thread the interpreter waits for at
exit. An object that keeps a loop between calls (a remote dataset, a stream's iterator
left unfinished) would then hold the process open after its last line. Here the loop
runs in a daemon thread, stopped by :meth:`DaemonPortal.close` or with the process.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal


class DaemonPortal:
    """An anyio :class:`BlockingPortal` in a daemon thread (``portal`` is the portal)."""

    def __init__(self) -> None:
        ready = threading.Event()
        failed: list[BaseException] = []

        async def main() -> None:
            async with BlockingPortal() as portal:
                self.portal = portal
                ready.set()
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(main, backend="asyncio")
            except BaseException as exc:  # reported to the constructor's caller
                failed.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="etcetera-loop", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]

    def close(self) -> None:
        """Stop the loop (cancelling what still runs) and wait for its thread."""
        if self._thread.is_alive():
            self.portal.call(self.portal.stop, True)
            self._thread.join()

    def __enter__(self) -> BlockingPortal:
        return self.portal

    def __exit__(self, *exc: Any) -> None:
        self.close()
