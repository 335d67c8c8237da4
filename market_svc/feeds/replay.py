"""Play a recorded tick file at real or accelerated speed, looping.

File format (CSV, UTF-8): lines starting with ``#`` are comments; the first other line is
the header. Required columns: ``time`` (epoch milliseconds, non-decreasing) and ``symbol``
(ours, e.g. BTCUSD), then either ``price`` or both ``bid`` and ``ask``; ``volume`` is
optional. Price fields are passed on as recorded and validated like any live source, so a bad
value in the file is dropped and counted rather than stopping playback.

Looping: each pass after the first is scaled per symbol by the last price over the first
price of the file, so the loop continues from where the previous pass ended instead of
jumping back.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from market_svc.feeds.base import Feed, FeedConfigError, TickSink
from market_svc.quotes import parse_decimal
from market_svc.ticks import RawTick

DEFAULT_REPLAY_FILE = Path(__file__).resolve().parent.parent / "data" / "replay_sample.csv"


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One line of a replay file."""

    time_ms: int
    symbol: str
    price: str | None
    bid: str | None
    ask: str | None
    volume: str | None


def load_replay(path: Path) -> list[ReplayRecord]:
    """Read a replay file; raise FeedConfigError naming the line if its structure is wrong."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FeedConfigError(f"cannot read replay file {path}: {exc}") from exc
    numbered = [
        (n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        raise FeedConfigError(f"replay file {path} has no header")
    reader = csv.reader(line for _, line in numbered)
    header = [name.strip() for name in next(reader)]
    columns = {name: index for index, name in enumerate(header)}
    has_price = "price" in columns
    has_book = "bid" in columns and "ask" in columns
    if "time" not in columns or "symbol" not in columns or not (has_price or has_book):
        raise FeedConfigError(
            f"replay file {path}: header needs time, symbol and price or bid+ask, got {header}"
        )

    def field(row: list[str], name: str) -> str | None:
        index = columns.get(name)
        if index is None or index >= len(row) or row[index].strip() == "":
            return None
        return row[index].strip()

    records: list[ReplayRecord] = []
    previous = -1
    for (line_no, _), row in zip(numbered[1:], reader, strict=True):
        raw_time = field(row, "time")
        symbol = field(row, "symbol")
        if raw_time is None or not raw_time.isdigit() or symbol is None:
            raise FeedConfigError(f"replay file {path} line {line_no}: bad time or symbol")
        time_ms = int(raw_time)
        if time_ms < previous:
            raise FeedConfigError(f"replay file {path} line {line_no}: time goes backwards")
        previous = time_ms
        records.append(
            ReplayRecord(
                time_ms,
                symbol,
                field(row, "price"),
                field(row, "bid"),
                field(row, "ask"),
                field(row, "volume"),
            )
        )
    if not records:
        raise FeedConfigError(f"replay file {path} holds no ticks")
    return records


def _first_and_last_prices(records: list[ReplayRecord]) -> dict[str, tuple[Decimal, Decimal]]:
    firsts: dict[str, Decimal] = {}
    lasts: dict[str, Decimal] = {}
    for record in records:
        level = replay_level(record)
        if level is None:
            continue
        firsts.setdefault(record.symbol, level)
        lasts[record.symbol] = level
    return {symbol: (firsts[symbol], lasts[symbol]) for symbol in firsts}


def replay_level(record: ReplayRecord) -> Decimal | None:
    """Return the record's price level (its price, or its book's mid), None if invalid."""
    if record.price is not None:
        price = parse_decimal(record.price)
        return price if price is not None and price > 0 else None
    bid, ask = parse_decimal(record.bid), parse_decimal(record.ask)
    if bid is None or ask is None or bid <= 0 or ask <= 0:
        return None
    return (bid + ask) / 2


def _scaled(value: str | None, factor: Decimal, places: Decimal) -> str | None:
    number = parse_decimal(value)
    if number is None or factor == 1:
        return value
    return str((number * factor).quantize(places))


def looped(records: list[ReplayRecord]) -> Iterator[tuple[int, ReplayRecord]]:
    """Yield (offset ms from the start of the first pass, record) forever, pass after pass."""
    span = records[-1].time_ms - records[0].time_ms
    # One average spacing between the end of a pass and the start of the next.
    gap = max(1, span // max(1, len(records) - 1))
    endpoints = _first_and_last_prices(records)
    factors = {symbol: Decimal(1) for symbol in endpoints}
    offset = 0
    while True:
        for record in records:
            factor = factors.get(record.symbol, Decimal(1))
            places = Decimal("1e-8")
            scaled = replace(
                record,
                price=_scaled(record.price, factor, places),
                bid=_scaled(record.bid, factor, places),
                ask=_scaled(record.ask, factor, places),
            )
            yield offset + record.time_ms - records[0].time_ms, scaled
        for symbol, (first, last) in endpoints.items():
            factors[symbol] *= last / first
        offset += span + gap


class ReplayFeed(Feed):
    """Replay a tick file ``speed`` times faster than recorded, looping forever."""

    name = "replay"

    def __init__(self, path: Path = DEFAULT_REPLAY_FILE, *, speed: Decimal = Decimal(1)) -> None:
        super().__init__()
        if speed <= 0:
            raise FeedConfigError("replay speed must be positive")
        self.path = path
        self.speed = speed
        self.records = load_replay(path)

    async def run(self, emit: TickSink) -> None:
        """Emit the file's ticks on their recorded schedule (scaled by speed) until cancelled."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.status.connected = True
        self.status.connects += 1
        behind = 0
        try:
            for offset_ms, record in looped(self.records):
                due = start + float(Decimal(offset_ms) / 1000 / self.speed)
                delay = due - loop.time()
                if delay > 0:
                    behind = 0
                    await asyncio.sleep(delay)
                else:
                    behind += 1
                    if behind % 256 == 0:
                        # Behind schedule at high speed: still let the other tasks run.
                        await asyncio.sleep(0)
                now_ns = time.time_ns()
                self.status.last_tick_ns = now_ns
                emit(to_raw_tick(record, now_ns))
        finally:
            self.status.connected = False


def to_raw_tick(record: ReplayRecord, time_ns: int) -> RawTick:
    """Return ``record`` as a raw tick stamped ``time_ns``."""
    return RawTick(
        record.symbol,
        time_ns=time_ns,
        price=record.price,
        bid=record.bid,
        ask=record.ask,
        volume=record.volume,
    )
