"""Feeds: one upstream stream per key, fan-out, reconnection and resumption without gaps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.rpc import status_pb2

from edge.hub import FeedSpec, Frame, Hub, Subscription
from support import until

Item = Any


class Upstream:
    """A scripted upstream: each open gets a queue the test feeds; None ends the stream."""

    def __init__(self) -> None:
        self.opens: list[int] = []
        self.queues: list[asyncio.Queue[Item]] = []

    def open(self, resume: int) -> AsyncIterator[Item]:
        self.opens.append(resume)
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self.queues.append(queue)

        async def stream() -> AsyncIterator[Item]:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                if item is None:
                    return
                yield item

        return stream()


class Sink:
    """A subscriber that keeps what it is given."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.failures: list[status_pb2.Status] = []

    def deliver(self, subscription: Subscription, frame: Frame) -> None:
        self.frames.append(frame)

    def fail(self, subscription: Subscription, status: status_pb2.Status) -> None:
        self.failures.append(status)

    def texts(self) -> list[str]:
        return [f.text for f in self.frames]


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


def prices(upstream: Upstream) -> FeedSpec:
    return FeedSpec(
        ("prices", "BTCUSD"),
        "cfd.v1.MarketDataService",
        upstream.open,
        lambda item: [Frame(str(item), slot="prices:BTCUSD")],
    )


def events(upstream: Upstream) -> FeedSpec:
    return FeedSpec(
        ("events", "u1"),
        "cfd.v1.TradingService",
        upstream.open,
        lambda item: [Frame(f"{item[0]}.{item[1]}", sequence=item[0], index=item[1])],
        sequenced=True,
    )


async def test_subscribers_of_one_key_share_one_upstream() -> None:
    hub, upstream, first, second = Hub(), Upstream(), Sink(), Sink()
    a = hub.subscribe(prices(upstream), first)
    b = hub.subscribe(prices(upstream), second)
    await until(lambda: len(upstream.queues) == 1)
    upstream.queues[0].put_nowait("q1")
    await until(lambda: len(second.frames) == 1)
    assert first.texts() == second.texts() == ["q1"]
    hub.unsubscribe(a)
    assert hub.feed_count() == 1
    hub.unsubscribe(b)
    assert hub.feed_count() == 0
    await hub.close()
    assert upstream.opens == [0]


async def test_a_feed_is_live_from_its_first_message_until_its_stream_ends() -> None:
    hub, upstream, sink = Hub(), Upstream(), Sink()
    hub.subscribe(prices(upstream), sink)
    await until(lambda: len(upstream.queues) == 1)
    feed = hub.feed(("prices", "BTCUSD"))
    assert feed is not None
    assert not feed.live  # open, but nothing has come yet
    upstream.queues[0].put_nowait("q1")
    await until(lambda: feed.live)
    received = feed.received_at
    upstream.queues[0].put_nowait("q2")
    await until(lambda: feed.received_at > received)
    upstream.queues[0].put_nowait(None)
    await until(lambda: len(upstream.queues) == 2)  # reopened, and quiet so far
    assert not feed.live
    await hub.close()


async def test_a_dropped_stream_is_reopened_after_the_last_event() -> None:
    hub, upstream, sink = Hub(), Upstream(), Sink()
    hub.subscribe(events(upstream), sink, from_sequence=4)
    await until(lambda: len(upstream.queues) == 1)
    for item in ((5, 0), (6, 0), (6, 1)):
        upstream.queues[0].put_nowait(item)
    upstream.queues[0].put_nowait(rpc_error(grpc.StatusCode.UNAVAILABLE))
    await until(lambda: len(upstream.queues) == 2)
    # Resumed one sequence early, so a half-delivered sequence is completed; repeats are skipped.
    assert upstream.opens == [4, 5]
    for item in ((6, 0), (6, 1), (6, 2), (7, 0)):
        upstream.queues[1].put_nowait(item)
    await until(lambda: len(sink.frames) == 5)
    assert sink.texts() == ["5.0", "6.0", "6.1", "6.2", "7.0"]
    await hub.close()


