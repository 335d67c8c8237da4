"""Tests for trading notifications: engine events to outbox messages, at most once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf import timestamp_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc.notifications import (
    KINDS,
    Event,
    NotificationSettings,
    Notifier,
    kind_of,
    notification_email,
    start_following,
)
from account_svc.schema import email_outbox_table
from account_svc.users import User, UserStore
from cfd.v1 import account_pb2, common_pb2, trading_pb2
from mesh.errors import ApiError
from support import until

SIGNUP_MS = 1_000_000_000


def at(ms: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def closed(sequence: int, reason: int, index: int = 0, ms: int = SIGNUP_MS + 1) -> Event:
    return trading_pb2.StreamEventsResponse(
        sequence=sequence,
        index=index,
        time=at(ms),
        type=trading_pb2.EVENT_TYPE_POSITION_CLOSED,
        position=trading_pb2.Position(
            id="p1",
            symbol="BTCUSD",
            side=common_pb2.SIDE_BUY,
            quantity="0.01",
            entry_price="60000.00",
            close_price="59000.00",
            realized_pnl="-10.000000",
            close_reason=reason,  # type: ignore[arg-type]
        ),
    )


def order_event(sequence: int, event_type: int) -> Event:
    return trading_pb2.StreamEventsResponse(
        sequence=sequence,
        time=at(SIGNUP_MS + 1),
        type=event_type,  # type: ignore[arg-type]
        order=trading_pb2.Order(
            id="o7",
            symbol="ETHUSD",
            side=common_pb2.SIDE_SELL,
            trigger_price="3000.00",
            quantity="0.5",
            position_id="p9",
            reject_reason="INSUFFICIENT_BALANCE",
        ),
    )


async def new_user(db: AsyncEngine, email: str, confirmed: bool = True) -> User:
    async def follow(conn: AsyncConnection, user: User) -> None:
        await start_following(conn, user.id, SIGNUP_MS)

    users = UserStore(db)
    user = await users.create(email, "hash", "5000", also=follow)
    if confirmed:
        await users.complete_account(user.id)
    return user


async def messages(db: AsyncEngine) -> list[tuple[str, str, str]]:
    c = email_outbox_table.c
    async with db.connect() as conn:
        rows = await conn.execute(select(c.recipient, c.subject, c.body).order_by(c.id))
        return [(r.recipient, r.subject, r.body) for r in rows]


class NoEvents:
    def events(self, user_id: str, from_sequence: int) -> AsyncIterator[Event]:
        raise AssertionError("not streamed in this test")


class ScriptedEvents:
    """The engine's events per user: yields those after `from_sequence`, then waits."""

    def __init__(self, events: dict[str, list[Event]]) -> None:
        self._events = events
        self.requests: list[tuple[str, int]] = []
        # Streams that handed over all their events (each one handled by then).
        self.drained = 0

    async def events(self, user_id: str, from_sequence: int) -> AsyncIterator[Event]:
        self.requests.append((user_id, from_sequence))
        for event in self._events.get(user_id, []):
            if event.sequence > from_sequence:
                yield event
        self.drained += 1
        await asyncio.Event().wait()


def test_only_fired_triggers_and_triggered_orders_are_notifications() -> None:
    assert kind_of(closed(1, trading_pb2.CLOSE_REASON_STOP_LOSS)) == (
        account_pb2.NOTIFICATION_KIND_STOP_LOSS
    )
    assert kind_of(closed(1, trading_pb2.CLOSE_REASON_USER)) is None
    liquidated = closed(1, trading_pb2.CLOSE_REASON_LIQUIDATION)
    liquidated.type = trading_pb2.EVENT_TYPE_POSITION_LIQUIDATED
    assert kind_of(liquidated) == account_pb2.NOTIFICATION_KIND_LIQUIDATION
    assert kind_of(order_event(1, trading_pb2.EVENT_TYPE_ORDER_PLACED)) is None
    assert kind_of(order_event(1, trading_pb2.EVENT_TYPE_ORDER_REJECTED)) == (
        account_pb2.NOTIFICATION_KIND_ORDER_REJECTED
    )
    margin_call = Event(sequence=1, type=trading_pb2.EVENT_TYPE_MARGIN_CALL)
    assert kind_of(margin_call) == account_pb2.NOTIFICATION_KIND_MARGIN_CALL


def test_a_margin_call_is_mailed_with_the_accounts_figures() -> None:
    event = Event(
        sequence=9,
        type=trading_pb2.EVENT_TYPE_MARGIN_CALL,
        margin_call=trading_pb2.MarginCall(
            margin_level="58.250000", equity="582.50", used_margin="1000.00"
        ),
    )
    kind = account_pb2.NOTIFICATION_KIND_MARGIN_CALL
    email = notification_email("ann@example.com", kind, event)
    assert email.subject == "Margin call: your margin level is 58.250000%"
    assert "equity 582.50 USD, used margin 1000.00 USD" in email.body


