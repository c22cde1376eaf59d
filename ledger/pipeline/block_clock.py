"""When the next block is due (:class:`BlockClock`), so that the pipeline's follower finds it without polling fast
all the time."""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from typing import Final

HEAD_LEAD: Final = 0.03
"""Seconds before a block is expected (see :class:`BlockClock`) from which the follower asks for the head every
:data:`HEAD_POLL` seconds instead of every ``poll_interval``."""
HEAD_POLL: Final = 0.004
HEAD_LATE: Final = 0.1
"""Seconds after a block was expected that the follower keeps asking every :data:`HEAD_POLL` before it falls back
to ``poll_interval`` (the block is late, or the chain has no regular interval)."""


class BlockClock:
    """When the next block is due, from when the follower first saw each recent one.

    A chain mined at an interval (anvil's ``--block-time``, a validator set's slot) shows each new head about one
    interval after the last. Polling every ``poll_interval`` (50 ms) found a new block 25 ms late on average and
    50 ms at worst, and every operation confirmed in it was answered that much later; polling that fast all the
    time costs the service's CPU for nothing in between. The follower instead asks fast only around the moment
    the clock expects the next head (:meth:`delay`). A chain without a regular interval (mined on demand, as in
    tests) gives no expectation, and the follower polls as before.
    """

    def __init__(self, window: int = 8) -> None:
        self._seen: deque[tuple[int, float]] = deque(maxlen=window + 1)

    def saw(self, number: int, at: float) -> None:
        """The follower saw head ``number`` for the first time at ``at`` (``time.monotonic()``)."""
        if self._seen and number <= self._seen[-1][0]:
            if number < self._seen[-1][0]:
                self._seen.clear()  # the chain went back: start over
            else:
                return
        self._seen.append((number, at))

    def expected(self) -> float | None:
        """When the next head should appear, or None when the recent heads came at no regular interval (one
        gap differing from their median by more than a fifth, or fewer than three gaps seen)."""
        seen = list(self._seen)
        gaps = [(b - a) / (m - n) for (n, a), (m, b) in itertools.pairwise(seen)]
        if len(gaps) < 3:
            return None
        interval = statistics.median(gaps)
        if interval <= 0 or any(abs(gap - interval) > interval / 5 for gap in gaps):
            return None
        return seen[-1][1] + interval

    def delay(self, now: float, poll_interval: float) -> float:
        """How long the follower should sleep before asking for the head again."""
        expected = self.expected()
        if expected is None:
            return poll_interval
        until = expected - now
        if until > HEAD_LEAD:
            return min(poll_interval, until - HEAD_LEAD)
        if until > -HEAD_LATE:
            return HEAD_POLL
        return poll_interval
