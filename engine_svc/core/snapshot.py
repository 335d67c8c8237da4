"""The canonical encoding of the whole state: snapshots and digests.

A snapshot is a JSON header line (format, version, last_seq) followed by the state encoding;
the digest is the sha256 of the state encoding, so it leaves `last_seq` out. `restore` reads
it back.

State encoding: JSON length (8 bytes) + JSON of the small state and the positions' client
order ids + position count (8 bytes) + one integer column per position field, in position key
order (account and symbol as indexes into the sorted id lists) + spot length (8 bytes) + the
spot exchange's canonical encoding (`spot.state.encode_state`).

The snapshot version is set in one place, `SNAPSHOT_VERSION` below, with what each version
added; `restore` reads every version in `READABLE_VERSIONS`.
"""

from __future__ import annotations

import hashlib
from typing import Final

from .codec import CodecError, dumps_canonical, encode_payload, pack_int_column
from .enums import MarginMode, PositionMode
from .ledger import Ledger
from .spot.codec import encode_payload as encode_spot_payload
from .spot.state import encode_state as encode_spot_state
from .spot.views import BalanceView, SpotOrderView, SpotPlacement
from .state import StoredPayload
from .views import TransferView

SNAPSHOT_FORMAT: Final = "cfd-core-snapshot"
# Version 2 binds each stored client_order_id to its request kind and target; version 1
# snapshots still load (`restore` infers the binding). Version 3 adds the spot exchange;
# older snapshots load with an empty one. Version 4 adds margin modes: a cross account's row
# carries its mode, levels, margin call state and number (an isolated account's row is as in
# version 3, so a state without cross accounts has the same digest as before). Version 5 adds
# position modes and swaps and commissions: a netting account's row ends with its mode (a
# hedging account's row is as in version 4); an instrument row with charges carries its four
# rates (swap long, swap short, commission per million, commission per lot) and, when the
# commission per lot is not zero, the contract size it is charged per (units, decimals);
# every position has swap and commission columns; the state ends with an 8th section, the
# last rollover day charged. Older snapshots restore every account as hedging, with no
# charges, no rollover charged and positions that accumulated none. Version 6 adds
# cross-shard transfers: a state with any ends with a 9th section (the transfers sent, each
# with 1 while in flight, and the transfers received), so a state without transfers has the
# same digest as in version 5; older snapshots restore with none.
SNAPSHOT_VERSION: Final = 6
READABLE_VERSIONS: Final = (1, 2, 3, 4, 5, 6)
# Position columns from version 5 on, and before it (no swap and commission columns).
POSITION_COLUMNS: Final = 17
LEGACY_POSITION_COLUMNS: Final = 15


def encode_receipt_payload(payload: StoredPayload) -> list[object]:
    """Return a stored result payload of either part of the core as a JSON-ready row."""
    if isinstance(payload, SpotPlacement | SpotOrderView | BalanceView):
        return encode_spot_payload(payload)
    return encode_payload(payload)


def _small_state(ledger: Ledger) -> list[object]:
    """Return everything but the positions as canonical JSON-ready rows."""
    instruments = [
        [
            i.symbol,
            i.tick_units,
            i.price_decimals,
            i.lot_units,
            i.quantity_decimals,
            i.max_leverage,
            i.maintenance_num,
            i.maintenance_den,
            *([] if i.charges.is_free else i.charges.row()),
            *([i.contract_units, i.contract_decimals] if i.charges.commission_per_lot else []),
        ]
        for i in ledger.instruments.values()
    ]
    quotes = [[q.symbol, q.bid, q.ask, q.seq, q.ts] for _, q in sorted(ledger.quotes.items())]
    accounts: list[object] = []
    for account_id in sorted(ledger.accounts):
        account = ledger.accounts[account_id]
        receipts = [
            [coid, receipt.kind, receipt.target, encode_receipt_payload(receipt.payload)]
            for coid, receipt in sorted(account.receipts.items())
        ]
        row: list[object] = [account_id, account.balance, account.used_margin, receipts]
        if account.cross:
            row.extend(
                [
                    MarginMode.CROSS.value,
                    account.margin_call_level,
                    account.stop_out_level,
                    1 if account.margin_call else 0,
                    account.number,
                ]
            )
        if account.netting:
            row.append(PositionMode.NETTING.value)
        accounts.append(row)
    orders = [
        [
            o.key,
            o.account_id,
            o.symbol,
            1 if o.is_buy else 0,
            1 if o.is_limit else 0,
            o.trigger,
            o.leverage,
            o.quantity,
            o.margin,
            o.tp,
            o.sl,
            o.trail,
            o.expire,
            o.create_ts,
            o.client_order_id,
        ]
        for o in (ledger.orders[key] for key in sorted(ledger.orders))
    ]
    return [instruments, ledger.house_balance, ledger.total_deposits, quotes, accounts, orders]


