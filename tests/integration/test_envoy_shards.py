"""Envoy sends a user's trading calls to the engine shard their token names.

jwt_authn copies the verified `shard` claim into x-cfd-shard and routes again; a client's
own x-cfd-shard is dropped first, so only the signed claim can pick a shard.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from envoy_support import EnvoyProcess, FakeMesh, running_front
from mesh.config import Settings
from support import free_port

Front = tuple[Settings, FakeMesh, EnvoyProcess]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    base = tmp_path_factory.mktemp("envoy-shards")
    shard1 = f"127.0.0.1:{free_port()}"
    with running_front(base, CFD_ENGINE_SHARDS="2", CFD_ENGINE_ADDR_1=shard1) as running:
        yield running


def _account(front: Front, token: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=front[2].base_url, timeout=10) as http:
        return http.get("/v1/account", headers={"authorization": f"Bearer {token}", **headers})


def test_a_user_of_shard_1_reaches_shard_1(front: Front) -> None:
    _, mesh, _ = front
    mesh.trading.last_metadata = {}
    token = mesh.issuer.issue("user-1", shard=1)[0]
    reply = _account(front, token)
    assert reply.status_code == 200, reply.text
    assert mesh.shard_trading[1].last_metadata["x-cfd-shard"] == "1"
    assert mesh.trading.last_metadata == {}


def test_a_user_of_shard_0_stays_on_shard_0_whatever_header_they_send(front: Front) -> None:
    _, mesh, _ = front
    mesh.shard_trading[1].last_metadata = {}
    token = mesh.issuer.issue("user-2", shard=0)[0]
    reply = _account(front, token, **{"x-cfd-shard": "1"})
    assert reply.status_code == 200, reply.text
    assert mesh.trading.last_metadata["x-cfd-shard"] == "0"
    assert mesh.shard_trading[1].last_metadata == {}
