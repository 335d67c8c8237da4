"""The WebSocket endpoint `/v1/ws`: auth, subscribe/unsubscribe, ping, as API.md describes.

Close codes: 1008 when the client stays blocked on one frame longer than the send timeout
(a slow consumer) or keeps flooding control frames; 1009 for a frame over the size limit
(enforced by the server); 1012 when the edge shuts down. Opening connections faster than the
WebSocket rate limit allows from one address is refused at the handshake (HTTP 403). Everything
else the client does wrong gets an error frame and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import status_pb2
from starlette.websockets import WebSocket, WebSocketDisconnect

from edge import metrics
from edge.auth import Identity, JwksKeys
from edge.channels import Channels
from edge.errors import reason
from edge.hub import FeedSpec, Frame, Hub, Subscription
from edge.outbox import Outbox, OutboxClosedError
from edge.transcode import decode_json
from mesh.errors import ApiError, validation_error
from mesh.ratelimit import RateLimiter
from mesh.revocation import REFRESH_INTERVAL_S
from mesh.tokens import revoked_token_error

log = logging.getLogger("edge.ws")

SYMBOL = re.compile(r"^[A-Z0-9._-]{1,32}$")
MAX_SYMBOLS = 50
MAX_SEQUENCE = 2**63 - 1
CLOSE_SLOW = 1008
RATE_WINDOW_S = 60
PRIVATE = frozenset({"positions", "events"})
# Reason of the error frame telling a client its events subscription must be resumed.
RESUME_REQUIRED = "RESUME_REQUIRED"


@dataclass(frozen=True, slots=True)
class WsLimits:
    """Bounds of one connection."""

    max_frame_bytes: int
    max_subscriptions: int
    event_backlog: int
    send_timeout_s: float
    rate_limit: int


def _text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_body(status: status_pb2.Status) -> dict[str, Any]:
    """Return the `error` object of an error frame."""
    return {"code": status.code, "reason": reason(status), "message": status.message}


class Connection:
    """One client: its identity, its subscriptions and its outbox."""

    def __init__(
        self,
        websocket: WebSocket,
        hub: Hub,
        channels: Channels,
        keys: JwksKeys,
        limiter: RateLimiter,
        limits: WsLimits,
        client_ip: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ws = websocket
        self._hub = hub
        self._channels = channels
        self._jwks = keys
        self._limiter = limiter
        self._limits = limits
        self._ip = client_ip
        self._clock = clock
        self._outbox = Outbox(limits.event_backlog)
        self._subscriptions: dict[tuple[str, ...], Subscription] = {}
        self._identity: Identity | None = None
        self._token = ""
        self._expiry: asyncio.Task[None] | None = None
        self._intervals = set(channels.candle_intervals())
        self.close_code: int | None = None

    async def run(self) -> None:
        """Serve the connection until the client leaves or is dropped."""
        await self._ws.accept()
        metrics.WS_OPENED.inc()
        metrics.WS_OPEN.inc()
        sender = asyncio.create_task(self._send_loop())
        receiver = asyncio.create_task(self._receive_loop())
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            for task in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._release()
            metrics.WS_OPEN.dec()
            metrics.WS_FRAMES_CONFLATED.inc(self._outbox.conflated)

    def _release(self) -> None:
        for subscription in list(self._subscriptions.values()):
            self._hub.unsubscribe(subscription)
        self._subscriptions.clear()
        self._outbox.close()
        if self._expiry is not None:
            self._expiry.cancel()

    async def _send_loop(self) -> None:
        while True:
            try:
                text = await self._outbox.get()
            except OutboxClosedError:
                if self.close_code is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._ws.close(self.close_code), 1.0)
                return
            try:
                await asyncio.wait_for(self._ws.send_text(text), self._limits.send_timeout_s)
                metrics.WS_FRAMES_SENT.inc()
            except TimeoutError:
                metrics.WS_SLOW_CLOSED.inc()
                log.info("closing a slow WebSocket client", extra={"fields": {"ip": self._ip}})
                await self._close(CLOSE_SLOW, "slow consumer: fell too far behind")
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                return

    async def _close(self, code: int, why: str) -> None:
        self.close_code = code
        self._release()
        # A client that reads nothing cannot receive the close frame either: give up after a bit.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code, why), 1.0)

    async def _receive_loop(self) -> None:
        while True:
            event = await self._ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            await self._handle(event.get("text"))

    async def _handle(self, text: str | None) -> None:
        request: dict[str, Any] = {}
        try:
            # Every frame counts, garbage included, so that no kind of flood is free.
            await self._rate_limit()
            if text is None:
                raise validation_error("frame", "frames must be JSON text")
            if len(text.encode()) > self._limits.max_frame_bytes:
                raise validation_error("frame", "frame too large")
            decoded = decode_json(text, "frame")
            if not isinstance(decoded, dict):
                raise validation_error("frame", "a frame is a JSON object")
            request = decoded
            op = request.get("op")
            if op == "ping":
                self._reply({"type": "pong"}, request)
            elif op == "auth":
                self._auth(request)
            elif op == "subscribe":
                self._subscribe(request)
            elif op == "unsubscribe":
                self._unsubscribe(request)
            else:
                raise validation_error("op", "must be auth, subscribe, unsubscribe or ping")
        except ApiError as exc:
            self._reply_error(exc, request)

    async def _rate_limit(self) -> None:
        keys = [f"ws:ip:{self._ip}"]
        if self._identity is not None:
            keys.append(f"ws:user:{self._identity.subject}")
        for key in keys:
            decision = await self._limiter.hit(key, self._limits.rate_limit, RATE_WINDOW_S)
            if not decision.allowed:
                raise ApiError(
                    "RATE_LIMITED",
                    "too many WebSocket messages; slow down",
                    retry_after_s=decision.retry_after_s,
                )

    def _auth(self, request: dict[str, Any]) -> None:
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise validation_error("token", "must be a non-empty access token")
        identity = self._jwks.verify(token)
        if self._identity is not None and identity.subject != self._identity.subject:
            self._drop_private()
        self._identity, self._token = identity, token
        self._channels.renew_token(identity.subject, token)
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.create_task(self._expire(identity))
        self._reply({"type": "ack", "op": "auth", "userId": identity.subject}, request)

    async def _expire(self, identity: Identity) -> None:
        # Wake at the expiry, and every reload of the revocation list to notice a sign-out.
        while True:
            if self._jwks.is_revoked(identity):
                error = revoked_token_error()
                break
            remaining = identity.expires_at - self._clock()
            if remaining <= 0:
                error = ApiError("TOKEN_EXPIRED", "the access token expired; send auth again")
                break
            await asyncio.sleep(min(remaining, REFRESH_INTERVAL_S))
        if self._identity is identity:
            self._identity = None
            had_private = self._drop_private()
            body = {"type": "error", "error": error_body(error.to_status())}
            if had_private:
                body["channels"] = had_private
            self._push_control(body)

    def _drop_private(self) -> list[str]:
        dropped: list[str] = []
        for key, subscription in list(self._subscriptions.items()):
            if key[0] in PRIVATE:
                self._hub.unsubscribe(subscription)
                del self._subscriptions[key]
                self._outbox.drop_slots(str(key[0]))
                if key[0] == "events":
                    self._outbox.clear_events()
                dropped.append(str(key[0]))
        return dropped

    def _keys(self, request: dict[str, Any]) -> list[tuple[str, ...]]:
        """Return the channel keys a subscribe/unsubscribe frame names, validating it."""
        channel = request.get("channel")
        if channel == "prices":
            symbols = request.get("symbols")
            if isinstance(request.get("symbol"), str) and symbols is None:
                symbols = [request["symbol"]]
            if (
                not isinstance(symbols, list)
                or not 1 <= len(symbols) <= MAX_SYMBOLS
                or not all(isinstance(s, str) and SYMBOL.match(s) for s in symbols)
            ):
                raise validation_error("symbols", f'1 to {MAX_SYMBOLS} symbols like "BTCUSD"')
            return [("prices", s) for s in dict.fromkeys(symbols)]
        if channel == "candles":
            symbol, interval = request.get("symbol"), request.get("interval")
            if not isinstance(symbol, str) or not SYMBOL.match(symbol):
                raise validation_error("symbol", 'a symbol like "BTCUSD"')
            if interval not in self._intervals:
                raise validation_error("interval", "a CandleInterval name like CANDLE_INTERVAL_1M")
            return [("candles", symbol, str(interval))]
        if channel in ("book", "trades"):
            market = request.get("market")
            if not isinstance(market, str) or not SYMBOL.match(market):
                raise validation_error("market", 'a market like "BTC_USD"')
            return [(str(channel), market)]
        if channel in PRIVATE:
            return [(str(channel),)]
        raise validation_error(
            "channel", "must be prices, candles, book, trades, positions or events"
        )

    def _subscribe(self, request: dict[str, Any]) -> None:
        keys = self._keys(request)
        channel = str(request["channel"])
        from_sequence = 0
        if channel in PRIVATE:
            if self._identity is None:
                raise ApiError("TOKEN_INVALID", f"send auth before subscribing to {channel}")
            if self._identity.expires_at <= self._clock():
                raise ApiError("TOKEN_EXPIRED", "the access token expired; send auth again")
            if self._jwks.is_revoked(self._identity):
                raise revoked_token_error()
        if channel == "events":
            from_sequence = _sequence(request.get("fromSequence", "0"))
        new = [key for key in keys if key not in self._subscriptions]
        if len(self._subscriptions) + len(new) > self._limits.max_subscriptions:
            raise validation_error("channel", "too many subscriptions on this connection")
        for key in new:
            self._subscriptions[key] = self._hub.subscribe(
                self._feed_spec(key), self, from_sequence
            )
        if channel == "events" and ("events",) not in new:
            # Subscribing again moves the events subscription to the new starting point.
            self._hub.unsubscribe(self._subscriptions[("events",)])
            self._outbox.clear_events()
            self._subscriptions[("events",)] = self._hub.subscribe(
                self._feed_spec(("events",)), self, from_sequence
            )
        self._reply({"type": "ack", "op": "subscribe", **_echo(request)}, request)

    def _feed_spec(self, key: tuple[str, ...]) -> FeedSpec:
        if key[0] == "prices":
            return self._channels.prices(key[1])
        if key[0] == "candles":
            return self._channels.candles(key[1], key[2])
        if key[0] == "book":
            return self._channels.book(key[1])
        if key[0] == "trades":
            return self._channels.trades(key[1])
        assert self._identity is not None
        if key[0] == "positions":
            return self._channels.positions(self._identity.subject, self._token)
        return self._channels.events(self._identity.subject, self._token)

    def _unsubscribe(self, request: dict[str, Any]) -> None:
        for key in self._keys(request):
            subscription = self._subscriptions.pop(key, None)
            if subscription is not None:
                self._hub.unsubscribe(subscription)
                self._outbox.drop_slots(":".join(str(k) for k in key))
                if key[0] == "events":
                    self._outbox.clear_events()
        self._reply({"type": "ack", "op": "unsubscribe", **_echo(request)}, request)

    # Subscriber protocol (called by feeds).

    def deliver(self, subscription: Subscription, frame: Frame) -> None:
        """Queue a frame of a feed; an events backlog past its bound asks for a resume."""
        if frame.slot is not None:
            text = frame.text
            if frame.whole is not None and (
                not subscription.primed or self._outbox.has_latest(frame.slot)
            ):
                # A change alone would leave this client's book wrong: send the whole book.
                text = frame.whole()
            subscription.primed = True
            self._outbox.latest(frame.slot, text)
            return
        if self._outbox.event(frame):
            return
        metrics.WS_RESUMES.inc()
        oldest = self._outbox.first_event()
        resume_after = (oldest.sequence if oldest is not None else frame.sequence) - 1
        self._outbox.clear_events()
        for key, current in list(self._subscriptions.items()):
            if current is subscription:
                del self._subscriptions[key]
        self._hub.unsubscribe(subscription)
        resume = str(max(0, resume_after))
        self._push_control(
            {
                "type": "error",
                "channel": "events",
                "fromSequence": resume,
                "error": {
                    "code": grpc.StatusCode.ABORTED.value[0],
                    "reason": RESUME_REQUIRED,
                    "message": f"events fell too far behind; subscribe with fromSequence {resume}",
                },
            }
        )

    def fail(self, subscription: Subscription, status: status_pb2.Status) -> None:
        """Report a feed that ended for good and forget the subscription."""
        for key, current in list(self._subscriptions.items()):
            if current is subscription:
                del self._subscriptions[key]
                frame: dict[str, Any] = {"type": "error", "channel": key[0]}
                if key[0] == "prices":
                    frame["symbols"] = [key[1]]
                elif key[0] == "candles":
                    frame["symbol"], frame["interval"] = key[1], key[2]
                elif key[0] in ("book", "trades"):
                    frame["market"] = key[1]
                frame["error"] = error_body(status)
                self._push_control(frame)

    # Replies.

    def _reply(self, body: dict[str, Any], request: dict[str, Any]) -> None:
        if "id" in request and isinstance(request["id"], str | int):
            body["id"] = request["id"]
        self._push_control(body)

    def _reply_error(self, error: ApiError, request: dict[str, Any]) -> None:
        body: dict[str, Any] = {"type": "error", "error": error_body(error.to_status())}
        if error.retry_after_s is not None:
            body["error"]["retryAfter"] = error.retry_after_s
        if isinstance(request.get("op"), str):
            body["op"] = request["op"]
        self._reply(body, request)

    def _push_control(self, body: dict[str, Any]) -> None:
        if not self._outbox.control(_text(body)):
            # The client neither reads nor stops writing: drop it.
            self.close_code = CLOSE_SLOW
            self._release()


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    return {
        k: request[k]
        for k in ("channel", "symbols", "symbol", "interval", "market", "fromSequence")
        if k in request
    }


def _sequence(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise validation_error("fromSequence", "a sequence number as a string of digits")
    text = str(value)
    if not text.isdigit() or int(text) > MAX_SEQUENCE:
        raise validation_error("fromSequence", "a sequence number from 0 to 2^63-1")
    return int(text)
