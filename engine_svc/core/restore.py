"""Rebuild a ledger, indexes included, from the bytes `snapshot` wrote; reject anything else."""

from __future__ import annotations

from collections.abc import Callable

from .charges import Charges
from .codec import CodecError, decode_payload, loads_strict, unpack_int_column
from .enums import MarginMode, OrderStatus, PositionMode
from .indexes import (
    ASK_ABOVE,
    ASK_BELOW,
    BID_ABOVE,
    BID_BELOW,
    KEY_SHIFT,
    KIND_LIQUIDATION,
    KIND_STOP_LOSS,
    KIND_TAKE_PROFIT,
    MAX_KEY,
    PRICE_SHIFT,
    TRAIL_KEY_SHIFT,
)
from .instruments import Instrument
from .ledger import Ledger
from .margin import reindex
from .money import cross_equity
from .orders import index_order
from .snapshot import (
    LEGACY_POSITION_COLUMNS,
    POSITION_COLUMNS,
    READABLE_VERSIONS,
    SNAPSHOT_FORMAT,
)
from .spot.codec import decode_payload as decode_spot_payload
from .spot.enums import TransferDirection
from .spot.markets import QUOTE_ASSET
from .spot.state import restore_state as restore_spot_state
from .state import (
    LEGACY_POSITION_EDIT,
    Account,
    Order,
    Position,
    Receipt,
    StoredPayload,
    TrailLevel,
)
from .views import AccountSummary, ClosedPosition, OrderView, QuoteView, TransferView


def restore(data: bytes, new_ledger: Callable[[dict[str, Instrument]], Ledger]) -> Ledger:
    """Return `new_ledger(instruments)` filled from snapshot bytes; raise `CodecError`."""
    header_bytes, newline, body = bytes(data).partition(b"\n")
    header = loads_strict(header_bytes)
    if (
        not newline
        or not isinstance(header, dict)
        or header.get("format") != SNAPSHOT_FORMAT
        or type(header.get("version")) is not int
        or header.get("version") not in READABLE_VERSIONS
    ):
        raise CodecError("not a core snapshot of a supported version")
    last_seq = header.get("last_seq")
    if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
        raise CodecError("snapshot last_seq must be a non-negative integer")
    try:
        return _restore_state(new_ledger, last_seq, header["version"], body)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AssertionError) as error:
        raise CodecError(f"inconsistent snapshot: {error}") from None


