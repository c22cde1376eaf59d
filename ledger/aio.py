"""Small asyncio helpers the service's background loops share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; whether it was set.

    Not ``asyncio.wait_for(event.wait(), seconds)``: on Python 3.11, a cancellation delivered as the event is
    being set is swallowed there (``wait_for`` returns the inner result instead of raising), so a background
    loop built on it can go on after its task was cancelled, and whoever stops it waits for ever.
    ``asyncio.timeout`` keeps the cancellation.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
