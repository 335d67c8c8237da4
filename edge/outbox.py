"""What is waiting to be sent to one WebSocket client, bounded however slow the client is.

State channels (prices, candles, positions) are conflated: a newer frame for the same slot
replaces an unsent older one, so a slow client gets the latest state, not a backlog. Events
are queued in order up to a bound; past it the owner must tell the client to resume.
"""

from __future__ import annotations

from collections import deque

from edge.hub import Frame
from mesh.fanout import Mailbox


class OutboxClosedError(Exception):
    """The outbox was closed; nothing more will be sent."""


class Outbox:
    """Pending frames of one connection."""

    def __init__(self, event_limit: int, control_limit: int = 256) -> None:
        self._control_limit = control_limit
        self._control: deque[str] = deque()
        # State frames by slot (each keeps its place in line) and events in order, bounded.
        self._frames: Mailbox[str, Frame] = Mailbox(limit=event_limit, keep_first_place=True)
        self._events_turn = False

    def control(self, text: str) -> bool:
        """Queue an ack, pong or error; return False when even control frames pile up."""
        if len(self._control) >= self._control_limit:
            return False
        self._control.append(text)
        self._frames.wake()
        return True

    def latest(self, slot: str, text: str) -> None:
        """Queue a state frame, replacing an unsent one of the same slot."""
        self._frames.put_latest(slot, Frame(text, slot=slot))

    def has_latest(self, slot: str) -> bool:
        """Tell whether a state frame of `slot` is waiting to be sent."""
        return self._frames.pending_latest(slot) is not None

    def event(self, frame: Frame) -> bool:
        """Queue an event frame; return False (queueing nothing) when the bound is reached."""
        return self._frames.put(frame)

    def first_event(self) -> Frame | None:
        """Return the oldest unsent event."""
        return self._frames.first_queued()

    def clear_events(self) -> None:
        """Drop every unsent event."""
        self._frames.clear_queued()

    def drop_slots(self, name: str) -> None:
        """Drop unsent state frames of slot `name` and of slots `name:...` (unsubscribed)."""
        self._frames.discard_latest(lambda slot: slot != name and not slot.startswith(name + ":"))

    @property
    def conflated(self) -> int:
        """Return how many state frames a newer one replaced before they were sent."""
        return self._frames.conflated

    def pending(self) -> int:
        """Return the number of frames waiting."""
        return len(self._control) + self._frames.pending()

    def close(self) -> None:
        """Wake the sender and make `get` raise OutboxClosedError."""
        self._frames.close()

    async def get(self) -> str:
        """Return the next frame to send, waiting for one."""
        frames = self._frames
        while True:
            if frames.closed:
                raise OutboxClosedError
            if self._control:
                return self._control.popleft()
            # Alternate so that a stream of events cannot starve prices, and vice versa.
            self._events_turn = not self._events_turn
            if self._events_turn:
                frame = frames.take_first_queued() or frames.take_first_latest()
            else:
                frame = frames.take_first_latest() or frames.take_first_queued()
            if frame is not None:
                return frame.text
            await frames.wait()
