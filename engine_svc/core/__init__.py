"""The pure trading core of the engine: exact, deterministic, standard library only.

Where things are
    `engine.Core.apply` is the one entry that changes state: it routes each command to the
    handler of its part of the core (the CFD part today) and checks its client_order_id once.
    `money` moves every balance, margin and house amount; `positions` opens, closes, adds
    margin to and modifies positions; `orders` places, cancels, expires and fills pending
    orders (their statuses follow `enums.ORDER_TRANSITIONS`); `triggers` applies quotes and
    fires what they cross, found through the price indexes in `indexes`; `checks` holds the
    input checks, `ledger` and `state` the state, `snapshot` and `restore` its encoding,
    `codec` the journal records, `units` the rounding helpers. Cross-margin accounts are
    reviewed by `cross` (margin call, stop-out) and indexed by `margin` (stop-out prices).

Scales
    Money is an integer number of micro-dollars (1e-6 USD). A price is an integer number of
    the instrument's ticks (BTCUSD 64250.15 is 6425015), a quantity an integer number of the
    instrument's lot steps (BTCUSD 0.0015 is 15), a trailing distance a number of ticks,
    leverage a plain integer, times Unix epoch nanoseconds. `decimals` (through
    `Instrument.parse_price`, `parse_quantity`, `format_*` and `parse_money`/`format_money`)
    is the only place that converts to and from decimal strings.

Rounding
    margin = notional / leverage rounded up; quantity from margin = margin x leverage / price
    rounded down to the lot step; released margin on a partial close rounded down (a full
    close releases all); PnL rounded toward -infinity (exact for the default instruments);
    maintenance margin = rate x entry notional rounded up; liquidation price rounded up to the
    tick for a buy and down for a sell; margin level in millionths of a percent rounded toward
    -infinity; a cross account's stop-out distance = equity - floor(stop-out level x used
    margin / 100); a cross position's stop-out price is exact (the last tick at or past which
    the account is stopped out).

Swaps and commissions (`charges`, `swaps`)
    An instrument may charge a commission per 1,000,000 USD of notional and per lot on every
    open and close (partial closes too), rounded up, paid to the house: out of the balance on
    an open (the margin check includes it), netted from the settlement on a close.
    `ChargeSwaps` (issued by the engine at each daily rollover, with the day, the rollover's
    moment and the multiplier) charges or credits each position opened by then its daily
    long or short swap rate times the entry notional times the multiplier, rounded toward
    -infinity (in the house's favour): an isolated position's margin moves (liquidated at
    once when the quote is past its new liquidation price), a cross account's balance moves.
    A day is charged once: a ChargeSwaps for a day not after the last one is rejected.

Margin modes
    An account is ISOLATED (API.md's rules) or CROSS, fixed by its CreateAccount. A cross
    account keeps margins out of its equity rather than its balance (free margin = balance +
    unrealized PnL - used margin), has no per-position liquidation, and after each of its
    commands and each quote that may move it (`margin`) is reviewed exactly (`cross.review`):
    a margin call event when equity x 100 <= margin call level x used margin and none is in
    effect; then, while equity x 100 <= stop-out level x used margin, a close of the position
    with the lowest unrealized PnL (the lowest key among equals) at the current quote, reason
    LIQUIDATION; the call ends when the level is above the margin call level or the account is
    flat. When its last position closes with a negative balance the house absorbs it.

Position modes
    An account is HEDGING (every open is a position of its own) or NETTING, fixed by its
    CreateAccount. A netting account holds at most one position per symbol; an open (market,
    or a pending order when it fills) on a symbol where it holds one trades into it
    (`positions.net_trade`), every check before any change:
    - same direction: the position grows. The trade must use the position's leverage
      (INVALID_LEVERAGE otherwise); its margin (notional / leverage rounded up) is reserved as
      an open's; the entry becomes the volume-weighted average (entry x quantity + fill x
      added) / (quantity + added), rounded against the holder (up for a buy, down for a
      sell); the liquidation price is recomputed; stops the trade gives replace the
      position's (a trailing distance then trails from the current quote), the others stay.
      Events: a MARGIN_RESERVED balance change (isolated) and PositionModified.
    - other direction, smaller: a partial close of the trade's quantity at its fill price,
      exactly as ClosePosition (reason USER, released margin rounded down, PnL, negative
      balance protection); the rest keeps its entry and stops, the trade's stops are not used.
    - other direction, equal: a full close, as ClosePosition.
    - other direction, larger: a full close, then a position of the remainder in the trade's
      direction at the same fill, with the trade's leverage, stops and key; its margin is
      checked against the free balance (or free margin) the close would leave.
    The payload is the position left open, or the close when none is; an order fill names in
    `position_id` the position it left open or closed.

Trigger order within one `ApplyQuote`
    1. Pending orders of every symbol whose expire time is <= the quote's ts expire, by
       (expire time, order key).
    2. The quote becomes the symbol's last quote; trailing best prices move.
    3. Every open position of the symbol whose liquidation, stop loss, trailing stop or take
       profit the quote crosses closes at this quote, in ascending position key (the seq that
       opened it, or the placing seq of its order). A position crossed by several triggers
       closes once, with the reason LIQUIDATION > STOP_LOSS > TRAILING_STOP > TAKE_PROFIT.
    4. Every cross account whose stop-out index price the quote reached, or that lost a
       position in step 3, is reviewed, in ascending account number (the seq that created
       it).
    5. Every pending order of the symbol that the quote triggers fills at this quote (or is
       REJECTED when the margin, quantity or stops check fails), in ascending order key; the
       margin check sees the balances after step 4 and after earlier fills. Then every cross
       account that an order filled for is reviewed, in ascending account number. Positions
       opened in step 5 are first evaluated by the next quote.

Choices where API.md leaves room
    - Liquidation fires when the quote reaches the liquidation price (API.md formula, rounded
      to the tick toward the entry), i.e. at or just before margin + PnL <= maintenance.
    - A position with several triggers crossed by one quote closes once (see above); a quote
      gapping through a trigger fills at the quote, and a loss beyond the released margin is
      borne by the house (`ClosedPosition.house_absorbed`).
    - A trailing stop tracks the best price since the position opened when its distance came
      with the open (or the order); a distance that ModifyPosition sets, changes or repeats
      restarts from the current quote (buy: bid - d, sell: ask + d) and tracks from there.
    - Pending orders reserve no margin. TP/SL are checked against the trigger price at
      placement and against the triggering quote at the fill; a margin-sized order gets its
      quantity at the fill price. A failed fill check makes the order REJECTED.
    - A limit must be strictly better than the current price (buy: below the ask, sell:
      above the bid) and a stop strictly worse; anything else is VALIDATION_FAILED.
    - A quantity below one lot step is QUANTITY_TOO_SMALL; ``DecimalFormatError.below_step``
      tells the service when a decimal string was positive but below the step.

Idempotency
    A client_order_id is unique per account across all mutating trading commands (and
    Deposit). The first *accepted* command stores its result, bound to the command's kind and
    target (the position or order id it acted on; none for OpenPosition, PlaceOrder and
    Deposit). A repeat of the same kind on the same target returns that stored result with
    ``duplicate=True`` and no events, whatever the repeat's other fields are; a repeat of
    another kind or on another target is rejected with IDEMPOTENCY_KEY_REUSED. Rejections are
    not stored (so a rejection changes nothing at all): repeating a rejected request
    evaluates it again. CreateAccount is idempotent by account id (a repeat returns
    the account's summary with ``duplicate=True``).

Commands, results, errors
    `Core.apply(command)` returns a `Result`: success (`reason` None, a `payload` view and the
    events) or a rejection (`reason`, `message`, nothing changed except `Core.last_seq`, which
    the digest excludes). Value problems are rejections; a field of the wrong Python type, a
    non-command, or a seq not above the last one raise TypeError / `SequenceError` (caller
    bugs; the codec only decodes well-typed commands). Ids are ``p-<seq>`` for positions
    (``p-<order seq>`` when opened by an order) and ``o-<seq>`` for orders.

Snapshots and digests
    `core.snapshot()` is a JSON header line (format, version, last_seq) followed by the
    canonical state encoding; `Core.restore(bytes)` rebuilds the core (indexes included) and
    raises `codec.CodecError` for corrupt input; `core.digest()` is the sha256 hex of the
    canonical encoding (everything but `last_seq`); `core.snapshot_with_digest()` gives both
    from one encoding (the digest is the sha256 of the snapshot after its header line), and an
    unknown format or version is rejected (version 1, written before client_order_id bindings,
    still loads; version 4 adds cross accounts, and a state without any encodes as in version
    3; version 5 adds swaps and commissions, and older versions load without any).
    `codec.encode_command` / `codec.decode_command` give canonical journal bytes for every
    command.

Compilation
    The package is plain typed Python; ``python bench/mypyc_build.py`` compiles a copy with
    mypyc into build/mypyc, used by putting that directory first on sys.path.

Usage::

    from engine_svc.core import ApplyQuote, Core, CreateAccount, OpenPosition, Side

    core = Core()  # API.md default instruments
    core.apply(CreateAccount(seq=1, ts=0, account_id="u1", initial_balance=5_000_000_000))
    core.apply(ApplyQuote(seq=2, ts=0, symbol="BTCUSD", bid=6425000, ask=6425100))
    result = core.apply(
        OpenPosition(seq=3, ts=0, account_id="u1", symbol="BTCUSD", side=Side.BUY,
                     leverage=10, quantity=10)
    )
    assert result.ok and result.payload is not None
    snapshot = core.snapshot()
    assert Core.restore(snapshot).digest() == core.digest()
"""

