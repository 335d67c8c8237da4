"""gRPC servicers: the public MarketDataService and the internal MarketDataAdminService.

Conversion between Decimal and the contract's decimal strings and timestamps happens here
and nowhere else in the market service.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cfd.v1 import common_pb2, market_admin_pb2, market_admin_pb2_grpc, market_pb2, market_pb2_grpc
from market_svc.candles import Candle, CandleInterval
from market_svc.feeds.base import Feed
from market_svc.feeds.manual import ManualFeed, ManualFeedNotRunningError
from market_svc.instruments import Instrument
from market_svc.market import DEFAULT_CANDLE_LIMIT, MAX_CANDLE_LIMIT, MarketData
from market_svc.ticks import Quote
from mesh.errors import ApiError, validation_error

Context = grpc.aio.ServicerContext[Any, Any]

INTERVALS_BY_ENUM: dict[market_pb2.CandleInterval.ValueType, CandleInterval] = {
    market_pb2.CANDLE_INTERVAL_1M: CandleInterval.M1,
    market_pb2.CANDLE_INTERVAL_5M: CandleInterval.M5,
    market_pb2.CANDLE_INTERVAL_15M: CandleInterval.M15,
    market_pb2.CANDLE_INTERVAL_1H: CandleInterval.H1,
    market_pb2.CANDLE_INTERVAL_4H: CandleInterval.H4,
    market_pb2.CANDLE_INTERVAL_1D: CandleInterval.D1,
    market_pb2.CANDLE_INTERVAL_1W: CandleInterval.W1,
}
ENUM_BY_INTERVAL = {interval: value for value, interval in INTERVALS_BY_ENUM.items()}
# Plain decimal notation only: no exponent, sign, NaN or whitespace.
_DECIMAL_TEXT = re.compile(r"^\d{1,20}(\.\d{1,18})?$")
MAX_PUBLISH_TICKS = 1000


def decimal_text(value: Decimal) -> str:
    """Return ``value`` in plain notation without superfluous trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def price_text(value: Decimal, instrument: Instrument) -> str:
    """Return a price with the instrument's tick precision, or finer if it needs more."""
    if instrument.is_on_tick(value):
        return format(value.quantize(instrument.tick_size), "f")
    return decimal_text(value)


def timestamp(time_ns: int) -> Timestamp:
    """Return a protobuf timestamp of epoch nanoseconds."""
    stamp = Timestamp()
    stamp.FromNanoseconds(time_ns)
    return stamp


def quote_message(quote: Quote, instrument: Instrument) -> common_pb2.Quote:
    """Return the contract's Quote of ``quote``."""
    return common_pb2.Quote(
        symbol=quote.symbol,
        bid=price_text(quote.bid, instrument),
        ask=price_text(quote.ask, instrument),
        time=timestamp(quote.time_ns),
        sequence=quote.sequence,
    )


def candle_message(candle: Candle, instrument: Instrument, *, closed: bool) -> market_pb2.Candle:
    """Return the contract's Candle of ``candle``."""
    return market_pb2.Candle(
        open_time=timestamp(candle.open_time_ms * 1_000_000),
        close_time=timestamp(candle.close_time_ms * 1_000_000),
        open=price_text(candle.open, instrument),
        high=price_text(candle.high, instrument),
        low=price_text(candle.low, instrument),
        close=price_text(candle.close, instrument),
        volume=decimal_text(candle.volume),
        tick_count=candle.tick_count,
        closed=closed,
    )


def instrument_message(instrument: Instrument) -> market_pb2.Instrument:
    """Return the contract's Instrument of ``instrument``."""
    return market_pb2.Instrument(
        symbol=instrument.symbol,
        display_name=instrument.display_name,
        base_currency=instrument.base_asset,
        quote_currency=instrument.quote_asset,
        tick_size=decimal_text(instrument.tick_size),
        lot_step=decimal_text(instrument.lot_step),
        min_quantity=decimal_text(instrument.min_quantity),
        max_leverage=instrument.max_leverage,
        maintenance_margin_rate=decimal_text(instrument.maintenance_margin_rate),
        contract_size=decimal_text(instrument.contract_size),
        swap_long_bps=decimal_text(instrument.swap_long_bps),
        swap_short_bps=decimal_text(instrument.swap_short_bps),
        commission_per_million=decimal_text(instrument.commission_per_million),
        commission_per_lot=decimal_text(instrument.commission_per_lot),
    )


