"""Shared upstream streams: one gRPC stream per channel key, fanned out to local subscribers.

A feed owns the upstream stream of one key (the prices of one symbol, one user's events...).
It reconnects with backoff when the service goes away; an events feed resumes after the last
sequence it saw, so subscribers see no gap. A state feed (prices, candles, positions) keeps its
latest frame and hands it to a subscriber as soon as it joins, so joining a stream that is
already running does not mean waiting for the next change upstream. Delivery to a subscriber
never blocks the feed: each connection has its own outbox (see `edge.outbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.rpc import status_pb2

from edge.errors import status_from_rpc_error
from mesh.errors import ApiError
from mesh.fanout import Fanout
from mesh.tracing import end_span, start_client_span

log = logging.getLogger("edge.hub")

ChannelKey = tuple[Hashable, ...]
# Failures worth retrying: the service restarts or the connection drops.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One server frame, serialized once for every subscriber.

    `slot` names what a newer frame replaces for a slow subscriber (conflation); event frames
    have no slot and carry their (sequence, index) instead. A frame that is a change of a state
    (a book diff) has `whole`: the text of the whole state after it, sent instead of the change
    to a subscriber that has not had the state yet or whose previous change is still unsent.
    """

    text: str
    slot: str | None = None
    sequence: int = 0
    index: int = 0
    whole: Callable[[], str] | None = None


class Subscriber(Protocol):
    """A local receiver of a feed's frames (a WebSocket connection)."""

    def deliver(self, subscription: Subscription, frame: Frame) -> None:
        """Take a frame without blocking."""
        ...

    def fail(self, subscription: Subscription, status: status_pb2.Status) -> None:
        """Learn that the feed ended for good (bad request, token rejected)."""
        ...


# Opens the upstream stream; for sequenced feeds the argument is the sequence to resume after.
Opener = Callable[[int], AsyncIterable[Any]]
Framer = Callable[[Any], list[Frame]]


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """How to open and render the upstream stream of one channel key.

    A feed that is not `sequenced` carries state: each frame is the whole current state of its
    key (the quote of one symbol, one user's positions snapshot, the latest candle of one
    series), so the latest one is all a joining subscriber needs.
    """

    key: ChannelKey
    target: str
    open: Opener
    frames: Framer
    sequenced: bool = False


@dataclass(eq=False)
class Subscription:
    """One subscriber's membership of one feed."""

    key: ChannelKey
    subscriber: Subscriber
    feed: Feed | None = None
    # Sequenced feeds: deliver only events after this sequence.
    after: int = 0
    # Whether the subscriber has been handed a whole state (see `Frame.whole`).
    primed: bool = False

    def offer(self, frame: Frame) -> None:
        """Hand a frame of the feed to the subscriber (called by the feed's fan-out)."""
        if self.feed is not None and self.feed.spec.sequenced and frame.sequence <= self.after:
            return
        self.subscriber.deliver(self, frame)


# The one key of a state feed: each frame is the whole state, the latest is all that counts.
STATE = "state"


def _state(_frame: Frame) -> str:
    return STATE


@dataclass(eq=False)
class Feed:
    """The running upstream stream of one key and its subscribers."""

    spec: FeedSpec
    backlog: int
    base: int = 0
    recent: deque[Frame] = field(default_factory=deque)
    last: tuple[int, int] | None = None
    task: asyncio.Task[None] | None = None
    upstream_opens: int = 0
    # From the first message of an upstream stream until that stream ends.
    live: bool = False
    # `time.monotonic()` of the latest message from upstream.
    received_at: float = -math.inf
    # State feeds keep their latest frame for subscribers that join a running stream.
    fanout: Fanout[str, Frame, Subscription] = field(init=False)

    def __post_init__(self) -> None:
        self.fanout = Fanout(None if self.spec.sequenced else _state)

    @property
    def subscribers(self) -> list[Subscription]:
        """Return the subscriptions to this feed."""
        return self.fanout.subscribers

    @property
    def latest(self) -> Frame | None:
        """Return the latest frame of a state feed."""
        return self.fanout.latest(STATE)

    def publish(self, frame: Frame) -> None:
        if self.spec.sequenced:
            position = (frame.sequence, frame.index)
            if self.last is not None and position <= self.last:
                return  # already delivered before a reconnect
            self.last = position
            self.recent.append(frame)
            while len(self.recent) > self.backlog:
                self.base = self.recent.popleft().sequence
        self.fanout.publish(frame)

    def covers(self, from_sequence: int) -> bool:
        """Say whether every event after `from_sequence` is still in the recent buffer."""
        return from_sequence >= self.base