async def test_an_event_is_queued_once_however_often_it_is_read(db: AsyncEngine) -> None:
    user = await new_user(db, "ann@example.com")
    notifier = Notifier(db, NoEvents())
    event = closed(5, trading_pb2.CLOSE_REASON_STOP_LOSS)
    assert await notifier.handle(user.id, event)
    assert not await notifier.handle(user.id, event)
    assert not await notifier.handle(user.id, closed(4, trading_pb2.CLOSE_REASON_TAKE_PROFIT))
    [(recipient, subject, body)] = await messages(db)
    assert recipient == "ann@example.com"
    assert subject == "BTCUSD buy position was closed by its stop loss"
    assert "at 59000.00" in body and "Realized PnL: -10.000000 USD" in body
    # The next event of the same sequence is another event.
    assert await notifier.handle(user.id, closed(5, trading_pb2.CLOSE_REASON_TAKE_PROFIT, 1))
    assert len(await messages(db)) == 2


async def test_order_notifications_say_what_happened(db: AsyncEngine) -> None:
    user = await new_user(db, "ann@example.com")
    notifier = Notifier(db, NoEvents())
    assert await notifier.handle(user.id, order_event(1, trading_pb2.EVENT_TYPE_ORDER_FILLED))
    assert await notifier.handle(user.id, order_event(2, trading_pb2.EVENT_TYPE_ORDER_REJECTED))
    assert not await notifier.handle(user.id, order_event(3, trading_pb2.EVENT_TYPE_ORDER_PLACED))
    subjects = sorted(subject for _, subject, _ in await messages(db))
    assert subjects == ["ETHUSD sell order filled", "ETHUSD sell order rejected"]
    bodies = " ".join(body for _, _, body in await messages(db))
    assert "opened position p9" in bodies and "rejected: INSUFFICIENT_BALANCE" in bodies


async def test_a_kind_switched_off_is_passed_over_for_good(db: AsyncEngine) -> None:
    user = await new_user(db, "ann@example.com")
    settings = NotificationSettings(db)
    switches = await settings.update(user.id, [(account_pb2.NOTIFICATION_KIND_STOP_LOSS, False)])
    assert switches[account_pb2.NOTIFICATION_KIND_STOP_LOSS] is False
    assert all(
        on for kind, on in switches.items() if kind != account_pb2.NOTIFICATION_KIND_STOP_LOSS
    )
    notifier = Notifier(db, NoEvents())
    event = closed(3, trading_pb2.CLOSE_REASON_STOP_LOSS)
    assert not await notifier.handle(user.id, event)
    await settings.update(user.id, [(account_pb2.NOTIFICATION_KIND_STOP_LOSS, True)])
    # Turning it on again does not tell of what happened meanwhile.
    assert not await notifier.handle(user.id, event)
    assert await messages(db) == []


async def test_events_before_the_user_was_followed_are_passed_over(db: AsyncEngine) -> None:
    user = await new_user(db, "ann@example.com")
    notifier = Notifier(db, NoEvents())
    old = closed(2, trading_pb2.CLOSE_REASON_STOP_LOSS, ms=SIGNUP_MS - 1)
    assert not await notifier.handle(user.id, old)
    assert await messages(db) == []


async def test_settings_refuse_unknown_and_repeated_kinds(db: AsyncEngine) -> None:
    user = await new_user(db, "ann@example.com")
    settings = NotificationSettings(db)
    for changes in (
        [(account_pb2.NOTIFICATION_KIND_UNSPECIFIED, False)],
        [(99, False)],
        [(account_pb2.NOTIFICATION_KIND_LIQUIDATION, False)] * 2,
    ):
        with pytest.raises(ApiError) as info:
            await settings.update(user.id, changes)  # type: ignore[arg-type]
        assert info.value.reason == "VALIDATION_FAILED"
    assert await settings.get(user.id) == dict.fromkeys(KINDS, True)


async def test_a_restarted_notifier_resumes_without_repeating(db: AsyncEngine) -> None:
    ann = await new_user(db, "ann@example.com")
    await new_user(db, "pending@example.com", confirmed=False)
    events = {
        ann.id: [
            closed(3, trading_pb2.CLOSE_REASON_STOP_LOSS),
            closed(7, trading_pb2.CLOSE_REASON_TAKE_PROFIT),
            closed(7, trading_pb2.CLOSE_REASON_TRAILING_STOP, index=1),
        ]
    }
    source = ScriptedEvents(events)
    first = Notifier(db, source)
    assert await first.follow_new_users() == 1
    await until(lambda: source.drained == 1)
    await first.aclose()
    assert len(await messages(db)) == 3

    restarted = Notifier(db, source)
    assert await restarted.follow_new_users() == 1
    await until(lambda: source.drained == 2)
    await restarted.aclose()
    # It resumed within the last sequence handled, and queued nothing again.
    assert source.requests == [(ann.id, 0), (ann.id, 6)]
    assert len(await messages(db)) == 3


async def test_a_user_from_before_notifications_is_told_of_new_events_only(
    db: AsyncEngine,
) -> None:
    users = UserStore(db)
    user = await users.create("old@example.com", "hash", "5000")
    await users.complete_account(user.id)
    source = ScriptedEvents({user.id: [closed(4, trading_pb2.CLOSE_REASON_STOP_LOSS)]})
    notifier = Notifier(db, source, clock=lambda: SIGNUP_MS / 1000 + 10)
    await notifier.follow_new_users()
    await until(lambda: source.drained == 1)
    await notifier.aclose()
    assert await messages(db) == []
    assert await notifier.handle(
        user.id, closed(5, trading_pb2.CLOSE_REASON_STOP_LOSS, ms=SIGNUP_MS + 20_000)
    )
    assert len(await messages(db)) == 1