class MarketDataServicer(market_pb2_grpc.MarketDataServiceServicer):
    """Public market data: instruments, tickers and candles."""

    def __init__(self, market: MarketData) -> None:
        self._market = market

    def _instrument(self, symbol: str, field: str = "symbol") -> Instrument:
        instrument = self._market.instruments.get(symbol)
        if instrument is None:
            raise ApiError(
                "UNKNOWN_SYMBOL", f"unknown symbol {symbol[:32]!r}", [(field, "unknown symbol")]
            )
        return instrument

    def _series(self, symbol: str) -> tuple[str, Instrument]:
        """Return the name of an instrument's or a spot market's series and its price grid."""
        spot = self._market.spot_markets.get(symbol)
        if spot is not None:
            return symbol, spot
        return symbol, self._instrument(symbol)

    @staticmethod
    def _interval(value: market_pb2.CandleInterval.ValueType) -> CandleInterval:
        interval = INTERVALS_BY_ENUM.get(value)
        if interval is None:
            raise validation_error("interval", "must be one of CANDLE_INTERVAL_1M .. _1W")
        return interval

    async def ListInstruments(
        self, request: market_pb2.ListInstrumentsRequest, context: Context
    ) -> market_pb2.ListInstrumentsResponse:
        """List the configured instruments."""
        return market_pb2.ListInstrumentsResponse(
            instruments=[instrument_message(i) for i in self._market.instruments.values()]
        )

    async def GetTicker(
        self, request: market_pb2.GetTickerRequest, context: Context
    ) -> market_pb2.GetTickerResponse:
        """Return the rolling 24 h statistics of one instrument or spot market.

        A spot market's come from its public trades; it has no quote of the feed, so its bid
        and ask are empty (its book has them) and its time is now.
        """
        symbol, instrument = self._series(request.symbol)
        quote = self._market.quotes.latest(symbol)
        ticker = self._market.ticker(symbol)
        spot = symbol in self._market.spot_markets
        if ticker is None or (quote is None and not spot):
            what = "no trade in 24 hours" if spot else "no price yet"
            raise ApiError("PRICE_UNAVAILABLE", f"{symbol} has {what}")
        message = market_pb2.Ticker(
            symbol=symbol,
            open=price_text(ticker.open, instrument),
            high=price_text(ticker.high, instrument),
            low=price_text(ticker.low, instrument),
            last=price_text(ticker.last, instrument),
            change=price_text(ticker.change, instrument),
            change_percent=decimal_text(ticker.change_percent),
            volume=decimal_text(ticker.volume),
            time=timestamp(ticker.time_ms * 1_000_000),
        )
        if quote is not None:
            message.bid = price_text(quote.bid, instrument)
            message.ask = price_text(quote.ask, instrument)
            message.time.CopyFrom(timestamp(quote.time_ns))
        return market_pb2.GetTickerResponse(ticker=message)

    async def GetCandles(
        self, request: market_pb2.GetCandlesRequest, context: Context
    ) -> market_pb2.GetCandlesResponse:
        """Return candles ascending by open time, the in-progress one last."""
        symbol, instrument = self._series(request.symbol)
        interval = self._interval(request.interval)
        if not 0 <= request.limit <= MAX_CANDLE_LIMIT:
            raise validation_error("limit", f"must be within 0..{MAX_CANDLE_LIMIT}")
        limit = request.limit or DEFAULT_CANDLE_LIMIT
        start_ms = (
            _time_ms(request.start_time, "start_time") if request.HasField("start_time") else None
        )
        end_ms = (
            _time_ms(request.end_time, "end_time")
            if request.HasField("end_time")
            else time.time_ns() // 1_000_000
        )
        if start_ms is not None and start_ms > end_ms:
            raise validation_error("start_time", "must not be after end_time")
        candles = await self._market.candles(
            symbol, interval, start_ms=start_ms, end_ms=end_ms, limit=limit
        )
        now_ms = time.time_ns() // 1_000_000
        return market_pb2.GetCandlesResponse(
            candles=[
                candle_message(c, instrument, closed=c.close_time_ms <= now_ms) for c in candles
            ]
        )

    async def StreamCandles(
        self, request: market_pb2.StreamCandlesRequest, context: Context
    ) -> AsyncIterator[market_pb2.StreamCandlesResponse]:
        """Stream the in-progress candle on every change (conflated) and each closed one."""
        symbol, instrument = self._series(request.symbol)
        interval = self._interval(request.interval)
        with self._market.subscribe_candles(symbol, interval) as subscription:
            async for event in subscription:
                yield market_pb2.StreamCandlesResponse(
                    symbol=symbol,
                    interval=ENUM_BY_INTERVAL[interval],
                    candle=candle_message(event.candle, instrument, closed=event.closed),
                )


