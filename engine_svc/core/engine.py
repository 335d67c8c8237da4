"""`Core`: the one entry point that changes the state (`apply`) and the read queries.

`apply` checks the sequence number, looks up the command's route, checks its client_order_id
once for every command that has one, and calls the handler of the part of the core the
command belongs to; after an accepted command of a cross-margin account it reviews that
account (`cross`). The CFD part's rules live in `money`, `positions`, `orders` and
`triggers`; the spot part (order books, wallets, transfers) in `exchange_part` and the `spot`
package. The state is in `ledger`, the encoding in `snapshot` and `restore`. See the package
docstring for scales, trigger order and idempotency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .checks import MAX_TIME_NS, RejectionError, check_client_order_id, parse_id, type_error
from .commands import (
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
from .cross import review
from .events import Event
from .exchange_part import cancel_spot_order, deposit_asset, place_spot_order, transfer_funds
from .indexes import MAX_KEY
from .ledger import Ledger
from .money import create_account, deposit, find_account, summary
from .orders import cancel_order, expire_command, modify_order, order_view, place_order
from .positions import add_margin, close_position, modify_position, open_position, position_view
from .reasons import Reason
from .restore import restore
from .results import Result
from .snapshot import SNAPSHOT_VERSION, digest_parts, snapshot_digest, snapshot_parts, state_parts
from .spot.commands import CancelSpotOrder, PlaceSpotOrder
from .spot.markets import QUOTE_ASSET
from .state import STORED_PAYLOADS, Account, Receipt
from .swaps import charge_swaps
from .transfer_part import receive_transfer, send_transfer, settle_transfer
from .triggers import apply_quote
from .views import (
    AccountSummary,
    CoreStats,
    OrderView,
    PositionView,
    QuoteView,
    TransferView,
)

__all__ = ["SNAPSHOT_VERSION", "Core", "SequenceError", "snapshot_digest"]


class SequenceError(ValueError):
    """A command's seq is not an integer above the last applied one (a caller bug)."""


class Route:
    """How `Core.apply` runs one command type.

    A command with a client_order_id names its `kind` (the type name its key binds to) and
    the field holding its `target` ("" when the command creates its object); its handler
    takes the account too. A command without one has an empty `kind`.
    """

    __slots__ = ("handler", "kind", "target")

    def __init__(self, handler: Callable[..., Result], kind: str = "", target: str = "") -> None:
        self.handler = handler
        self.kind = kind
        self.target = target


# Each part of the core contributes the routes of its commands; one dictionary lookup
# dispatches a command. The kinds are stored with each client_order_id in snapshots, so they
# are spelled out rather than taken from the class names.
_CFD_ROUTES: Final[dict[type, Route]] = {
    ApplyQuote: Route(apply_quote),
    ExpireOrders: Route(expire_command),
    ChargeSwaps: Route(charge_swaps),
    CreateAccount: Route(create_account),
    Deposit: Route(deposit, "Deposit"),
    OpenPosition: Route(open_position, "OpenPosition"),
    ClosePosition: Route(close_position, "ClosePosition", "position_id"),
    AddMargin: Route(add_margin, "AddMargin", "position_id"),
    ModifyPosition: Route(modify_position, "ModifyPosition", "position_id"),
    PlaceOrder: Route(place_order, "PlaceOrder"),
    CancelOrder: Route(cancel_order, "CancelOrder", "order_id"),
    ModifyOrder: Route(modify_order, "ModifyOrder", "order_id"),
}
_SPOT_ROUTES: Final[dict[type, Route]] = {
    TransferFunds: Route(transfer_funds, "TransferFunds"),
    DepositAsset: Route(deposit_asset, "DepositAsset"),
    PlaceSpotOrder: Route(place_spot_order, "PlaceSpotOrder"),
    CancelSpotOrder: Route(cancel_spot_order, "CancelSpotOrder", "order_id"),
}
# Cross-shard transfers carry their own transfer_id instead of a client_order_id.
_TRANSFER_ROUTES: Final[dict[type, Route]] = {
    SendTransfer: Route(send_transfer),
    ReceiveTransfer: Route(receive_transfer),
    SettleTransfer: Route(settle_transfer),
}
_ROUTES: Final[dict[type, Route]] = {**_CFD_ROUTES, **_SPOT_ROUTES, **_TRANSFER_ROUTES}


