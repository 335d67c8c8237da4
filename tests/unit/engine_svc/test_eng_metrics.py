"""The engine's figures counted from committed batches: commands by result, closes by reason."""

from __future__ import annotations

from engine_svc.core import ApplyQuote, Command, Core, CreateAccount, OpenPosition, Side
from engine_svc.core.enums import MarginMode
from engine_svc.metrics import EngineFigures
from engine_svc.pipeline import CommittedBatch

USD = 1_000_000


def test_commands_rejections_and_liquidations_are_counted_by_label() -> None:
    core = Core()
    commands: list[Command] = [
        CreateAccount(1, 10, "a", 10_000 * USD),
        ApplyQuote(2, 10, "BTCUSD", 5_999_000, 6_000_000),
        OpenPosition(3, 10, "a", "BTCUSD", Side.BUY, 10, 1000),
        OpenPosition(4, 10, "a", "NOPE", Side.BUY, 10, 1000),
        ApplyQuote(5, 10, "BTCUSD", 5_400_000, 5_401_000),
    ]
    figures = EngineFigures()
    figures.consume(CommittedBatch.of([(command, core.apply(command)) for command in commands]))
    assert figures.commands == {
        ("CreateAccount", "OK"): 1,
        ("ApplyQuote", "OK"): 2,
        ("OpenPosition", "OK"): 1,
        ("OpenPosition", "UNKNOWN_SYMBOL"): 1,
    }
    assert figures.closes == {"LIQUIDATION": 1}
    assert figures.triggered == {}
    assert figures.margin_calls == 0


def test_margin_calls_are_counted_once_per_crossing() -> None:
    core = Core()
    commands: list[Command] = [
        CreateAccount(1, 10, "c", 1000 * USD, MarginMode.CROSS, 60, 0),
        ApplyQuote(2, 10, "BTCUSD", 5_999_000, 6_000_000),
        OpenPosition(3, 10, "c", "BTCUSD", Side.BUY, 100, 1000),
        # 60% of the 60 USD margin: equity 36 USD at a bid of 50,360.00.
        ApplyQuote(4, 10, "BTCUSD", 5_036_000, 5_037_000),
        ApplyQuote(5, 10, "BTCUSD", 5_030_000, 5_031_000),
    ]
    figures = EngineFigures()
    figures.consume(CommittedBatch.of([(command, core.apply(command)) for command in commands]))
    assert figures.margin_calls == 1
