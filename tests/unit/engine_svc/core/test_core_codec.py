"""Command journal encoding and whole-state snapshots with digests."""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path

import pytest

from engine_svc.core import (
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ClosePosition,
    Command,
    Core,
    CreateAccount,
    Deposit,
    DepositAsset,
    ExpireOrders,
    ModifyPosition,
    OpenPosition,
    OrderType,
    PlaceOrder,
    PositionView,
    Reason,
    Side,
    TransferFunds,
    make_instrument,
)
from engine_svc.core.codec import (
    CodecError,
    decode_command,
    encode_command,
    loads_strict,
    pack_int_column,
    unpack_int_column,
)
from engine_svc.core.engine import SNAPSHOT_VERSION, snapshot_digest
from engine_svc.core.spot import CancelSpotOrder, PlaceSpotOrder, SpotOrderType, TimeInForce
from engine_svc.core.spot.enums import TransferDirection
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000

EVERY_COMMAND: list[Command] = [
    CreateAccount(1, 10, "user-1", 5000 * USD),
    Deposit(2, 11, "user-1", 25, None),
    Deposit(3, 11, "user-1", 25, "dep-1"),
    ApplyQuote(4, 12, "BTCUSD", 6_425_000, 6_425_015),
    OpenPosition(
        5,
        13,
        "user-1",
        "BTCUSD",
        Side.BUY,
        10,
        15,
        None,
        6_425_000,
        30,
        7_000_000,
        6_000_000,
        1000,
        "c-1",
    ),
    OpenPosition(6, 13, "user-1", "ETHUSD", Side.SELL, 3, None, 50 * USD),
    ClosePosition(7, 14, "user-1", "p-5", None, None),
    ClosePosition(8, 14, "user-1", "p-5", 3, "c-2"),
    AddMargin(9, 15, "user-1", "p-6", 7, "c-3"),
    ModifyPosition(10, 16, "user-1", "p-6", 0, None, 12, None),
    PlaceOrder(
        11,
        17,
        "user-1",
        "SOLUSD",
        Side.BUY,
        OrderType.STOP,
        151_000,
        5,
        100,
        None,
        None,
        140_000,
        None,
        99,
        "c-4",
    ),
    CancelOrder(12, 18, "user-1", "o-11", "c-5"),
    ExpireOrders(13, 19),
    TransferFunds(14, 20, "user-1", 7 * USD, TransferDirection.TO_SPOT, "c-6"),
    TransferFunds(15, 20, "user-1", 2 * USD, TransferDirection.TO_CFD, None),
    DepositAsset(16, 21, "user-1", "BTC", 30, "c-7"),
    PlaceSpotOrder(
        17, 22, "user-1", "BTC_USD", Side.BUY, SpotOrderType.LIMIT, 6_000_000, 3, None,
        TimeInForce.IOC, True, "c-8",
    ),
    PlaceSpotOrder(18, 22, "user-1", "BTC_USD", Side.BUY, SpotOrderType.MARKET, None, None, 9),
    CancelSpotOrder(19, 23, "user-1", "s-17", "c-9"),
]  # fmt: skip


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_every_command_round_trips(command: Command) -> None:
    data = encode_command(command)
    decoded = decode_command(data)
    assert decoded == command and type(decoded) is type(command)
    assert encode_command(decoded) == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'["Nope",1]',
        b'["ExpireOrders",1]',
        b'["ExpireOrders",1,2,3]',
        b'["ExpireOrders",1.5,2]',
        b'["ExpireOrders",NaN,2]',
        b'["ExpireOrders",true,2]',
        b'["ExpireOrders","1",2]',
        b'["CancelOrder",1,2,"a",5,null]',
        b'["CancelOrder",1,2,null,"o-1",null]',
        b'["Deposit",1,2,"a",5,7]',
        b'["Deposit",1,2,"a",null,null]',
        b'["ClosePosition",1,2,"a","p-1","3",null]',
        b'["ApplyQuote",1,2,"BTCUSD",1,{}]',
        b'["OpenPosition",1,2,"a","BTCUSD","LONG",10,1,null,null,null,null,null,null,null]',
        b'["TransferFunds",1,2,"a",5,"SIDEWAYS",null]',
        b'["PlaceSpotOrder",1,2,"a","BTC_USD","BUY","LIMIT",1,1,null,"GTC",1,null]',
        b"[" * 100_000,
    ],
)
def test_garbage_does_not_decode(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_command(data)


def test_malformed_commands_do_not_encode() -> None:
    with pytest.raises(CodecError, match="must be an integer"):
        encode_command(ApplyQuote(1, 2, "BTCUSD", 1.5, 2))  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="must be a Side"):
        encode_command(OpenPosition(1, 2, "a", "BTCUSD", "BUY", 1, 1))  # type: ignore[arg-type]


