"""A driver that applies commands to a core with automatic sequence numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine_svc.core import Command, Core, Result


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
