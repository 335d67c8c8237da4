"""Email notifications of trading events, read from the engine's event streams.

The ``Notifier`` follows each user with a trading account through
``TradingService.StreamEvents`` (one stream per user, under an access token it signs for
that user) and turns the events a user wants to hear of (liquidation, take profit, stop loss
or trailing stop fired, pending order filled or rejected) into messages in the email outbox.

At most one message per event, across restarts and replicas: each user's cursor (the
sequence and index of the last event handled) is advanced by a compare-and-set in the same
transaction that queues the message, and a stream resumes from that cursor. Events from
before a user was first followed (``since_ms``) advance the cursor without a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Final, Protocol, TypeAlias

import grpc
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc.issuer import TokenIssuer
from account_svc.mail import OutgoingEmail
from account_svc.outbox import enqueue
from account_svc.provisioning import backoff_s
from account_svc.schema import (
    notification_cursors_table,
    notification_settings_table,
    provisioning_table,
    users_table,
)
from cfd.v1 import account_pb2, common_pb2, trading_pb2, trading_pb2_grpc
from mesh.errors import validation_error

_log = logging.getLogger(__name__)

Kind: TypeAlias = account_pb2.NotificationKind.ValueType
Event: TypeAlias = trading_pb2.StreamEventsResponse

# Every kind a user can switch, in the order of the enum.
KINDS: Final[tuple[Kind, ...]] = tuple(
    value
    for value in account_pb2.NotificationKind.values()
    if value != account_pb2.NOTIFICATION_KIND_UNSPECIFIED
)
_CLOSE_KINDS: Final[Mapping[int, Kind]] = {
    trading_pb2.CLOSE_REASON_TAKE_PROFIT: account_pb2.NOTIFICATION_KIND_TAKE_PROFIT,
    trading_pb2.CLOSE_REASON_STOP_LOSS: account_pb2.NOTIFICATION_KIND_STOP_LOSS,
    trading_pb2.CLOSE_REASON_TRAILING_STOP: account_pb2.NOTIFICATION_KIND_TRAILING_STOP,
}
_CLOSE_WORDS: Final[Mapping[Kind, str]] = {
    account_pb2.NOTIFICATION_KIND_LIQUIDATION: "was liquidated",
    account_pb2.NOTIFICATION_KIND_TAKE_PROFIT: "was closed by its take profit",
    account_pb2.NOTIFICATION_KIND_STOP_LOSS: "was closed by its stop loss",
    account_pb2.NOTIFICATION_KIND_TRAILING_STOP: "was closed by its trailing stop",
}
FOLLOW_INTERVAL_S: Final = 2.0
_MAX_STREAM_BACKOFF_S: Final = 30.0


def kind_of(event: Event) -> Kind | None:
    """Return the notification kind of an engine event, or None when it is not one."""
    if event.type == trading_pb2.EVENT_TYPE_POSITION_LIQUIDATED:
        return account_pb2.NOTIFICATION_KIND_LIQUIDATION
    if event.type == trading_pb2.EVENT_TYPE_POSITION_CLOSED:
        return _CLOSE_KINDS.get(event.position.close_reason)
    if event.type == trading_pb2.EVENT_TYPE_ORDER_FILLED:
        return account_pb2.NOTIFICATION_KIND_ORDER_FILLED
    if event.type == trading_pb2.EVENT_TYPE_ORDER_REJECTED:
        return account_pb2.NOTIFICATION_KIND_ORDER_REJECTED
    if event.type == trading_pb2.EVENT_TYPE_MARGIN_CALL:
        return account_pb2.NOTIFICATION_KIND_MARGIN_CALL
    return None


def _side(side: int) -> str:
    return "buy" if side == common_pb2.SIDE_BUY else "sell"


def notification_email(recipient: str, kind: Kind, event: Event) -> OutgoingEmail:
    """Return the message telling of ``event``, exact figures as the engine gave them."""
    if kind in _CLOSE_WORDS:
        p = event.position
        subject = f"{p.symbol} {_side(p.side)} position {_CLOSE_WORDS[kind]}"
        body = (
            f"Your {p.symbol} {_side(p.side)} position {p.id} of {p.quantity} "
            f"{_CLOSE_WORDS[kind]} at {p.close_price}.\n\n"
            f"Entry price: {p.entry_price}\nRealized PnL: {p.realized_pnl} USD\n"
        )
    elif kind == account_pb2.NOTIFICATION_KIND_MARGIN_CALL:
        call = event.margin_call
        subject = f"Margin call: your margin level is {call.margin_level}%"
        body = (
            f"The margin level of your account fell to {call.margin_level}% "
            f"(equity {call.equity} USD, used margin {call.used_margin} USD).\n\n"
            "Add funds or close positions: at the stop-out level, positions are closed, "
            "largest loss first.\n"
        )
    else:
        o = event.order
        size = o.quantity or f"{o.margin} USD of margin"
        if kind == account_pb2.NOTIFICATION_KIND_ORDER_FILLED:
            subject = f"{o.symbol} {_side(o.side)} order filled"
            outcome = f"triggered at {o.trigger_price} and opened position {o.position_id}"
        else:
            subject = f"{o.symbol} {_side(o.side)} order rejected"
            outcome = f"triggered at {o.trigger_price} but was rejected: {o.reject_reason}"
        body = f"Your pending {o.symbol} {_side(o.side)} order {o.id} for {size} {outcome}.\n"
    footer = (
        f"\nEngine sequence {event.sequence}. You can turn these messages off in the "
        "notification settings of your account.\n"
    )
    return OutgoingEmail(recipient, subject, body + footer)


class NotificationSettings:
    """Per-user switches of each kind, in ``account_notification_settings``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str) -> dict[Kind, bool]:
        """Return every kind's switch for the user (on unless turned off)."""
        async with self._engine.connect() as conn:
            return await _switches(conn, user_id)

    async def update(self, user_id: str, changes: Sequence[tuple[Kind, bool]]) -> dict[Kind, bool]:
        """Set the given kinds; raise VALIDATION_FAILED for an unknown or repeated kind."""
        seen: set[Kind] = set()
        for kind, _ in changes:
            if kind not in KINDS:
                raise validation_error("settings.kind", "must be a NotificationKind")
            if kind in seen:
                raise validation_error("settings.kind", "each kind at most once")
            seen.add(kind)
        s = notification_settings_table.c
        async with self._engine.begin() as conn:
            for kind, enabled in changes:
                name = account_pb2.NotificationKind.Name(kind)
                await conn.execute(
                    delete(notification_settings_table).where(s.user_id == user_id, s.kind == name)
                )
                await conn.execute(
                    notification_settings_table.insert().values(
                        user_id=user_id, kind=name, enabled=enabled
                    )
                )
            return await _switches(conn, user_id)


