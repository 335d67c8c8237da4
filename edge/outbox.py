"""What is waiting to be sent to one WebSocket client, bounded however slow the client is.

State channels (prices, candles, positions) are conflated: a newer frame for the same slot
replaces an unsent older one, so a slow client gets the latest state, not a backlog. Events
are queued in order up to a bound; past it the owner must tell the client to resume.
"""

from __future__ import annotations

import asyncio
from collections import deque

from edge.hub import Frame


class OutboxClosedError(Exception):
    """The outbox was closed; nothing more will be sent."""


class Outbox:
    """Pending frames of one connection."""

    def __init__(self, event_limit: int, control_limit: int = 256) -> None:
        self._event_limit = event_limit
        self._control_limit = control_limit
        self._control: deque[str] = deque()
        self._events: deque[Frame] = deque()
        self._latest: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._closed = False
        self._events_turn = False

    def control(self, text: str) -> bool:
        """Queue an ack, pong or error; return False when even control frames pile up."""
        if len(self._control) >= self._control_limit:
            return False
        self._control.append(text)
        self._wake.set()
        return True

    def latest(self, slot: str, text: str) -> None:
        """Queue a state frame, replacing an unsent one of the same slot."""
        self._latest[slot] = text
        self._wake.set()

    def event(self, frame: Frame) -> bool:
        """Queue an event frame; return False (queueing nothing) when the bound is reached."""
        if len(self._events) >= self._event_limit:
            return False
        self._events.append(frame)
        self._wake.set()
        return True

    def first_event(self) -> Frame | None:
        """Return the oldest unsent event."""
        return self._events[0] if self._events else None

    def clear_events(self) -> None:
        """Drop every unsent event."""
        self._events.clear()

    def drop_slots(self, name: str) -> None:
        """Drop unsent state frames of slot `name` and of slots `name:...` (unsubscribed)."""
        for slot in [s for s in self._latest if s == name or s.startswith(name + ":")]:
            del self._latest[slot]

    def pending(self) -> int:
        """Return the number of frames waiting."""
        return len(self._control) + len(self._events) + len(self._latest)

    def close(self) -> None:
        """Wake the sender and make `get` raise OutboxClosedError."""
        self._closed = True
        self._wake.set()

    async def get(self) -> str:
        """Return the next frame to send, waiting for one."""
        while True:
            if self._closed:
                raise OutboxClosedError
            if self._control:
                return self._control.popleft()
            # Alternate so that a stream of events cannot starve prices, and vice versa.
            self._events_turn = not self._events_turn
            if self._events and (self._events_turn or not self._latest):
                return self._events.popleft().text
            if self._latest:
                slot = next(iter(self._latest))
                return self._latest.pop(slot)
            self._wake.clear()
            await self._wake.wait()
