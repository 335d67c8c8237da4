"""Trading calls go to the engine shard named by the caller's token; the rest do not move."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx

from edge.config import EdgeConfig
from edge.upstream import Upstreams, shard_of
from unit.edge.edge_fakes import addresses_of, fake_mesh, running_edge

TRADING = "cfd.v1.TradingService"
EXCHANGE = "cfd.v1.ExchangeService"


def test_the_shard_comes_from_the_bearer_tokens_claim(tmp_path: Path) -> None:
    # Claims are read, not verified, here: the shard itself verifies the token.
    unsigned = "e30.eyJzdWIiOiJhIiwic2hhcmQiOjJ9.c2ln"  # {"sub": "a", "shard": 2}
    assert shard_of((("authorization", f"Bearer {unsigned}"),)) == 2
    assert shard_of((("authorization", "Basic abc"),)) == 0
    assert shard_of((("x-request-id", "r"),)) == 0
    upstreams = Upstreams({TRADING: "a:1", EXCHANGE: "a:1"}, ("a:1", "b:2", "c:3"))
    assert upstreams.sharded
    assert [upstreams.address(TRADING, n) for n in range(3)] == ["a:1", "b:2", "c:3"]
    # The spot exchange runs on shard 0 only.
    assert upstreams.address(EXCHANGE, 2) == "a:1"
    assert not Upstreams({TRADING: "a:1"}, ("a:1",)).sharded


async def test_rest_trading_calls_reach_the_callers_shard(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    async with (
        fake_mesh(tmp_path / "0") as shard0,
        fake_mesh(tmp_path / "1") as shard1,
    ):
        settings = replace(
            shard0.settings, engine_shards=2, engine_addrs=(shard0.address, shard1.address)
        )
        config = EdgeConfig(upstream_timeout_s=2.0)
        async with (
            running_edge(settings, config, addresses_of(shard0.address)) as edge,
            httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
        ):
            home1 = shard1.issuer.issue("bob", shard=1)[0]
            home0 = shard0.issuer.issue("alice", shard=0)[0]
            reply = await http.get("/v1/account", headers={"authorization": f"Bearer {home1}"})
            assert reply.status_code == 200, reply.text
            # Each fake verifies tokens with its own key: only shard 1 could answer bob.
            assert reply.json()["currency"] == "bob"
            assert (shard0.recorder.calls["GetAccount"], shard1.recorder.calls["GetAccount"]) == (
                0,
                1,
            )
            reply = await http.get("/v1/account", headers={"authorization": f"Bearer {home0}"})
            assert reply.json()["currency"] == "alice"
            assert shard0.recorder.calls["GetAccount"] == 1
            health = (await http.get("/readyz")).json()["services"]
            assert health[f"{TRADING}@shard1"] == "SERVING"
