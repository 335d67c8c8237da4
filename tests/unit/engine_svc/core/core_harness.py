"""A driver that applies commands to a core with automatic sequence numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine_svc.core import ApplyQuote, ClosePosition, Command, Core, Result


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
    core: Core, commands: list[Command], results: list[Result], split: int
) -> None:
    """Check that replaying `commands` on a fresh core gives `results` and `core`'s digest,
    and so does restoring a snapshot taken after the first `split` and applying the rest."""
    replayed = Core()
    assert [replayed.apply(command) for command in commands] == results
    assert replayed.digest() == core.digest()
    split = min(len(commands), split)
    first = Core()
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
