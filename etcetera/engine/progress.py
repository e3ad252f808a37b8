"""Progress events and transfer statistics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A snapshot of a transfer, sent to progress callbacks.

    Attributes:
        phase: ``"scan"``, ``"hash"``, ``"upload"``, ``"download"``, ``"done"``.
        name: the dataset.
        bytes_done: bytes moved (or hashed) so far in this phase.
        bytes_total: bytes this phase will move.
        files_done: files completed so far.
        files_total: files this phase will complete.
        elapsed: seconds since the phase started.
        bytes_resumed: bytes of ``bytes_done`` that an interrupted run had moved and this
            one checked and kept: done, but not moved now, so not part of a rate.
    """

    phase: str
    name: str
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    elapsed: float
    bytes_resumed: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class TransferStats:
    """What one operation did, counted once, by its transport and the steps it runs.

    Attributes:
        bytes_sent: request body bytes sent (objects, parts, manifests, refs).
        bytes_received: response body bytes received.
        requests: requests made, retries included.
        retries: requests repeated after a retryable failure.
        objects_sent: packs and blobs uploaded (a blob whose unfinished upload a push
            completed counts as sent).
        bytes_resumed: bytes that an interrupted run had moved and this one checked and
            kept instead of moving them again: parts a push had stored (not in
            ``bytes_sent``), files and chunks a pull had staged (not in ``bytes_received``).
        objects_skipped: packs and blobs already in the repository.
        files_downloaded: files written from downloaded bytes.
        files_reused: files taken from a local copy instead of downloading.
        bytes_reused: bytes of those files.
        files_present: files an interrupted run (or another worker) had already staged.
        peak_memory: most bytes of file data held in memory at once.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    requests: int = 0
    retries: int = 0
    objects_sent: int = 0
    bytes_resumed: int = 0
    objects_skipped: int = 0
    files_downloaded: int = 0
    files_reused: int = 0
    bytes_reused: int = 0
    files_present: int = 0
    peak_memory: int = 0
    started: float = field(default_factory=time.monotonic)


class ProgressTracker:
    """Counts one phase and calls back at most every ``interval`` seconds (and at the end)."""

    def __init__(
        self,
        phase: str,
        name: str,
        bytes_total: int,
        files_total: int,
        callback: ProgressCallback | None,
        interval: float = 0.1,
    ) -> None:
        self.phase = phase
        self.name = name
        self.bytes_total = bytes_total
        self.files_total = files_total
        self.bytes_done = 0
        self.bytes_resumed = 0
        self.files_done = 0
        self._callback = callback
        self._interval = interval
        self._start = time.monotonic()
        self._last = 0.0
        self.emit(force=True)

    def advance(self, nbytes: int = 0, nfiles: int = 0) -> None:
        """Count progress and maybe call back."""
        self.bytes_done += nbytes
        self.files_done += nfiles
        self.emit()

    def resume(self, nbytes: int) -> None:
        """Count bytes an interrupted run had moved, found and kept: done, not moved."""
        self.bytes_resumed += nbytes
        self.advance(nbytes)

    def emit(self, force: bool = False) -> None:
        """Call back now if forced or if the interval has passed."""
        if self._callback is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self._interval:
            self._last = now
            self._callback(
                ProgressEvent(
                    self.phase,
                    self.name,
                    self.bytes_done,
                    self.bytes_total,
                    self.files_done,
                    self.files_total,
                    now - self._start,
                    self.bytes_resumed,
                )
            )

    def finish(self) -> None:
        """Send the final event of the phase."""
        self.emit(force=True)