def _busy_core() -> Harness:
    instruments = {
        "BTCUSD": make_instrument("BTCUSD", "0.01", "0.0001", 100, "0.004"),
        "SOLUSD": make_instrument("SOLUSD", "0.001", "0.01", 50),
    }
    harness = Harness(Core(instruments))
    harness.run(CreateAccount, account_id="a", initial_balance=10_000 * USD)
    harness.run(CreateAccount, account_id="b", initial_balance=3_000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    harness.run(ApplyQuote, symbol="SOLUSD", bid=150_000, ask=150_030)
    harness.run(
        OpenPosition,
        account_id="a",
        symbol="BTCUSD",
        side=Side.BUY,
        leverage=10,
        quantity=100,
        take_profit=6_500_000,
        trailing_distance=20_000,
        client_order_id="x",
    )
    harness.run(
        OpenPosition,
        account_id="b",
        symbol="BTCUSD",
        side=Side.SELL,
        leverage=20,
        quantity=50,
        stop_loss=6_300_000,
        trailing_distance=30_000,
    )
    harness.run(
        OpenPosition, account_id="b", symbol="SOLUSD", side=Side.BUY, leverage=5, margin=100 * USD
    )
    harness.run(
        PlaceOrder,
        account_id="a",
        symbol="BTCUSD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_800_000,
        leverage=5,
        quantity=10,
        expire_time=harness.ts + 10**9,
        client_order_id="y",
    )
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_050_000, ask=6_051_000)
    harness.run(ClosePosition, account_id="a", position_id="p-5", quantity=40, client_order_id="z")
    return harness


def test_snapshot_restore_keeps_the_digest_and_behaves_identically() -> None:
    harness = _busy_core()
    core = harness.core
    snapshot = core.snapshot()
    restored = Core.restore(snapshot)
    assert restored.digest() == core.digest()
    assert restored.snapshot() == snapshot
    assert restored.last_seq == core.last_seq
    assert restored.list_positions("a") == core.list_positions("a")
    assert restored.list_orders("a") == core.list_orders("a")
    later: list[Command] = [
        ApplyQuote(harness.seq + 1, 5, "BTCUSD", 6_100_000, 6_101_000),
        ApplyQuote(harness.seq + 2, 6, "BTCUSD", 6_070_000, 6_071_000),
        ApplyQuote(harness.seq + 3, 7, "BTCUSD", 5_790_000, 5_791_000),
        OpenPosition(
            harness.seq + 4,
            8,
            "a",
            "BTCUSD",
            Side.BUY,
            10,
            1,
            None,
            None,
            None,
            None,
            None,
            None,
            "x",
        ),
    ]
    for command in later:
        assert core.apply(command) == restored.apply(command)
        assert core.digest() == restored.digest()
    assert Core.restore(core.snapshot()).digest() == core.digest()


def test_digest_sees_every_change_but_not_rejections() -> None:
    harness = _busy_core()
    digest = harness.core.digest()
    assert not harness.run(Deposit, account_id="nobody", amount=1).ok
    assert harness.core.digest() == digest
    harness.run(Deposit, account_id="a", amount=1)
    assert harness.core.digest() != digest


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: data[:-5],
        lambda data: b"garbage\n" + data.partition(b"\n")[2],
        lambda data: data.partition(b"\n")[0] + b"\n[]",
        lambda data: data.replace(b'"last_seq":', b'"last_seq":-'),
        # A balance that no longer conserves money.
        lambda data: data.replace(b'["a",', b'["a",1', 1),
    ],
)
def test_restore_rejects_corrupt_snapshots(mutate: object) -> None:
    snapshot = _busy_core().core.snapshot()
    assert callable(mutate)
    with pytest.raises(CodecError):
        Core.restore(mutate(snapshot))