def _ints(row: list[object], start: int, stop: int) -> list[int]:
    values: list[int] = []
    for value in row[start:stop]:
        if not isinstance(value, int) or isinstance(value, bool):
            raise CodecError("snapshot field must be an integer")
        values.append(value)
    return values


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise CodecError("snapshot field must be a string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _symbol(ledger: Ledger, value: object) -> str:
    symbol = _text(value)
    if symbol not in ledger.instruments:
        raise CodecError(f"snapshot names the unknown symbol {symbol!r}")
    return symbol


def _rows(value: object) -> list[list[object]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise CodecError("snapshot section must be a list of rows")
    return value


_SPOT_PAYLOAD_TAGS = frozenset({"SpotPlacement", "SpotOrderView", "BalanceView"})


def _receipt_payload(row: object) -> StoredPayload:
    """Return a stored payload of either part of the core from its snapshot row."""
    if isinstance(row, list) and row and row[0] in _SPOT_PAYLOAD_TAGS:
        return decode_spot_payload(row)
    return decode_payload(row)


def _restore_receipt(row: list[object], version: int) -> tuple[str, Receipt]:
    """Return a client_order_id and its receipt from a snapshot row of `version`."""
    client_order_id = _text(row[0])
    if version >= 2:
        return client_order_id, Receipt(_text(row[1]), _text(row[2]), _receipt_payload(row[3]))
    # Version 1 stored the payload alone; its type and content name the request.
    payload = decode_payload(row[1])
    if isinstance(payload, AccountSummary):
        return client_order_id, Receipt("Deposit", "", payload)
    if isinstance(payload, ClosedPosition):
        return client_order_id, Receipt("ClosePosition", payload.position_id, payload)
    if isinstance(payload, OrderView):
        if payload.status is OrderStatus.PENDING:
            return client_order_id, Receipt("PlaceOrder", "", payload)
        return client_order_id, Receipt("CancelOrder", payload.id, payload)
    # A position's own open stored the key on the position; any other stored view is an
    # AddMargin or ModifyPosition of it.
    if payload.client_order_id == client_order_id:
        return client_order_id, Receipt("OpenPosition", "", payload)
    return client_order_id, Receipt(LEGACY_POSITION_EDIT, payload.id, payload)


def _restore_positions(ledger: Ledger, columns: list[list[int]], coids: dict[int, str]) -> None:
    """Rebuild positions and their indexes in bulk.

    Positions are visited once, in decreasing best price per symbol and side (the order
    trailing levels must be rebuilt in); heap entries are appended and every heap is
    heapified once at the end.
    """
    owners = sorted(ledger.accounts)
    symbols = list(ledger.instruments)
    positions = ledger.positions
    (keys, owner_ids, symbol_ids, buys, quantities, leverages, entries, margins) = columns[:8]
    (tps, sls, trails, bests, open_seqs, open_tss, order_keys) = columns[8:15]
    swaps, commissions = columns[15:]
    if len(set(keys)) != len(keys) or (keys and not 0 < min(keys) <= max(keys) <= MAX_KEY):
        raise CodecError("position keys must be distinct and in range")
    # A swap may take an isolated position's whole margin, so a margin may be 0.
    if min(quantities, default=1) < 1 or min(margins, default=0) < 0:
        raise CodecError("positions must have a positive quantity and no negative margin")
    if min(commissions, default=0) < 0:
        raise CodecError("positions must have no negative commission")
    if min(owner_ids, default=0) < 0 or min(symbol_ids, default=0) < 0 or not set(buys) <= {0, 1}:
        raise CodecError("position account, symbol or side out of range")
    # Trailing levels are rebuilt per symbol and side from the best price down: sort by the
    # signed best price (the long side's best bid, the short side's negated best ask).
    signed_bests = [best if buy == 1 else -best for best, buy in zip(bests, buys, strict=True)]
    order = sorted(range(len(keys)), key=signed_bests.__getitem__, reverse=True)
    account_list = [ledger.accounts[owner] for owner in owners]
    instrument_list = [ledger.instruments[symbol] for symbol in symbols]
    book_list = [ledger.books[symbol] for symbol in symbols]
    # First pass, in best-price order, touching only three columns: each position's level.
    trail_books = [(book.short_trail, book.long_trail) for book in book_list]
    level_of: list[TrailLevel | None] = [None] * len(keys)
    for index in order:
        trail_book = trail_books[symbol_ids[index]][buys[index]]
        signed = signed_bests[index]
        levels = trail_book.levels
        if levels and levels[-1].best == signed:
            level = levels[-1]
            level.members += 1
        else:
            level = trail_book.restore_level(signed)
        level_of[index] = level
    # Second pass, in key order: the columns are read sequentially, which keeps a million
    # positions from costing a cache miss per field.
    used = [0] * len(account_list)
    price_shift = PRICE_SHIFT
    key_shift = KEY_SHIFT
    trail_shift = TRAIL_KEY_SHIFT
    for (
        key, owner_id, symbol_id, buy_flag, quantity, leverage, entry, margin, tp, sl, trail,
        open_seq, open_ts, order_key, level, swap, commission,
    ) in zip(
        keys, owner_ids, symbol_ids, buys, quantities, leverages, entries, margins, tps, sls,
        trails, open_seqs, open_tss, order_keys, level_of, swaps, commissions, strict=True,
    ):  # fmt: skip
        assert level is not None
        account = account_list[owner_id]
        used[owner_id] += margin
        instrument = instrument_list[symbol_id]
        buy = buy_flag == 1
        position = Position(
            key, account.account_id, instrument.symbol, buy, quantity, leverage, entry, margin,
            open_seq, open_ts, coids.get(key), order_key, level,
        )  # fmt: skip
        position.tp = tp
        position.sl = sl
        position.trail = trail
        position.swap = swap
        position.commission = commission
        positions[key] = position
        account.positions[key] = position
        if account.cross:
            # A cross position has no liquidation price of its own (`positions`).
            _index_cross_stops(book_list[symbol_id].heaps, position, key << key_shift)
            if trail:
                level.heap.append((trail << trail_shift) | key)
            continue
        # As `positions.liquidation_price`, inlined.
        maintenance = 0
        if instrument.maintenance_num:
            maintenance = instrument.maintenance_ceil_micros(entry, quantity)
            position.maintenance = maintenance
        move = instrument.ticks_floor_for_money(margin - maintenance, quantity)
        shifted_key = key << key_shift
        heaps = book_list[symbol_id].heaps
        # As `SymbolBook.push_unordered`, inlined: below-heaps hold the negated price.
        if buy:
            liq = position.liq = entry - move
            heaps[BID_BELOW].append(((-liq) << price_shift) | shifted_key | KIND_LIQUIDATION)
            if sl:
                heaps[BID_BELOW].append(((-sl) << price_shift) | shifted_key | KIND_STOP_LOSS)
            if tp:
                heaps[BID_ABOVE].append((tp << price_shift) | shifted_key | KIND_TAKE_PROFIT)
        else:
            liq = position.liq = entry + move
            heaps[ASK_ABOVE].append((liq << price_shift) | shifted_key | KIND_LIQUIDATION)
            if sl:
                heaps[ASK_ABOVE].append((sl << price_shift) | shifted_key | KIND_STOP_LOSS)
            if tp:
                heaps[ASK_BELOW].append(((-tp) << price_shift) | shifted_key | KIND_TAKE_PROFIT)
        if trail:
            # As `TrailBook.add_trailing_unordered`; `level` is a root while restoring.
            level.heap.append((trail << trail_shift) | key)
    for account, margin_sum in zip(account_list, used, strict=True):
        if account.used_margin != margin_sum:
            raise CodecError(f"account {account.account_id}: used margin != sum of margins")
        if account.netting and len({p.symbol for p in account.positions.values()}) != len(
            account.positions
        ):
            raise CodecError(f"netting account {account.account_id} has two positions on a symbol")
    for book in ledger.books.values():
        book.heapify_all()


def _index_cross_stops(heaps: list[list[int]], position: Position, shifted_key: int) -> None:
    """Append a cross position's stop loss and take profit entries, as `_restore_positions`."""
    tp = position.tp
    sl = position.sl
    if position.is_buy:
        if sl:
            heaps[BID_BELOW].append(((-sl) << PRICE_SHIFT) | shifted_key | KIND_STOP_LOSS)
        if tp:
            heaps[BID_ABOVE].append((tp << PRICE_SHIFT) | shifted_key | KIND_TAKE_PROFIT)
    else:
        if sl:
            heaps[ASK_ABOVE].append((sl << PRICE_SHIFT) | shifted_key | KIND_STOP_LOSS)
        if tp:
            heaps[ASK_BELOW].append(((-tp) << PRICE_SHIFT) | shifted_key | KIND_TAKE_PROFIT)


def _restore_account(row: list[object], version: int) -> Account:
    """Return an account (without positions and orders) from its snapshot row."""
    account = Account(_text(row[0]), 0)
    account.balance, account.used_margin = _ints(row, 1, 3)
    for stored in _rows(row[3]):
        client_order_id, receipt = _restore_receipt(stored, version)
        account.receipts[client_order_id] = receipt
    if len(row) in (5, 10) and row[-1] == PositionMode.NETTING.value:
        if version < 5:
            raise CodecError("snapshot account row is malformed")
        account.netting = True
        row = row[:-1]
    if len(row) == 4:
        return account
    if version < 4 or len(row) != 9 or row[4] != MarginMode.CROSS.value:
        raise CodecError("snapshot account row is malformed")
    call, stop, active, number = _ints(row, 5, 9)
    if not 0 <= stop <= call or active not in (0, 1) or not 0 < number <= MAX_KEY:
        raise CodecError("snapshot cross account levels are out of range")
    account.cross = True
    account.margin_call_level = call
    account.stop_out_level = stop
    account.margin_call = active == 1
    account.number = number
    return account


def _transfer_view(row: list[object]) -> TransferView:
    transfer_id, account_id = _text(row[0]), _text(row[1])
    amount, peer = _ints(row, 2, 3)[0], _ints(row, 4, 5)[0]
    try:
        direction = TransferDirection(_text(row[3]))
    except ValueError:
        raise CodecError("snapshot transfer direction is unknown") from None
    if amount <= 0 or peer < 0:
        raise CodecError("snapshot transfer row is malformed")
    return TransferView(transfer_id, account_id, amount, direction, peer)


def _restore_transfers(ledger: Ledger, section: object) -> None:
    """Fill the transfers sent and received from the snapshot's transfers section."""
    if not isinstance(section, list) or len(section) != 2:
        raise CodecError("snapshot transfers section is malformed")
    sent, received = section
    for row in _rows(sent):
        if len(row) != 6 or row[5] not in (0, 1) or isinstance(row[5], bool):
            raise CodecError("snapshot sent transfer row is malformed")
        view = _transfer_view(row)
        ledger.transfers_out[view.transfer_id] = view
        ledger.transfers_sent += view.amount
        if row[5] == 1:
            ledger.in_flight[view.transfer_id] = view
    for row in _rows(received):
        if len(row) != 5:
            raise CodecError("snapshot received transfer row is malformed")
        view = _transfer_view(row)
        ledger.transfers_in[view.transfer_id] = view
        ledger.transfers_received += view.amount
    for view in (*ledger.transfers_out.values(), *ledger.transfers_in.values()):
        if view.account_id not in ledger.accounts:
            raise CodecError("snapshot has a transfer of an unknown account")


def _restore_state(
    new_ledger: Callable[[dict[str, Instrument]], Ledger], last_seq: int, version: int, body: bytes
) -> Ledger:
    small_end = 8 + int.from_bytes(body[:8], "big")
    if len(body) < small_end + 8:
        raise CodecError("truncated snapshot")
    state = loads_strict(body[8:small_end])
    count = int.from_bytes(body[small_end : small_end + 8], "big")
    offset = small_end + 8
    columns: list[list[int]] = []
    for _ in range(POSITION_COLUMNS if version >= 5 else LEGACY_POSITION_COLUMNS):
        column, offset = unpack_int_column(body, offset, count)
        columns.append(column)
    if version < 5:
        # Before swaps and commissions, positions accumulated none.
        columns.extend([[0] * count, [0] * count])
    spot_body = b""
    if version >= 3:
        spot_end = offset + 8 + int.from_bytes(body[offset : offset + 8], "big")
        if spot_end > len(body):
            raise CodecError("truncated snapshot")
        spot_body = body[offset + 8 : spot_end]
        offset = spot_end
    if offset != len(body):
        raise CodecError("trailing bytes after the snapshot")
    sections = 8 if version >= 5 else 7
    if not isinstance(state, list) or not (
        len(state) == sections or (version >= 6 and len(state) == 9)
    ):
        raise CodecError(f"snapshot state must have {sections} sections")
    instruments: dict[str, Instrument] = {}
    for row in _rows(state[0]):
        symbol = _text(row[0])
        charges = Charges()
        contract_units, contract_decimals = 1, 0
        if len(row) in (12, 14) and version >= 5:
            charges = Charges(*_ints(row, 8, 12))
            # The contract size is held exactly when the commission per lot depends on it.
            if (len(row) == 14) != (charges.commission_per_lot != 0) or charges.is_free:
                raise CodecError("snapshot instrument row is malformed")
            if len(row) == 14:
                contract_units, contract_decimals = _ints(row, 12, 14)
        elif len(row) != 8:
            raise CodecError("snapshot instrument row is malformed")
        tick, price_decimals, lot, quantity_decimals, leverage, m_num, m_den = _ints(row, 1, 8)
        instruments[symbol] = Instrument.create(
            symbol, tick, price_decimals, lot, quantity_decimals, leverage, m_num, m_den,
            contract_units, contract_decimals, charges,
        )  # fmt: skip
    ledger = new_ledger(instruments)
    ledger.last_seq = last_seq
    if version >= 5:
        (ledger.last_rollover,) = _ints(state, 7, 8)
        if ledger.last_rollover < 0:
            raise CodecError("snapshot last rollover day must not be negative")
    if spot_body:
        ledger.spot = restore_spot_state(spot_body)
        ledger.spot.keeps_results = False
        ledger.spot.last_seq = last_seq
    house, deposits = _ints(state, 1, 3)
    ledger.house_balance = house
    ledger.total_deposits = deposits
    for row in _rows(state[3]):
        symbol = _symbol(ledger, row[0])
        bid, ask, seq, ts = _ints(row, 1, 5)
        ledger.quotes[symbol] = QuoteView(symbol, bid, ask, seq, ts)
    for row in _rows(state[4]):
        account = _restore_account(row, version)
        ledger.accounts[account.account_id] = account
        if account.cross:
            if account.number in ledger.cross_accounts:
                raise CodecError("snapshot has two cross accounts with one number")
            ledger.cross_accounts[account.number] = account
    coids: dict[int, str] = {}
    for row in _rows(state[6]):
        coids[_ints(row, 0, 1)[0]] = _text(row[1])
    _restore_positions(ledger, columns, coids)
    for row in _rows(state[5]):
        (key,) = _ints(row, 0, 1)
        symbol = _symbol(ledger, row[2])
        account = ledger.accounts[_text(row[1])]
        is_buy, is_limit, trigger, leverage, quantity, margin, tp, sl, trail, expire, create = (
            _ints(row, 3, 14)
        )
        order = Order(
            key=key,
            account_id=account.account_id,
            symbol=symbol,
            is_buy=is_buy == 1,
            is_limit=is_limit == 1,
            trigger=trigger,
            leverage=leverage,
            quantity=quantity,
            margin=margin,
            tp=tp,
            sl=sl,
            trail=trail,
            expire=expire,
            create_ts=create,
            client_order_id=_optional_text(row[14]),
        )
        ledger.orders[key] = order
        account.orders[key] = order
        index_order(ledger, order)
    if len(state) == 9:
        _restore_transfers(ledger, state[8])
    spot = ledger.spot
    if not spot.accounts.keys() <= ledger.accounts.keys():
        raise CodecError("snapshot has spot wallets of unknown accounts")
    held, fees, transferred = spot.asset_totals(QUOTE_ASSET)
    if held + fees != transferred:
        raise CodecError("snapshot does not conserve the spot USD")
    money = sum(account.funds() for account in ledger.accounts.values())
    net = ledger.transfers_received - ledger.transfers_sent
    if money + ledger.house_balance + transferred != ledger.total_deposits + net:
        raise CodecError("snapshot does not conserve money")
    for number in sorted(ledger.cross_accounts):
        # Derived state: a cross position without a quote fails here as a KeyError.
        account = ledger.cross_accounts[number]
        reindex(ledger, account, cross_equity(ledger, account))
    return ledger
