"""What the ``etc`` process tunes for itself: the allocator and the cyclic collector.

Only :func:`etcetera.cli.main` calls these: a library user's process keeps its own
allocator and collector settings.

A command's start (imports, the settings, the SDK's models and endpoint data) builds
about 1.4·10^5 objects that live until the process exits, and almost no garbage cycles.
The collector does not know that: it scans young objects every 700 allocations and all
of them again as they age, and Python's exit runs full collections while it clears the
modules. Measured on a no-op pull against moto here, 70-100 ms of CPU went to the first
and 0.25-0.3 s to the second.
"""

from __future__ import annotations

import contextlib
import gc
import threading

from ..format import _gc


def return_freed_buffers_to_the_os() -> None:
    """Serve every allocation over 4 MiB with mmap, and unmap it when freed.

    glibc raises its mmap threshold as large blocks are freed (up to 32 MiB), after
    which 16 MiB part buffers come from per-thread arenas that keep freed memory:
    measured here, a 512 MiB push at a 160 MiB budget peaked at 310 MiB of RSS with the
    default and at 210 MiB with a fixed threshold. The threshold sits above the 1 MiB
    blocks reads and hashing allocate by the thousand: served by mmap, each of those
    would be mapped, zero-filled page by page and unmapped again.
    """
    import ctypes

    try:
        # The process's own symbols, libc's among them: no find_library(), which runs
        # `ldconfig -p` in a subprocess (tens of ms of every command's start).
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc
    m_mmap_threshold = -3
    mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(4 << 20))


class StartUp:
    """The collector paused while a command starts, for ``seconds`` at most.

    A command still running when they have passed is past its start: what it built is
    frozen (:func:`gc.freeze`: no later collection scans it again, reference counting
    still frees it) and the pause ends. The pause is the one bulk builds take
    (``etcetera.format._gc``), so the collector comes back only when the last of them
    ends, and only if it was on before.
    """

    def __init__(self, seconds: float) -> None:
        self._pause: contextlib.ExitStack | None = contextlib.ExitStack()
        self._pause.enter_context(_gc.paused())
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.end)
        self._timer.daemon = True
        self._timer.start()

    def end(self) -> None:
        """Freeze what the start built and end the pause (once; later calls do nothing)."""
        self._timer.cancel()
        with self._lock:
            if self._pause is None:
                return
            pause, self._pause = self._pause, None
        gc.freeze()
        pause.close()


def skip_the_collections_of_exit() -> None:
    """Leave the heap out of the full collections the interpreter runs as it exits.

    Frozen objects are skipped by every later collection; atexit handlers still run.
    All the command opened is closed by now, so the cycles left are only not freed at
    exit, as the interpreter leaves much of its heap anyway.
    """
    gc.freeze()
