"""The money line of `cfd status`: every shard's holdings and the transfers in flight against
the deposits."""

from __future__ import annotations

from decimal import Decimal

from launcher.status import Money


def test_money_in_flight_between_shards_still_adds_up() -> None:
    held = Money(Decimal(10000), Decimal(9800), Decimal(50), Decimal(100), Decimal(50))
    assert held.conserved
    assert held.line().endswith("in flight 50: conserved")


def test_a_missing_dollar_is_reported() -> None:
    short = Money(Decimal(10000), Decimal(9800), Decimal(50), Decimal(100), Decimal(49))
    assert not short.conserved
    assert short.line().endswith("NOT CONSERVED")