async def test_a_late_subscriber_is_replayed_from_the_recent_events() -> None:
    hub, upstream, early, late = Hub(backlog=3), Upstream(), Sink(), Sink()
    hub.subscribe(events(upstream), early, from_sequence=0)
    await until(lambda: len(upstream.queues) == 1)
    for sequence in range(1, 6):
        upstream.queues[0].put_nowait((sequence, 0))
    await until(lambda: len(early.frames) == 5)
    hub.subscribe(events(upstream), late, from_sequence=3)
    assert late.texts() == ["4.0", "5.0"]
    assert len(upstream.queues) == 1
    # Older than the buffer: that subscriber gets a stream of its own.
    oldest = Sink()
    hub.subscribe(events(upstream), oldest, from_sequence=1)
    await until(lambda: len(upstream.queues) == 2)
    assert upstream.opens == [0, 1]
    upstream.queues[0].put_nowait((6, 0))
    await until(lambda: len(late.frames) == 3)
    assert early.texts()[-1] == late.texts()[-1] == "6.0"
    assert oldest.frames == []
    await hub.close()


async def test_a_permanent_failure_ends_the_feed_for_every_subscriber() -> None:
    hub, upstream, first, second = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(prices(upstream), first)
    hub.subscribe(prices(upstream), second)
    await until(lambda: len(upstream.queues) == 1)
    upstream.queues[0].put_nowait(rpc_error(grpc.StatusCode.UNAUTHENTICATED))
    await until(lambda: len(second.failures) == 1)
    assert first.failures[0].code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert hub.feed_count() == 0
    assert upstream.opens == [0]
    await hub.close()


async def test_a_frame_that_cannot_be_rendered_ends_the_feed_with_internal() -> None:
    hub, upstream, sink = Hub(), Upstream(), Sink()

    def broken(item: Item) -> list[Frame]:
        raise ValueError(f"cannot render {item}")

    spec = FeedSpec(("prices", "X"), "cfd.v1.MarketDataService", upstream.open, broken)
    hub.subscribe(spec, sink)
    await until(lambda: len(upstream.queues) == 1)
    upstream.queues[0].put_nowait("bad")
    await until(lambda: len(sink.failures) == 1)
    assert sink.failures[0].code == grpc.StatusCode.INTERNAL.value[0]
    assert hub.feed_count() == 0
    await hub.close()


def positions(upstream: Upstream) -> FeedSpec:
    return FeedSpec(
        ("positions", "u1"),
        "cfd.v1.TradingService",
        upstream.open,
        lambda item: [Frame(f"snapshot {item}", slot="positions")],
    )


def candles(upstream: Upstream) -> FeedSpec:
    # Items are (open time, close): a new open time starts the next candle.
    return FeedSpec(
        ("candles", "BTCUSD", "CANDLE_INTERVAL_1M"),
        "cfd.v1.MarketDataService",
        upstream.open,
        lambda item: [
            Frame(f"{item[0]}:{item[1]}", slot=f"candles:BTCUSD:CANDLE_INTERVAL_1M:{item[0]}")
        ],
    )


async def test_a_late_subscriber_gets_the_current_positions_snapshot_at_once() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(positions(upstream), early)
    await until(lambda: len(upstream.queues) == 1)
    for item in (1, 2):
        upstream.queues[0].put_nowait(item)
    await until(lambda: len(early.frames) == 2)
    hub.subscribe(positions(upstream), late)
    # Delivered while joining: no further upstream message, no second upstream stream.
    assert late.texts() == ["snapshot 2"]
    assert late.frames[0].slot == "positions"
    assert upstream.opens == [0]
    upstream.queues[0].put_nowait(3)
    await until(lambda: len(late.frames) == 2)
    assert early.texts() == ["snapshot 1", "snapshot 2", "snapshot 3"]
    assert late.texts() == ["snapshot 2", "snapshot 3"]
    await hub.close()


