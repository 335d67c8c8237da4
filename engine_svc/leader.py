"""Leadership of a replicated journal: a lease in a NATS key-value bucket.

The bucket keeps one key, ``leader``, whose entries live CFD_LEASE_TTL_MS. An engine leads
while it holds the key: it takes it with a create (which fails while anyone else holds it) and
renews it with a compare-and-set on the revision it last wrote, well within the TTL. An engine
that stops renewing (killed, paused, cut off) loses the key when its entry expires, and a
standby's create then succeeds.

The lease alone does not stop a paused leader that wakes up from writing once more: the journal
does (`engine_svc.jetstream`): every publish names the stream seq its writer expects to follow,
and a new leader appends a batch as soon as it takes over, so the old one is refused.

The value also carries the leader's newest snapshot seq and digest: a standby that applies the
stream compares its own digest when it reaches that seq.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import nats.js.errors
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from engine_svc.jetstream import close_client, connect

log = logging.getLogger("engine.leader")

KEY = "leader"


class LeadershipError(RuntimeError):
    """This engine may not (or no longer) write the journal."""


@dataclass(frozen=True, slots=True)
class LeaseValue:
    """Who holds the lease, and the newest snapshot (seq, digest) it wrote (0, "" if none)."""

    holder: str
    seq: int = 0
    digest: str = ""

    def encode(self) -> bytes:
        """Return the value's JSON bytes."""
        return json.dumps({"holder": self.holder, "seq": self.seq, "digest": self.digest}).encode()

    @classmethod
    def decode(cls, data: bytes) -> LeaseValue:
        """Parse a value written by `encode`."""
        fields = json.loads(data)
        return cls(str(fields["holder"]), int(fields["seq"]), str(fields["digest"]))


class Lease:
    """The lease of one journal stream, held by `holder` while it renews it."""

    def __init__(
        self, url: str, stream: str, holder: str, ttl_s: float, replicas: int, timeout_s: float
    ) -> None:
        self.url = url
        self.bucket = f"{stream}_LEASE"
        self.holder = holder
        self.ttl_s = ttl_s
        self.replicas = replicas
        self.timeout_s = timeout_s
        self.revision = 0
        self._nc: Client | None = None
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Connect and create the bucket when it does not exist."""
        self._nc = await connect(self.url)
        js = self._nc.jetstream(timeout=self.timeout_s)
        try:
            self._kv = await js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            config = KeyValueConfig(
                bucket=self.bucket,
                history=1,
                ttl=self.ttl_s,
                replicas=self.replicas,
                storage=StorageType.FILE,
            )
            self._kv = await js.create_key_value(config)

    @property
    def kv(self) -> KeyValue:
        """Return the open bucket."""
        if self._kv is None:
            raise LeadershipError("the lease is not open")
        return self._kv

    async def _entry(self) -> tuple[LeaseValue, int] | None:
        try:
            entry = await self.kv.get(KEY)
        except nats.js.errors.NotFoundError:
            return None
        if not entry.value or entry.revision is None:
            return None
        return LeaseValue.decode(entry.value), entry.revision

    async def read(self) -> LeaseValue | None:
        """Return the current holder's value, None when nobody holds the lease."""
        found = await self._entry()
        return None if found is None else found[0]

    async def acquire(self, value: LeaseValue) -> bool:
        """Take the lease if nobody holds it; return whether this engine now holds it."""
        try:
            self.revision = await self.kv.create(KEY, value.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self, value: LeaseValue) -> bool:
        """Extend the lease; return False only when another engine holds it. A lease that
        expired with nobody taking it is taken again (the journal still fences a writer that
        lost the stream in between). Errors of an unreachable cluster propagate: they say
        nothing about who leads."""
        try:
            self.revision = await self.kv.update(KEY, value.encode(), last=self.revision)
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        found = await self._entry()
        if found is None:
            return await self.acquire(value)
        current, revision = found
        if current.holder != self.holder:
            return False
        # Our own entry under another revision (an answer lost in a fail-over of the bucket).
        self.revision = await self.kv.update(KEY, value.encode(), last=revision)
        return True

    async def release(self) -> None:
        """Give the lease up (a clean stop), so a standby takes over without waiting."""
        try:
            await self.kv.delete(KEY, last=self.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            log.info("the lease was no longer this engine's to release")

    async def close(self) -> None:
        """Close the connection."""
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await close_client(nc)
