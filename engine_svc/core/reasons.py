"""The one enum of rejection reasons the core can produce (API.md "Errors")."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a command was rejected; the value is the API.md ErrorInfo reason."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    QUANTITY_TOO_SMALL = "QUANTITY_TOO_SMALL"
    INVALID_STOPS = "INVALID_STOPS"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    SLIPPAGE_EXCEEDED = "SLIPPAGE_EXCEEDED"
    PRICE_UNAVAILABLE = "PRICE_UNAVAILABLE"
    POSITION_NOT_FOUND = "POSITION_NOT_FOUND"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    # Spot exchange reasons (API.md "Spot exchange").
    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    INVALID_PRICE = "INVALID_PRICE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    # Not an API.md reason: only internal admin commands name an account explicitly.
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    # Not an API.md reason: a client_order_id already used for another request or target.
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
