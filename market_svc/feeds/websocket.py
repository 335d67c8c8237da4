"""What the exchange clients share: connect, subscribe, reconnect with backoff, detect silence.

Heartbeats: ``websockets`` answers the exchange's ping frames with pongs by itself, and our
own pings (``ping_interval``) detect a connection that died without closing. Silence: when no
data frame arrives for ``stale_after`` seconds the connection is dropped and re-established,
because an exchange that stops sending without closing is as useless as a closed one.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from market_svc.feeds.base import Feed, TickSink
from market_svc.ticks import RawTick

log = logging.getLogger(__name__)


class MalformedFrameError(ValueError):
    """A frame that does not follow the exchange's documented format."""


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Timing of an exchange connection, in seconds."""

    stale_after: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    open_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Frames larger than this are refused by the protocol layer, whatever the exchange says.
    max_frame_bytes: int = 1 << 20


def load_json(frame: str | bytes) -> object:
    """Parse a JSON frame with exact decimals; raise MalformedFrameError when it is not JSON."""
    try:
        return json.loads(frame, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrameError(f"not JSON: {exc}") from exc


class WebSocketFeed(Feed):
    """Run one exchange connection forever, reconnecting with jittered exponential backoff."""

    def __init__(self, connection: ConnectionSettings, *, rng: random.Random | None = None) -> None:
        super().__init__()
        self.connection = connection
        self._rng = rng or random.Random()
        self._delivered = False
        # The latest reconnect waits, for logs and tests; bounded for a feed running for months.
        self.reconnect_delays: deque[float] = deque(maxlen=100)

    @property
    def live(self) -> bool:
        """Tell whether the connection is up and delivered a tick within ``stale_after``."""
        last = self.status.last_tick_ns
        if not self.status.connected or last is None:
            return False
        return time.time_ns() - last <= self.connection.stale_after * 1e9

    @abc.abstractmethod
    def url(self) -> str:
        """Return the URL to connect to."""

    def subscribe_messages(self) -> Sequence[object]:
        """Return the JSON messages to send after connecting (none by default)."""
        return ()

    @abc.abstractmethod
    def parse(self, frame: str | bytes) -> list[RawTick]:
        """Return the ticks of a data frame ([] for control frames); raise MalformedFrameError."""

    def wants_reconnect(self) -> bool:
        """Tell whether the last parsed frame asked us to reconnect (e.g. a shutdown notice)."""
        return False

    async def run(self, emit: TickSink) -> None:
        """Stay connected and deliver ticks until cancelled."""
        delay = self.connection.backoff_initial
        while True:
            self._delivered = False
            try:
                await self._session(emit)
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("%s feed connection failed: %s", self.name, exc)
            finally:
                if self.status.connected:
                    self.status.disconnects += 1
                self.status.connected = False
            # A connection that delivered was healthy: its loss starts the backoff afresh,
            # however it ended.
            if self._delivered:
                delay = self.connection.backoff_initial
            # Random half of the delay keeps many clients from reconnecting in lockstep.
            wait = delay * (0.5 + self._rng.random() / 2)
            self.reconnect_delays.append(wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.connection.backoff_max)

    async def _session(self, emit: TickSink) -> None:
        """Run one connection until it closes, fails or goes silent."""
        settings = self.connection
        async with connect(
            self.url(),
            open_timeout=settings.open_timeout,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            max_size=settings.max_frame_bytes,
            close_timeout=2,
        ) as ws:
            self.status.connected = True
            self.status.connects += 1
            log.info("%s feed connected to %s", self.name, self.url())
            for message in self.subscribe_messages():
                await ws.send(json.dumps(message))
            while True:
                frame = await self._receive(ws)
                if frame is None:
                    return
                try:
                    ticks = self.parse(frame)
                except MalformedFrameError as exc:
                    self.status.malformed_frames += 1
                    log.debug("%s feed dropped a malformed frame: %s", self.name, exc)
                    continue
                if ticks:
                    self._delivered = True
                    self.status.last_tick_ns = time.time_ns()
                for tick in ticks:
                    emit(tick)
                if self.wants_reconnect():
                    log.info("%s feed announced shutdown; reconnecting", self.name)
                    return

    async def _receive(self, ws: ClientConnection) -> str | bytes | None:
        """Return the next frame, or None when the feed has been silent for too long."""
        try:
            return await asyncio.wait_for(ws.recv(), timeout=self.connection.stale_after)
        except TimeoutError:
            self.status.stale_events += 1
            log.warning(
                "%s feed silent for %.1fs; reconnecting", self.name, self.connection.stale_after
            )
            return None