def _transfer_section(ledger: Ledger) -> list[object]:
    """Return the transfers section in a list, or an empty list when there are none."""
    if not ledger.transfers_out and not ledger.transfers_in:
        return []
    sent = [
        [*_transfer_row(view), 1 if key in ledger.in_flight else 0]
        for key, view in sorted(ledger.transfers_out.items())
    ]
    received = [_transfer_row(view) for _, view in sorted(ledger.transfers_in.items())]
    return [[sent, received]]


def _transfer_row(view: TransferView) -> list[object]:
    return [view.transfer_id, view.account_id, view.amount, view.direction.value, view.peer_shard]


def state_parts(ledger: Ledger) -> list[bytes]:
    """Return the canonical encoding of the whole state except `last_seq`, in pieces.

    The pieces are hashed or joined by the caller, so the 100 MB of columns of a large state
    are built once and never copied for the digest.
    """
    owners = {account_id: index for index, account_id in enumerate(sorted(ledger.accounts))}
    symbols = {symbol: index for index, symbol in enumerate(ledger.instruments)}
    positions = ledger.positions
    # Positions are mostly created in key order, so this sort is close to linear.
    ordered = [positions[key] for key in sorted(positions)]
    coids = [[p.key, p.client_order_id] for p in ordered if p.client_order_id is not None]
    small = dumps_canonical(
        [*_small_state(ledger), coids, ledger.last_rollover, *_transfer_section(ledger)]
    )
    buys = [1 if p.is_buy else 0 for p in ordered]
    # The best price since open lives in the position's trailing level (its root after
    # merges); a level that was never merged is its own root, so skip the call then.
    roots = [p.level if p.level.parent is None else p.level.root() for p in ordered]
    bests = [level.best if buy else -level.best for level, buy in zip(roots, buys, strict=True)]
    columns: list[list[int]] = [
        [p.key for p in ordered],
        [owners[p.account_id] for p in ordered],
        [symbols[p.symbol] for p in ordered],
        buys,
        [p.quantity for p in ordered],
        [p.leverage for p in ordered],
        [p.entry for p in ordered],
        [p.margin for p in ordered],
        [p.tp for p in ordered],
        [p.sl for p in ordered],
        [p.trail for p in ordered],
        bests,
        [p.open_seq for p in ordered],
        [p.open_ts for p in ordered],
        [p.order_key for p in ordered],
        [p.swap for p in ordered],
        [p.commission for p in ordered],
    ]
    parts = [len(small).to_bytes(8, "big"), small, len(ordered).to_bytes(8, "big")]
    parts.extend(pack_int_column(column) for column in columns)
    spot = encode_spot_state(ledger.spot)
    parts.append(len(spot).to_bytes(8, "big"))
    parts.append(spot)
    return parts


def snapshot_parts(ledger: Ledger) -> list[bytes]:
    """Return the snapshot in pieces: the header line, then the state encoding."""
    header = dumps_canonical(
        {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "last_seq": ledger.last_seq}
    )
    return [header + b"\n", *state_parts(ledger)]


def digest_parts(parts: list[bytes]) -> str:
    """Return the sha256 hex digest of the pieces joined."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def snapshot_digest(data: bytes | list[bytes]) -> str:
    """Return the `Core.digest` of the state a snapshot holds, without restoring it.

    `data` is `Core.snapshot()` bytes or `Core.snapshot_parts()` pieces. The digest is the
    sha256 of the state encoding after the header line; this does not check that the snapshot
    is valid (`Core.restore` does).
    """
    if isinstance(data, list):
        if not data or not data[0].endswith(b"\n") or data[0].count(b"\n") != 1:
            raise CodecError("snapshot pieces must start with the header line")
        return digest_parts(data[1:])
    view = memoryview(data)
    newline = bytes(view[:4096]).find(b"\n")
    if newline < 0:
        raise CodecError("not a core snapshot of a supported version")
    return hashlib.sha256(view[newline + 1 :]).hexdigest()
