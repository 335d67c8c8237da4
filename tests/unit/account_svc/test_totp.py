"""Tests for the TOTP building blocks: secret encryption, its key file, codes and the store."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import recovery_codes_table, totp_table
from account_svc.totp import (
    EnrolmentRefusedError,
    SecretBox,
    TotpKeyError,
    TotpStore,
    check_code,
    load_or_create_key,
    matching_step,
    new_recovery_codes,
    new_secret,
    otpauth_uri,
    recovery_code_hash,
)
from account_svc.users import UserStore
from mesh.errors import ApiError

KEY = bytes(range(32))


def test_a_secret_decrypts_only_for_its_user_and_key() -> None:
    box = SecretBox(KEY)
    secret = new_secret()
    stored = box.encrypt(secret, "user-1")
    assert secret not in stored and stored != box.encrypt(secret, "user-1")
    assert box.decrypt(stored, "user-1") == secret
    with pytest.raises(TotpKeyError):
        box.decrypt(stored, "user-2")
    with pytest.raises(TotpKeyError):
        SecretBox(bytes(32)).decrypt(stored, "user-1")
    for garbage in ("", "v1:", "v1:!!!", "v2:" + stored[3:]):
        with pytest.raises(TotpKeyError):
            box.decrypt(garbage, "user-1")
    with pytest.raises(TotpKeyError):
        SecretBox(b"short")


def test_the_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    path = tmp_path / "keys" / "totp_aes256.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key and len(key) == 32
    path.write_bytes(b"too short")
    with pytest.raises(TotpKeyError, match="32 bytes"):
        load_or_create_key(tmp_path)


def test_the_otpauth_uri_names_the_issuer_and_the_user() -> None:
    secret = new_secret()
    uri = urlparse(otpauth_uri(secret, "ann@example.com"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert uri.path == "/CFD%20Mesh:ann%40example.com"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret] and query["issuer"] == ["CFD Mesh"]


def test_codes_match_the_current_step_and_its_neighbours_only() -> None:
    secret = new_secret()
    totp = pyotp.TOTP(secret)
    now = 1_700_000_015.0
    step = int(now) // 30
    assert matching_step(secret, totp.at(now), now) == step
    assert matching_step(secret, totp.at(now - 30), now) == step - 1
    assert matching_step(secret, totp.at(now + 30), now) == step + 1
    assert matching_step(secret, totp.at(now - 60), now) is None
    assert matching_step(secret, totp.at(now + 60), now) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "\u0661" * 6, " 12345"])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(ApiError) as info:
        check_code("totp_code", code)
    assert info.value.violations == (("totp_code", "must be 6 digits"),)


def test_recovery_codes_are_distinct_and_hashed_per_user() -> None:
    codes = new_recovery_codes()
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    code = codes[0]
    assert recovery_code_hash("u", code) == recovery_code_hash("u", code.lower().replace("-", " "))
    assert recovery_code_hash("u", code) != recovery_code_hash("v", code)
    assert code not in recovery_code_hash("u", code)


@pytest.fixture
async def user_id(db: AsyncEngine) -> str:
    return (await UserStore(db).create("totp@example.com", "h", "5000")).id


async def test_enrolment_is_replaced_until_enabled(db: AsyncEngine, user_id: str) -> None:
    store = TotpStore(db)
    await store.enrol(user_id, "first")
    await store.enrol(user_id, "second")
    record = await store.get(user_id)
    assert record is not None and (record.secret_ciphertext, record.enabled) == ("second", False)
    assert await store.enable(user_id, 100, ["h1", "h2"])
    with pytest.raises(EnrolmentRefusedError):
        await store.enrol(user_id, "third")
    record = await store.get(user_id)
    assert record is not None and (record.secret_ciphertext, record.enabled) == ("second", True)
    assert "second" not in repr(record)


async def test_each_step_and_recovery_code_is_used_once(db: AsyncEngine, user_id: str) -> None:
    store = TotpStore(db)
    assert not await store.use_step(user_id, 5)
    await store.enrol(user_id, "secret")
    assert not await store.use_step(user_id, 5), "not enabled yet"
    assert await store.enable(user_id, 100, ["h1", "h2"])
    assert not await store.enable(user_id, 101, ["h3"]), "already enabled"
    assert not await store.use_step(user_id, 100), "the confirming step is spent"
    assert await store.use_step(user_id, 101)
    assert not await store.use_step(user_id, 101)
    assert not await store.use_step(user_id, 100), "an older step after a newer one"
    assert await store.use_recovery_code(user_id, "h1")
    assert not await store.use_recovery_code(user_id, "h1")
    assert not await store.use_recovery_code(user_id, "h3")
    await store.disable(user_id)
    assert await store.get(user_id) is None
    async with db.connect() as conn:
        assert (await conn.execute(select(recovery_codes_table))).all() == []
        assert (await conn.execute(select(totp_table))).all() == []
