"""The market service's state: quotes, candles and tickers, fed by one price source.

``MarketData.on_tick`` is the feed's sink: it validates the raw tick, derives the quote,
fans it out, and aggregates it into candles and tickers, all synchronously, so a quote is
visible everywhere as soon as the call returns. SQL writes happen later, in batches.

``MarketData.on_trade`` is the sink of the spot exchange's public trades: they make the
candles and tickers of the spot markets (``BTC_USD``: one per ``<COIN>USD`` instrument, named
as the engine names them), each trade counted once by its number.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from market_svc.candle_hub import CandleHub, CandleSubscription
from market_svc.candles import INTERVALS, Candle, CandleAggregator, CandleInterval
from market_svc.hub import QuoteHub
from market_svc.instruments import Instruments
from market_svc.quotes import QuoteBuilder, QuoteSettings
from market_svc.store import CandleStore, CandleWriter
from market_svc.tickers import WINDOW_MINUTES, Ticker, TickerBook
from market_svc.ticks import Quote, RawTick

log = logging.getLogger(__name__)

SPOT_QUOTE = "USD"
MAX_CANDLE_LIMIT = 1000
DEFAULT_CANDLE_LIMIT = 500


class MarketData:
    """Quotes, candles and tickers of the configured instruments."""

    def __init__(
        self,
        instruments: Instruments,
        quote_settings: QuoteSettings | None = None,
        *,
        store: CandleStore | None = None,
        flush_interval: float = 1.0,
    ) -> None:
        self.instruments = instruments
        self.builder = QuoteBuilder(instruments, quote_settings or QuoteSettings())
        self.quotes = QuoteHub()
        self.candle_hub = CandleHub()
        self.aggregator = CandleAggregator(INTERVALS)
        self.tickers = TickerBook()
        # Spot market name -> the instrument of the same coin, whose grid its prices are on.
        self.spot_markets = {
            f"{symbol.removesuffix(SPOT_QUOTE)}_{SPOT_QUOTE}": instrument
            for symbol, instrument in instruments.items()
            if symbol.endswith(SPOT_QUOTE) and len(symbol) > len(SPOT_QUOTE)
        }
        # Number of the last public trade each spot market's candles hold.
        self.spot_cursors: dict[str, int] = {}
        self.store = store
        # Monotonic time each symbol's quote was last sent to subscribers, for keepalives.
        self._sent_at: dict[str, int] = {}
        self.keepalives = 0
        self.writer = (
            None
            if store is None
            else CandleWriter(
                store,
                flush_interval,
                in_progress=self.aggregator.take_touched,
                spot_cursors=lambda: self.spot_cursors,
            )
        )

    async def load(self) -> None:
        """Resume the in-progress candles and the 24 h ticker window from the store."""
        if self.store is None:
            return
        now_ms = time.time_ns() // 1_000_000
        self.spot_cursors = await self.store.spot_cursors()
        for symbol in (*self.instruments, *self.spot_markets):
            for interval in INTERVALS:
                latest = await self.store.latest(symbol, interval)
                if latest is not None:
                    self.aggregator.restore(latest)
            window_start = CandleInterval.M1.open_time(now_ms) - WINDOW_MINUTES * 60_000
            window = await self.store.query(
                symbol, CandleInterval.M1, start_ms=window_start, limit=WINDOW_MINUTES + 1
            )
            for candle in window:
                self.tickers.add(candle, closed=candle.close_time_ms <= now_ms)

    async def start_prices(self) -> dict[str, Decimal]:
        """Return each symbol's last stored close, where a simulator should carry on from."""
        prices: dict[str, Decimal] = {}
        if self.store is None:
            return prices
        for symbol in self.instruments:
            latest = await self.store.latest(symbol, CandleInterval.M1)
            if latest is not None:
                prices[symbol] = latest.close
        return prices

    def on_tick(self, raw: RawTick) -> Quote | None:
        """Ingest one raw tick; return the published quote, or None if it was dropped."""
        quote = self.builder.build(raw)
        if quote is None:
            return None
        self.quotes.publish(quote)
        self._sent_at[quote.symbol] = time.monotonic_ns()
        self._aggregated(quote.symbol, self.aggregator.add(quote))
        return quote

    def on_trade(
        self, market: str, number: int, time_ms: int, price: Decimal, quantity: Decimal
    ) -> bool:
        """Count public trade `number` of a spot market into its candles and ticker; return
        False (changing nothing) when its candles already hold it."""
        if number <= self.spot_cursors.get(market, 0):
            return False
        self.spot_cursors[market] = number
        self._aggregated(market, self.aggregator.add_trade(market, time_ms, price, quantity))
        return True

    def _aggregated(self, symbol: str, closed: list[Candle]) -> None:
        """Pass on what a tick or trade of `symbol` changed: closed and current candles."""
        for candle in closed:
            if self.writer is not None:
                self.writer.add(candle)
            self.tickers.add(candle, closed=True)
            self.candle_hub.publish(candle, closed=True)
        current_minute = self.aggregator.current(symbol, CandleInterval.M1)
        if current_minute is not None:
            self.tickers.add(current_minute, closed=False)
        for interval in self.candle_hub.intervals_of(symbol):
            current = self.aggregator.current(symbol, interval)
            if current is not None:
                self.candle_hub.publish(current, closed=False)

    def keepalive(self, max_age_ns: int) -> int:
        """Re-send each latest quote not sent for ``max_age_ns``; return how many were re-sent.

        Subscribers (the engine) treat a symbol whose quotes stop as stale, so while the feed
        is healthy a quiet symbol's standing quote is repeated. It is the same quote (same
        sequence and time), and it does not touch candles or tickers.
        """
        now = time.monotonic_ns()
        resent = 0
        for symbol, quote in self.quotes.latest_all().items():
            if now - self._sent_at.get(symbol, 0) >= max_age_ns:
                self.quotes.publish(quote)
                self._sent_at[symbol] = now
                resent += 1
        self.keepalives += resent
        return resent

    def ticker(self, symbol: str, now_ms: int | None = None) -> Ticker | None:
        """Return the 24 h ticker of ``symbol``."""
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return self.tickers.ticker(symbol, now_ms)

    def subscribe_candles(self, symbol: str, interval: CandleInterval) -> CandleSubscription:
        """Subscribe to a candle series; the in-progress candle comes first."""
        current = self.aggregator.current(symbol, interval)
        return self.candle_hub.subscribe(symbol, interval, current)

    async def candles(
        self,
        symbol: str,
        interval: CandleInterval,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = DEFAULT_CANDLE_LIMIT,
    ) -> list[Candle]:
        """Return the latest ``limit`` candles with open time in [start, end], ascending.

        The candle in progress comes from memory, replacing any older copy of it in the store.
        """
        if not 1 <= limit <= MAX_CANDLE_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_CANDLE_LIMIT}")
        stored: list[Candle] = []
        if self.store is not None:
            stored = await self.store.query(
                symbol, interval, start_ms=start_ms, end_ms=end_ms, limit=limit
            )
        current = self.aggregator.current(symbol, interval)
        if current is None:
            return stored
        in_range = (start_ms is None or current.open_time_ms >= start_ms) and (
            end_ms is None or current.open_time_ms <= end_ms
        )
        if not in_range or (stored and stored[-1].open_time_ms > current.open_time_ms):
            return stored
        merged = [c for c in stored if c.open_time_ms != current.open_time_ms]
        merged.append(current)
        return merged[-limit:]
