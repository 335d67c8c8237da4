"""Spot snapshots, digests and the command codec."""

from __future__ import annotations

import pytest

from engine_svc.core import Side
from engine_svc.core.codec import CodecError
from engine_svc.core.spot import (
    CancelSpotOrder,
    CreditWallet,
    DebitWallet,
    FeeSchedule,
    PlaceSpotOrder,
    SpotCommand,
    SpotExchange,
    SpotOrderType,
    TimeInForce,
)
from engine_svc.core.spot.codec import decode_spot_command, encode_spot_command
from engine_svc.core.spot.state import encode_state, restore, snapshot, spot_digest
from unit.engine_svc.core.spot.spot_harness import USD, SpotHarness, placement

BUY = Side.BUY
SELL = Side.SELL


def _busy() -> SpotHarness:
    h = SpotHarness(SpotExchange(fees=FeeSchedule(taker_bps=7, maker_bps=1)))
    h.credit("a", "USD", 50_000 * USD)
    h.credit("b", "BTC", 5000)
    h.credit("b", "SOL", 100_000)
    h.limit("b", SELL, 6_000_000, 1000, client_order_id="b1")
    h.limit("b", SELL, 6_000_000, 700)
    h.limit("b", SELL, 6_000_500, 900)
    h.limit("b", SELL, 150_000, 5000, market="SOL_USD")
    h.limit("a", BUY, 5_990_000, 800, client_order_id="a1")
    h.limit("a", BUY, 6_000_000, 1200)
    h.market("a", BUY, quote_quantity=500 * USD, client_order_id="a2")
    h.debit("a", "USD", 5 * USD, client_order_id="out")
    return h


def test_snapshot_restores_the_same_state_and_digest() -> None:
    h = _busy()
    data = snapshot(h.exchange)
    restored = restore(data)
    assert restored.last_seq == h.exchange.last_seq
    assert encode_state(restored) == encode_state(h.exchange)
    assert spot_digest(restored) == spot_digest(h.exchange)
    assert restored.fees == h.exchange.fees
    for account in ("a", "b"):
        assert restored.wallet(account) == h.exchange.wallet(account)
        assert restored.open_orders(account) == h.exchange.open_orders(account)
    assert restored.book_view("BTC_USD") == h.exchange.book_view("BTC_USD")


def test_a_restored_exchange_keeps_time_priority_and_stored_results() -> None:
    h = _busy()
    twin = SpotHarness(restore(snapshot(h.exchange)))
    twin.seq = h.seq
    for harness in (h, twin):
        harness.credit("c", "USD", 50_000 * USD)
        harness.limit("c", BUY, 6_000_500, 1000)
        harness.limit("a", BUY, 5_990_000, 800, client_order_id="a1")
    assert spot_digest(twin.exchange) == spot_digest(h.exchange)
    assert twin.limit("b", SELL, 1, 1, client_order_id="b1").duplicate
    repeated = twin.market("a", BUY, quote_quantity=500 * USD, client_order_id="a2")
    original = h.market("a", BUY, quote_quantity=500 * USD, client_order_id="a2")
    assert repeated == original and repeated.duplicate


def test_the_digest_covers_every_change_but_not_last_seq() -> None:
    h = _busy()
    digest = spot_digest(h.exchange)
    assert h.cancel("a", "s-999").reason is not None
    assert spot_digest(h.exchange) == digest
    h.credit("z", "USD", 1)
    assert spot_digest(h.exchange) != digest


def test_replaying_the_commands_gives_the_same_digest() -> None:
    h = _busy()
    replay = SpotExchange(fees=FeeSchedule(taker_bps=7, maker_bps=1))
    for command in h.commands:
        replay.apply(decode_spot_command(encode_spot_command(command)))
    assert spot_digest(replay) == spot_digest(h.exchange)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}\n[]",
        b'{"format":"cfd-spot-snapshot","version":2,"last_seq":1}\n[]',
        b'{"format":"cfd-spot-snapshot","version":1,"last_seq":-1}\n[]',
        b'{"format":"cfd-spot-snapshot","version":1,"last_seq":1}\n[1,2]',
        b'{"format":"cfd-spot-snapshot","version":1,"last_seq":1}\nnot json',
    ],
)
def test_restore_refuses_what_is_not_a_spot_snapshot(data: bytes) -> None:
    with pytest.raises(CodecError):
        restore(data)


def test_restore_refuses_locks_that_do_not_match_the_orders() -> None:
    h = _busy()
    data = snapshot(h.exchange)
    # Lower a's locked USD by one micro in the encoded wallet.
    locked = h.exchange.accounts["a"].locked["USD"]
    tampered = data.replace(f',{locked}]'.encode(), f',{locked - 1}]'.encode(), 1)
    assert tampered != data
    with pytest.raises(CodecError):
        restore(tampered)


def test_every_spot_command_survives_the_codec() -> None:
    commands: list[SpotCommand] = [
        PlaceSpotOrder(
            1, 2, "a", "BTC_USD", BUY, SpotOrderType.LIMIT, 5, 6, None, TimeInForce.IOC, True, "k"
        ),
        PlaceSpotOrder(3, 4, "a", "SOL_USD", SELL, SpotOrderType.MARKET, None, None, 9),
        CancelSpotOrder(5, 6, "a", "s-1", None),
        CreditWallet(7, 8, "a", "USD", 10, "t"),
        DebitWallet(9, 10, "a", "BTC", 11),
    ]
    for command in commands:
        data = encode_spot_command(command)
        decoded = decode_spot_command(data)
        assert decoded == command and type(decoded) is type(command)
        assert encode_spot_command(decoded) == data


@pytest.mark.parametrize(
    "data",
    [
        b'["CreditWallet",1,2,"a","USD",1.5,null]',
        b'["CreditWallet",1,2,"a","USD",true,null]',
        b'["CreditWallet",1,2,"a","USD",1]',
        b'["PlaceSpotOrder",1,2,"a","BTC_USD","UP","LIMIT",1,1,null,"GTC",false,null]',
        b'["PlaceSpotOrder",1,2,"a","BTC_USD","BUY","LIMIT",1,1,null,"GTC",0,null]',
        b'["Unknown",1]',
        b"[]",
        b"\xff",
    ],
)
def test_the_codec_refuses_malformed_commands(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_spot_command(data)


def test_a_placement_payload_survives_the_snapshot() -> None:
    h = _busy()
    stored = h.exchange.accounts["a"].results["a2"][2]
    payload = placement(stored)
    assert payload.fills
    restored = restore(snapshot(h.exchange)).accounts["a"].results["a2"][2]
    assert restored == stored