def test_integer_columns_pack_compactly_and_fall_back_for_huge_values() -> None:
    small = [0, -1, 2**63 - 1, -(2**63)]
    packed = pack_int_column(small)
    assert packed[:1] == b"Q" and len(packed) == 9 + 8 * len(small)
    assert unpack_int_column(packed + b"rest", 0, len(small)) == (small, len(packed))
    huge = [1, 2**70, -(2**90)]
    packed = pack_int_column(huge)
    assert packed[:1] == b"J"
    assert unpack_int_column(packed, 0, 3) == (huge, len(packed))
    with pytest.raises(CodecError):
        unpack_int_column(packed, 0, 4)
    with pytest.raises(CodecError):
        unpack_int_column(packed[:-1], 0, 3)
    with pytest.raises(CodecError):
        unpack_int_column(b"X" + packed[1:], 0, 3)


def test_snapshot_with_a_huge_balance_round_trips() -> None:
    harness = Harness(Core())
    harness.run(CreateAccount, account_id="rich", initial_balance=10**18)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=99_999_999_000, ask=100_000_000_000)
    opened = harness.run(
        OpenPosition,
        account_id="rich",
        symbol="BTCUSD",
        side=Side.BUY,
        leverage=1,
        quantity=9_000_000,
    )
    assert opened.ok
    harness.run(ApplyQuote, symbol="BTCUSD", bid=999_999_999_000_000, ask=999_999_999_000_001)
    assert harness.run(ClosePosition, account_id="rich", position_id="p-3").ok
    # The profit makes a margin above 2**63 micro-dollars possible: a JSON column holds it.
    big = harness.run(
        OpenPosition,
        account_id="rich",
        symbol="BTCUSD",
        side=Side.BUY,
        leverage=1,
        quantity=10_000,
    )
    assert big.ok and isinstance(big.payload, PositionView) and big.payload.margin > 2**63
    snapshot = harness.core.snapshot()
    assert b"J" in snapshot
    restored = Core.restore(snapshot)
    assert restored.digest() == harness.core.digest()
    assert restored.list_positions("rich") == harness.core.list_positions("rich")


def test_snapshots_leave_the_cycle_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # The collector is interpreter-wide state: pausing it is the service's recovery's call.
    core = _busy_core().core

    def forbidden() -> None:
        raise AssertionError("the core changed the cycle collector")

    monkeypatch.setattr(gc, "disable", forbidden)
    monkeypatch.setattr(gc, "enable", forbidden)
    restored = Core.restore(core.snapshot())
    assert restored.digest() == core.digest()
    with pytest.raises(CodecError):
        Core.restore(core.snapshot()[:-3])


def test_snapshot_with_digest_gives_both_from_one_encoding() -> None:
    core = _busy_core().core
    snapshot, digest = core.snapshot_with_digest()
    assert snapshot == core.snapshot()
    assert digest == core.digest()
    # The digest is the sha256 of the state encoding after the header line.
    assert snapshot_digest(snapshot) == digest
    assert hashlib.sha256(snapshot.partition(b"\n")[2]).hexdigest() == digest
    parts = core.snapshot_parts()
    assert b"".join(parts) == snapshot
    assert snapshot_digest(parts) == digest
    with pytest.raises(CodecError):
        snapshot_digest(parts[1:])
    restored = Core.restore(snapshot)
    assert restored.snapshot_with_digest() == (snapshot, digest)


@pytest.mark.parametrize("version", [0, 7, 99, "1", None, True])
def test_restore_rejects_unknown_snapshot_versions(version: object) -> None:
    snapshot = _busy_core().core.snapshot()
    header, _, body = snapshot.partition(b"\n")
    fields = json.loads(header)
    assert fields["version"] == SNAPSHOT_VERSION == 6
    fields["version"] = version
    changed = json.dumps(fields, separators=(",", ":")).encode("ascii") + b"\n" + body
    with pytest.raises(CodecError, match="supported version"):
        Core.restore(changed)


