"""Password hashing with argon2id, off the event loop, in constant time per attempt."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import argon2
import argon2.exceptions


@dataclass(frozen=True)
class HashCost:
    """argon2id cost parameters (RFC 9106)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


# Cheap parameters for tests only: same algorithm and code paths, a fraction of the time.
TEST_COST = HashCost(time_cost=1, memory_kib=1024, parallelism=1)


class PasswordHasher:
    """Hash and verify passwords; every verification costs one full argon2id run."""

    def __init__(self, cost: HashCost | None = None) -> None:
        cost = HashCost() if cost is None else cost
        self._hasher = argon2.PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            type=argon2.Type.ID,
        )
        # Verified against when the email is unknown, so that a failed sign-in takes the
        # same time whether or not the user exists.
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of ``password``."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded_hash: str | None, password: str) -> bool:
        """Return whether ``password`` matches; with no hash, spend the same time and fail.

        An empty hash is a user without a password (one who signs in through an identity
        provider): no password matches, and finding that out costs the same time.
        """
        target = encoded_hash or self._decoy_hash
        matches = await asyncio.to_thread(self._verify_sync, target, password)
        return matches and bool(encoded_hash)

    def _verify_sync(self, encoded_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, encoded_hash: str) -> bool:
        """Return whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(encoded_hash)
        except argon2.exceptions.InvalidHashError:
            return True
