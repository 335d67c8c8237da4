"""A driver that applies commands to a core with automatic sequence numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine_svc.core import ApplyQuote, ClosePosition, Command, Core, Instrument, Result
from engine_svc.core.codec import pack_int_column, unpack_int_column
from engine_svc.core.snapshot import POSITION_COLUMNS


class Harness:
    """Apply commands to a core, numbering them 1, 2, 3 ... with a settable clock."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.seq = 0
        self.ts = 1_700_000_000_000_000_000
        self.commands: list[Command] = []

    def run(self, factory: Callable[..., Command], **fields: Any) -> Result:
        """Build a command with the next seq and the current ts, apply it, return the result."""
        self.seq += 1
        command = factory(seq=self.seq, ts=self.ts, **fields)
        self.commands.append(command)
        return self.core.apply(command)


def check_replay_and_restore(
    core: Core,
    commands: list[Command],
    results: list[Result],
    split: int,
    instruments: dict[str, Instrument] | None = None,
) -> None:
    """Check that replaying `commands` on a fresh core (of `instruments`, default the
    defaults) gives `results` and `core`'s digest, and so does restoring a snapshot taken
    after the first `split` and applying the rest."""
    replayed = Core(instruments)
    assert [replayed.apply(command) for command in commands] == results
    assert replayed.digest() == core.digest()
    split = min(len(commands), split)
    first = Core(instruments)
    for command in commands[:split]:
        first.apply(command)
    restored = Core.restore(first.snapshot())
    assert restored.digest() == first.digest()
    assert [restored.apply(command) for command in commands[split:]] == results[split:]
    assert restored.digest() == core.digest()
    assert restored.snapshot() == core.snapshot()


def close_command(core: Core, seq: int, account: str, index: int) -> ClosePosition | None:
    """Return a full close of one of the account's positions (by `index`, wrapping), None
    when it holds none."""
    positions = core.list_positions(account)
    if not positions:
        return None
    return ClosePosition(seq, seq, account, positions[index % len(positions)].id)


def tick_command(core: Core, seq: int, symbol: str, move: int, step: int) -> ApplyQuote:
    """Return a quote `move` steps from the symbol's last bid (at least one step), with the
    last quote's spread."""
    quote = core.get_quote(symbol)
    assert quote is not None
    bid = max(step, quote.bid + move * step)
    return ApplyQuote(seq, seq, symbol, bid, bid + quote.ask - quote.bid)


def as_version_4(snapshot: bytes) -> bytes:
    """Return a snapshot without charges or transfers rewritten as version 4 wrote it: no
    rollover section and no swap and commission columns."""
    header, _, body = snapshot.partition(b"\n")
    fields = json.loads(header)
    assert fields["version"] == 6
    fields["version"] = 4
    small_end = 8 + int.from_bytes(body[:8], "big")
    state = json.loads(body[8:small_end])
    assert len(state) == 8 and state[7] == 0 and all(len(row) == 8 for row in state[0])
    small = json.dumps(state[:7], separators=(",", ":")).encode("ascii")
    count = int.from_bytes(body[small_end : small_end + 8], "big")
    offset = small_end + 8
    columns: list[list[int]] = []
    for _ in range(POSITION_COLUMNS):
        column, offset = unpack_int_column(body, offset, count)
        columns.append(column)
    assert all(value == 0 for column in columns[15:] for value in column)
    parts = [len(small).to_bytes(8, "big"), small, count.to_bytes(8, "big")]
    parts.extend(pack_int_column(column) for column in columns[:15])
    parts.append(body[offset:])
    head = json.dumps(fields, separators=(",", ":"), sort_keys=False).encode("ascii")
    return head + b"\n" + b"".join(parts)
