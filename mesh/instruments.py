"""The tradable instruments: the API.md defaults, or the list CFD_INSTRUMENTS_FILE names.

Every service reads its instruments here and converts the specs into its own type, so the
engine and the market service cannot disagree. All instruments are quoted in USD.

CFD_INSTRUMENTS_FILE is a JSON file holding a list of 1 to 100 objects, one per instrument::

    [
      {"symbol": "BTCUSD", "display_name": "Bitcoin vs US Dollar", "base_currency": "BTC",
       "tick_size": "0.01", "lot_step": "0.0001", "max_leverage": 100,
       "maintenance_margin_rate": "0", "contract_size": "1"},
      {"symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50,
       "contract_size": "1000"}
    ]

Fields (no others are accepted):

- ``symbol`` (required): 1-16 upper-case letters or digits, unique in the list.
- ``tick_size``, ``lot_step`` (required): decimal strings that are a power of ten from
  ``"0.000000000001"`` to ``"1000000"``, written without superfluous zeros (``"0.01"``,
  ``"1"``, ``"10"``). The lot step is also the minimum quantity.
- ``max_leverage`` (required): a JSON integer from 1 to 1000.
- ``maintenance_margin_rate``: a decimal string in [0, 1) with at most 12 decimals; default
  ``"0"`` (positions are closed only when their equity is gone).
- ``contract_size``: units of the base currency in one lot, the ``volumeLots`` the API shows
  beside every quantity (MT5's volume); a power of ten written like ``tick_size``, default
  ``"1"``. The lot step divided by it is the smallest volume in lots.
- ``base_currency``: 1-10 upper-case letters or digits; default the symbol without its
  ``USD`` suffix (required when the symbol does not end in ``USD``).
- ``display_name``: 1-64 printable characters; default ``"<base currency> vs US Dollar"``.
- ``swap_long_bps``, ``swap_short_bps``: the daily swap of a long or short position in basis
  points of its entry notional, a signed decimal string with at most 4 decimals within
  +-10000: negative is charged to the trader, positive credited; default ``"0"``. Charged at
  the daily rollover (CFD_ROLLOVER_TIME), three times on CFD_TRIPLE_SWAP_WEEKDAY.
- ``commission_per_million``: USD per 1,000,000 USD of notional, charged on every open and
  close, a decimal string with at most 6 decimals; default ``"0"``.
- ``commission_per_lot``: USD per lot of ``contract_size`` base units, charged with it, at
  most 6 decimals; default ``"0"``.

The engine refuses to start when the file changes the tick size, lot step, leverage cap,
maintenance rate, swap or commission rates of an instrument its journal already holds, or
drops one, and the contract size of one with a ``commission_per_lot``; adding instruments is
always allowed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from mesh.config import ConfigError

ENV_VAR = "CFD_INSTRUMENTS_FILE"
MAX_INSTRUMENTS = 100
MAX_FILE_BYTES = 1 << 20
MIN_LEVERAGE = 1
MAX_LEVERAGE = 1000

_SYMBOL = re.compile(r"[A-Z0-9]{1,16}")
_CURRENCY = re.compile(r"[A-Z0-9]{1,10}")
# 10**-12 .. 10**6, in the one spelling each: the core scales these exactly.
_POWER_OF_TEN = re.compile(r"0\.0{0,11}1|10{0,6}")
_RATE = re.compile(r"0(\.[0-9]{1,12})?")
_SWAP = re.compile(r"-?[0-9]{1,5}(\.[0-9]{1,4})?")
_COMMISSION = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")
_REQUIRED = ("symbol", "tick_size", "lot_step", "max_leverage")
_OPTIONAL = (
    "display_name",
    "base_currency",
    "maintenance_margin_rate",
    "contract_size",
    "swap_long_bps",
    "swap_short_bps",
    "commission_per_million",
    "commission_per_lot",
)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One instrument as configured: exact decimal strings and integers, never floats."""

    symbol: str
    display_name: str
    base_currency: str
    tick_size: str
    lot_step: str
    max_leverage: int
    maintenance_margin_rate: str = "0"
    # Units of the base currency in one lot: a power of ten (also the lot of
    # `commission_per_lot`).
    contract_size: str = "1"
    swap_long_bps: str = "0"
    swap_short_bps: str = "0"
    commission_per_million: str = "0"
    commission_per_lot: str = "0"

    def to_json(self) -> dict[str, object]:
        """Return the spec as the JSON object CFD_INSTRUMENTS_FILE holds."""
        return asdict(self)


DEFAULT_SPECS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec("BTCUSD", "Bitcoin vs US Dollar", "BTC", "0.01", "0.0001", 100),
    InstrumentSpec("ETHUSD", "Ethereum vs US Dollar", "ETH", "0.01", "0.001", 100),
    InstrumentSpec("SOLUSD", "Solana vs US Dollar", "SOL", "0.001", "0.01", 100),
)


