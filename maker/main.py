"""`cfd maker`: keep every spot book quoted around the CFD feed's mid, as an ordinary user.

The maker signs in (or up) through AccountService, stocks its wallet through the internal admin
API, follows TradingService.StreamPrices and quotes each market again whenever its mid moved
CFD_MAKER_REQUOTE_BPS; every CFD_MAKER_REFRESH_MS it puts back levels that filled. When the
engine or the accounts service goes away it reconnects with backoff and rebuilds its books from
ListSpotOrders, so it never duplicates an order. On SIGTERM it cancels its orders and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import grpc

from cfd.v1 import (
    account_pb2_grpc,
    engine_admin_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from maker import metrics
from maker.account import Login, MakerError
from maker.config import MakerConfig
from maker.funding import USD, USD_STEP, Funder, needs
from maker.plan import Plan
from maker.quotes import MarketSteps, Quote, moved
from maker.session import MakerSession, MarketState
from maker.tape import Taker, taker_email, trade_quantity
from mesh.config import ConfigError, Settings
from mesh.server import ServeError

log = logging.getLogger("maker")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
WITHDRAW_TIMEOUT_S = 5.0
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class StreamEndedError(Exception):
    """The price stream ended without an error: the engine is going away."""


@dataclass(frozen=True, slots=True)
class SpotMarket:
    """A market as ListMarkets describes it, with the CFD symbol whose mid it follows."""

    steps: MarketSteps
    base_asset: str
    symbol: str
    taker_fee_bps: int


def run_key(now_ms: int | None = None) -> str:
    """Return a short name of this process (the time it started, base 36) for its order ids."""
    value = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _DIGITS[digit] + digits
        if not value:
            return digits


class Maker:
    """The maker's connections, account and books, across reconnections."""

    def __init__(self, settings: Settings, config: MakerConfig, run: str | None = None) -> None:
        self._settings = settings
        self._config = config
        self._run = run_key() if run is None else run
        self._login = Login(config.email, config.password)
        self._funder = Funder(self._login, settings.internal_token, self._run)
        self._taker: Taker | None = None
        if config.trade_ms:
            taker = Login(taker_email(config.email), config.password)
            funder = Funder(taker, settings.internal_token, self._run)
            self._taker = Taker(taker, funder, self._run)
        # Each market's round, kept across reconnections.
        self._states: dict[str, MarketState] = {}
        self._serving = False

    async def run(self, stop: asyncio.Event) -> None:
        """Quote until `stop` is set, reconnecting with backoff whenever the mesh is away."""
        backoff = BACKOFF_START_S
        while not stop.is_set():
            try:
                async with (
                    grpc.aio.insecure_channel(self._settings.engine_addr) as engine,
                    grpc.aio.insecure_channel(self._settings.account_addr) as accounts,
                ):
                    await self._connected(engine, accounts, stop)
            except (grpc.aio.AioRpcError, StreamEndedError) as exc:
                if self._serving:
                    # It had been quoting: a fresh break, not one more failed attempt.
                    self._serving = False
                    backoff = BACKOFF_START_S
                metrics.CONNECTED.set(0)
                if isinstance(exc, grpc.aio.AioRpcError):
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        self._login.forget()
                    cause = f"{exc.code().name}: {exc.details()}"
                else:
                    cause = "the price stream ended"
                log.warning("the maker lost the exchange (%s); retrying in %.1fs", cause, backoff)
                metrics.RECONNECTS.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        metrics.CONNECTED.set(0)

    async def _connected(
        self, engine: grpc.aio.Channel, accounts: grpc.aio.Channel, stop: asyncio.Event
    ) -> None:
        exchange = exchange_pb2_grpc.ExchangeServiceStub(engine)
        trading = trading_pb2_grpc.TradingServiceStub(engine)
        admin = engine_admin_pb2_grpc.EngineAdminServiceStub(engine)
        users = account_pb2_grpc.AccountServiceStub(accounts)
        await self._login.ensure(users)
        if self._taker is not None:
            await self._taker.login.ensure(users)
            self._taker.short_of_funds = True
        markets = await self._markets(exchange)
        session = MakerSession(
            exchange, self._login.metadata, self._config.quotes, self._run, self._states
        )
        for market in markets.values():
            session.add_market(market.steps)
        mids: dict[str, Decimal] = {}
        changed = asyncio.Event()
        prices = asyncio.create_task(self._follow(trading, markets, mids, changed))
        funding = _Funding(self._funder, exchange, trading, admin, markets)
        try:
            # After a break: the books as the exchange holds them, made right.
            quoted = [name for name in markets if session.mid(name) is not None]
            await funding.fund_quotes(session)
            await self._sync(session, quoted)
            metrics.CONNECTED.set(1)
            self._serving = True
            log.info(
                "the maker quotes %d markets as user %s",
                len(markets),
                self._login.user_id,
                extra={"fields": {"markets": sorted(markets)}},
            )
            refresh_s = self._config.refresh_ms / 1000
            trade_s = self._config.trade_ms / 1000
            loop = asyncio.get_running_loop()
            next_refresh = loop.time() + refresh_s
            next_trade = loop.time() + trade_s if self._taker is not None else float("inf")
            while not stop.is_set():
                wake = min(next_refresh, next_trade)
                await _first_of(changed, stop, prices, max(0.0, wake - loop.time()))
                if prices.done():
                    prices.result()
                    raise StreamEndedError
                if stop.is_set():
                    break
                changed.clear()
                await self._login.ensure(users)
                if self._taker is not None and loop.time() >= next_trade:
                    next_trade = loop.time() + trade_s
                    await self._take(self._taker, exchange, users, session, mids, funding)
                refreshing = loop.time() >= next_refresh or session.short_of_funds
                if refreshing:
                    next_refresh = loop.time() + refresh_s
                await self._requote(session, funding, mids, refreshing)
            try:
                await asyncio.wait_for(self._withdraw(session, markets), WITHDRAW_TIMEOUT_S)
            except (TimeoutError, grpc.aio.AioRpcError) as exc:
                log.warning("the maker stopped without cancelling every quote: %r", exc)
        finally:
            prices.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await prices

    async def _requote(
        self,
        session: MakerSession,
        funding: _Funding,
        mids: Mapping[str, Decimal],
        refreshing: bool,
    ) -> None:
        """Quote again the markets whose mid moved; when `refreshing`, put every book right."""
        due = [
            name
            for name, mid in mids.items()
            if (last := session.mid(name)) is None or moved(last, mid, self._config.requote_bps)
        ]
        for name in due:
            session.want(name, mids[name])
            metrics.ROUNDS.labels(name).inc()
        if due or refreshing:
            await funding.fund_quotes(session)
        if refreshing:
            due = [name for name, state in session.markets.items() if state.mid is not None]
        await self._sync(session, due)

    async def _take(
        self,
        taker: Taker,
        exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        users: account_pb2_grpc.AccountServiceAsyncStub,
        session: MakerSession,
        mids: Mapping[str, Decimal],
        funding: _Funding,
    ) -> None:
        """Have the second account trade a little on the next market in turn."""
        states = session.markets
        chosen = taker.next_order(mids, {name: state.wanted for name, state in states.items()})
        if chosen is None:
            return
        await taker.login.ensure(users)
        sizes = {
            name: trade_quantity(state.wanted[0].quantity, state.steps.lot_step)
            for name, state in states.items()
            if state.wanted and name in mids
        }
        if taker.short_of_funds:
            needed = [q for name, n in sizes.items() for q in Taker.needs(mids[name], n, name)]
            await funding.fund(taker.funder, needed)
            taker.short_of_funds = False
        name, buy = chosen
        await taker.trade(exchange, name, buy, sizes[name])

    async def _markets(
        self, exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub
    ) -> dict[str, SpotMarket]:
        listed = await exchange.ListMarkets(
            exchange_pb2.ListMarketsRequest(), metadata=self._login.metadata(), timeout=10
        )
        return {
            m.name: SpotMarket(
                MarketSteps(m.name, Decimal(m.tick_size), Decimal(m.lot_step)),
                m.base_asset,
                m.base_asset + m.quote_asset,
                m.taker_fee_bps,
            )
            for m in listed.markets
        }

    async def _follow(
        self,
        trading: trading_pb2_grpc.TradingServiceAsyncStub,
        markets: Mapping[str, SpotMarket],
        mids: dict[str, Decimal],
        changed: asyncio.Event,
    ) -> None:
        """Keep `mids` at the CFD feed's mid of every market's symbol."""
        by_symbol = {market.symbol: name for name, market in markets.items()}
        stream = trading.StreamPrices(
            trading_pb2.StreamPricesRequest(symbols=sorted(by_symbol)),
            metadata=self._login.metadata(),
        )
        async for quote in stream:
            name = by_symbol.get(quote.symbol)
            if name is not None:
                mids[name] = (Decimal(quote.bid) + Decimal(quote.ask)) / 2
                changed.set()

    async def _sync(self, session: MakerSession, names: list[str]) -> None:
        for name in names:
            _count(name, await session.sync(name), len(session.markets[name].wanted))

    async def _withdraw(self, session: MakerSession, markets: Mapping[str, SpotMarket]) -> None:
        """Cancel every quote: a maker that stopped must not leave prices it no longer follows."""
        for name in markets:
            session.withdraw(name)
        await self._sync(session, list(markets))
        log.info("the maker cancelled its quotes")


