"""Fixtures for the engine core tests."""

from __future__ import annotations

import pytest

from engine_svc.core import Core
from unit.engine_svc.core.core_harness import Harness


@pytest.fixture
def harness() -> Harness:
    """Return a harness around a core with the API.md default instruments."""
    return Harness(Core())
