"""Push candle updates to StreamCandles subscribers without unbounded buffering.

Updates of the current candle are conflated (a subscriber gets the latest state, not every
tick); closed candles are each delivered, from a small bounded backlog that only a
subscriber stalled for many intervals could overflow, in which case the oldest are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from market_svc.candles import Candle, CandleInterval
from mesh.fanout import Fanout, Mailbox

CLOSED_BACKLOG = 64


@dataclass(frozen=True, slots=True)
class CandleEvent:
    """A candle as a subscriber sees it: ``closed`` is True once its bucket is over."""

    candle: Candle
    closed: bool


# The mailbox slot of the candle in progress; closed candles queue in order instead.
CURRENT = "current"


def _slot(event: CandleEvent) -> str | None:
    return None if event.closed else CURRENT


class CandleSubscription(Mailbox[str, CandleEvent]):
    """One subscriber's stream of a single symbol and interval."""

    def __init__(self, hub: CandleHub, symbol: str, interval: CandleInterval) -> None:
        super().__init__(_slot, limit=CLOSED_BACKLOG, drop_oldest=True)
        self._hub = hub
        self.key = (symbol, interval)

    def offer(self, event: CandleEvent) -> None:
        """Queue a candle update; an unsent current candle is replaced by a newer one."""
        if event.closed:
            current = self.pending_latest(CURRENT)
            if current is not None and current.candle.open_time_ms <= event.candle.open_time_ms:
                self.discard_latest(lambda _key: False)
        super().offer(event)

    def close(self) -> None:
        """End the subscription."""
        super().close()
        self._hub.unsubscribe(self)


class CandleHub:
    """Route candle updates to the subscribers of their symbol and interval."""

    def __init__(self) -> None:
        self._series: dict[
            tuple[str, CandleInterval], Fanout[str, CandleEvent, CandleSubscription]
        ] = {}

    def wants(self, symbol: str, interval: CandleInterval) -> bool:
        """Tell whether anyone listens to this series (so the caller can skip work)."""
        return (symbol, interval) in self._series

    def intervals_of(self, symbol: str) -> list[CandleInterval]:
        """Return the intervals of ``symbol`` that have subscribers."""
        return [interval for (s, interval) in self._series if s == symbol]

    def publish(self, candle: Candle, *, closed: bool) -> None:
        """Offer ``candle`` to every subscriber of its series."""
        series = self._series.get((candle.symbol, candle.interval))
        if series is not None:
            series.publish(CandleEvent(candle, closed))

    def subscribe(
        self, symbol: str, interval: CandleInterval, current: Candle | None = None
    ) -> CandleSubscription:
        """Subscribe to one series; ``current`` (the candle in progress) is delivered first."""
        subscription = CandleSubscription(self, symbol, interval)
        series = self._series.setdefault((symbol, interval), Fanout())
        replay = [] if current is None else [CandleEvent(current, False)]
        series.subscribe(subscription, replay=replay)
        return subscription

    def unsubscribe(self, subscription: CandleSubscription) -> None:
        """Remove ``subscription``."""
        series = self._series.get(subscription.key)
        if series is not None:
            series.unsubscribe(subscription)
            if not series.subscriber_count:
                del self._series[subscription.key]
