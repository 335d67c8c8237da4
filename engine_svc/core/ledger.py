"""The whole state of the core in one object, without the code that changes it."""

from __future__ import annotations

from collections.abc import Mapping

from .indexes import SymbolBook
from .instruments import Instrument, default_instruments
from .spot.exchange import SpotExchange
from .spot.markets import FeeSchedule, markets_from_instruments
from .state import Account, Order, Position
from .views import QuoteView, TransferView


class Ledger:
    """Everything the core knows; `Core` adds the command entry point and the queries.

    `positions` and `orders` hold every open position and pending order by key, `books` the
    trigger indexes per symbol, `quotes` the last quote per symbol and `expiry` a heap of
    ``expire time << 48 | order key``. The house balance is what the house gained from
    closes (released margin not credited, minus losses it absorbed). `spot` is the spot
    exchange (one market per ``<COIN>USD`` instrument whose tick times lot is a whole
    micro-USD, `fees` its schedule); its wallets belong to the same accounts. `cross_accounts`
    holds the cross-margin accounts by number, the keys of the stop-out index entries.
    `last_rollover` is the UTC day (days since 1970-01-01) of the last swap rollover charged,
    0 before the first.

    Cross-shard transfers (`transfer_part`): `transfers_out` holds every transfer this shard
    debited by id (kept so a repeat answers the first result), `in_flight` the ids among them
    not settled yet, `transfers_in` every transfer this shard credited by id; `transfers_sent`
    and `transfers_received` are the totals of their amounts.
    """

    __slots__ = (
        "accounts",
        "books",
        "cross_accounts",
        "expiry",
        "house_balance",
        "in_flight",
        "instruments",
        "last_rollover",
        "last_seq",
        "orders",
        "positions",
        "quotes",
        "spot",
        "total_deposits",
        "transfers_in",
        "transfers_out",
        "transfers_received",
        "transfers_sent",
    )

    def __init__(
        self, instruments: Mapping[str, Instrument] | None = None, fees: FeeSchedule | None = None
    ) -> None:
        chosen = default_instruments() if instruments is None else dict(instruments)
        for symbol, instrument in chosen.items():
            if symbol != instrument.symbol:
                raise ValueError(f"instrument {instrument.symbol} registered as {symbol}")
        self.instruments: dict[str, Instrument] = dict(sorted(chosen.items()))
        self.accounts: dict[str, Account] = {}
        self.positions: dict[int, Position] = {}
        self.orders: dict[int, Order] = {}
        self.cross_accounts: dict[int, Account] = {}
        self.books: dict[str, SymbolBook] = {
            symbol: SymbolBook(self.positions, self.orders, self.cross_accounts, symbol)
            for symbol in self.instruments
        }
        self.quotes: dict[str, QuoteView] = {}
        self.expiry: list[int] = []
        self.house_balance = 0
        self.total_deposits = 0
        self.last_seq = 0
        self.last_rollover = 0
        self.transfers_out: dict[str, TransferView] = {}
        self.in_flight: dict[str, TransferView] = {}
        self.transfers_in: dict[str, TransferView] = {}
        self.transfers_sent = 0
        self.transfers_received = 0
        # A coin whose tick times lot is not a whole micro-USD has no spot market.
        exact = {s: i for s, i in self.instruments.items() if i.notional_den == 1}
        self.spot = SpotExchange(markets_from_instruments(exact), fees)
        self.spot.keeps_results = False
