"""``ledger.aio.wait_event``: the background loops' wait for a wake-up or a timeout never loses a cancellation."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from ledger.aio import wait_event


async def _cancel_as_the_event_is_set(wait: Callable[[asyncio.Event], Awaitable[object]]) -> object:
    event = asyncio.Event()
    task = asyncio.ensure_future(wait(event))
    await asyncio.sleep(0)  # the task now waits on the event
    event.set()
    task.cancel()  # in the same step: both reach the task at its next turn
    return await task


def test_a_cancellation_that_meets_the_event_being_set_still_cancels_the_wait() -> None:
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_cancel_as_the_event_is_set(lambda event: wait_event(event, 10)))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for keeps the cancellation from Python 3.12")
def test_asyncio_wait_for_on_this_python_loses_that_cancellation() -> None:
    """Why the helper exists: the same race through ``asyncio.wait_for`` returns as if nothing was cancelled."""
    assert asyncio.run(_cancel_as_the_event_is_set(lambda event: asyncio.wait_for(event.wait(), 10))) is True


def test_the_wait_answers_whether_the_event_was_set_or_the_time_ran_out() -> None:
    async def scenario() -> tuple[bool, bool]:
        event = asyncio.Event()
        timed_out = await wait_event(event, 0.01)
        asyncio.get_running_loop().call_later(0.01, event.set)
        return timed_out, await wait_event(event, 10)

    assert asyncio.run(scenario()) == (False, True)
