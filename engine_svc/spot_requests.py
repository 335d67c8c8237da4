"""ExchangeService requests to spot commands: every field checked at the boundary.

A bad field is a 400 with a field violation naming it (its API JSON name) and changes
nothing. A price that is a number but not a positive multiple of the tick is INVALID_PRICE;
an unknown market is UNKNOWN_MARKET, as API.md says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from cfd.v1 import engine_admin_pb2, exchange_pb2
from engine_svc import requests
from engine_svc.convert import DIRECTIONS
from engine_svc.core import (
    DecimalFormatError,
    DepositAsset,
    ReceiveTransfer,
    SendTransfer,
    Side,
    TransferFunds,
)
from engine_svc.core.spot import (
    CancelSpotOrder,
    Market,
    PlaceSpotOrder,
    SpotOrderType,
    TimeInForce,
)
from engine_svc.core.spot.enums import TransferDirection
from mesh.errors import ApiError, validation_error

DEFAULT_DEPTH: Final = 50
MAX_DEPTH: Final = 1000
MAX_TRADES: Final = 1000
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

_TYPES: dict[int, SpotOrderType] = {
    exchange_pb2.SPOT_ORDER_TYPE_LIMIT: SpotOrderType.LIMIT,
    exchange_pb2.SPOT_ORDER_TYPE_MARKET: SpotOrderType.MARKET,
}
_TIMES_IN_FORCE: dict[int, TimeInForce] = {
    exchange_pb2.TIME_IN_FORCE_UNSPECIFIED: TimeInForce.GTC,
    exchange_pb2.TIME_IN_FORCE_GTC: TimeInForce.GTC,
    exchange_pb2.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    exchange_pb2.TIME_IN_FORCE_FOK: TimeInForce.FOK,
}


def market_of(markets: Mapping[str, Market], name: str) -> Market:
    """Return the market `name`; VALIDATION_FAILED when empty, else UNKNOWN_MARKET."""
    if not name:
        raise validation_error("market", "is required")
    market = markets.get(name)
    if market is None:
        shown = name if len(name) <= 32 else name[:32] + "…"
        raise ApiError("UNKNOWN_MARKET", f"unknown market {shown!r}", [("market", "unknown")])
    return market


def spot_price(market: Market, text: str) -> int:
    """Return a limit price in ticks; a number off the tick grid or not above 0 is INVALID_PRICE."""
    if not text:
        raise validation_error("price", "is required for a limit order")
    try:
        return market.scale.parse_price(text, "price")
    except DecimalFormatError as exc:
        if _NUMBER.fullmatch(text) is None:
            raise validation_error("price", exc.problem) from None
        raise ApiError("INVALID_PRICE", f"price: {exc.problem}", [("price", exc.problem)]) from None


def depth(value: int) -> int:
    """Return the book depth: 1..1000 levels a side, 0 meaning 50."""
    if value == 0:
        return DEFAULT_DEPTH
    if not 1 <= value <= MAX_DEPTH:
        raise validation_error("depth", f"must be within 0..{MAX_DEPTH}")
    return value


def trades_page(value: int) -> int:
    """Return how many trades to list: 1..1000, 0 meaning 50."""
    if value == 0:
        return DEFAULT_DEPTH
    if not 1 <= value <= MAX_TRADES:
        raise validation_error("pageSize", f"must be within 0..{MAX_TRADES}")
    return value


def place_spot_order(
    request: exchange_pb2.PlaceSpotOrderRequest, account_id: str, markets: Mapping[str, Market]
) -> PlaceSpotOrder:
    """Return the PlaceSpotOrder command of a request."""
    market = market_of(markets, request.market)
    side = requests.side(request.side)
    order_type = _TYPES.get(request.type)
    if order_type is None:
        raise validation_error("type", "must be SPOT_ORDER_TYPE_LIMIT or SPOT_ORDER_TYPE_MARKET")
    tif = _TIMES_IN_FORCE.get(request.time_in_force)
    if tif is None:
        raise validation_error("timeInForce", "must be TIME_IN_FORCE_GTC, _IOC or _FOK")
    is_limit = order_type is SpotOrderType.LIMIT
    price = spot_price(market, request.price) if is_limit else None
    if not is_limit and request.price:
        raise validation_error("price", "must be empty for a market order")
    if request.post_only and (not is_limit or tif is not TimeInForce.GTC):
        raise validation_error("postOnly", "applies to GTC limit orders only")
    quantity: int | None = None
    quote_quantity: int | None = None
    which = request.WhichOneof("size")
    if which == "quantity":
        quantity = requests.quantity(market.scale, request.quantity)
    elif which == "quote_quantity":
        if is_limit or side is not Side.BUY:
            raise validation_error("quoteQuantity", "applies to market buys only")
        if tif is TimeInForce.FOK:
            raise validation_error("quoteQuantity", "a fill-or-kill order needs a quantity")
        quote_quantity = requests.money(request.quote_quantity, "quoteQuantity")
    else:
        raise validation_error("quantity", "give a quantity (or a quoteQuantity for a market buy)")
    return PlaceSpotOrder(
        seq=0,
        ts=0,
        account_id=account_id,
        market=market.name,
        side=side,
        order_type=order_type,
        price=price,
        quantity=quantity,
        quote_quantity=quote_quantity,
        time_in_force=tif,
        post_only=request.post_only,
        client_order_id=requests.client_order_id(request.client_order_id),
    )


def cancel_spot_order(
    request: exchange_pb2.CancelSpotOrderRequest, account_id: str
) -> CancelSpotOrder:
    """Return the CancelSpotOrder command of a request."""
    return CancelSpotOrder(
        seq=0,
        ts=0,
        account_id=account_id,
        order_id=requests.object_id(request.order_id, "orderId"),
        client_order_id=requests.client_order_id(request.client_order_id),
    )


def _direction(value: exchange_pb2.TransferDirection.ValueType) -> TransferDirection:
    direction = DIRECTIONS.get(value)
    if direction is None:
        raise validation_error(
            "direction", "must be TRANSFER_DIRECTION_TO_SPOT or TRANSFER_DIRECTION_TO_CFD"
        )
    return direction


def transfer_funds(request: exchange_pb2.TransferFundsRequest, account_id: str) -> TransferFunds:
    """Return the TransferFunds command of a request."""
    direction = _direction(request.direction)
    return TransferFunds(
        seq=0,
        ts=0,
        account_id=account_id,
        amount=requests.money(request.amount, "amount"),
        direction=direction,
        client_order_id=requests.client_order_id(request.client_order_id),
    )


def deposit_asset(
    request: engine_admin_pb2.DepositAssetRequest, markets: Mapping[str, Market]
) -> DepositAsset:
    """Return the DepositAsset command of an admin request: an amount on the lot grid."""
    chosen = next((m for m in markets.values() if m.base_asset == request.asset), None)
    if chosen is None:
        raise validation_error("asset", "must be the base asset of a market")
    return DepositAsset(
        seq=0,
        ts=0,
        account_id=requests.user_id(request.user_id),
        asset=chosen.base_asset,
        amount=requests.quantity(chosen.scale, request.amount, "amount"),
        client_order_id=requests.client_order_id(request.client_order_id),
    )


def _transfer_fields(
    request: engine_admin_pb2.SendTransferRequest | engine_admin_pb2.ReceiveTransferRequest,
    shards: int,
    own: int,
) -> tuple[str, str, int, TransferDirection, int]:
    """Return a cross-shard transfer request's account, id, amount, direction and peer."""
    if not 0 < len(request.transfer_id) <= requests.MAX_CLIENT_ORDER_ID:
        raise validation_error("transferId", "must be 1-64 characters")
    if not 0 <= request.peer_shard < shards or request.peer_shard == own:
        raise validation_error("peerShard", f"must be another of the {shards} shards")
    direction = _direction(request.direction)
    # The spot wallet is on shard 0: the peer holds it when this shard sends TO_SPOT or
    # receives TO_CFD, this shard otherwise.
    sending = isinstance(request, engine_admin_pb2.SendTransferRequest)
    peer_has_wallet = sending == (direction is TransferDirection.TO_SPOT)
    if (request.peer_shard if peer_has_wallet else own) != 0:
        raise validation_error("direction", "the spot side of a transfer is shard 0")
    return (
        requests.user_id(request.user_id),
        request.transfer_id,
        requests.money(request.amount, "amount"),
        direction,
        request.peer_shard,
    )


def send_transfer(
    request: engine_admin_pb2.SendTransferRequest, shards: int, own: int
) -> SendTransfer:
    """Return the SendTransfer command of an admin request to shard `own`."""
    return SendTransfer(0, 0, *_transfer_fields(request, shards, own))


def receive_transfer(
    request: engine_admin_pb2.ReceiveTransferRequest, shards: int, own: int
) -> ReceiveTransfer:
    """Return the ReceiveTransfer command of an admin request to shard `own`."""
    return ReceiveTransfer(0, 0, *_transfer_fields(request, shards, own))