async def test_a_subscriber_of_a_feed_without_frames_yet_waits_for_the_first() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(positions(upstream), early)
    await until(lambda: len(upstream.queues) == 1)
    hub.subscribe(positions(upstream), late)
    assert late.frames == []
    upstream.queues[0].put_nowait(1)
    await until(lambda: len(late.frames) == 1 and len(early.frames) == 1)
    assert late.texts() == early.texts() == ["snapshot 1"]
    await hub.close()


async def test_a_late_subscriber_gets_the_latest_quote_at_once() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(prices(upstream), early)
    await until(lambda: len(upstream.queues) == 1)
    for item in ("q1", "q2"):
        upstream.queues[0].put_nowait(item)
    await until(lambda: len(early.frames) == 2)
    hub.subscribe(prices(upstream), late)
    assert late.texts() == ["q2"]
    assert upstream.opens == [0]
    await hub.close()


async def test_a_late_subscriber_gets_the_in_progress_candle_at_once() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(candles(upstream), early)
    await until(lambda: len(upstream.queues) == 1)
    # The 60 candle closes, then the 120 one starts and changes.
    for item in ((60, "1.0"), (60, "1.5"), (120, "1.6"), (120, "1.7")):
        upstream.queues[0].put_nowait(item)
    await until(lambda: len(early.frames) == 4)
    hub.subscribe(candles(upstream), late)
    assert late.texts() == ["120:1.7"]
    assert late.frames[0].slot == "candles:BTCUSD:CANDLE_INTERVAL_1M:120"
    assert upstream.opens == [0]
    await hub.close()


async def test_the_latest_state_survives_a_reconnect_until_the_new_stream_replaces_it() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(positions(upstream), early)
    await until(lambda: len(upstream.queues) == 1)
    upstream.queues[0].put_nowait(1)
    upstream.queues[0].put_nowait(rpc_error(grpc.StatusCode.UNAVAILABLE))
    await until(lambda: len(upstream.queues) == 2)
    upstream.queues[1].put_nowait(2)
    await until(lambda: len(early.frames) == 2)
    hub.subscribe(positions(upstream), late)
    assert late.texts() == ["snapshot 2"]
    await hub.close()


async def test_a_new_feed_of_a_key_starts_without_the_state_of_a_stopped_one() -> None:
    hub, upstream, first, second = Hub(), Upstream(), Sink(), Sink()
    subscription = hub.subscribe(positions(upstream), first)
    await until(lambda: len(upstream.queues) == 1)
    upstream.queues[0].put_nowait(1)
    await until(lambda: len(first.frames) == 1)
    hub.unsubscribe(subscription)
    assert hub.feed_count() == 0
    hub.subscribe(positions(upstream), second)
    assert second.frames == []
    await until(lambda: len(upstream.queues) == 2)
    upstream.queues[1].put_nowait(2)
    await until(lambda: len(second.frames) == 1)
    assert second.texts() == ["snapshot 2"]
    await hub.close()


async def test_events_are_not_replayed_as_state() -> None:
    hub, upstream, early, late = Hub(), Upstream(), Sink(), Sink()
    hub.subscribe(events(upstream), early, from_sequence=0)
    await until(lambda: len(upstream.queues) == 1)
    for item in ((1, 0), (2, 0)):
        upstream.queues[0].put_nowait(item)
    await until(lambda: len(early.frames) == 2)
    feed = hub.feed(("events", "u1"))
    assert feed is not None and feed.latest is None
    # Caught up already: joining delivers nothing, not even the latest event.
    hub.subscribe(events(upstream), late, from_sequence=2)
    assert late.frames == []
    upstream.queues[0].put_nowait((3, 0))
    await until(lambda: len(late.frames) == 1)
    assert late.texts() == ["3.0"]
    assert early.texts() == ["1.0", "2.0", "3.0"]
    await hub.close()