class MarketDataAdminServicer(market_admin_pb2_grpc.MarketDataAdminServiceServicer):
    """Internal: the engine's tick stream and exact price publishing under the manual feed."""

    def __init__(self, market: MarketData, feed: Feed) -> None:
        self._market = market
        self._feed = feed

    async def StreamTicks(
        self, request: market_admin_pb2.StreamTicksRequest, context: Context
    ) -> AsyncIterator[market_admin_pb2.StreamTicksResponse]:
        """Stream quotes, the current one of each symbol first, conflated for slow readers."""
        instruments = self._market.instruments
        for index, symbol in enumerate(request.symbols):
            if symbol not in instruments:
                raise ApiError(
                    "UNKNOWN_SYMBOL",
                    f"unknown symbol {symbol[:32]!r}",
                    [(f"symbols[{index}]", "unknown symbol")],
                )
        symbols = list(request.symbols) or None
        with self._market.quotes.subscribe(symbols) as subscription:
            async for quote in subscription:
                yield market_admin_pb2.StreamTicksResponse(
                    quote=quote_message(quote, instruments[quote.symbol])
                )

    async def PublishTicks(
        self, request: market_admin_pb2.PublishTicksRequest, context: Context
    ) -> market_admin_pb2.PublishTicksResponse:
        """Validate every quote, then publish them all in order through the manual feed."""
        if not isinstance(self._feed, ManualFeed):
            raise ApiError(
                "FEED_NOT_MANUAL",
                f"prices can be published only under CFD_FEED=manual (running: {self._feed.name})",
            )
        if not request.ticks:
            raise validation_error("ticks", "must hold at least one quote")
        if len(request.ticks) > MAX_PUBLISH_TICKS:
            raise validation_error("ticks", f"at most {MAX_PUBLISH_TICKS} quotes per call")
        quotes: list[tuple[str, Decimal, Decimal]] = []
        for index, tick in enumerate(request.ticks):
            field = f"ticks[{index}]"
            instrument = self._market.instruments.get(tick.symbol)
            if instrument is None:
                raise ApiError(
                    "UNKNOWN_SYMBOL",
                    f"unknown symbol {tick.symbol[:32]!r}",
                    [(f"{field}.symbol", "unknown symbol")],
                )
            bid = _price(tick.bid, f"{field}.bid", instrument)
            ask = _price(tick.ask, f"{field}.ask", instrument)
            if bid >= ask:
                raise validation_error(f"{field}.bid", "must be below the ask")
            quotes.append((instrument.symbol, bid, ask))
        try:
            published = self._feed.publish(quotes)
        except ManualFeedNotRunningError as exc:
            raise ApiError("SERVICE_UNAVAILABLE", "the manual feed is not running yet") from exc
        instruments = self._market.instruments
        return market_admin_pb2.PublishTicksResponse(
            quotes=[
                quote_message(q, instruments[q.symbol]) for q in published if isinstance(q, Quote)
            ]
        )


def _price(text: str, field: str, instrument: Instrument) -> Decimal:
    if not _DECIMAL_TEXT.match(text):
        raise validation_error(field, "must be a plain positive decimal number")
    value = Decimal(text)
    if value <= 0:
        raise validation_error(field, "must be positive")
    if not instrument.is_on_tick(value):
        raise validation_error(
            field, f"must be a multiple of the tick size {decimal_text(instrument.tick_size)}"
        )
    return value


def _time_ms(stamp: Timestamp, field: str) -> int:
    if not 0 <= stamp.nanos < 1_000_000_000 or not 0 <= stamp.seconds < 253_402_300_800:
        raise validation_error(field, "must be a valid time after 1970")
    return stamp.seconds * 1000 + stamp.nanos // 1_000_000
