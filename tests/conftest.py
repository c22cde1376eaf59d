"""What every test module shares."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _collectable_after_the_module() -> Iterator[None]:
    """A service started in this process (the API tests' TestClient) freezes what is alive at its start
    (``api.gc_policy``), which is right for a service that runs for months but would keep every earlier
    module's services, connections and threads from ever being collected here: unfreeze after each module."""
    yield
    gc.unfreeze()
