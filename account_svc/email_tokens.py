"""Emailed one-time tokens: email verification and password reset.

A token is 16 random bytes (its id), its expiry (Unix seconds) and an HMAC-SHA256 over both
and its purpose, truncated to 128 bits, in URL-safe base64 (54 characters). The key is
``<CFD_DATA_DIR>/keys/email_token_hmac.key``. The signature proves the platform issued the
token for this purpose, and dates it, without a database read; the row of its id in
``account_email_tokens`` makes it single-use. The token itself is never stored.

Spending a token (``spend``) runs inside the transaction of the change it authorizes, so a
token is used exactly when that change is made; an expired, used or forged token changes
nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from account_svc.keys import load_or_create_key
from account_svc.schema import email_tokens_table
from mesh.errors import ApiError, validation_error

KEY_FILE_NAME: Final = "email_token_hmac.key"
VERIFY_EMAIL: Final = "verify_email"
RESET_PASSWORD: Final = "reset_password"
MAX_TOKEN_LENGTH: Final = 128
_ID_BYTES: Final = 16
_EXPIRY_BYTES: Final = 8
_MAC_BYTES: Final = 16
_TOKEN_BYTES: Final = _ID_BYTES + _EXPIRY_BYTES + _MAC_BYTES


@dataclass(frozen=True)
class SpentToken:
    """Whose token was spent, and the email address it was sent to."""

    user_id: str
    email: str


class TokenSigner:
    """Issue and check the signature and expiry of emailed tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, body: bytes) -> bytes:
        return hmac.digest(self._key, purpose.encode() + b"\0" + body, hashlib.sha256)[:_MAC_BYTES]

    def issue(self, purpose: str, expire_s: int) -> tuple[str, str]:
        """Return a new token for ``purpose`` valid until ``expire_s``, and its id (hex)."""
        token_id = secrets.token_bytes(_ID_BYTES)
        body = token_id + expire_s.to_bytes(_EXPIRY_BYTES, "big")
        token = base64.urlsafe_b64encode(body + self._mac(purpose, body)).rstrip(b"=")
        return token.decode(), token_id.hex()

    def check(self, purpose: str, token: str, now_s: float) -> str:
        """Return the id of a genuine, unexpired token for ``purpose``.

        Raise VALIDATION_FAILED for an empty or oversized token, EMAIL_TOKEN_INVALID for one
        that was not issued here for this purpose, EMAIL_TOKEN_EXPIRED past its expiry.
        """
        if not token:
            raise validation_error("token", "is required")
        if len(token) > MAX_TOKEN_LENGTH:
            raise validation_error("token", f"must be at most {MAX_TOKEN_LENGTH} characters")
        try:
            raw = base64.urlsafe_b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        body, mac = raw[: _ID_BYTES + _EXPIRY_BYTES], raw[_ID_BYTES + _EXPIRY_BYTES :]
        if len(raw) != _TOKEN_BYTES or not hmac.compare_digest(mac, self._mac(purpose, body)):
            raise ApiError("EMAIL_TOKEN_INVALID", "this link or code is not valid")
        if now_s >= int.from_bytes(body[_ID_BYTES:], "big"):
            raise ApiError(
                "EMAIL_TOKEN_EXPIRED", "this link or code has expired; ask for a new one"
            )
        return body[:_ID_BYTES].hex()


def load_signer(data_dir: Path) -> TokenSigner:
    """Return the signer with the key of ``<data_dir>/keys``; raise ``KeyFileError``."""
    return TokenSigner(load_or_create_key(data_dir, KEY_FILE_NAME))


async def record(
    conn: AsyncConnection,
    *,
    token_id: str,
    user_id: str,
    purpose: str,
    email: str,
    now_ms: int,
    expire_ms: int,
) -> None:
    """Insert the row that makes the token ``token_id`` spendable once."""
    await conn.execute(
        email_tokens_table.insert().values(
            token_id=token_id,
            user_id=user_id,
            purpose=purpose,
            email=email,
            create_time_ms=now_ms,
            expire_time_ms=expire_ms,
            use_time_ms=None,
        )
    )


async def owner(conn: AsyncConnection, token_id: str, purpose: str) -> SpentToken:
    """Return whose unused token ``token_id`` is, changing nothing.

    Raise EMAIL_TOKEN_USED when it was spent (or withdrawn) before, EMAIL_TOKEN_INVALID when
    no such token was issued for this purpose.
    """
    c = email_tokens_table.c
    row = (
        await conn.execute(
            select(c.user_id, c.email, c.use_time_ms).where(
                c.token_id == token_id, c.purpose == purpose
            )
        )
    ).one_or_none()
    if row is None:
        raise ApiError("EMAIL_TOKEN_INVALID", "this link or code is not valid")
    if row.use_time_ms is not None:
        raise _used()
    return SpentToken(row.user_id, row.email)


async def spend(conn: AsyncConnection, token_id: str, purpose: str, now_ms: int) -> SpentToken:
    """Mark the token used within the caller's transaction; return whose it was.

    Raise as ``owner`` does; of two concurrent spends, one gets EMAIL_TOKEN_USED.
    """
    spent = await owner(conn, token_id, purpose)
    c = email_tokens_table.c
    used = await conn.execute(
        update(email_tokens_table)
        .where(c.token_id == token_id, c.use_time_ms.is_(None))
        .values(use_time_ms=now_ms)
    )
    if used.rowcount != 1:
        raise _used()
    return spent


def _used() -> ApiError:
    return ApiError("EMAIL_TOKEN_USED", "this link or code was already used; ask for a new one")


async def withdraw(conn: AsyncConnection, user_id: str, purpose: str, now_ms: int) -> None:
    """Make every unused token of the user for ``purpose`` unusable (a newer one replaces it)."""
    c = email_tokens_table.c
    await conn.execute(
        update(email_tokens_table)
        .where(c.user_id == user_id, c.purpose == purpose, c.use_time_ms.is_(None))
        .values(use_time_ms=now_ms)
    )
