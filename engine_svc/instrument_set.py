"""The engine's instruments: built from the configured specs and kept consistent with the data.

Prices and quantities in the journal and snapshots are tick and lot counts, and each journaled
command was accepted or rejected under some leverage cap and maintenance rate and charged
under some swap and commission rates, so replaying them under other parameters would rebuild
a different state. ``<data dir>/engine/
instruments.json`` records the instruments in effect; at start-up the configured set must
keep every recorded instrument, and the snapshot's, unchanged. New instruments are added.
The contract size is recorded too. It may change while the instrument charges no commission
per lot: quantities are held in the base currency, and only the request layer converts lots
to them. With a ``commission_per_lot`` the commission of every replayed open and close
depends on it (a commission per lot of the contract size), so it must stay as recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine_svc.core import (
    Charges,
    Core,
    Instrument,
    default_instruments,
    make_charges,
    make_instrument,
)
from engine_svc.core.indexes import SymbolBook
from mesh.config import ConfigError
from mesh.instruments import InstrumentSpec

INSTRUMENTS_FILE = "instruments.json"


class InstrumentChangeError(RuntimeError):
    """The configured instruments would replay the journal under other parameters."""


def spec_charges(spec: InstrumentSpec) -> Charges:
    """Return the swap and commission rates of a configured spec.

    `commission_per_lot` is per lot of the instrument's contract size (`spec.contract_size`,
    which the core instrument holds).
    """
    return make_charges(
        spec.swap_long_bps,
        spec.swap_short_bps,
        spec.commission_per_million,
        spec.commission_per_lot,
        symbol=spec.symbol,
    )


def core_instruments(specs: Iterable[InstrumentSpec]) -> dict[str, Instrument]:
    """Convert configured specs into the core's instruments."""
    instruments: dict[str, Instrument] = {}
    for spec in specs:
        try:
            instruments[spec.symbol] = make_instrument(
                spec.symbol,
                spec.tick_size,
                spec.lot_step,
                spec.max_leverage,
                spec.maintenance_margin_rate,
                spec.contract_size,
                spec_charges(spec),
            )
        except ValueError as exc:
            raise ConfigError(f"instrument {spec.symbol}: {exc}") from exc
    return instruments


def _parameters(instrument: Instrument) -> dict[str, object]:
    """Return what replay depends on: the contract size only with a commission per lot."""
    parameters: dict[str, object] = {
        "symbol": instrument.symbol,
        "tick_size": instrument.tick_size,
        "lot_step": instrument.lot_step,
        "max_leverage": instrument.max_leverage,
        "maintenance_margin_rate": instrument.maintenance_rate,
        **instrument.charges.texts(),
    }
    if instrument.charges.commission_per_lot:
        parameters["contract_size"] = instrument.contract_size
    return parameters


def _record(instrument: Instrument) -> dict[str, object]:
    return _parameters(instrument) | {"contract_size": instrument.contract_size}


def check_unchanged(
    recorded: Mapping[str, Instrument], configured: Mapping[str, Instrument], source: str
) -> None:
    """Raise `InstrumentChangeError` unless `configured` keeps every recorded instrument as is."""
    for symbol, old in recorded.items():
        new = configured.get(symbol)
        if new is None:
            raise InstrumentChangeError(
                f"instrument {symbol} is in {source} but no longer configured: restore it in "
                "CFD_INSTRUMENTS_FILE (or start from an empty engine data directory)"
            )
        before, after = _parameters(old), _parameters(new)
        for field, value in before.items():
            if after.get(field) != value:
                raise InstrumentChangeError(
                    f"instrument {symbol}: {field} is {value} in {source} but configured as "
                    f"{after.get(field)}; replaying the journal would change the state: restore "
                    "it in CFD_INSTRUMENTS_FILE (or start from an empty engine data directory)"
                )


def read_json(path: Path, error: type[Exception]) -> object | None:
    """Return the JSON in `path`, or None when the file does not exist; raise `error` when it
    cannot be read."""
    try:
        data: object = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise error(f"{path} cannot be read: {exc}") from None
    return data


def read_recorded(path: Path) -> dict[str, Instrument] | None:
    """Return the instruments `path` records, or None when the file does not exist."""
    rows = read_json(path, InstrumentChangeError)
    if rows is None:
        return None
    try:
        if not isinstance(rows, list):
            raise TypeError("not a list")
        return {
            row["symbol"]: make_instrument(
                row["symbol"],
                row["tick_size"],
                row["lot_step"],
                row["max_leverage"],
                row["maintenance_margin_rate"],
                row.get("contract_size", "1"),
                # A file written before swaps and commissions records none.
                make_charges(
                    row.get("swap_long_bps", "0"),
                    row.get("swap_short_bps", "0"),
                    row.get("commission_per_million", "0"),
                    row.get("commission_per_lot", "0"),
                    symbol=row["symbol"],
                ),
            )
            for row in rows
        }
    except (TypeError, KeyError, ValueError) as exc:
        raise InstrumentChangeError(f"{path} is damaged: {exc}") from None


def write_recorded(path: Path, instruments: Mapping[str, Instrument], fsync: bool = True) -> None:
    """Record `instruments` in `path` atomically."""
    write_json(path, [_record(instruments[symbol]) for symbol in sorted(instruments)], fsync)


def write_json(path: Path, data: object, fsync: bool = True) -> None:
    """Write `data` as JSON to `path` atomically (a temporary file renamed over it)."""
    temp = path.with_name(path.name + ".tmp")
    with temp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    temp.replace(path)


def adopt_instruments(
    core: Core, configured: Mapping[str, Instrument] | None, engine_dir: Path, fsync: bool = True
) -> Core:
    """Check the configured instruments against the recorded ones and the restored `core`.

    Return `core` with the newly configured instruments added and record the configured set;
    raise `InstrumentChangeError` when an instrument would change or disappear.
    """
    wanted = default_instruments() if configured is None else dict(configured)
    path = engine_dir / INSTRUMENTS_FILE
    recorded = read_recorded(path)
    if recorded is not None:
        check_unchanged(recorded, wanted, str(path))
    check_unchanged(core.instruments, wanted, "the engine snapshot")
    added = {symbol: wanted[symbol] for symbol in wanted if symbol not in core.instruments}
    # Mirror Core.__init__: the core keeps its instruments sorted, one book per symbol. The
    # configured ones replace the restored ones, which equal them but for the contract size
    # of an instrument without a commission per lot (a snapshot holds the contract size only
    # with one: otherwise the core's state does not depend on it).
    core.instruments = dict(sorted(wanted.items()))
    for symbol in added:
        core.books[symbol] = SymbolBook(core.positions, core.orders, core.cross_accounts, symbol)
    if recorded != wanted:
        write_recorded(path, wanted, fsync)
    return core
