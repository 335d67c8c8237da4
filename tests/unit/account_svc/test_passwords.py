"""Tests for argon2id password hashing."""

from __future__ import annotations

import pytest

from account_svc.passwords import TEST_COST, HashCost, PasswordHasher


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(TEST_COST)


async def test_hash_is_argon2id_and_verifies(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse")
    assert encoded.startswith("$argon2id$")
    assert "correct horse" not in encoded
    assert await hasher.verify(encoded, "correct horse")
    assert not await hasher.verify(encoded, "correct horsE")


async def test_same_password_hashes_differently(hasher: PasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_missing_hash_never_verifies(hasher: PasswordHasher) -> None:
    assert not await hasher.verify(None, "anything at all")


async def test_corrupt_hash_does_not_verify(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("not-a-hash", "whatever1")
    assert hasher.needs_rehash("not-a-hash")


async def test_rehash_is_needed_after_a_cost_change(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("password-1")
    assert not hasher.needs_rehash(encoded)
    stronger = PasswordHasher(HashCost(time_cost=2, memory_kib=2048, parallelism=1))
    assert stronger.needs_rehash(encoded)
    assert await stronger.verify(encoded, "password-1")


def test_default_cost_follows_rfc_9106_second_recommendation() -> None:
    assert HashCost() == HashCost(time_cost=3, memory_kib=65536, parallelism=4)


class RecordingHasher(PasswordHasher):
    """Remembers the hash each verification ran against."""

    def __init__(self) -> None:
        super().__init__(TEST_COST)
        self.verified_against: list[str] = []

    def _verify_sync(self, encoded_hash: str, password: str) -> bool:
        self.verified_against.append(encoded_hash)
        return super()._verify_sync(encoded_hash, password)


async def test_a_user_without_a_password_costs_a_full_verification_and_never_matches() -> None:
    hasher = RecordingHasher()

    assert not await hasher.verify("", "anything at all")
    # The decoy hash is verified, so a password-less account answers as slowly as any other.
    (target,) = hasher.verified_against
    assert target.startswith("$argon2id$")
