"""The spot fee rates in effect, kept consistent with the data like the instruments.

Every journaled spot fill was charged at the rates in effect when it was applied, so replaying
the journal at other rates would rebuild other balances. ``<data dir>/engine/fees.json``
records the rates in effect and the snapshot holds them too; at start-up the configured rates
(CFD_TAKER_FEE_BPS, CFD_MAKER_FEE_BPS) must equal both.
"""

from __future__ import annotations

from pathlib import Path

from engine_svc.core import Core
from engine_svc.core.spot import FeeSchedule
from engine_svc.instrument_set import read_json, write_json

FEES_FILE = "fees.json"


class FeeChangeError(RuntimeError):
    """The configured fee rates would replay the journal at other rates."""


def read_recorded(path: Path) -> FeeSchedule | None:
    """Return the rates `path` records, or None when the file does not exist."""
    row = read_json(path, FeeChangeError)
    if row is None:
        return None
    try:
        if not isinstance(row, dict):
            raise TypeError("not an object")
        return FeeSchedule(row["taker_bps"], row["maker_bps"])
    except (TypeError, KeyError, ValueError) as exc:
        raise FeeChangeError(f"{path} is damaged: {exc!r}") from None


def adopt_fees(core: Core, configured: FeeSchedule, engine_dir: Path, fsync: bool = True) -> None:
    """Check the configured rates against the recorded ones and the restored `core`'s, and
    record them; raise `FeeChangeError` when they differ."""
    path = engine_dir / FEES_FILE
    recorded = read_recorded(path)
    for source, rates in ((str(path), recorded), ("the engine snapshot", core.spot.fees)):
        if rates is not None and rates != configured:
            raise FeeChangeError(
                f"the spot fees are taker {rates.taker_bps} / maker {rates.maker_bps} bps in "
                f"{source} but configured as {configured.taker_bps} / {configured.maker_bps}; "
                "replaying the journal would change the state: restore CFD_TAKER_FEE_BPS and "
                "CFD_MAKER_FEE_BPS (or start from an empty engine data directory)"
            )
    if recorded is None:
        row = {"taker_bps": configured.taker_bps, "maker_bps": configured.maker_bps}
        write_json(path, row, fsync)
