"""Cross margin arithmetic: stop-out prices and the stop-out index of each cross account.

A cross account is stopped out when equity x 100 <= stop-out level x used margin, and gets a
margin call when equity x 100 <= margin call level x used margin. Its equity depends on the
quotes of every symbol it holds, so the index cannot hold one exact price per account; it
holds a price per leg (the long or the short positions of one symbol), chosen so that no
event can happen before some leg's price is reached:

- The account's excess over its next level, Y = equity x 100 - level x used margin > 0, is
  split evenly between its k legs: each leg may lose up to B = ceil(Y / (100 k)) of its PnL
  at the account's last review. While no leg has lost B, the legs together lost less than
  Y / 100, so the account is still above the level. The leg's index price is the first
  price at which it has lost B.
- When a leg's price is reached, `cross.review` evaluates the account exactly (margin call,
  stop-out) and indexes it again from the current quotes.

With one leg (one symbol, one direction) the index price is exact: reaching it is reaching
the level. While a margin call is in effect the account also has upward prices, found the
same way, at which its level may have risen above the margin call level again (re-arming the
margin call). Because every index price is reached no later than the event it guards, the
account behaves as if it were evaluated exactly on every quote, whatever its index prices
were; they are derived state, rebuilt on restore and never encoded.

Heap slots in `Account.watch[symbol]`: BID_BELOW the long leg's stop-out side, BID_ABOVE its
recovery side, ASK_ABOVE the short leg's stop-out side, ASK_BELOW its recovery side.
"""

from __future__ import annotations

from .indexes import ASK_ABOVE, ASK_BELOW, BID_ABOVE, BID_BELOW, KIND_ACCOUNT
from .instruments import Instrument
from .ledger import Ledger
from .money import unrealized
from .state import Account, Position
from .units import MAX_PRICE_TICKS, ceil_div, floor_div

# Search bounds of the exact price search (a price outside them can never be quoted).
_LOWEST = 0
_HIGHEST = MAX_PRICE_TICKS + 1


def _legs(account: Account) -> dict[str, tuple[list[Position], list[Position]]]:
    """Return the account's positions by symbol as (longs, shorts)."""
    legs: dict[str, tuple[list[Position], list[Position]]] = {}
    for position in account.positions.values():
        pair = legs.get(position.symbol)
        if pair is None:
            pair = ([], [])
            legs[position.symbol] = pair
        (pair[0] if position.is_buy else pair[1]).append(position)
    return legs


def _pnl_at(
    instrument: Instrument, longs: list[Position], shorts: list[Position], bid: int, ask: int
) -> int:
    """Return the exact PnL of the positions with the longs at `bid` and the shorts at `ask`."""
    total = 0
    for position in longs:
        total += instrument.pnl_floor_micros(bid - position.entry, position.quantity)
    for position in shorts:
        total += instrument.pnl_floor_micros(position.entry - ask, position.quantity)
    return total


def boundary(
    instrument: Instrument, longs: list[Position], shorts: list[Position], spread: int, limit: int
) -> int | None:
    """Return where the positions' PnL falls to `limit`, the longs at a bid p and the shorts
    at the ask p + spread.

    Net long: PnL <= limit exactly when p <= the returned price. Net short: exactly when
    p >= it. None when the position is flat (no price moves its PnL). The result may lie
    outside the quotable range. Exact: closed form when a tick times a lot is a whole number
    of micro-dollars (the default instruments), a search over the exact PnL otherwise.
    """
    net = sum(p.quantity for p in longs) - sum(p.quantity for p in shorts)
    if net == 0:
        return None
    if instrument.notional_den == 1:
        # PnL(p) = N (net p + offset), exactly, with N micro-dollars per tick and lot.
        factor = instrument.notional_num
        offset = sum(p.quantity * (p.entry - spread) for p in shorts) - sum(
            p.quantity * p.entry for p in longs
        )
        reach = floor_div(limit, factor) - offset
        return floor_div(reach, net) if net > 0 else ceil_div(-reach, -net)
    low, high = _LOWEST, _HIGHEST
    if net > 0:
        # The largest p with PnL(p) <= limit, or _LOWEST - 1 when there is none.
        if _pnl_at(instrument, longs, shorts, low, low + spread) > limit:
            return low - 1
        while low < high:
            middle = (low + high + 1) // 2
            if _pnl_at(instrument, longs, shorts, middle, middle + spread) <= limit:
                low = middle
            else:
                high = middle - 1
        return low
    # The smallest p with PnL(p) <= limit, or _HIGHEST + 1 when there is none.
    if _pnl_at(instrument, longs, shorts, high, high + spread) > limit:
        return high + 1
    while low < high:
        middle = (low + high) // 2
        if _pnl_at(instrument, longs, shorts, middle, middle + spread) <= limit:
            high = middle
        else:
            low = middle + 1
    return low


