"""The market maker's settings, read from the environment.

| variable | default | meaning |
|---|---|---|
| CFD_MAKER_LEVELS | 5 | price levels kept on each side of every market |
| CFD_MAKER_LEVEL_SIZE | 1000 | USD value of each level (quantity: that over the mid, to the lot) |
| CFD_MAKER_SPREAD_BPS | 5 | distance of the best bid and the best ask from the mid |
| CFD_MAKER_STEP_BPS | 5 | distance between one level and the next |
| CFD_MAKER_REQUOTE_BPS | 5 | how far the mid moves before every level is quoted again |
| CFD_MAKER_REFRESH_MS | 5000 | how often filled levels are put back and the wallet topped up |
| CFD_MAKER_TRADE_MS | 5000 | how often its second account trades a little (0: never) |
| CFD_MAKER_EMAIL | maker@cfd-mesh.dev | the maker's account (the second one: `+taker`) |
| CFD_MAKER_PASSWORD | generated into the data dir | its password |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from maker.quotes import QuoteConfig
from mesh.config import ConfigError, env_decimal, env_int, stored_secret

PASSWORD_FILE = "maker_password"
DEFAULT_EMAIL = "maker@cfd-mesh.dev"
_MAX_BPS = Decimal(5000)


@dataclass(frozen=True, slots=True)
class MakerConfig:
    """How the maker quotes and which account it quotes with."""

    quotes: QuoteConfig
    requote_bps: Decimal
    refresh_ms: int
    trade_ms: int
    email: str
    # Kept out of the repr, so it never reaches a log line.
    password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, data_dir: Path, env: Mapping[str, str] | None = None) -> MakerConfig:
        """Read the settings; the password is generated into `data_dir` when not given."""
        env = os.environ if env is None else env
        quotes = QuoteConfig(
            levels=env_int(env, "CFD_MAKER_LEVELS", 5, 1, 50),
            level_size=env_decimal(
                env, "CFD_MAKER_LEVEL_SIZE", Decimal(1000), Decimal("0.01"), Decimal(10**9)
            ),
            spread_bps=env_decimal(
                env, "CFD_MAKER_SPREAD_BPS", Decimal(5), Decimal("0.01"), _MAX_BPS
            ),
            step_bps=env_decimal(env, "CFD_MAKER_STEP_BPS", Decimal(5), Decimal(0), _MAX_BPS),
        )
        email = env.get("CFD_MAKER_EMAIL", "").strip() or DEFAULT_EMAIL
        password = env.get("CFD_MAKER_PASSWORD", "")
        if password and not 8 <= len(password) <= 128:
            raise ConfigError("CFD_MAKER_PASSWORD must be 8 to 128 characters")
        trade_ms = env_int(env, "CFD_MAKER_TRADE_MS", 5000, 0, 3_600_000)
        if 0 < trade_ms < 100:
            raise ConfigError("CFD_MAKER_TRADE_MS must be 0 (never) or at least 100")
        return cls(
            quotes=quotes,
            requote_bps=env_decimal(
                env, "CFD_MAKER_REQUOTE_BPS", Decimal(5), Decimal("0.01"), _MAX_BPS
            ),
            refresh_ms=env_int(env, "CFD_MAKER_REFRESH_MS", 5000, 100, 3_600_000),
            trade_ms=trade_ms,
            email=email,
            password=password or stored_secret(data_dir / PASSWORD_FILE),
        )
