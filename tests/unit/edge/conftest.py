"""Fixtures of the edge tests: fake services on loopback and the edge in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.config import EdgeConfig
from unit.edge.edge_fakes import FakeMesh, RunningEdge, addresses_of, fake_mesh, running_edge


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[FakeMesh]:
    async with fake_mesh(tmp_path) as running:
        yield running


@pytest.fixture
def edge_config() -> EdgeConfig:
    return EdgeConfig(upstream_timeout_s=1.0, max_body_bytes=4096, ws_send_timeout_s=2.0)


@pytest.fixture
async def edge(mesh: FakeMesh, edge_config: EdgeConfig) -> AsyncIterator[RunningEdge]:
    async with running_edge(mesh.settings, edge_config, addresses_of(mesh.address)) as running:
        yield running
