"""What the ``etc`` process tunes for itself: the collector paused while a command starts."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from etcetera.cli._process import StartUp
from etcetera.format import _gc


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """Each test leaves this process's collector on and nothing frozen, as it found it."""
    assert gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


def test_the_start_pauses_the_collector_and_its_end_freezes_what_was_built() -> None:
    start = StartUp(seconds=600)
    assert not gc.isenabled()
    built = [[i] for i in range(1000)]  # tracked objects made while it starts
    start.end()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)
    frozen = gc.get_freeze_count()
    start.end()  # once only
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def test_a_bulk_pause_still_open_keeps_the_collector_off_until_it_ends() -> None:
    start = StartUp(seconds=600)
    bulk = _gc.paused()
    bulk.__enter__()
    start.end()
    assert not gc.isenabled()
    bulk.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_command_still_running_after_its_start_gets_the_collector_back() -> None:
    resumed = threading.Event()
    start = StartUp(seconds=0.01)

    def wait() -> None:
        while not gc.isenabled():
            threading.Event().wait(0.01)
        resumed.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert resumed.wait(60), "the collector stayed off"
    assert gc.get_freeze_count() > 0
    start.end()
