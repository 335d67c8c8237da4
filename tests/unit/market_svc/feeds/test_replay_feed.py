from decimal import Decimal
from pathlib import Path

import pytest

from market_svc.feeds.base import FeedConfigError
from market_svc.feeds.replay import (
    DEFAULT_REPLAY_FILE,
    ReplayFeed,
    load_replay,
    looped,
    to_raw_tick,
)
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from support import until
from unit.market_svc.feeds.fake_exchanges import feeding


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text(text)
    return path


def test_the_shipped_sample_is_valid_and_real_looking() -> None:
    records = load_replay(DEFAULT_REPLAY_FILE)
    assert {r.symbol for r in records} == {"BTCUSD", "ETHUSD", "SOLUSD"}
    assert records[-1].time_ms - records[0].time_ms >= 9 * 60_000
    market = MarketData(Instruments())
    for record in records:
        market.on_tick(to_raw_tick(record, record.time_ms * 1_000_000))
    assert market.builder.drops == {}
    assert market.builder.accepted == len(records)


def test_structure_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(FeedConfigError, match="header"):
        load_replay(write(tmp_path, "when,what\n1,BTCUSD\n"))
    with pytest.raises(FeedConfigError, match="line 4: time goes backwards"):
        load_replay(write(tmp_path, "# c\ntime,symbol,price\n5,BTCUSD,1\n4,BTCUSD,2\n"))
    with pytest.raises(FeedConfigError, match="line 2: bad time"):
        load_replay(write(tmp_path, "time,symbol,price\nsoon,BTCUSD,1\n"))
    with pytest.raises(FeedConfigError, match="no ticks"):
        load_replay(write(tmp_path, "time,symbol,bid,ask\n"))
    with pytest.raises(FeedConfigError, match="cannot read"):
        load_replay(tmp_path / "missing.csv")
    with pytest.raises(FeedConfigError, match="speed"):
        ReplayFeed(DEFAULT_REPLAY_FILE, speed=Decimal(0))


def test_loops_continue_from_where_the_last_pass_ended(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "time,symbol,price,volume\n0,BTCUSD,100,1\n1000,BTCUSD,110,2\n2000,BTCUSD,bad,3\n",
    )
    records = load_replay(path)
    stream = looped(records)
    passes = [next(stream) for _ in range(7)]
    assert [offset for offset, _ in passes] == [0, 1000, 2000, 3000, 4000, 5000, 6000]
    prices = [record.price for _, record in passes]
    # Second pass scaled by 110/100, third by (110/100)^2; garbage stays garbage.
    assert prices[:3] == ["100", "110", "bad"]
    assert [Decimal(p or "") for p in prices[3:5]] == [Decimal(110), Decimal(121)]
    assert prices[5] == "bad" and Decimal(prices[6] or "") == Decimal(121)


async def test_plays_at_the_configured_speed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "time,symbol,bid,ask\n0,ETHUSD,3000.00,3000.01\n1000,ETHUSD,3001.00,3001.01\n",
    )
    replay = ReplayFeed(path, speed=Decimal(100))
    async with feeding(replay) as ticks:
        await until(lambda: len(ticks) >= 5)
    assert [(t.bid, t.ask) for t in ticks[:2]] == [("3000.00", "3000.01"), ("3001.00", "3001.01")]
    # Ten milliseconds apart at 100x: the whole loop of five ticks takes about 40 ms.
    assert ticks[4].time_ns is not None and ticks[0].time_ns is not None
    assert ticks[4].time_ns - ticks[0].time_ns >= 35_000_000