from __future__ import annotations

from .charges import NO_CHARGES, Charges, make_charges
from .checks import order_id, parse_id, position_id
from .commands import (
    CLEAR,
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ChargeSwaps,
    ClosePosition,
    Command,
    CreateAccount,
    Deposit,
    DepositAsset,
    ExpireOrders,
    ModifyOrder,
    ModifyPosition,
    OpenPosition,
    PlaceOrder,
    ReceiveTransfer,
    SendTransfer,
    SettleTransfer,
    TransferFunds,
)
from .decimals import DecimalFormatError, format_money, format_scaled, parse_money
from .engine import Core, SequenceError
from .enums import (
    BalanceKind,
    CloseReason,
    MarginMode,
    OrderStatus,
    OrderType,
    PositionMode,
    Side,
)
from .events import (
    AccountCreated,
    BalanceChanged,
    Event,
    MarginAdded,
    MarginCallReached,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionModified,
    PositionOpened,
    SwapCharged,
)
from .instruments import Instrument, default_instruments, make_instrument
from .reasons import Reason
from .results import Result
from .views import (
    AccountSummary,
    ClosedPosition,
    CoreStats,
    OrderView,
    PositionView,
    QuoteView,
    RolloverView,
    TransferView,
)

__all__ = [
    "CLEAR",
    "NO_CHARGES",
    "AccountCreated",
    "AccountSummary",
    "AddMargin",
    "ApplyQuote",
    "BalanceChanged",
    "BalanceKind",
    "CancelOrder",
    "ChargeSwaps",
    "Charges",
    "ClosePosition",
    "CloseReason",
    "ClosedPosition",
    "Command",
    "Core",
    "CoreStats",
    "CreateAccount",
    "DecimalFormatError",
    "Deposit",
    "DepositAsset",
    "Event",
    "ExpireOrders",
    "Instrument",
    "MarginAdded",
    "MarginCallReached",
    "MarginMode",
    "ModifyOrder",
    "ModifyPosition",
    "OpenPosition",
    "OrderCancelled",
    "OrderExpired",
    "OrderFilled",
    "OrderModified",
    "OrderPlaced",
    "OrderRejected",
    "OrderStatus",
    "OrderType",
    "OrderView",
    "PlaceOrder",
    "PositionClosed",
    "PositionMode",
    "PositionModified",
    "PositionOpened",
    "PositionView",
    "QuoteView",
    "Reason",
    "ReceiveTransfer",
    "Result",
    "RolloverView",
    "SendTransfer",
    "SequenceError",
    "SettleTransfer",
    "Side",
    "SwapCharged",
    "TransferFunds",
    "TransferView",
    "default_instruments",
    "format_money",
    "format_scaled",
    "make_charges",
    "make_instrument",
    "order_id",
    "parse_id",
    "parse_money",
    "position_id",
]
