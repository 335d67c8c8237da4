"""The replicated journal: each group commit is one message of a NATS JetStream stream.

A message holds the batch's records in the file journal's framing (length, CRC, seq, payload;
`engine_svc.journal.frame`), so both journals check and replay records the same way. The
stream is replicated by JetStream's Raft group (``CFD_JOURNAL_REPLICAS``) and `append` returns
only once JetStream acknowledged the message, that is once a majority of the replicas stored it;
the sequencer releases results after `append` returns, so nothing unreplicated is acknowledged.

Every publish carries ``Nats-Expected-Last-Sequence``: the stream seq this writer last saw.
When another engine appended in between (it took the lead), JetStream refuses the message and
`append` raises `JournalFencedError`; the writer never appends again and steps down. Each
publish that timed out is never retried: it may have been stored, and then the next publish of
this writer is refused the same way, so no batch is acknowledged twice or out of order.

Nothing is deleted by the engine: the stream is the shared history that a standby, or a new
engine without snapshots, replays from; its size is bounded by the stream's own limits.
Snapshots stay local.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Awaitable, Iterator, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from engine_svc.journal import (
    MAX_PAYLOAD,
    DurableMark,
    JournalError,
    JournalUnavailableError,
    frame,
    scan,
)

log = logging.getLogger("engine.jetstream")

T = TypeVar("T")
# JetStream's error code for a publish whose expected last sequence is not the stream's.
WRONG_LAST_SEQUENCE = 10071
READ_CHUNK = 256
CONNECT_TIMEOUT_S = 5.0


class JournalFencedError(JournalError):
    """Another writer appended to the stream: this one lost the lead and must not write."""


def subject(stream: str) -> str:
    """Return the subject the journal stream `stream` is published on."""
    return f"cfd.journal.{stream.lower()}"


class _Loop:
    """An event loop on its own thread: the journal's calls are synchronous, like the file
    journal's, and run from the sequencer's journal thread and the start-up code alike."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jetstream", daemon=True)
        self._thread.start()

    def call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(_awaited(coro), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _awaited(coro: Awaitable[T]) -> T:
    return await coro


async def connect(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """Connect to the NATS servers of `url` (comma-separated); once connected, reconnect for
    ever. Raise TimeoutError when no server answers within `timeout_s`: the client's own
    first connect never gives up when reconnecting has no limit."""
    # The client takes fractions of seconds although its signature says int.
    options: dict[str, Any] = {
        "servers": [part.strip() for part in url.split(",") if part.strip()],
        "connect_timeout": timeout_s,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.1,
        "allow_reconnect": True,
    }
    nc = Client()
    try:
        await asyncio.wait_for(nc.connect(**options), timeout_s)
    except BaseException:
        await close_client(nc)
        raise
    return nc


async def close_client(nc: Client) -> None:
    """Close `nc` within CONNECT_TIMEOUT_S: a server that stopped reading cannot hold it up."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), CONNECT_TIMEOUT_S)


class JetStreamJournal:
    """The engine's write-ahead log on a replicated JetStream stream; `append` returns once a
    majority of the replicas stored the batch."""

    # The sequencer runs `append` on its journal thread only for a blocking journal.
    fsync = True

    def __init__(self, url: str, stream: str, replicas: int, timeout_s: float) -> None:
        self.url = url
        self.stream = stream
        self.subject = subject(stream)
        self.replicas = replicas
        self.timeout_s = timeout_s
        self.mark: DurableMark | None = None
        self.fenced = False
        self._first = 0
        self._last = 0
        self._stream_seq = 0
        self._bytes = 0
        self._messages = 0
        self._loop = _Loop()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, url: str, stream: str, replicas: int = 3, timeout_s: float = 5.0
    ) -> JetStreamJournal:
        """Connect, create the stream when it does not exist and find its end."""
        journal = cls(url, stream, replicas, timeout_s)
        try:
            journal._loop.call(journal._open(), CONNECT_TIMEOUT_S + timeout_s * 2)
        except BaseException as exc:
            journal.close()
            if isinstance(exc, JournalError):
                raise
            raise JournalError(f"cannot open the journal stream at {url}: {exc}") from exc
        return journal

    async def _open(self) -> None:
        self._nc = await connect(self.url)
        self._js = self._nc.jetstream(timeout=self.timeout_s)
        try:
            await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self.stream,
                subjects=[self.subject],
                num_replicas=self.replicas,
                storage=StorageType.FILE,
                max_msg_size=MAX_PAYLOAD * 4,
            )
            await self._js.add_stream(config)
        await self._refresh()

    async def _refresh(self) -> None:
        """Read the stream's state: its end, and the seqs of its first and last records."""
        js = self._js
        assert js is not None
        info = await js.stream_info(self.stream)
        state = info.state
        self._stream_seq = state.last_seq
        self._bytes = state.bytes
        self._messages = state.messages
        self._first, self._last = 1, 0
        if state.messages:
            first = await self._records(state.first_seq)
            last = await self._records(state.last_seq)
            self._first, self._last = first[0][0], last[-1][0]
        self.mark = DurableMark(self._last, 0, 0, True)

    async def _records(self, stream_seq: int) -> list[tuple[int, bytes]]:
        js = self._js
        assert js is not None
        message = await js.get_msg(self.stream, stream_seq)
        records, _, _, problem = scan(message.data or b"", 0)
        if problem or not records:
            raise JournalError(
                f"{self.stream} message {stream_seq}: {problem or 'no records'} while reading"
            )
        return records

    @property
    def last_seq(self) -> int:
        """Return the seq of the newest record, 0 when the stream is empty."""
        return self._last

    @property
    def first_seq(self) -> int:
        """Return the seq of the oldest record the stream holds (1 when it holds none)."""
        return self._first

    @property
    def segment_count(self) -> int:
        """Return 1 when the stream holds records, else 0: the stream is one unit of storage."""
        return 1 if self._messages else 0

    @property
    def total_bytes(self) -> int:
        """Return the bytes the stream holds, as JetStream reported them at the last refresh."""
        return self._bytes

    @property
    def stream_seq(self) -> int:
        """Return the stream seq of the newest message this journal has seen."""
        return self._stream_seq

    def covers(self, after_seq: int) -> bool:
        """Return whether every record after `after_seq` is still in the stream."""
        return self._first <= after_seq + 1

    def read(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (seq, payload) of every record with a seq above `after_seq`, in order, up to
        the end the journal knew when `read` started."""
        end = self._stream_seq
        position = self._loop.call(self._locate(after_seq, end), self.timeout_s * 4)
        while position <= end:
            stop = min(end, position + READ_CHUNK - 1)
            chunk = self._loop.call(self._chunk(position, stop), self.timeout_s * 2)
            for records in chunk:
                for seq, payload in records:
                    if seq > after_seq:
                        yield seq, payload
            position = stop + 1

    async def _chunk(self, low: int, high: int) -> list[list[tuple[int, bytes]]]:
        return list(await asyncio.gather(*(self._records(s) for s in range(low, high + 1))))

    async def _locate(self, after_seq: int, end: int) -> int:
        """Return the stream seq of the first message that can hold a record after `after_seq`
        (a binary search on the messages' first seqs, which only grow)."""
        js = self._js
        assert js is not None
        info = await js.stream_info(self.stream)
        low, high = max(1, info.state.first_seq), end
        found = low
        while low <= high:
            middle = (low + high) // 2
            first = (await self._records(middle))[0][0]
            if first <= after_seq + 1:
                found, low = middle, middle + 1
            else:
                high = middle - 1
        return found

    def follow(self) -> list[tuple[int, bytes]]:
        """Return the records other writers appended since this journal last looked, and take
        them as its own end (a standby applies them)."""
        with self._lock:
            return self._loop.call(self._follow(), self.timeout_s * 4)

    async def _follow(self) -> list[tuple[int, bytes]]:
        js = self._js
        assert js is not None
        info = await js.stream_info(self.stream)
        end = info.state.last_seq
        found: list[tuple[int, bytes]] = []
        # Nothing is taken as read until every message is: a failure leaves the end unchanged.
        last = self._last
        position = self._stream_seq + 1
        while position <= end:
            stop = min(end, position + READ_CHUNK - 1)
            for records in await self._chunk(position, stop):
                found.extend((seq, payload) for seq, payload in records if seq > last)
                last = max(last, records[-1][0])
            position = stop + 1
        self._last = last
        self._stream_seq = max(self._stream_seq, end)
        self._bytes, self._messages = info.state.bytes, info.state.messages
        if self._messages and self._first == 1 and info.state.first_seq > 1:
            self._first = (await self._records(info.state.first_seq))[0][0]
        self.mark = DurableMark(self._last, 0, 0, True)
        return found

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Publish records (seq, payload) as one message; return once JetStream acknowledged
        it. Raise JournalFencedError when another writer appended first."""
        if not records:
            return
        with self._lock:
            if self.fenced:
                raise JournalFencedError(f"{self.stream}: this engine lost the lead")
            if any(len(payload) > MAX_PAYLOAD for _, payload in records):
                raise JournalError("a journal payload is larger than 1 MiB")
            first_seq = records[0][0]
            if first_seq <= self._last:
                raise JournalError(f"seq {first_seq} does not follow {self._last}")
            blob = b"".join([frame(seq, payload) for seq, payload in records])
            try:
                stream_seq = self._loop.call(self._publish(first_seq, blob), self.timeout_s * 2)
            except (TimeoutError, JournalUnavailableError) as exc:
                message = str(exc) or f"{self.stream}: the batch at seq {first_seq} timed out"
                settle = partial(self._settle, list(records), blob)
                raise JournalUnavailableError(message, settle) from None
            self._took(records, blob, stream_seq)

    def _took(self, records: Sequence[tuple[int, bytes]], blob: bytes, stream_seq: int) -> None:
        self._stream_seq = stream_seq
        self._last = records[-1][0]
        self._bytes += len(blob)
        self._messages += 1
        self.mark = DurableMark(self._last, 0, 0, True)

    def _settle(self, records: Sequence[tuple[int, bytes]], blob: bytes) -> bool:
        """Publish the unacknowledged batch `blob` again, under the same condition: it is
        stored once either way (a copy already there is recognised). Return True once it is
        in the stream; raise JournalUnavailableError while that cannot be done, and
        JournalFencedError when another writer appended instead."""
        with self._lock:
            try:
                stream_seq = self._loop.call(
                    self._publish(records[0][0], blob), self.timeout_s * 2
                )
            except (TimeoutError, JournalUnavailableError) as exc:
                message = str(exc) or f"{self.stream}: the refused batch is still unsettled"
                raise JournalUnavailableError(
                    message, partial(self._settle, records, blob)
                ) from None
            self._took(records, blob, stream_seq)
            return True

    async def _publish(self, first_seq: int, blob: bytes) -> int:
        js = self._js
        assert js is not None
        headers = {"Nats-Expected-Last-Sequence": str(self._stream_seq)}
        try:
            ack = await js.publish(self.subject, blob, timeout=self.timeout_s, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                return await self._after_conflict(blob)
            raise JournalUnavailableError(f"{self.stream}: publish refused: {exc}") from None
        except (nats.errors.Error, TimeoutError):
            # No acknowledgement (no quorum, no stream leader yet, connection lost): the batch
            # may or may not be stored; the expected-seq condition settles it on the next one.
            raise JournalUnavailableError(
                f"{self.stream}: the batch at seq {first_seq} was not acknowledged within "
                f"{self.timeout_s}s (no quorum?); nothing of it was released"
            ) from None
        if ack.seq != self._stream_seq + 1:
            self.fenced = True
            raise JournalFencedError(
                f"{self.stream}: the batch was stored at stream seq {ack.seq}, not "
                f"{self._stream_seq + 1}; this engine stops writing"
            )
        return ack.seq

    async def _after_conflict(self, blob: bytes) -> int:
        """Resolve a publish refused because the stream holds more than this writer knows:
        its own earlier copy of `blob` (return its stream seq), another writer's message
        (fenced), or, from a leader cut off from its replicas, nothing readable yet."""
        js = self._js
        assert js is not None
        expected = self._stream_seq + 1
        try:
            message = await js.get_msg(self.stream, expected)
        except (nats.errors.Error, TimeoutError) as exc:
            raise JournalUnavailableError(
                f"{self.stream}: the stream is past seq {self._stream_seq} but message "
                f"{expected} cannot be read yet ({exc})"
            ) from None
        if message.data == blob:
            return expected
        self.fenced = True
        raise JournalFencedError(
            f"{self.stream}: another engine appended after stream seq {self._stream_seq}; "
            "this engine lost the lead and stops writing"
        )

    def delete_through(self, seq: int) -> int:
        """Delete nothing: the stream is the history standbys replay; its limits bound it."""
        return 0

    def close(self) -> None:
        """Drain the connection and stop the journal's loop."""
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                self._loop.call(close_client(nc), CONNECT_TIMEOUT_S * 2)
        self._loop.close()


class StreamTail:
    """Follow the journal stream as a reader, from `after_seq` on: the records there when it
    started, in chunks, then what the engine publishes (`poll`, blocking)."""

    def __init__(self, journal: JetStreamJournal, after_seq: int) -> None:
        self.journal = journal
        self.last_seq = after_seq
        self._backlog: Iterator[tuple[int, bytes]] | None = journal.read(after_seq)

    def covers(self) -> bool:
        """Return whether every record after `last_seq` is still in the stream."""
        return self.journal.covers(self.last_seq)

    def poll(self) -> list[tuple[int, bytes]]:
        """Return the next records after `last_seq` (an empty list when there are none yet)."""
        found: list[tuple[int, bytes]] = []
        if self._backlog is not None:
            found = list(itertools.islice(self._backlog, READ_CHUNK * 16))
            if not found:
                self._backlog = None
        if self._backlog is None:
            found = [record for record in self.journal.follow() if record[0] > self.last_seq]
        if found:
            self.last_seq = found[-1][0]
        return found
