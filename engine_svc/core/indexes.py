"""Price-ordered trigger indexes: a tick costs O(log n + triggered) per symbol.

Static trigger prices (liquidation, stop loss, take profit, pending order triggers) live in
four binary heaps per symbol, one per (quote side, crossing direction); a tick only looks at
the heap tops. An entry is one integer ``signed_price << 51 | key << 3 | kind`` so the heaps
compare plain ints. Entries are removed lazily: one whose position or order no longer has
that trigger price is dropped when it surfaces, and a heap longer than twice its largest possible
number of live entries is rebuilt without its stale entries (amortized O(1) per push).

A cross account's stop-out index entries (kind KIND_ACCOUNT, keyed by the account's number)
live in the same heaps: an entry is live while the account's `watch` for the symbol still
holds its price at the heap's slot (see `margin`).

Trailing stops live in a `TrailBook` per symbol and side, see its docstring.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Final

from .state import Account, Order, Position, TrailLevel

KIND_LIQUIDATION: Final = 0
KIND_STOP_LOSS: Final = 1
KIND_TAKE_PROFIT: Final = 2
KIND_ORDER: Final = 3
KIND_ACCOUNT: Final = 4

# Heap numbers: which quote is compared and whether a trigger fires when the quote falls to
# (BELOW) or rises to (ABOVE) the trigger price.
BID_BELOW: Final = 0
BID_ABOVE: Final = 1
ASK_BELOW: Final = 2
ASK_ABOVE: Final = 3

_PRICE_SHIFT: Final = 51
_KEY_SHIFT: Final = 3
_KEY_MASK: Final = (1 << 48) - 1
MAX_KEY: Final = _KEY_MASK
_MIN_COMPACT: Final = 64
_TRAIL_KEY_SHIFT: Final = 48
# Public for bulk builds that append entries to `SymbolBook.heaps` and `TrailLevel.heap`
# directly before `SymbolBook.heapify_all`.
PRICE_SHIFT: Final = _PRICE_SHIFT
KEY_SHIFT: Final = _KEY_SHIFT
TRAIL_KEY_SHIFT: Final = _TRAIL_KEY_SHIFT


def entry_key(entry: int) -> int:
    """Return the position or order key of a heap entry."""
    return (entry >> _KEY_SHIFT) & _KEY_MASK


def entry_kind(entry: int) -> int:
    """Return the trigger kind of a heap entry."""
    return entry & 7


class SymbolBook:
    """The four static trigger heaps and two trailing books of one symbol."""

    __slots__ = ("accounts", "heaps", "long_trail", "orders", "positions", "short_trail", "symbol")

    def __init__(
        self,
        positions: dict[int, Position],
        orders: dict[int, Order],
        accounts: dict[int, Account],
        symbol: str,
    ) -> None:
        self.positions = positions
        self.orders = orders
        self.accounts = accounts
        self.symbol = symbol
        self.heaps: list[list[int]] = [[], [], [], []]
        self.long_trail = TrailBook(positions)
        self.short_trail = TrailBook(positions)

    def push(self, which: int, price: int, key: int, kind: int) -> None:
        """Index a trigger at `price` in heap `which` (BID_BELOW ... ASK_ABOVE)."""
        signed = -price if which in (BID_BELOW, ASK_BELOW) else price
        heap = self.heaps[which]
        heappush(heap, (signed << _PRICE_SHIFT) | (key << _KEY_SHIFT) | kind)
        # One heap holds at most two live entries per open position (liquidation and stop
        # loss) and one per pending order; past twice that bound at least half are stale, so
        # dropping them costs O(1) per stale entry.
        if len(heap) > 4 * (len(self.positions) + len(self.orders)) + _MIN_COMPACT:
            self._compact(which)

    def push_unordered(self, which: int, price: int, key: int, kind: int) -> None:
        """Append a trigger without keeping heap order; call `heapify_all` afterwards."""
        signed = -price if which in (BID_BELOW, ASK_BELOW) else price
        self.heaps[which].append((signed << _PRICE_SHIFT) | (key << _KEY_SHIFT) | kind)

    def heapify_all(self) -> None:
        """Restore heap order after `push_unordered` and `add_trailing_unordered` calls."""
        for heap in self.heaps:
            heapify(heap)
        self.long_trail.heapify_all()
        self.short_trail.heapify_all()

    def _valid(self, which: int, entry: int) -> bool:
        signed = entry >> _PRICE_SHIFT
        price = -signed if which in (BID_BELOW, ASK_BELOW) else signed
        key = (entry >> _KEY_SHIFT) & _KEY_MASK
        kind = entry & 7
        if kind == KIND_ORDER:
            order = self.orders.get(key)
            return order is not None and order.trigger == price
        if kind == KIND_ACCOUNT:
            account = self.accounts.get(key)
            if account is None:
                return False
            watched = account.watch.get(self.symbol)
            return watched is not None and watched[which] == price
        position = self.positions.get(key)
        if position is None:
            return False
        if kind == KIND_LIQUIDATION:
            return position.liq == price
        if kind == KIND_STOP_LOSS:
            return position.sl == price
        return position.tp == price

    def _compact(self, which: int) -> None:
        live = sorted({entry for entry in self.heaps[which] if self._valid(which, entry)})
        heapify(live)
        self.heaps[which] = live

    def pop_crossed(self, bid: int, ask: int, out: list[int]) -> None:
        """Move every live entry the quote crosses into `out` (unordered)."""
        self._pop_below(BID_BELOW, bid, out)
        self._pop_above(BID_ABOVE, bid, out)
        self._pop_below(ASK_BELOW, ask, out)
        self._pop_above(ASK_ABOVE, ask, out)

    def _pop_below(self, which: int, quote: int, out: list[int]) -> None:
        heap = self.heaps[which]
        # Fires when quote <= price, i.e. -price <= -quote; the heap holds -price.
        limit = -quote
        while heap and (heap[0] >> _PRICE_SHIFT) <= limit:
            entry = heappop(heap)
            if self._valid(which, entry):
                out.append(entry)

    def _pop_above(self, which: int, quote: int, out: list[int]) -> None:
        heap = self.heaps[which]
        while heap and (heap[0] >> _PRICE_SHIFT) <= quote:
            entry = heappop(heap)
            if self._valid(which, entry):
                out.append(entry)

    def entry_count(self) -> int:
        """Return the number of heap entries, stale ones included (for tests and stats)."""
        return sum(len(heap) for heap in self.heaps)


class TrailBook:
    """Best price since open and trailing stops for one symbol and side.

    Prices are signed so that "better" is always larger: the long side uses the bid, the
    short side the negated ask. Every open position belongs to a `TrailLevel` whose `best` is
    the best quote since the position opened. Levels form a stack of strictly decreasing
    `best` (the newest, lowest on top); a quote above the top levels merges them into one level
    at the quote (union-find, amortized O(1) per level). A trailing position fires when
    ``quote <= best - distance``; each level keeps a heap of its positions' distances and the
    book keeps a heap of levels keyed by their highest stop (best - smallest distance), so a
    tick inspects only the top level, and merging moves the smaller distance heap into the
    larger one (each entry moves O(log n) times overall).
    """

    __slots__ = ("by_ident", "level_heap", "levels", "live_levels", "next_ident", "positions")

    def __init__(self, positions: dict[int, Position]) -> None:
        self.positions = positions
        self.levels: list[TrailLevel] = []
        self.by_ident: dict[int, TrailLevel] = {}
        # Entries ``-stop << 40 | ident`` so that the highest stop is the heap minimum.
        self.level_heap: list[int] = []
        self.next_ident = 1
        # Level count after the last clean-up; the stack is rebuilt when it doubles.
        self.live_levels = 0

    def _new_level(self, best: int) -> TrailLevel:
        level = TrailLevel(best, self.next_ident)
        self.next_ident += 1
        self.by_ident[level.ident] = level
        self.levels.append(level)
        return level

    def attach(self, quote: int) -> TrailLevel:
        """Return the level for a position opening now, the current signed quote `quote`."""
        levels = self.levels
        level = levels[-1] if levels and levels[-1].best == quote else self._new_level(quote)
        level.members += 1
        return level

    def detach(self, position: Position) -> None:
        """Forget a position that closed; drop levels left without members."""
        level = position.level.root()
        level.members -= 1
        levels = self.levels
        while levels and levels[-1].members == 0:
            del self.by_ident[levels.pop().ident]
        if len(levels) > 2 * self.live_levels + _MIN_COMPACT:
            self._drop_empty_levels()

    def _drop_empty_levels(self) -> None:
        kept: list[TrailLevel] = []
        for level in self.levels:
            if level.members > 0:
                kept.append(level)
            else:
                del self.by_ident[level.ident]
        self.levels = kept
        self.live_levels = len(kept)
        self.level_heap = [
            ((-level.gkey) << 40) | level.ident for level in kept if level.gkey is not None
        ]
        heapify(self.level_heap)

    def restore_level(self, best: int) -> TrailLevel:
        """Return the level for a restored position whose best price is `best`.

        Positions must be restored in decreasing `best` order.
        """
        levels = self.levels
        if levels and levels[-1].best < best:
            raise ValueError("trailing levels must be restored in decreasing best-price order")
        level = levels[-1] if levels and levels[-1].best == best else self._new_level(best)
        level.members += 1
        return level

    def _live(self, entry: int, level: TrailLevel) -> bool:
        """Return True when `entry` in root `level` is still its position's trailing stop.

        A position whose trailing distance was set again moved to another level; the entry
        it left behind here is then stale even when the distance is the same.
        """
        position = self.positions.get(entry & _KEY_MASK)
        if position is None or position.trail != (entry >> _TRAIL_KEY_SHIFT):
            return False
        home = position.level
        return home is level or home.root() is level

    def _top_stop(self, level: TrailLevel) -> int | None:
        heap = level.heap
        while heap and not self._live(heap[0], level):
            heappop(heap)
        if not heap:
            return None
        return level.best - (heap[0] >> _TRAIL_KEY_SHIFT)

    def _publish(self, level: TrailLevel) -> None:
        stop = self._top_stop(level)
        if stop is not None and stop != level.gkey:
            heappush(self.level_heap, ((-stop) << 40) | level.ident)
            if len(self.level_heap) > 2 * len(self.by_ident) + _MIN_COMPACT:
                level.gkey = stop
                self._drop_empty_levels()
        level.gkey = stop

    def add_trailing(self, position: Position) -> None:
        """Index a position whose trailing distance was just set to a nonzero value."""
        level = position.level.root()
        heappush(level.heap, (position.trail << _TRAIL_KEY_SHIFT) | position.key)
        stop = level.best - position.trail
        if level.gkey is None or stop > level.gkey:
            heappush(self.level_heap, ((-stop) << 40) | level.ident)
            level.gkey = stop

    def add_trailing_unordered(self, position: Position) -> None:
        """Append a trailing position without heap order; call `heapify_all` afterwards."""
        position.level.root().heap.append((position.trail << _TRAIL_KEY_SHIFT) | position.key)

    def heapify_all(self) -> None:
        """Restore heap order of every level and publish each level's highest stop."""
        self.live_levels = len(self.levels)
        for level in self.levels:
            heapify(level.heap)
            level.gkey = None
            self._publish(level)

    def on_quote(self, quote: int) -> None:
        """Raise the best price of every level below `quote` to it (merge them)."""
        levels = self.levels
        if not levels or levels[-1].best >= quote:
            return
        merged: list[TrailLevel] = []
        while levels and levels[-1].best < quote:
            merged.append(levels.pop())
        target = self._new_level(quote)
        for level in merged:
            level.parent = target
            target.members += level.members
            del self.by_ident[level.ident]
            small, large = level.heap, target.heap
            if len(small) > len(large):
                small, large = large, small
            for entry in small:
                if self._live(entry, target):
                    heappush(large, entry)
            target.heap = large
            level.heap = []
            level.gkey = None
        self._publish(target)

    def pop_fired(self, quote: int, out: list[int]) -> None:
        """Append the key of every trailing position whose stop the quote reached."""
        heap = self.level_heap
        while heap:
            entry = heap[0]
            stop = -(entry >> 40)
            if stop < quote:
                return
            heappop(heap)
            level = self.by_ident.get(entry & ((1 << 40) - 1))
            if level is None or level.gkey != stop:
                continue
            current = self._top_stop(level)
            if current is not None and current >= quote:
                # Fire every distance d with quote <= best - d.
                limit = level.best - quote
                theap = level.heap
                while theap and (theap[0] >> _TRAIL_KEY_SHIFT) <= limit:
                    fired = heappop(theap)
                    if self._live(fired, level):
                        out.append(fired & _KEY_MASK)
            level.gkey = None
            self._publish(level)

    def level_count(self) -> int:
        """Return the number of unmerged levels (for tests)."""
        return len(self.levels)