class _Funding:
    """Funding bound to one connection and the markets it quotes."""

    def __init__(
        self,
        funder: Funder,
        exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        trading: trading_pb2_grpc.TradingServiceAsyncStub,
        admin: engine_admin_pb2_grpc.EngineAdminServiceAsyncStub,
        markets: Mapping[str, SpotMarket],
    ) -> None:
        self._funder = funder
        self._stubs = (exchange, trading, admin)
        self._bases = {name: market.base_asset for name, market in markets.items()}
        self._steps = {USD: USD_STEP} | {
            market.base_asset: market.steps.lot_step for market in markets.values()
        }
        self._fee_bps = max((m.taker_fee_bps for m in markets.values()), default=0)

    async def fund_quotes(self, session: MakerSession) -> None:
        """Top the maker's wallet up for every quote `session` wants."""
        await self.fund(self._funder, [q for s in session.markets.values() for q in s.wanted])
        session.short_of_funds = False

    async def fund(self, funder: Funder, wanted: list[Quote]) -> None:
        """Top the wallet of `funder`'s account up for orders like `wanted`."""
        await funder.fund(*self._stubs, needs(wanted, self._bases, self._fee_bps), self._steps)


def _count(market: str, plan: Plan, wanted: int) -> None:
    metrics.QUOTES.labels(market).set(wanted)
    metrics.PLACED.labels(market).inc(len(plan.place))
    metrics.CANCELLED.labels(market).inc(len(plan.cancel_first) + len(plan.cancel_after))


async def _first_of(
    changed: asyncio.Event, stop: asyncio.Event, prices: asyncio.Task[None], within_s: float
) -> None:
    """Wait until a price changed, `stop` is set, the price stream ended or
    `within_s` passed."""
    waiters = [asyncio.create_task(changed.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(
            [*waiters, prices], timeout=within_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()


async def main(settings: Settings) -> None:
    """Run the market maker until SIGTERM or SIGINT."""
    try:
        config = MakerConfig.from_env(settings.data_dir)
    except ConfigError as exc:
        raise ServeError(f"configuration error: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Maker(settings, config).run(stop)
    except MakerError as exc:
        raise ServeError(str(exc)) from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
