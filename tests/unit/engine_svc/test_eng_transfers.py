"""Cross-shard transfers at the engine's boundary: ids, requests and journal streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfd.v1 import engine_admin_pb2, exchange_pb2
from engine_svc import spot_requests
from engine_svc.config import EngineConfig, shard_stream
from engine_svc.core import ReceiveTransfer, SendTransfer
from engine_svc.core.spot.enums import TransferDirection
from engine_svc.runtime import EngineRuntime
from engine_svc.transfers import transfer_id
from mesh.config import Settings
from mesh.errors import ApiError
from support import mesh_env

TO_SPOT = exchange_pb2.TRANSFER_DIRECTION_TO_SPOT
TO_CFD = exchange_pb2.TRANSFER_DIRECTION_TO_CFD


def test_a_transfer_id_is_derived_from_the_client_key_and_random_without_one() -> None:
    first = transfer_id("alice", "k-1")
    assert first == transfer_id("alice", "k-1")
    assert first != transfer_id("bob", "k-1") and first != transfer_id("alice", "k-2")
    assert transfer_id("alice", None) != transfer_id("alice", None)
    assert all(0 < len(t) <= 64 for t in (first, transfer_id("alice", None)))


def test_only_another_shard_than_0_gets_its_own_journal_stream() -> None:
    assert shard_stream("ORDERS", 1, 0) == "ORDERS"
    assert shard_stream("ORDERS", 3, 0) == "ORDERS"
    assert shard_stream("ORDERS", 3, 2) == "ORDERS_SHARD_2"
    assert shard_stream("ORDERS_SHARD_2", 3, 2) == "ORDERS_SHARD_2"


def _send(**fields: object) -> engine_admin_pb2.SendTransferRequest:
    base: dict[str, object] = {
        "user_id": "alice",
        "transfer_id": "t-1",
        "amount": "12.5",
        "direction": TO_SPOT,
        "peer_shard": 0,
    }
    base.update(fields)
    return engine_admin_pb2.SendTransferRequest(**base)  # type: ignore[arg-type]


def test_transfer_requests_become_commands_for_their_side() -> None:
    assert spot_requests.send_transfer(_send(), 2, 1) == SendTransfer(
        0, 0, "alice", "t-1", 12_500_000, TransferDirection.TO_SPOT, 0
    )
    receive = engine_admin_pb2.ReceiveTransferRequest(
        user_id="alice", transfer_id="t-1", amount="12.5", direction=TO_SPOT, peer_shard=1
    )
    assert spot_requests.receive_transfer(receive, 2, 0) == ReceiveTransfer(
        0, 0, "alice", "t-1", 12_500_000, TransferDirection.TO_SPOT, 1
    )
    to_cfd = _send(direction=TO_CFD, peer_shard=1)
    assert spot_requests.send_transfer(to_cfd, 2, 0).direction is TransferDirection.TO_CFD


@pytest.mark.parametrize(
    ("fields", "own", "field"),
    [
        ({"transfer_id": ""}, 1, "transferId"),
        ({"transfer_id": "t" * 65}, 1, "transferId"),
        ({"peer_shard": 1}, 1, "peerShard"),
        ({"peer_shard": 2}, 1, "peerShard"),
        ({"direction": 0}, 1, "direction"),
        ({"amount": "-1"}, 1, "amount"),
        ({"user_id": ""}, 1, "userId"),
        # The spot wallet is on shard 0: TO_CFD is sent from it, TO_SPOT sent to it.
        ({"direction": TO_CFD}, 1, "direction"),
    ],
)
def test_a_malformed_transfer_request_is_refused(
    fields: dict[str, object], own: int, field: str
) -> None:
    with pytest.raises(ApiError) as info:
        spot_requests.send_transfer(_send(**fields), 2, own)
    assert info.value.reason == "VALIDATION_FAILED"
    assert [name for name, _ in info.value.violations] == [field]


@pytest.mark.parametrize(
    ("shards", "shard", "stream"), [(1, 0, "S"), (2, 0, "S"), (2, 1, "S_SHARD_1")]
)
async def test_each_shard_runtime_journals_to_its_own_stream(
    tmp_path: Path, shards: int, shard: int, stream: str
) -> None:
    env = mesh_env(tmp_path, CFD_ENGINE_SHARDS=str(shards), CFD_ENGINE_SHARD=str(shard))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    runtime = EngineRuntime(Settings.from_env(env), EngineConfig(journal_stream="S"), db_url=url)
    try:
        assert runtime.journal_stream == stream
    finally:
        await runtime.history.engine.dispose()
