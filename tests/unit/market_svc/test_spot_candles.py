"""Spot candles and tickers from public trades: counted once, stored, resumed, followed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from pathlib import Path

from exchange_fake import BUY, SELL, running_exchange
from market_svc.candles import CandleInterval
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.spot_trades import SpotTradeFollower, trade_number
from market_svc.store import CandleStore
from support import until

M1 = CandleInterval.M1
D1 = CandleInterval.D1


def test_the_spot_markets_are_named_after_the_coins_of_the_instruments() -> None:
    market = MarketData(Instruments())
    assert sorted(market.spot_markets) == ["BTC_USD", "ETH_USD", "SOL_USD"]
    assert market.spot_markets["SOL_USD"].tick_size == Decimal("0.001")


def test_trades_make_candles_and_a_ticker_each_counted_once() -> None:
    market = MarketData(Instruments())
    now_ms = time.time_ns() // 1_000_000
    assert market.on_trade("BTC_USD", 7, now_ms, Decimal("60000.00"), Decimal("0.0100"))
    assert market.on_trade("BTC_USD", 9, now_ms + 1, Decimal("60100.00"), Decimal("0.0050"))
    assert not market.on_trade("BTC_USD", 9, now_ms + 2, Decimal("1.00"), Decimal(1))
    assert not market.on_trade("BTC_USD", 8, now_ms + 2, Decimal("1.00"), Decimal(1))
    assert market.on_trade("BTC_USD", 12, now_ms + 3, Decimal("59900.00"), Decimal("0.0010"))

    candle = market.aggregator.current("BTC_USD", D1)
    assert candle is not None
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal("60000.00"),
        Decimal("60100.00"),
        Decimal("59900.00"),
        Decimal("59900.00"),
    )
    assert (candle.volume, candle.tick_count) == (Decimal("0.0160"), 3)
    ticker = market.ticker("BTC_USD", now_ms + 3)
    assert ticker is not None
    assert (ticker.open, ticker.last, ticker.volume) == (
        Decimal("60000.00"),
        Decimal("59900.00"),
        Decimal("0.0160"),
    )
    assert market.aggregator.current("BTCUSD", D1) is None


async def test_a_restart_resumes_spot_candles_after_the_last_stored_trade(
    store: CandleStore,
) -> None:
    now_ms = time.time_ns() // 1_000_000
    first = MarketData(Instruments(), store=store)
    first.on_trade("ETH_USD", 3, now_ms, Decimal("3000.00"), Decimal("0.100"))
    first.on_trade("ETH_USD", 5, now_ms + 1, Decimal("3001.00"), Decimal("0.200"))
    assert first.writer is not None
    assert await first.writer.flush() > 0
    assert await first.writer.flush() == 0

    second = MarketData(Instruments(), store=store)
    await second.load()
    assert second.spot_cursors == {"ETH_USD": 5}
    # The engine lists the trades again after a restart: only the new one counts.
    assert not second.on_trade("ETH_USD", 5, now_ms + 1, Decimal("3001.00"), Decimal("0.200"))
    assert second.on_trade("ETH_USD", 6, now_ms + 2, Decimal("2999.00"), Decimal("0.050"))
    candles = await second.candles("ETH_USD", M1, limit=5)
    assert [(c.close, c.volume, c.tick_count) for c in candles][-1] == (
        Decimal("2999.00"),
        Decimal("0.350"),
        3,
    )
    ticker = second.ticker("ETH_USD", now_ms + 2)
    assert ticker is not None and ticker.open == Decimal("3000.00")


def test_trade_numbers_are_read_from_the_end_of_the_id() -> None:
    assert (trade_number("T42"), trade_number("t7"), trade_number("x")) == (42, 7, None)


async def test_the_follower_catches_up_then_streams_every_trade_once(tmp_path: Path) -> None:
    seconds = time.time_ns() // 10**9
    market = MarketData(Instruments())
    async with running_exchange(tmp_path) as exchange:
        # Made before the market service follows: read back with ListMarketTrades.
        exchange.exchange.trade("BTC_USD", "60000.00", "0.0100", BUY, seconds)
        follower = SpotTradeFollower(market, exchange.address, exchange.settings.internal_token)
        task = asyncio.create_task(follower.run())
        try:
            await until(lambda: {"BTC_USD", "ETH_USD"} <= follower.connected)
            await until(lambda: exchange.exchange.trade_streams_opened == 2)
            exchange.exchange.trade("BTC_USD", "60050.00", "0.0200", SELL, seconds)
            exchange.exchange.trade("ETH_USD", "3000.00", "1.000", SELL, seconds)
            exchange.exchange.trade("BTC_USD", "59990.00", "0.0050", BUY, seconds)

            def btc_ticks() -> int:
                candle = market.aggregator.current("BTC_USD", M1)
                return 0 if candle is None else candle.tick_count

            await until(lambda: btc_ticks() == 3 and market.spot_cursors.get("ETH_USD"))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    btc = market.aggregator.current("BTC_USD", M1)
    assert btc is not None
    assert (btc.open, btc.high, btc.low, btc.close, btc.volume) == (
        Decimal("60000.00"),
        Decimal("60050.00"),
        Decimal("59990.00"),
        Decimal("59990.00"),
        Decimal("0.0350"),
    )
    eth = market.aggregator.current("ETH_USD", M1)
    assert eth is not None and (eth.volume, eth.tick_count) == (Decimal("1.000"), 1)
