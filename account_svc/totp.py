"""Two-factor authentication with TOTP (RFC 6238, through pyotp) and one-time recovery codes.

The secret at rest is encrypted with AES-256-GCM under a key of the accounts service,
``<CFD_DATA_DIR>/keys/totp_aes256.key`` (32 random bytes, generated on first use, mode
0600), with the user id as associated data, so a row copied to another user does not
decrypt. Replicas on several machines must share that file, as they share the JWT signing
key; losing it disables every enrolled authenticator (users then sign in with a recovery
code, or an operator deletes their ``account_totp`` row).

A code is accepted for the current 30-second step or the one before or after (clock drift),
and only for a step newer than the last one accepted for that user: each code works once.
Recovery codes are 80 random bits, shown once, stored as salted SHA-256 (their entropy makes
a slow hash unnecessary) and deleted when used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc import keys
from account_svc.schema import recovery_codes_table, totp_table
from mesh.errors import validation_error

ISSUER: Final = "CFD Mesh"
KEY_FILE_NAME: Final = "totp_aes256.key"
RECOVERY_CODE_COUNT: Final = 10
STEP_S: Final = 30
CODE_DIGITS: Final = 6
_KEY_BYTES: Final = keys.KEY_BYTES
_NONCE_BYTES: Final = 12
_CIPHERTEXT_VERSION: Final = "v1:"
# Base32 without the letters easily confused with digits (I, L, O, U are not in it).
_RECOVERY_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RECOVERY_GROUPS: Final = 4
_RECOVERY_GROUP_LENGTH: Final = 4
MAX_RECOVERY_CODE_LENGTH: Final = 64


class TotpKeyError(RuntimeError):
    """The TOTP encryption key cannot be read or is malformed."""


class SecretBox:
    """Encrypt and decrypt TOTP secrets, each bound to its user."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise TotpKeyError(f"the TOTP key must be {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def encrypt(self, secret: str, user_id: str) -> str:
        """Return the stored form of ``secret``: version, then base64 of nonce and ciphertext."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), user_id.encode())
        return _CIPHERTEXT_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, user_id: str) -> str:
        """Return the secret; raise TotpKeyError when it does not decrypt under this key."""
        try:
            if not stored.startswith(_CIPHERTEXT_VERSION):
                raise ValueError("unknown format")
            raw = base64.urlsafe_b64decode(stored[len(_CIPHERTEXT_VERSION) :])
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], user_id.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise TotpKeyError("a stored TOTP secret does not decrypt with the TOTP key") from None
        return plain.decode()


def load_or_create_key(data_dir: Path) -> bytes:
    """Return the TOTP key of ``<data_dir>/keys``, generating it on first use."""
    try:
        return keys.load_or_create_key(data_dir, KEY_FILE_NAME)
    except keys.KeyFileError as exc:
        raise TotpKeyError(f"TOTP key: {exc}") from None


def new_secret() -> str:
    """Return a new TOTP secret: 160 random bits, base32."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, email: str) -> str:
    """Return the ``otpauth://totp/...`` URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def check_code(field: str, code: str) -> None:
    """Raise VALIDATION_FAILED on ``field`` unless ``code`` is six ASCII digits."""
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        raise validation_error(field, f"must be {CODE_DIGITS} digits")


def matching_step(secret: str, code: str, now_s: float) -> int | None:
    """Return the time step (now, one before or one after) whose code is ``code``, if any."""
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_S)
    current = int(now_s) // STEP_S
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Return ten recovery codes like ``7KQ2-M9XA-PZ4C-R1TD`` (80 random bits each)."""
    return [
        "-".join(
            "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_GROUP_LENGTH))
            for _ in range(_RECOVERY_GROUPS)
        )
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def recovery_code_hash(user_id: str, code: str) -> str:
    """Return the stored form of a recovery code, ignoring case, spaces and dashes."""
    normalized = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(f"{user_id}:{normalized}".encode()).hexdigest()


@dataclass(frozen=True)
class TotpRecord:
    """A user's enrolment: the encrypted secret, whether it is confirmed, the last step used."""

    secret_ciphertext: str
    enabled: bool
    last_step: int

    def __repr__(self) -> str:
        return f"TotpRecord(enabled={self.enabled})"


class EnrolmentRefusedError(Exception):
    """Two-factor authentication is already enabled: enrolling again would replace it."""


class TotpStore:
    """Read and write ``account_totp`` and ``account_recovery_codes``."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def get(self, user_id: str) -> TotpRecord | None:
        """Return the user's enrolment, if any."""
        c = totp_table.c
        stmt = select(c.secret_ciphertext, c.enabled, c.last_step).where(c.user_id == user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        return TotpRecord(row.secret_ciphertext, row.enabled, row.last_step)

    async def enrol(self, user_id: str, secret_ciphertext: str) -> None:
        """Store a new unconfirmed secret, replacing an unconfirmed one.

        Raise ``EnrolmentRefusedError`` when two-factor authentication is enabled.
        """
        c = totp_table.c
        async with self._engine.begin() as conn:
            # Deleting first takes the row lock (or SQLite's write lock) before the check.
            await conn.execute(
                delete(totp_table).where(c.user_id == user_id, c.enabled.is_(False))
            )
            if await conn.scalar(select(c.user_id).where(c.user_id == user_id)) is not None:
                raise EnrolmentRefusedError(user_id)
            await conn.execute(
                totp_table.insert().values(
                    user_id=user_id,
                    secret_ciphertext=secret_ciphertext,
                    enabled=False,
                    last_step=0,
                    create_time_ms=int(self._clock() * 1000),
                )
            )

    async def enable(self, user_id: str, step: int, code_hashes: list[str]) -> bool:
        """Enable the pending enrolment with a code of ``step`` and store the recovery codes.

        Return False (nothing changes) when there is no pending enrolment or ``step`` was
        already used.
        """
        c = totp_table.c
        async with self._engine.begin() as conn:
            enabled = await conn.execute(
                update(totp_table)
                .where(c.user_id == user_id, c.enabled.is_(False), c.last_step < step)
                .values(enabled=True, last_step=step)
            )
            if enabled.rowcount != 1:
                return False
            r = recovery_codes_table.c
            await conn.execute(delete(recovery_codes_table).where(r.user_id == user_id))
            await conn.execute(
                recovery_codes_table.insert(),
                [{"user_id": user_id, "code_hash": h} for h in code_hashes],
            )
        return True

    async def use_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used; return False when it (or a later one) was used already."""
        c = totp_table.c
        async with self._engine.begin() as conn:
            used = await conn.execute(
                update(totp_table)
                .where(c.user_id == user_id, c.enabled.is_(True), c.last_step < step)
                .values(last_step=step)
            )
        return used.rowcount == 1

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Spend a recovery code; return False when it is unknown or already spent."""
        r = recovery_codes_table.c
        async with self._engine.begin() as conn:
            spent = await conn.execute(
                delete(recovery_codes_table).where(r.user_id == user_id, r.code_hash == code_hash)
            )
        return spent.rowcount == 1

    async def disable(self, user_id: str) -> None:
        """Delete the user's secret and recovery codes."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(recovery_codes_table).where(recovery_codes_table.c.user_id == user_id)
            )
            await conn.execute(delete(totp_table).where(totp_table.c.user_id == user_id))