def load_instruments(env: Mapping[str, str] | None = None) -> tuple[InstrumentSpec, ...]:
    """Return the instruments CFD_INSTRUMENTS_FILE lists, or the defaults when it is unset.

    Raises `ConfigError` naming the file and the offending entry for anything invalid.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_SPECS
    path = Path(raw).expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{ENV_VAR}={raw}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{ENV_VAR}={raw}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(
            data,
            parse_float=_reject_float,
            parse_constant=_reject_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ENV_VAR}={raw}: not valid JSON: {exc}") from None
    try:
        return parse_instruments(document)
    except ConfigError as exc:
        raise ConfigError(f"{ENV_VAR}={raw}: {exc}") from None


def parse_instruments(document: object) -> tuple[InstrumentSpec, ...]:
    """Validate a decoded instruments document (a list of objects) and return its specs."""
    if not isinstance(document, list):
        raise ConfigError("must hold a JSON list of instrument objects")
    if not 1 <= len(document) <= MAX_INSTRUMENTS:
        raise ConfigError(f"must list 1 to {MAX_INSTRUMENTS} instruments, not {len(document)}")
    specs: list[InstrumentSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(document):
        spec = parse_spec(entry, f"instrument #{index + 1}")
        if spec.symbol in seen:
            raise ConfigError(f"instrument #{index + 1}: duplicate symbol {spec.symbol}")
        seen.add(spec.symbol)
        specs.append(spec)
    return tuple(specs)


def parse_spec(entry: object, where: str = "instrument") -> InstrumentSpec:
    """Validate one instrument object and return its spec; `where` prefixes the errors."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [name for name in _REQUIRED if name not in entry]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    symbol = _text(entry, "symbol", where)
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"{where}: symbol {symbol!r} is not 1-16 upper-case letters or digits")
    where = f"{where} ({symbol})"
    tick_size = _power_of_ten(entry, "tick_size", where)
    lot_step = _power_of_ten(entry, "lot_step", where)
    leverage = entry["max_leverage"]
    if type(leverage) is not int or not MIN_LEVERAGE <= leverage <= MAX_LEVERAGE:
        raise ConfigError(
            f"{where}: max_leverage must be an integer from {MIN_LEVERAGE} to {MAX_LEVERAGE},"
            f" not {leverage!r}"
        )
    rate = _text(entry, "maintenance_margin_rate", where, "0")
    if not _RATE.fullmatch(rate):
        raise ConfigError(
            f"{where}: maintenance_margin_rate must be a decimal string in [0, 1) with at most"
            f" 12 decimals, not {rate!r}"
        )
    contract_size = _power_of_ten(entry, "contract_size", where, "1")
    default_base = symbol[:-3] if symbol.endswith("USD") and len(symbol) > 3 else ""
    base = _text(entry, "base_currency", where, default_base)
    if not _CURRENCY.fullmatch(base):
        raise ConfigError(
            f"{where}: base_currency must be 1-10 upper-case letters or digits"
            + (f", not {base!r}" if base else " (the symbol does not end in USD)")
        )
    name = _text(entry, "display_name", where, f"{base} vs US Dollar")
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise ConfigError(f"{where}: display_name must be 1-64 printable characters")
    swap_long, swap_short, per_million, per_lot = (
        _decimal(entry, field, where, pattern, what)
        for field, pattern, what in (
            ("swap_long_bps", _SWAP, "a signed decimal string with at most 4 decimals"),
            ("swap_short_bps", _SWAP, "a signed decimal string with at most 4 decimals"),
            ("commission_per_million", _COMMISSION, "a decimal string with at most 6 decimals"),
            ("commission_per_lot", _COMMISSION, "a decimal string with at most 6 decimals"),
        )
    )
    if any(abs(Decimal(value)) > 10_000 for value in (swap_long, swap_short)):
        raise ConfigError(f"{where}: a swap rate must be within -10000 and 10000 bps")
    return InstrumentSpec(
        symbol, name, base, tick_size, lot_step, leverage, rate, contract_size, swap_long,
        swap_short, per_million, per_lot,
    )  # fmt: skip


def _decimal(entry: dict[str, object], field: str, where: str, pattern: re.Pattern[str],
             what: str) -> str:  # fmt: skip
    value = _text(entry, field, where, "0")
    if not pattern.fullmatch(value):
        raise ConfigError(f"{where}: {field} must be {what}, not {value!r}")
    return value


def _text(entry: dict[str, object], field: str, where: str, default: str | None = None) -> str:
    value = entry.get(field, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {field} must be a JSON string, not {value!r}")
    return value


def _power_of_ten(
    entry: dict[str, object], field: str, where: str, default: str | None = None
) -> str:
    value = _text(entry, field, where, default)
    if not _POWER_OF_TEN.fullmatch(value):
        raise ConfigError(
            f"{where}: {field} must be a power of ten from 0.000000000001 to 1000000 written"
            f' as a decimal string like "0.01" or "1", not {value!r}'
        )
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"field {key!r} appears twice in one object")
    return dict(pairs)


def _reject_float(text: str) -> object:
    raise ValueError(f'{text} is not allowed: write decimals as strings, e.g. "0.01"')
