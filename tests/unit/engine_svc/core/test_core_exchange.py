"""The spot part inside `Core`: transfers, spot orders, shared keys, snapshots and replay."""

from __future__ import annotations

from pathlib import Path

from engine_svc.core import (
    ApplyQuote,
    Core,
    CreateAccount,
    Deposit,
    DepositAsset,
    OpenPosition,
    Reason,
    Side,
    TransferFunds,
)
from engine_svc.core.codec import decode_command, encode_command
from engine_svc.core.spot import (
    BalanceView,
    CancelSpotOrder,
    PlaceSpotOrder,
    SpotOrderType,
    SpotPlacement,
)
from engine_svc.core.spot.enums import TransferDirection
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000
TO_SPOT = TransferDirection.TO_SPOT
TO_CFD = TransferDirection.TO_CFD


def _funded() -> Harness:
    harness = Harness(Core())
    for name in ("a", "b"):
        assert harness.run(CreateAccount, account_id=name, initial_balance=1000 * USD).ok
    return harness


def _usd(core: Core, account: str) -> BalanceView:
    return next(b for b in core.spot.wallet(account) if b.asset == "USD")


def _conserved(core: Core) -> bool:
    held, fees, _ = core.spot.asset_totals("USD")
    return (
        core.total_user_money() + core.house_balance + held + fees == core.total_deposits
    )


def test_a_transfer_moves_usd_between_the_cfd_balance_and_the_wallet() -> None:
    harness = _funded()
    result = harness.run(
        TransferFunds, account_id="a", amount=300 * USD, direction=TO_SPOT, client_order_id="t1"
    )
    assert result.ok and result.payload is not None
    summary = harness.core.account_summary("a")
    assert summary is not None and summary.balance == 700 * USD
    assert _usd(harness.core, "a") == BalanceView("USD", 300 * USD, 0)
    assert _conserved(harness.core)
    back = harness.run(TransferFunds, account_id="a", amount=100 * USD, direction=TO_CFD)
    assert back.ok
    summary = harness.core.account_summary("a")
    assert summary is not None and summary.balance == 800 * USD
    assert _usd(harness.core, "a").available == 200 * USD
    assert _conserved(harness.core)


def test_a_transfer_beyond_the_funds_is_insufficient_balance_and_changes_nothing() -> None:
    harness = _funded()
    assert harness.run(TransferFunds, account_id="a", amount=50 * USD, direction=TO_SPOT).ok
    digest = harness.core.digest()
    too_much_out = harness.run(
        TransferFunds, account_id="a", amount=951 * USD, direction=TO_SPOT
    )
    too_much_back = harness.run(
        TransferFunds, account_id="a", amount=51 * USD, direction=TO_CFD
    )
    assert too_much_out.reason is Reason.INSUFFICIENT_BALANCE
    assert too_much_back.reason is Reason.INSUFFICIENT_BALANCE
    assert too_much_back.field == "amount"
    zero = harness.run(TransferFunds, account_id="a", amount=0, direction=TO_SPOT)
    assert zero.reason is Reason.VALIDATION_FAILED and zero.field == "amount"
    ghost = harness.run(TransferFunds, account_id="ghost", amount=1, direction=TO_SPOT)
    assert ghost.reason is Reason.ACCOUNT_NOT_FOUND
    assert harness.core.digest() == digest


def test_a_transfer_leaves_the_margin_of_open_positions_alone() -> None:
    harness = _funded()
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_000_000, ask=6_000_010)
    opened = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=1,
        margin=900 * USD,
    )  # fmt: skip
    summary = harness.core.account_summary("a")
    assert opened.ok and summary is not None and summary.used_margin > 0
    # Only the free balance moves, never the position's margin.
    free = summary.balance
    result = harness.run(TransferFunds, account_id="a", amount=free + 1, direction=TO_SPOT)
    assert result.reason is Reason.INSUFFICIENT_BALANCE
    assert harness.run(TransferFunds, account_id="a", amount=free, direction=TO_SPOT).ok
    after = harness.core.account_summary("a")
    assert after is not None and after.balance == 0 and after.used_margin == summary.used_margin
    assert _conserved(harness.core)


def test_a_repeated_transfer_key_returns_the_first_result_and_moves_nothing() -> None:
    harness = _funded()
    first = harness.run(
        TransferFunds, account_id="a", amount=10 * USD, direction=TO_SPOT, client_order_id="k"
    )
    digest = harness.core.digest()
    again = harness.run(
        TransferFunds, account_id="a", amount=10 * USD, direction=TO_SPOT, client_order_id="k"
    )
    assert again.duplicate and again.payload == first.payload and again.events == ()
    assert harness.core.digest() == digest
    # One key space per account across CFD and spot commands.
    reused = harness.run(Deposit, account_id="a", amount=USD, client_order_id="k")
    assert reused.reason is Reason.IDEMPOTENCY_KEY_REUSED
    spot = harness.run(
        PlaceSpotOrder, account_id="a", market="BTC_USD", side=Side.BUY,
        order_type=SpotOrderType.LIMIT, price=6_000_000, quantity=1, client_order_id="k",
    )  # fmt: skip
    assert spot.reason is Reason.IDEMPOTENCY_KEY_REUSED


