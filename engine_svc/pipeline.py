"""What happens to a batch once it is committed: the engine's consumers, called in order.

The sequencer appends each batch to the journal, fsyncs it and applies it to the core; only
then does it hand the batch here. Each consumer (the stream hub, the recorder, the snapshot
trigger) takes it without blocking. A consumer that raises is a bug that would leave a stream
or the history with a hole, so it is treated as a failing journal is: logged as critical,
reported by `broken` and called no more, and the engine stops (health turns NOT_SERVING while
it drains).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine_svc.convert import SPOT_ACCOUNT_EVENTS, AccountEvent
from engine_svc.core.spot import SpotEvent
from engine_svc.sequencer import Applied

log = logging.getLogger("engine.pipeline")


def account_events(applied: Sequence[Applied]) -> list[tuple[str, AccountEvent]]:
    """Return (account, event) of a batch, each event numbered within its seq and account."""
    items: list[tuple[str, AccountEvent]] = []
    for command, result in applied:
        if not result.events:
            continue
        counters: dict[str, int] = {}
        for event in result.events:
            if isinstance(event, SpotEvent) and not isinstance(event, SPOT_ACCOUNT_EVENTS):
                continue  # public book and trade events, or a transfer's wallet leg
            account = event.account_id
            index = counters.get(account, 0)
            counters[account] = index + 1
            items.append((account, AccountEvent(command.seq, index, event)))
    return items


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """A batch on disk and in the core: its commands with results, and its account events."""

    applied: Sequence[Applied]
    last_seq: int
    events: Sequence[tuple[str, AccountEvent]]

    @classmethod
    def of(cls, applied: Sequence[Applied]) -> CommittedBatch:
        """Number the account events of `applied` once, for every consumer."""
        return cls(applied, applied[-1][0].seq, account_events(applied))


Consume = Callable[[CommittedBatch], None]


class CommittedBatches:
    """The consumers of committed batches, by name, called in order (a sequencer listener)."""

    def __init__(
        self,
        consumers: Sequence[tuple[str, Consume]],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.consumers = list(consumers)
        self._on_failure = on_failure
        self.broken: dict[str, str] = {}

    def __call__(self, applied: Sequence[Applied]) -> None:
        """Hand one committed batch to every consumer."""
        if not applied:
            return
        batch = CommittedBatch.of(applied)
        for name, consume in self.consumers:
            if name in self.broken:
                continue  # stopped: the engine is on its way down
            try:
                consume(batch)
            except Exception as exc:
                self._break(name, batch.last_seq, exc)

    def _break(self, name: str, seq: int, exc: Exception) -> None:
        first = not self.broken
        self.broken[name] = f"{type(exc).__name__}: {exc}"
        log.critical(
            "the %s failed on the batch up to seq %d; stopping the engine",
            name,
            seq,
            exc_info=exc,
            extra={"fields": {"consumer": name, "seq": seq}},
        )
        if first:
            self._on_failure(RuntimeError(f"the {name} failed: {exc}"))
