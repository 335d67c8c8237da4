from decimal import Decimal
from pathlib import Path

import pytest

from market_svc.config import MarketConfig, MarketConfigError
from market_svc.feeds import FEED_NAMES, FeedConfigError, create_feed
from market_svc.feeds.backpack import BackpackFeed
from market_svc.feeds.binance import BinanceFeed
from market_svc.feeds.manual import ManualFeed
from market_svc.feeds.replay import ReplayFeed
from market_svc.feeds.simulator import SimulatorFeed
from market_svc.instruments import Instruments
from mesh.config import FEEDS, ConfigError


def test_defaults_without_environment() -> None:
    config = MarketConfig.from_env({})
    assert config == MarketConfig()
    assert config.spread_bps == Decimal(10)
    assert config.sim_interval_ms == 100


def test_every_variable_is_read(tmp_path: Path) -> None:
    config = MarketConfig.from_env(
        {
            "CFD_SIM_SEED": "9",
            "CFD_SIM_INTERVAL_MS": "250",
            "CFD_SPREAD_BPS": "2.5",
            "CFD_MAX_JUMP_BPS": "300",
            "CFD_FEED_STALE_MS": "1500",
            "CFD_REPLAY_FILE": str(tmp_path / "x.csv"),
            "CFD_REPLAY_SPEED": "10",
            "CFD_BINANCE_WS_URL": "ws://127.0.0.1:1",
            "CFD_BINANCE_STREAMS": "bookTicker, aggTrade",
            "CFD_BACKPACK_WS_URL": "ws://127.0.0.1:2",
            "CFD_CANDLE_FLUSH_MS": "50",
            "CFD_BACKFILL_DAYS": "0",
            "CFD_QUOTE_KEEPALIVE_MS": "500",
        }
    )
    assert config == MarketConfig(
        sim_seed=9,
        sim_interval_ms=250,
        spread_bps=Decimal("2.5"),
        max_jump_bps=Decimal(300),
        stale_after_ms=1500,
        replay_file=tmp_path / "x.csv",
        replay_speed=Decimal(10),
        binance_url="ws://127.0.0.1:1",
        binance_streams=("bookTicker", "aggTrade"),
        backpack_url="ws://127.0.0.1:2",
        candle_flush_ms=50,
        backfill_days=0,
        quote_keepalive_ms=500,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CFD_SIM_SEED", "abc", "CFD_SIM_SEED must be an integer"),
        ("CFD_SIM_INTERVAL_MS", "0", "CFD_SIM_INTERVAL_MS must be at least 1"),
        ("CFD_SPREAD_BPS", "-1", "CFD_SPREAD_BPS must be at least 0"),
        ("CFD_SPREAD_BPS", "wide", "CFD_SPREAD_BPS must be a decimal"),
        ("CFD_REPLAY_SPEED", "0", "CFD_REPLAY_SPEED must be at least"),
        ("CFD_BINANCE_STREAMS", "depth", "CFD_BINANCE_STREAMS must list"),
        ("CFD_BINANCE_STREAMS", " , ", "CFD_BINANCE_STREAMS must list"),
    ],
)
def test_bad_values_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(MarketConfigError, match=message) as raised:
        MarketConfig.from_env({name: value})
    assert isinstance(raised.value, ConfigError)


def test_every_feed_the_settings_accept_can_be_built() -> None:
    assert set(FEED_NAMES) == set(FEEDS)
    config = MarketConfig()
    kinds = {
        "simulator": SimulatorFeed,
        "replay": ReplayFeed,
        "manual": ManualFeed,
        "binance": BinanceFeed,
        "backpack": BackpackFeed,
    }
    for name, kind in kinds.items():
        assert isinstance(create_feed(name, config, Instruments()), kind)
    with pytest.raises(FeedConfigError, match="unknown feed"):
        create_feed("kraken", config, Instruments())