async def _switches(conn: AsyncConnection, user_id: str) -> dict[Kind, bool]:
    s = notification_settings_table.c
    rows = await conn.execute(select(s.kind, s.enabled).where(s.user_id == user_id))
    stored = {r.kind: bool(r.enabled) for r in rows}
    return {kind: stored.get(account_pb2.NotificationKind.Name(kind), True) for kind in KINDS}


async def start_following(conn: AsyncConnection, user_id: str, now_ms: int) -> None:
    """Within the caller's transaction, notify the user of events from ``now_ms`` on."""
    await conn.execute(
        notification_cursors_table.insert().values(
            user_id=user_id, sequence=0, event_index=-1, since_ms=now_ms
        )
    )


class EventSource(Protocol):
    """The engine's events of one account, after a sequence number."""

    def events(self, user_id: str, from_sequence: int) -> AsyncIterator[Event]:
        """Yield the account's events with a sequence above ``from_sequence``, then follow."""
        ...


class GrpcEventSource:
    """``EventSource`` over ``TradingService.StreamEvents``, as the user, with a signed token.

    `channels` holds one channel per CFD engine shard (shard 0 first); a user's events come
    from the shard holding their account (`shard_of`).
    """

    def __init__(
        self,
        channels: Sequence[grpc.aio.Channel],
        issuer: TokenIssuer,
        shard_of: Callable[[str], Awaitable[int]],
    ) -> None:
        self._stubs = [trading_pb2_grpc.TradingServiceStub(channel) for channel in channels]
        self._issuer = issuer
        self._shard_of = shard_of

    async def events(self, user_id: str, from_sequence: int) -> AsyncIterator[Event]:
        """Yield the account's events after ``from_sequence``; a failed stream raises."""
        shard = await self._shard_of(user_id)
        token, _ = self._issuer.issue(user_id, shard=shard)
        call = self._stubs[shard].StreamEvents(
            trading_pb2.StreamEventsRequest(from_sequence=from_sequence),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        async for event in call:
            yield event


class Notifier:
    """Follow every user with a trading account and queue their notifications."""

    def __init__(
        self,
        engine: AsyncEngine,
        source: EventSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._source = source
        self._clock = clock
        self._followed: dict[str, asyncio.Task[None]] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def handle(self, user_id: str, event: Event) -> bool:
        """Advance the user's cursor past ``event`` and queue its message if wanted.

        Return whether a message was queued. An event at or before the cursor (a replay)
        changes nothing.
        """
        c = notification_cursors_table.c
        seq, idx = event.sequence, event.index
        async with self._engine.begin() as conn:
            since_ms = await conn.scalar(select(c.since_ms).where(c.user_id == user_id))
            if since_ms is None:
                return False
            advanced = await conn.execute(
                update(notification_cursors_table)
                .where(
                    c.user_id == user_id,
                    or_(c.sequence < seq, and_(c.sequence == seq, c.event_index < idx)),
                )
                .values(sequence=seq, event_index=idx)
            )
            kind = kind_of(event)
            event_ms = event.time.seconds * 1000 + event.time.nanos // 1_000_000
            if advanced.rowcount != 1 or kind is None or event_ms < since_ms:
                return False
            if not (await _switches(conn, user_id))[kind]:
                return False
            email = await conn.scalar(
                select(users_table.c.email).where(users_table.c.id == user_id)
            )
            if email is None:
                return False
            await enqueue(conn, notification_email(email, kind, event), self._now_ms())
        _log.info(
            "notification queued",
            extra={"fields": {"user_id": user_id, "kind": account_pb2.NotificationKind.Name(kind)}},
        )
        return True

    async def _cursor(self, user_id: str) -> tuple[int, int]:
        c = notification_cursors_table.c
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(c.sequence, c.event_index).where(c.user_id == user_id))
            ).one_or_none()
            if row is not None:
                return int(row.sequence), int(row.event_index)
            # A user from before notifications: told of what happens from now on.
            with contextlib.suppress(IntegrityError):
                async with conn.begin_nested():
                    await start_following(conn, user_id, self._now_ms())
        return 0, -1

    async def follow(self, user_id: str) -> None:
        """Read the user's events from the cursor on, reconnecting with backoff, forever."""
        failures = 0
        while True:
            sequence, _ = await self._cursor(user_id)
            try:
                # The cursor's own sequence may have more events after the last one handled.
                async for event in self._source.events(user_id, max(sequence - 1, 0)):
                    await self.handle(user_id, event)
                    failures = 0
            except grpc.aio.AioRpcError as exc:
                _log.warning(
                    "event stream ended: %s",
                    exc.code().name,
                    extra={"fields": {"user_id": user_id}},
                )
            except Exception:
                # A database outage must not stop the user's notifications for good.
                _log.exception("notifications failed", extra={"fields": {"user_id": user_id}})
            failures += 1
            await asyncio.sleep(min(_MAX_STREAM_BACKOFF_S, backoff_s(failures - 1)))

    async def follow_new_users(self) -> int:
        """Start following each user whose trading account exists; return how many started."""
        u, p = users_table.c, provisioning_table.c
        stmt = (
            select(u.id)
            .join_from(users_table, provisioning_table, u.id == p.user_id, isouter=True)
            .where(p.user_id.is_(None))
        )
        async with self._engine.connect() as conn:
            user_ids = [str(r.id) for r in await conn.execute(stmt)]
        started = 0
        for user_id in user_ids:
            task = self._followed.get(user_id)
            if task is None or task.done():
                self._followed[user_id] = asyncio.create_task(self.follow(user_id))
                started += 1
        return started

    async def aclose(self) -> None:
        """Stop following everyone."""
        tasks = list(self._followed.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._followed.clear()