def _trade(harness: Harness) -> None:
    """Fund a and b, rest b's sell and let a's buy take half of it."""
    assert harness.run(TransferFunds, account_id="a", amount=500 * USD, direction=TO_SPOT).ok
    assert harness.run(DepositAsset, account_id="b", asset="BTC", amount=20).ok
    sell = harness.run(
        PlaceSpotOrder, account_id="b", market="BTC_USD", side=Side.SELL,
        order_type=SpotOrderType.LIMIT, price=6_000_000, quantity=10, client_order_id="sell",
    )  # fmt: skip
    assert sell.ok
    buy = harness.run(
        PlaceSpotOrder, account_id="a", market="BTC_USD", side=Side.BUY,
        order_type=SpotOrderType.MARKET, quantity=5, client_order_id="buy",
    )  # fmt: skip
    assert buy.ok and isinstance(buy.payload, SpotPlacement) and len(buy.payload.fills) == 1


def test_spot_orders_go_through_the_core_with_its_sequence_and_keys() -> None:
    harness = _funded()
    _trade(harness)
    core = harness.core
    assert core.last_seq == harness.seq
    (resting,) = core.spot.open_orders("b")
    assert resting.remaining == 5
    # 5 lots of 0.0001 BTC at 60,000.00: 30 USD plus the 10 bps taker fee.
    assert _usd(core, "a").available == 500 * USD - 30 * USD - 30_000
    assert _usd(core, "b").available == 30 * USD
    assert _conserved(core)
    digest = core.digest()
    repeat = harness.run(
        PlaceSpotOrder, account_id="a", market="BTC_USD", side=Side.BUY,
        order_type=SpotOrderType.MARKET, quantity=5, client_order_id="buy",
    )  # fmt: skip
    assert repeat.duplicate and core.digest() == digest
    # Another account's order is not found, and nothing changes.
    stolen = harness.run(CancelSpotOrder, account_id="a", order_id=resting.id)
    assert stolen.reason is Reason.ORDER_NOT_FOUND and core.digest() == digest
    cancelled = harness.run(CancelSpotOrder, account_id="b", order_id=resting.id)
    assert cancelled.ok and core.spot.open_orders("b") == []


def test_usd_is_not_an_asset_deposit() -> None:
    harness = _funded()
    result = harness.run(DepositAsset, account_id="a", asset="USD", amount=5)
    assert result.reason is Reason.VALIDATION_FAILED and result.field == "asset"
    unknown = harness.run(DepositAsset, account_id="a", asset="DOGE", amount=5)
    assert unknown.reason is Reason.VALIDATION_FAILED


def test_the_spot_state_is_in_the_snapshot_the_digest_and_the_replay() -> None:
    harness = _funded()
    before = harness.core.digest()
    _trade(harness)
    core = harness.core
    assert core.digest() != before
    restored = Core.restore(core.snapshot())
    assert restored.digest() == core.digest()
    assert restored.spot.open_orders("b") == core.spot.open_orders("b")
    assert restored.spot.wallet("a") == core.spot.wallet("a")
    # Replay the journal records the commands are written as.
    replay = Core()
    for command in harness.commands:
        replay.apply(decode_command(encode_command(command)))
    assert replay.digest() == core.digest()
    # A restored core keeps the keys of spot commands.
    again = Harness(restored)
    again.seq = harness.seq
    repeat = again.run(
        PlaceSpotOrder, account_id="a", market="BTC_USD", side=Side.BUY,
        order_type=SpotOrderType.MARKET, quantity=5, client_order_id="buy",
    )  # fmt: skip
    assert repeat.duplicate


def test_a_version_2_snapshot_loads_with_an_empty_spot_exchange() -> None:
    # Written by the version 2 code: an account with a deposit and an open position.
    data = (Path(__file__).parent / "snapshot_v2.bin").read_bytes()
    assert data.startswith(b'{"format":"cfd-core-snapshot","version":2,')
    core = Core.restore(data)
    assert core.last_seq == 4
    assert len(core.list_positions("u1")) == 1
    assert all(b.available == b.locked == 0 for b in core.spot.wallet("u1"))
    assert all(core.spot.book_view(m) is not None for m in ("BTC_USD", "ETH_USD", "SOL_USD"))
    harness = Harness(core)
    harness.seq = 4
    assert harness.run(TransferFunds, account_id="u1", amount=USD, direction=TO_SPOT).ok
    assert _usd(core, "u1").available == USD
    assert Core.restore(core.snapshot()).digest() == core.digest()