class Hub:
    """All feeds of the process."""

    def __init__(self, backlog: int = 1000) -> None:
        self._feeds: dict[ChannelKey, Feed] = {}
        self._backlog = backlog
        self._private = itertools.count()

    def subscribe(
        self, spec: FeedSpec, subscriber: Subscriber, from_sequence: int = 0
    ) -> Subscription:
        """Join (or start) the feed of `spec.key`.

        A sequenced feed replays its recent events after `from_sequence`; a state feed that is
        already running delivers its latest frame at once.
        """
        feed = self._feeds.get(spec.key)
        key = spec.key
        if feed is not None and spec.sequenced and not feed.covers(from_sequence):
            # The shared feed no longer holds what this subscriber needs: give it its own.
            key = (*spec.key, "from", from_sequence, next(self._private))
            spec = FeedSpec(key, spec.target, spec.open, spec.frames, spec.sequenced)
            feed = None
        subscription = Subscription(key, subscriber, after=from_sequence)
        if feed is None:
            feed = Feed(spec, self._backlog, base=from_sequence)
            self._feeds[key] = feed
            feed.task = asyncio.create_task(self._run(feed), name=f"feed {key}")
        subscription.feed = feed
        # A sequenced feed replays its recent events (the subscription skips those it has).
        feed.fanout.subscribe(subscription, replay=list(feed.recent) if spec.sequenced else None)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Leave a feed; the last subscriber to leave stops its upstream stream."""
        feed = subscription.feed
        subscription.feed = None
        if feed is None:
            return
        feed.fanout.unsubscribe(subscription)
        if not feed.fanout.subscriber_count:
            self._stop(feed)

    def feed_count(self) -> int:
        """Return the number of running feeds (upstream streams)."""
        return len(self._feeds)

    def feed(self, key: ChannelKey) -> Feed | None:
        """Return the feed of a key, if running."""
        return self._feeds.get(key)

    async def close(self) -> None:
        """Stop every feed."""
        feeds = list(self._feeds.values())
        for feed in feeds:
            self._stop(feed)
        tasks = [f.task for f in feeds if f.task is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _stop(self, feed: Feed) -> None:
        if self._feeds.get(feed.spec.key) is feed:
            del self._feeds[feed.spec.key]
        if feed.task is not None and not feed.task.done():
            feed.task.cancel()

    async def _run(self, feed: Feed) -> None:
        backoff = BACKOFF_START_S
        while feed.fanout.subscriber_count:
            resume = feed.base if feed.last is None else max(feed.base, feed.last[0] - 1)
            feed.upstream_opens += 1
            # Each upstream stream is a traced call of its own, under the trace of the
            # connection that started the feed (the task inherited its context).
            span, token = start_client_span(f"feed {feed.spec.key[0]}")
            failure: str | None = None
            stream = feed.spec.open(resume)
            try:
                async for item in stream:
                    backoff = BACKOFF_START_S
                    feed.live = True
                    feed.received_at = time.monotonic()
                    for frame in feed.spec.frames(item):
                        feed.publish(frame)
                log.info("upstream stream of %s ended; reopening", feed.spec.key)
            except grpc.aio.AioRpcError as exc:
                failure = exc.code().name
                if exc.code() not in RETRYABLE:
                    self._fail(feed, status_from_rpc_error(exc, feed.spec.target))
                    return
                log.info(
                    "upstream stream of %s failed (%s); retrying",
                    feed.spec.key,
                    exc.code().name,
                )
            except Exception:
                failure = "INTERNAL"
                # A message the edge cannot render must not leave subscribers waiting forever.
                log.exception("feed %s failed", feed.spec.key)
                self._fail(
                    feed, ApiError("INTERNAL", "the feed failed; see the edge log").to_status()
                )
                return
            finally:
                feed.live = False
                await _close_stream(stream)
                end_span(span, failure, token)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _fail(self, feed: Feed, status: status_pb2.Status) -> None:
        if self._feeds.get(feed.spec.key) is feed:
            del self._feeds[feed.spec.key]
        subscribers = feed.subscribers
        for subscription in subscribers:
            feed.fanout.unsubscribe(subscription)
            subscription.feed = None
            subscription.subscriber.fail(subscription, status)


async def _close_stream(stream: AsyncIterable[Any]) -> None:
    cancel = getattr(stream, "cancel", None)
    if cancel is not None:
        cancel()
        return
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
