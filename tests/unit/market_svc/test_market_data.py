import time
from decimal import Decimal

import pytest

from market_svc.candles import CandleInterval
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.store import CandleStore
from market_svc.ticks import RawTick

M1 = CandleInterval.M1
MINUTE_NS = 60 * 10**9


def exact(symbol: str, bid: str, ask: str, time_ns: int) -> RawTick:
    return RawTick(symbol, time_ns=time_ns, bid=bid, ask=ask, exact=True)


def test_a_tick_reaches_quotes_candles_and_tickers_at_once() -> None:
    market = MarketData(Instruments())
    subscription = market.quotes.subscribe(["BTCUSD"])
    candles = market.subscribe_candles("BTCUSD", CandleInterval.M5)
    now = time.time_ns()
    quote = market.on_tick(exact("BTCUSD", "100.00", "100.10", now))
    assert quote is not None and quote.bid == Decimal("100.00")
    assert market.quotes.latest("BTCUSD") == quote
    ticker = market.ticker("BTCUSD", now // 1_000_000)
    assert ticker is not None and ticker.last == Decimal("100.05")
    assert subscription.conflated == 0
    assert market.on_tick(RawTick("BTCUSD", price="garbage")) is None
    assert market.builder.drops["not_a_number"] == 1
    assert candles.key == ("BTCUSD", CandleInterval.M5)


async def test_candle_subscribers_get_updates_and_closed_candles() -> None:
    market = MarketData(Instruments())
    base = 1_000 * MINUTE_NS
    market.on_tick(exact("ETHUSD", "10.00", "10.02", base))
    subscription = market.subscribe_candles("ETHUSD", M1)
    (first,) = await subscription.next_batch()
    assert not first.closed and first.candle.close == Decimal("10.01")
    market.on_tick(exact("ETHUSD", "11.00", "11.02", base + 1))
    market.on_tick(exact("ETHUSD", "12.00", "12.02", base + 2))
    market.on_tick(exact("ETHUSD", "13.00", "13.02", base + MINUTE_NS))
    batch = await subscription.next_batch()
    # Conflated: the closed minute with every tick, then only the latest state of the new one.
    assert [(e.closed, e.candle.close, e.candle.tick_count) for e in batch] == [
        (True, Decimal("12.01"), 3),
        (False, Decimal("13.01"), 1),
    ]
    subscription.close()


async def test_get_candles_merges_the_in_memory_candle(store: CandleStore) -> None:
    market = MarketData(Instruments(), store=store)
    start = 5_000 * MINUTE_NS
    for minute in range(5):
        market.on_tick(
            exact(
                "SOLUSD", f"{100 + minute}.000", f"{100 + minute}.002", start + minute * MINUTE_NS
            )
        )
    assert market.writer is not None
    await market.writer.flush()
    # The store holds four closed minutes and a copy of the fifth; memory moves on.
    market.on_tick(exact("SOLUSD", "200.000", "200.002", start + 4 * MINUTE_NS + 1))
    candles = await market.candles("SOLUSD", M1, limit=10)
    assert [c.close for c in candles] == [
        Decimal(x) for x in ("100.001", "101.001", "102.001", "103.001", "200.001")
    ]
    assert candles[-1].tick_count == 2
    latest_two = await market.candles("SOLUSD", M1, limit=2)
    assert [c.close for c in latest_two] == [Decimal("103.001"), Decimal("200.001")]
    older = await market.candles("SOLUSD", M1, end_ms=(start + MINUTE_NS) // 1_000_000, limit=10)
    assert [c.close for c in older] == [Decimal("100.001"), Decimal("101.001")]
    with pytest.raises(ValueError, match="limit"):
        await market.candles("SOLUSD", M1, limit=1001)


async def test_a_restart_resumes_candles_and_tickers_from_the_store(store: CandleStore) -> None:
    now = time.time_ns()
    first = MarketData(Instruments(), store=store)
    first.on_tick(exact("BTCUSD", "100.00", "100.02", now))
    first.on_tick(exact("BTCUSD", "90.00", "90.02", now + 1_000))
    assert first.writer is not None
    await first.writer.flush()

    second = MarketData(Instruments(), store=store)
    await second.load()
    assert await second.start_prices() == {"BTCUSD": Decimal("90.01")}
    second.on_tick(exact("BTCUSD", "95.00", "95.02", now + 2_000))
    current = second.aggregator.current("BTCUSD", CandleInterval.D1)
    assert current is not None and current.tick_count == 3
    ticker = second.ticker("BTCUSD", now // 1_000_000)
    assert ticker is not None
    assert (ticker.open, ticker.low, ticker.last) == (
        Decimal("100.01"),
        Decimal("90.01"),
        Decimal("95.01"),
    )


async def test_keepalive_repeats_only_quiet_symbols_without_touching_candles() -> None:
    market = MarketData(Instruments())
    now = time.time_ns()
    market.on_tick(exact("BTCUSD", "100.00", "100.02", now))
    subscription = market.quotes.subscribe()
    (current,) = await subscription.next_batch()
    assert market.keepalive(max_age_ns=60 * 10**9) == 0
    assert market.keepalive(max_age_ns=0) == 1
    (repeated,) = await subscription.next_batch()
    assert repeated == current
    candle = market.aggregator.current("BTCUSD", M1)
    assert candle is not None and candle.tick_count == 1
    assert market.keepalives == 1