def test_a_version_1_snapshot_loads_with_its_keys_bound_to_their_requests() -> None:
    # Written by the version 1 code: a deposit, two opens (p-4 with "open"), AddMargin
    # "margin" on p-4, ModifyPosition "modify" on p-5, a partial close "close" of p-4, an order
    # o-9 placed with "place", and o-10 cancelled with "cancel".
    data = (Path(__file__).parent / "snapshot_v1.bin").read_bytes()
    assert data.startswith(b'{"format":"cfd-core-snapshot","version":1,')
    harness = Harness(Core.restore(data))
    harness.seq = harness.core.last_seq
    assert harness.core.last_seq == 11 and len(harness.core.list_positions("a")) == 2
    exact: list[tuple[type[Command], dict[str, object], str]] = [
        (Deposit, {"amount": 1}, "deposit"),
        (OpenPosition, {"symbol": "BTCUSD", "side": Side.BUY, "leverage": 1,
                        "quantity": 1}, "open"),
        (AddMargin, {"position_id": "p-4", "amount": 1}, "margin"),
        (ModifyPosition, {"position_id": "p-5", "take_profit": 1}, "modify"),
        (ClosePosition, {"position_id": "p-4"}, "close"),
        (PlaceOrder, {"symbol": "BTCUSD", "side": Side.BUY, "order_type": OrderType.STOP,
                      "trigger_price": 9_000_000, "leverage": 1, "quantity": 1}, "place"),
        (CancelOrder, {"order_id": "o-10"}, "cancel"),
    ]  # fmt: skip
    digest = harness.core.digest()
    for factory, fields, key in exact:
        result = harness.run(factory, account_id="a", **fields, client_order_id=key)
        assert result.duplicate, (key, result)
    # A version 1 receipt of a position change cannot tell AddMargin from ModifyPosition.
    edit = harness.run(
        AddMargin, account_id="a", position_id="p-5", amount=1, client_order_id="modify"
    )
    assert edit.duplicate
    reused: list[tuple[type[Command], dict[str, object], str]] = [
        (CancelOrder, {"order_id": "o-9"}, "cancel"),
        (AddMargin, {"position_id": "p-5", "amount": 1}, "margin"),
        (ModifyPosition, {"position_id": "p-5", "take_profit": 1}, "open"),
        (ClosePosition, {"position_id": "p-5"}, "close"),
        (Deposit, {"amount": 1}, "place"),
    ]  # fmt: skip
    for factory, fields, key in reused:
        result = harness.run(factory, account_id="a", **fields, client_order_id=key)
        assert result.reason is Reason.IDEMPOTENCY_KEY_REUSED, (key, result)
    assert harness.core.digest() == digest
    # It is written again in the current version, which keeps the bindings.
    again = Core.restore(harness.core.snapshot())
    assert again.digest() == digest and again.snapshot().startswith(
        b'{"format":"cfd-core-snapshot","version":%d,' % SNAPSHOT_VERSION
    )


def test_snapshot_digest_rejects_bytes_without_a_header_line() -> None:
    with pytest.raises(CodecError):
        snapshot_digest(b"no header line at all")


def test_restore_rejects_out_of_range_position_columns() -> None:
    core = _busy_core().core
    snapshot = core.snapshot()
    header, _, body = snapshot.partition(b"\n")
    small_end = 8 + int.from_bytes(body[:8], "big")
    count = int.from_bytes(body[small_end : small_end + 8], "big")
    assert count > 0
    owners_column = small_end + 8 + (9 + 8 * count)
    # Point the first position at an account index past the end of the account list.
    corrupt = bytearray(body)
    corrupt[owners_column + 9 : owners_column + 17] = (10**6).to_bytes(8, "little")
    with pytest.raises(CodecError):
        Core.restore(header + b"\n" + bytes(corrupt))
    # And at a side that is neither buy nor sell.
    buys_column = small_end + 8 + 3 * (9 + 8 * count)
    corrupt = bytearray(body)
    corrupt[buys_column + 9 : buys_column + 17] = (2).to_bytes(8, "little")
    with pytest.raises(CodecError):
        Core.restore(header + b"\n" + bytes(corrupt))


def test_strict_json_rejects_bytes_that_are_not_utf8() -> None:
    with pytest.raises(CodecError):
        loads_strict(b'["\xff"]')
    assert loads_strict(b'["a",1,null]') == ["a", 1, None]
