"""`cfd up` with two CFD engine shards: each user's account lives on the shard their token
names, the edge routes their trading there, and prices reach every shard."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import httpx
import pytest

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from integration.test_edge_support import TEST_ENV, LiveMesh, signup
from launcher.status import collect, money
from mesh.auth import shard_claim
from mesh.config import Settings, shard_port
from support import mesh_env, running_up, wait_for

USERS = 16


@pytest.fixture(scope="module")
def sharded_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("shards")
    env = mesh_env(data_dir, **TEST_ENV, CFD_ENGINE_SHARDS="2")
    with running_up([], env, data_dir) as up:
        assert f"engine shard 1    localhost:{shard_port(int(env['CFD_ENGINE_PORT']), 1)}" in (
            up.output()
        )
        yield env


def _stats(env: dict[str, str], shard: int) -> engine_admin_pb2.GetStatsResponse:
    port = shard_port(int(env["CFD_ENGINE_PORT"]), shard)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply: engine_admin_pb2.GetStatsResponse = engine_admin_pb2_grpc.EngineAdminServiceStub(
            channel
        ).GetStats(
            engine_admin_pb2.GetStatsRequest(),
            metadata=(("x-cfd-internal-token", env["CFD_INTERNAL_TOKEN"]),),
            timeout=5,
        )
    return reply


def _stored_shards(data_dir: Path) -> dict[str, int]:
    """Return each user's shard as the accounts service stored it."""
    with contextlib.closing(sqlite3.connect(data_dir / "accounts.sqlite3")) as db:
        return dict(db.execute("SELECT email, shard FROM account_users").fetchall())


def test_users_are_spread_over_the_shards_and_trade_on_their_own(
    sharded_mesh: dict[str, str],
) -> None:
    env = sharded_mesh
    url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    with httpx.Client(base_url=url, timeout=10) as http:
        tokens = [signup(http, f"trader{n}@example.com") for n in range(USERS)]
        shards = [shard_claim(token) for token in tokens]
        assert set(shards) == {0, 1}
        for token in tokens:
            account = http.get("/v1/account", headers={"authorization": f"Bearer {token}"})
            assert account.status_code == 200, account.text
            assert account.json()["balance"] == "5000.00"
        # Shard 1 holds exactly the accounts of its users (the market maker's two among them
        # or not); shard 0 holds its own and everyone's spot wallet account.
        stored = _stored_shards(Path(env["CFD_DATA_DIR"]))
        assert {email: shard for email, shard in stored.items() if email.startswith("trader")} == {
            f"trader{n}@example.com": shard for n, shard in enumerate(shards)
        }
        assert _stats(env, 1).accounts == list(stored.values()).count(1)
        assert _stats(env, 0).accounts == len(stored)
        # Prices reach every shard from the one market service (a shard's tick stream may
        # open after a first quote: publish until it has one).
        home1 = tokens[shards.index(1)]
        mesh = LiveMesh(env, Path(env["CFD_DATA_DIR"]), {})

        def quoted() -> bool:
            mesh.publish(("BTCUSD", "60000", "60010"))
            reply = http.get("/v1/prices", headers={"authorization": f"Bearer {home1}"})
            return any(q["symbol"] == "BTCUSD" for q in reply.json()["prices"])

        wait_for(quoted, timeout=30, interval=0.5)
        opened = http.post(
            "/v1/positions",
            json={"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01"},
            headers={"authorization": f"Bearer {home1}"},
        )
        assert opened.status_code == 200, opened.text
        assert (_stats(env, 1).open_positions, _stats(env, 0).open_positions) == (1, 0)
        # The one cross-shard operation: shard 1's balance to the wallet on shard 0 and back.
        auth = {"authorization": f"Bearer {home1}"}
        before = http.get("/v1/account", headers=auth).json()["balance"]
        for direction, amount in (
            ("TRANSFER_DIRECTION_TO_SPOT", "100"),
            ("TRANSFER_DIRECTION_TO_CFD", "40"),
        ):
            moved = http.post(
                "/v1/wallet:transfer",
                json={"amount": amount, "direction": direction, "clientOrderId": direction},
                headers=auth,
            )
            assert moved.status_code == 200, moved.text
        wallet = {b["asset"]: b for b in http.get("/v1/wallet", headers=auth).json()["balances"]}
        assert Decimal(wallet["USD"]["available"]) == 60
        after = http.get("/v1/account", headers=auth).json()["balance"]
        assert Decimal(before) - Decimal(after) == 60
    summed = money(Settings.from_env(env))
    assert summed is not None and summed.conserved and summed.in_flight == 0, summed
    rows = {row.service: row for row in collect(Settings.from_env(env), env)}
    assert (rows["engine"].health, rows["engine-1"].health) == ("SERVING", "SERVING")
    assert int(rows["engine-1"].seq) >= shards.count(1)