def stop_out_price(ledger: Ledger, account: Account, symbol: str) -> int:
    """Return the price of `symbol` at which the account would be stopped out, the other
    symbols held at their last quotes and the symbol's spread kept: a bid when the account is
    net long the symbol, an ask when net short; 0 when it is flat or no price reaches it."""
    quote = ledger.quotes.get(symbol)
    if quote is None:
        return 0
    instrument = ledger.instruments[symbol]
    longs: list[Position] = []
    shorts: list[Position] = []
    others = account.balance
    for position in account.positions.values():
        if position.symbol == symbol:
            (longs if position.is_buy else shorts).append(position)
        else:
            others += unrealized(ledger, position) or 0
    # Stopped out when 100 (others + PnL) <= level x used, i.e. PnL <= floor(... / 100).
    limit = floor_div(account.stop_out_level * account.used_margin - 100 * others, 100)
    spread = quote.ask - quote.bid
    price = boundary(instrument, longs, shorts, spread, limit)
    if price is None:
        return 0
    if sum(p.quantity for p in longs) < sum(p.quantity for p in shorts):
        price += spread
    return price if 1 <= price <= MAX_PRICE_TICKS else 0


def reindex(ledger: Ledger, account: Account, equity: int) -> None:
    """Give a reviewed cross account its index prices (see the module docstring).

    The account is above its next level: above the margin call level when no margin call is
    in effect, above the stop-out level otherwise.
    """
    previous = account.watch
    account.watch = {}
    if not account.positions:
        return
    legs = _legs(account)
    count = 0
    for longs, shorts in legs.values():
        count += (1 if longs else 0) + (1 if shorts else 0)
    used = account.used_margin
    level = account.stop_out_level if account.margin_call else account.margin_call_level
    fall = ceil_div(100 * equity - level * used, 100 * count)
    rise = 0
    if account.margin_call:
        rise = ceil_div(1 - (100 * equity - account.margin_call_level * used), 100 * count)
    for symbol in sorted(legs):
        longs, shorts = legs[symbol]
        instrument = ledger.instruments[symbol]
        quote = ledger.quotes[symbol]
        prices = [0, 0, 0, 0]
        if longs:
            pnl = _pnl_at(instrument, longs, [], quote.bid, quote.ask)
            down = boundary(instrument, longs, [], 0, pnl - fall)
            if down is not None and down >= 1:
                prices[BID_BELOW] = down
            if rise:
                up = boundary(instrument, longs, [], 0, pnl + rise - 1)
                if up is not None and up < MAX_PRICE_TICKS:
                    prices[BID_ABOVE] = up + 1
        if shorts:
            pnl = _pnl_at(instrument, [], shorts, quote.bid, quote.ask)
            down = boundary(instrument, [], shorts, 0, pnl - fall)
            if down is not None and down <= MAX_PRICE_TICKS:
                prices[ASK_ABOVE] = down
            if rise:
                up = boundary(instrument, [], shorts, 0, pnl + rise - 1)
                if up is not None and up > 1:
                    prices[ASK_BELOW] = up - 1
        account.watch[symbol] = prices
        before = previous.get(symbol)
        book = ledger.books[symbol]
        for which in (BID_BELOW, BID_ABOVE, ASK_BELOW, ASK_ABOVE):
            price = prices[which]
            if price and (before is None or before[which] != price):
                book.push(which, price, account.number, KIND_ACCOUNT)
