"""Spot snapshots and digests: one canonical encoding of the whole exchange state.

The encoding is canonical JSON of the configuration (markets, fees), the counters, the
house and transfer totals, every wallet and stored result in sorted order, and the open
orders in key order (which is each level's FIFO order: an order joins its level only when
placed). It excludes `last_seq`, so a replay and a restore of the same history agree.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..codec import CodecError, dumps_canonical, loads_strict
from ..instruments import Instrument
from .book import SpotOrder
from .codec import decode_payload, encode_payload
from .enums import SpotOrderStatus, TimeInForce
from .exchange import SpotAccount, SpotExchange
from .markets import QUOTE_ASSET, FeeSchedule, Market
from .results import SpotResult

SNAPSHOT_FORMAT: Final = "cfd-spot-snapshot"
SNAPSHOT_VERSION: Final = 1

_RESTING = (SpotOrderStatus.OPEN, SpotOrderStatus.PARTIALLY_FILLED)


def _market_row(market: Market) -> list[object]:
    scale = market.scale
    return [
        market.name,
        market.base_asset,
        scale.symbol,
        scale.tick_units,
        scale.price_decimals,
        scale.lot_units,
        scale.quantity_decimals,
        scale.max_leverage,
        scale.maintenance_num,
        scale.maintenance_den,
    ]


def _order_row(order: SpotOrder) -> list[object]:
    return [
        order.key,
        order.account_id,
        order.market,
        order.is_buy,
        order.price,
        order.quantity,
        order.remaining,
        order.filled,
        order.filled_quote,
        order.fee,
        order.locked,
        order.post_only,
        order.status.value,
        order.create_ts,
        order.update_ts,
        order.client_order_id,
    ]


def _totals(values: dict[str, int]) -> list[list[object]]:
    return [[asset, values[asset]] for asset in sorted(values)]


def _account_row(account: SpotAccount) -> list[object]:
    balances = [
        [asset, account.available.get(asset, 0), account.locked.get(asset, 0)]
        for asset in sorted({*account.available, *account.locked})
        if account.available.get(asset, 0) or account.locked.get(asset, 0)
    ]
    results: list[object] = []
    for coid in sorted(account.results):
        kind, target, result = account.results[coid]
        assert result.payload is not None
        results.append([coid, kind, target, encode_payload(result.payload)])
    return [account.account_id, balances, results]


def encode_state(exchange: SpotExchange) -> bytes:
    """Return the canonical encoding of the spot state, `last_seq` excluded."""
    orders = exchange.orders
    return dumps_canonical(
        [
            [_market_row(market) for market in exchange.markets.values()],
            [exchange.fees.taker_bps, exchange.fees.maker_bps],
            exchange.trades,
            [[name, book.sequence] for name, book in exchange.books.items()],
            _totals(exchange.house),
            _totals(exchange.credited),
            _totals(exchange.debited),
            [_account_row(exchange.accounts[key]) for key in sorted(exchange.accounts)],
            [_order_row(orders[key]) for key in sorted(orders)],
        ]
    )


def spot_digest(exchange: SpotExchange) -> str:
    """Return the sha256 hex digest of `encode_state`."""
    return hashlib.sha256(encode_state(exchange)).hexdigest()


def snapshot(exchange: SpotExchange) -> bytes:
    """Return a header line (format, version, last_seq) followed by `encode_state`."""
    header = dumps_canonical(
        {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "last_seq": exchange.last_seq}
    )
    return header + b"\n" + encode_state(exchange)


def restore(data: bytes) -> SpotExchange:
    """Rebuild an exchange from `snapshot` bytes; raise `CodecError` for anything else."""
    header_bytes, newline, body = bytes(data).partition(b"\n")
    header = loads_strict(header_bytes)
    if (
        not newline
        or not isinstance(header, dict)
        or header.get("format") != SNAPSHOT_FORMAT
        or type(header.get("version")) is not int
        or header.get("version") != SNAPSHOT_VERSION
    ):
        raise CodecError("not a spot snapshot of a supported version")
    last_seq = header.get("last_seq")
    if type(last_seq) is not int or last_seq < 0:
        raise CodecError("snapshot last_seq must be a non-negative integer")
    try:
        exchange = restore_state(body)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AssertionError) as error:
        raise CodecError(f"inconsistent spot snapshot: {error}") from None
    exchange.last_seq = last_seq
    return exchange


def _list(value: object, length: int = -1) -> list[object]:
    if not isinstance(value, list) or (length >= 0 and len(value) != length):
        raise CodecError("malformed spot snapshot row")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise CodecError("spot snapshot field must be an integer")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise CodecError("spot snapshot field must be a string")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise CodecError("spot snapshot field must be a boolean")
    return value


def _restore_totals(target: dict[str, int], rows: object) -> None:
    restored = {_str(row[0]): _int(row[1]) for row in (_list(r, 2) for r in _list(rows))}
    if set(restored) != set(target):
        raise CodecError("spot snapshot totals name other assets")
    target.update(restored)


def restore_state(body: bytes) -> SpotExchange:
    """Rebuild an exchange (with `last_seq` 0) from `encode_state` bytes."""
    parts = _list(loads_strict(body), 9)
    markets: dict[str, Market] = {}
    for raw in _list(parts[0]):
        row = _list(raw, 10)
        tick, price_decimals, lot, quantity_decimals, leverage, m_num, m_den = (
            _int(value) for value in row[3:]
        )
        scale = Instrument.create(
            _str(row[2]), tick, price_decimals, lot, quantity_decimals, leverage, m_num, m_den
        )
        market = Market.create(_str(row[0]), _str(row[1]), scale)
        markets[market.name] = market
    fees = _list(parts[1], 2)
    exchange = SpotExchange(markets, FeeSchedule(_int(fees[0]), _int(fees[1])))
    exchange.trades = _int(parts[2])
    for raw in _list(parts[3]):
        row = _list(raw, 2)
        exchange.books[_str(row[0])].sequence = _int(row[1])
    _restore_totals(exchange.house, parts[4])
    _restore_totals(exchange.credited, parts[5])
    _restore_totals(exchange.debited, parts[6])
    for raw in _list(parts[7]):
        row = _list(raw, 3)
        account = SpotAccount(_str(row[0]))
        for balance in _list(row[1]):
            asset, available, locked = _list(balance, 3)
            if _str(asset) not in exchange.house or _int(available) < 0 or _int(locked) < 0:
                raise CodecError("spot snapshot has an invalid balance")
            account.available[_str(asset)] = _int(available)
            account.locked[_str(asset)] = _int(locked)
        for stored in _list(row[2]):
            coid, kind, target, payload = _list(stored, 4)
            result = SpotResult(None, "", decode_payload(payload), (), True)
            account.results[_str(coid)] = (_str(kind), _str(target), result)
        exchange.accounts[account.account_id] = account
    locks: dict[tuple[str, str], int] = {}
    previous = 0
    for raw in _list(parts[8]):
        order = _restore_order(exchange, _list(raw, 16))
        if order.key <= previous:
            raise CodecError("spot snapshot orders are not in key order")
        previous = order.key
        market = exchange.markets[order.market]
        asset = QUOTE_ASSET if order.is_buy else market.base_asset
        locks[order.account_id, asset] = locks.get((order.account_id, asset), 0) + order.locked
    for account in exchange.accounts.values():
        for asset, locked in account.locked.items():
            if locks.pop((account.account_id, asset), 0) != locked:
                raise CodecError("spot snapshot locks do not match the open orders")
    if locks:
        raise CodecError("spot snapshot has orders of accounts without locks")
    for book in exchange.books.values():
        bid, ask = book.bids.best(), book.asks.best()
        if bid is not None and ask is not None and bid.price >= ask.price:
            raise CodecError("spot snapshot has a crossed book")
    return exchange


def _restore_order(exchange: SpotExchange, row: list[object]) -> SpotOrder:
    key = _int(row[0])
    account = exchange.accounts[_str(row[1])]
    order = SpotOrder(
        key,
        account.account_id,
        _str(row[2]),
        _bool(row[3]),
        True,
        _int(row[4]),
        _int(row[5]),
        0,
        TimeInForce.GTC,
        _bool(row[11]),
        _int(row[13]),
        None if row[15] is None else _str(row[15]),
    )
    order.remaining = _int(row[6])
    order.filled = _int(row[7])
    order.filled_quote = _int(row[8])
    order.fee = _int(row[9])
    order.locked = _int(row[10])
    order.status = SpotOrderStatus(_str(row[12]))
    order.update_ts = _int(row[14])
    if order.status not in _RESTING or not 0 < order.remaining <= order.quantity:
        raise CodecError("spot snapshot has an order that cannot rest")
    if order.price <= 0 or order.filled + order.remaining != order.quantity:
        raise CodecError("spot snapshot has an inconsistent order")
    book = exchange.books[order.market]
    (book.bids if order.is_buy else book.asks).append(order)
    exchange.orders[key] = order
    account.orders[key] = order
    return order