class Core(Ledger):
    """The whole trading state and the only code that changes it.

    Build it with the instrument configuration (API.md defaults when omitted), feed it
    commands in sequence order through `apply`, read it through the query methods.
    """

    __slots__ = ()

    def apply(self, command: Command) -> Result:
        """Apply one command; return its result. A rejection changes no state but `last_seq`.

        Raises `SequenceError` when `command.seq` is not above the last applied seq, and
        `TypeError` for an object that is not a command or a field that does not have its
        declared type (a caller bug: the codec and the service build well-typed commands;
        the mypyc-compiled core raises the same TypeError). Values of the right type that
        are out of range or inconsistent are rejections.
        """
        route = _ROUTES.get(type(command))
        if route is None:
            raise TypeError(f"not a core command: {type(command).__name__}")
        seq = command.seq
        ts = command.ts
        if type(seq) is not int or type(ts) is not int:
            raise type_error("seq and ts", "int", seq if type(seq) is not int else ts)
        if seq <= self.last_seq or seq > MAX_KEY:
            raise SequenceError(f"seq {seq!r} must be above {self.last_seq} and below 2**48")
        self.last_seq = seq
        try:
            if ts < 0 or ts > MAX_TIME_NS:
                raise RejectionError(Reason.VALIDATION_FAILED, "ts must be epoch nanoseconds", "ts")
            if not route.kind:
                return route.handler(self, command)
            # Every command with a kind has an account_id and a client_order_id.
            keyed: Any = command
            account = self.accounts.get(keyed.account_id)
            if account is None or keyed.client_order_id is not None:
                return self._apply_keyed(route, keyed, account)
            if account.cross:
                return self._run_cross(route, command, account)
            return route.handler(self, command, account)
        except RejectionError as rejection:
            return Result(rejection.reason, rejection.message, None, (), False, rejection.field)

    def _handle(self, route: Route, command: Any, account: Account) -> Result:
        """Run an account's command through `_run_cross` when the account is cross."""
        if account.cross:
            return self._run_cross(route, command, account)
        result: Result = route.handler(self, command, account)
        return result

    def _run_cross(self, route: Route, command: Any, account: Account) -> Result:
        """Run a cross account's command, then review the account (`cross.review`).

        The review's events follow the command's; a summary payload is taken after it.
        """
        result: Result = route.handler(self, command, account)
        events: list[Event] = []
        review(self, account, command.seq, command.ts, events)
        payload = result.payload
        if isinstance(payload, AccountSummary):
            payload = summary(self, account)
        elif not events:
            return result
        return Result(None, "", payload, (*result.events, *events), False)

    def _apply_keyed(self, route: Route, command: Any, account: Account | None) -> Result:
        """Run an account's command, returning the stored result of an exact repeat."""
        if account is None:
            account = find_account(self, command.account_id)
        client_order_id = command.client_order_id
        if client_order_id is None:
            return self._handle(route, command, account)
        check_client_order_id(client_order_id)
        target = getattr(command, route.target) if route.target else ""
        receipt = account.receipts.get(client_order_id)
        if receipt is not None:
            if not receipt.matches(route.kind, target):
                on = f" on {receipt.target}" if receipt.target else ""
                raise RejectionError(
                    Reason.IDEMPOTENCY_KEY_REUSED,
                    f"client_order_id {client_order_id!r} was already used for "
                    f"{receipt.kind}{on}",
                    "client_order_id",
                )
            return Result(None, "", receipt.payload, (), True)
        result = self._handle(route, command, account)
        payload = result.payload
        assert isinstance(payload, STORED_PAYLOADS)
        account.receipts[client_order_id] = Receipt(route.kind, target, payload)
        return result

    # ----------------------------------------------------------------- queries

    def account_summary(self, account_id: str) -> AccountSummary | None:
        """Return the API.md account figures, or None for an unknown account."""
        account = self.accounts.get(account_id)
        return None if account is None else summary(self, account)

    def _account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def list_positions(self, account_id: str) -> list[PositionView]:
        """Return an account's open positions (oldest first) with live unrealized PnL."""
        account = self._account(account_id)
        if account is None:
            return []
        return [position_view(self, account.positions[key]) for key in sorted(account.positions)]

    def get_position(self, account_id: str, position_id_text: str) -> PositionView | None:
        """Return one of the account's open positions, None if it has no such position."""
        account = self._account(account_id)
        if account is None:
            return None
        position = account.positions.get(parse_id(position_id_text, "p-"))
        return None if position is None else position_view(self, position)

    def list_orders(self, account_id: str) -> list[OrderView]:
        """Return an account's pending orders, oldest first."""
        account = self._account(account_id)
        if account is None:
            return []
        return [order_view(account.orders[key], 0) for key in sorted(account.orders)]

    def get_order(self, account_id: str, order_id_text: str) -> OrderView | None:
        """Return one of the account's pending orders, None if it has no such order."""
        account = self._account(account_id)
        if account is None:
            return None
        order = account.orders.get(parse_id(order_id_text, "o-"))
        return None if order is None else order_view(order, 0)

    def get_quote(self, symbol: str) -> QuoteView | None:
        """Return the last quote applied for a symbol."""
        return self.quotes.get(symbol)

    def list_quotes(self) -> list[QuoteView]:
        """Return the last quote of every symbol that has one, by symbol."""
        return [self.quotes[symbol] for symbol in sorted(self.quotes)]

    def has_account(self, account_id: str) -> bool:
        """Return True when the account exists."""
        return account_id in self.accounts

    def stats(self) -> CoreStats:
        """Return counts for monitoring."""
        spot_wallets, spot_fees, _ = self.spot.asset_totals(QUOTE_ASSET)
        return CoreStats(
            last_seq=self.last_seq,
            accounts=len(self.accounts),
            open_positions=len(self.positions),
            pending_orders=len(self.orders),
            house_balance=self.house_balance,
            total_deposits=self.total_deposits,
            spot_wallets=spot_wallets,
            spot_fees=spot_fees,
            transfers_sent=self.transfers_sent,
            transfers_received=self.transfers_received,
            transfers_in_flight=sum(view.amount for view in self.in_flight.values()),
        )

    def transfers_in_flight(self) -> list[TransferView]:
        """Return the transfers this shard sent and has not settled, by transfer id."""
        return [self.in_flight[key] for key in sorted(self.in_flight)]

    def sent_transfer(self, transfer_id: str) -> TransferView | None:
        """Return a transfer this shard sent, settled or not, or None."""
        return self.transfers_out.get(transfer_id)

    def received_transfer(self, transfer_id: str) -> TransferView | None:
        """Return a transfer this shard credited, or None."""
        return self.transfers_in.get(transfer_id)

    def total_user_money(self) -> int:
        """Return the sum over accounts of their funds (`Account.funds`)."""
        return sum(account.funds() for account in self.accounts.values())

    # ----------------------------------------------------------------- snapshots

    def digest(self) -> str:
        """Return the sha256 hex digest of the canonical state encoding (`last_seq` excluded)."""
        return digest_parts(state_parts(self))

    def snapshot(self) -> bytes:
        """Return the whole state, `last_seq` included, as bytes for `Core.restore`."""
        return b"".join(snapshot_parts(self))

    def snapshot_parts(self) -> list[bytes]:
        """Return `snapshot()` in pieces (joined they are the snapshot), without the copy.

        The first piece is the header line; `snapshot_digest` takes the pieces too, so a
        caller can hash, checksum and write them on another thread.
        """
        return snapshot_parts(self)

    def snapshot_with_digest(self) -> tuple[bytes, str]:
        """Return `snapshot()` and `digest()` from one encoding of the state.

        The snapshot is a header line followed by the canonical state encoding, and the
        digest is the sha256 of exactly that encoding, so one pass gives both.
        """
        parts = snapshot_parts(self)
        return b"".join(parts), digest_parts(parts[1:])

    @staticmethod
    def restore(data: bytes) -> Core:
        """Rebuild a core from `snapshot` bytes; raise `CodecError` for anything else."""
        core = restore(data, Core)
        assert isinstance(core, Core)
        return core
